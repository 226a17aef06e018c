//! CPU time of watched processes (`--watch-pid`), read from /proc.
//!
//! The time of a process is the sum over its threads of `/proc/PID/task/TID/schedstat`'s first
//! field (nanoseconds on a CPU, user and system together). Where schedstat is missing the
//! process's `utime + stime` from `/proc/PID/stat` is used instead, in clock ticks of 1/100 s
//! (USER_HZ, which Linux fixes at 100 for every architecture ringway runs on).

use std::fs;
use std::time::Duration;

/// Reads the CPU time a process has used so far, or the reason it cannot.
pub fn process_cpu_time(pid: u32) -> Result<Duration, String> {
    match schedstat_total(pid) {
        Some(t) => Ok(t),
        None => stat_ticks(pid),
    }
}

fn schedstat_total(pid: u32) -> Option<Duration> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total_ns: u64 = 0;
    let mut seen = false;
    for task in tasks.flatten() {
        let Ok(text) = fs::read_to_string(task.path().join("schedstat")) else {
            // A thread that exited between listing and reading: its time is gone either way.
            continue;
        };
        let ns: u64 = text.split_ascii_whitespace().next()?.parse().ok()?;
        total_ns = total_ns.saturating_add(ns);
        seen = true;
    }
    seen.then(|| Duration::from_nanos(total_ns))
}

fn stat_ticks(pid: u32) -> Result<Duration, String> {
    let path = format!("/proc/{pid}/stat");
    let text = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_stat(&text).ok_or_else(|| format!("{path}: unexpected format"))
}

/// `utime + stime` from the text of /proc/PID/stat.
fn parse_stat(text: &str) -> Option<Duration> {
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After ')' come field 3 (state) … ; utime is field 14 and stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// CPU used by one watched process over a measured window.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CpuUsage {
    /// The process.
    pub pid: u32,
    /// CPU time used in the window, in microseconds.
    pub cpu_us: f64,
    /// CPU microseconds per completed request.
    pub us_per_request: f64,
}

/// A running measurement: the reading taken at the start of a window.
#[derive(Debug, Clone, Copy)]
pub struct CpuWatch {
    pid: u32,
    start: Duration,
}

impl CpuWatch {
    /// Reads the start of the window.
    pub fn start(pid: u32) -> Result<Self, String> {
        Ok(Self { pid, start: process_cpu_time(pid)? })
    }

    /// Reads the end of the window: CPU time used since [`start`](Self::start).
    pub fn stop(self) -> Result<Duration, String> {
        Ok(process_cpu_time(self.pid)?.saturating_sub(self.start))
    }

    /// The watched process.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let line = "1234 (my (odd) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        assert_eq!(parse_stat(line), Some(Duration::from_millis(3000)));
    }

    #[test]
    fn own_process_uses_cpu() {
        let before = process_cpu_time(std::process::id()).unwrap();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = process_cpu_time(std::process::id()).unwrap();
        assert!(after > before);
    }
}
