//! CPU time of watched processes (`--watch-pid`), read from /proc.
//!
//! Live threads are read precisely: the first field of `/proc/PID/task/TID/schedstat` is the
//! nanoseconds the thread has run (user and system). Threads that already exited are gone from
//! `task/`, but the kernel keeps their time in the process's `utime + stime`
//! (`/proc/PID/stat`, clock ticks of 1/100 s: USER_HZ, fixed at 100 on every architecture
//! ringway runs on). So a reading is `Σ live schedstat + (process ticks − Σ live thread ticks)`:
//! nanosecond precision for the threads still running, tick precision for those that ended (a
//! thread-per-connection server's threads end when the load generator closes its connections).

use std::fs;
use std::time::Duration;

/// Length of one clock tick in /proc/PID/stat.
const TICK: Duration = Duration::from_millis(10);

/// Reads the CPU time a process has used so far, or the reason it cannot.
pub fn process_cpu_time(pid: u32) -> Result<Duration, String> {
    let path = format!("/proc/{pid}/stat");
    let text = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let process_ticks = parse_stat(&text).ok_or_else(|| format!("{path}: unexpected format"))?;
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Ok(TICK * u32::try_from(process_ticks).unwrap_or(u32::MAX));
    };
    let mut live_ns: u64 = 0;
    let mut live_ticks: u64 = 0;
    for task in tasks.flatten() {
        // A thread may exit between listing and reading: then it counts as exited (ticks).
        let (Ok(sched), Ok(stat)) = (
            fs::read_to_string(task.path().join("schedstat")),
            fs::read_to_string(task.path().join("stat")),
        ) else {
            continue;
        };
        let (Some(ns), Some(ticks)) = (
            sched
                .split_ascii_whitespace()
                .next()
                .and_then(|f| f.parse::<u64>().ok()),
            parse_stat(&stat),
        ) else {
            continue;
        };
        live_ns = live_ns.saturating_add(ns);
        live_ticks += ticks;
    }
    let exited_ticks = process_ticks.saturating_sub(live_ticks);
    Ok(Duration::from_nanos(live_ns) + TICK * u32::try_from(exited_ticks).unwrap_or(u32::MAX))
}

/// `utime + stime` in clock ticks from the text of /proc/PID/stat (or a task's stat).
fn parse_stat(text: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After ')' come field 3 (state) … ; utime is field 14 and stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
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
        Ok(Self {
            pid,
            start: process_cpu_time(pid)?,
        })
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
        assert_eq!(parse_stat(line), Some(300));
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
