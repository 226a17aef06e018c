//! Readings from /proc: CPU time and resident memory of a process group, busy time of CPUs, and
//! the CPU time of this process's reaped children (the load generators).

use std::fs;

/// Clock ticks per second of the /proc times (`getconf CLK_TCK`; 100 if unreadable).
pub fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The fields of /proc/PID/stat after the command name, numbered as in proc(5) from 3 (state).
fn stat_fields(text: &str) -> Option<Vec<&str>> {
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

/// proc(5) field `n` (1-based) from `stat_fields`.
fn field(fields: &[&str], n: usize) -> u64 {
    fields.get(n - 3).and_then(|f| f.parse().ok()).unwrap_or(0)
}

/// Pids of every process in process group `pgid`.
pub fn group_pids(pgid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|t| stat_fields(&t).map(|f| field(&f, 5) == u64::from(pgid)))
                .unwrap_or(false)
        })
        .collect()
}

/// utime + stime of every process of group `pgid` (all their threads), in clock ticks.
pub fn group_cpu_ticks(pgid: u32) -> u64 {
    group_pids(pgid)
        .into_iter()
        .filter_map(|pid| {
            let t = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let f = stat_fields(&t)?;
            Some(field(&f, 14) + field(&f, 15))
        })
        .sum()
}

/// VmRSS of every process of group `pgid`, KiB.
pub fn group_rss_kib(pgid: u32) -> u64 {
    group_pids(pgid)
        .into_iter()
        .filter_map(|pid| {
            let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// cutime + cstime of this process: CPU of every child it has waited for, clock ticks.
pub fn reaped_children_ticks() -> u64 {
    fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|t| stat_fields(&t).map(|f| field(&f, 16) + field(&f, 17)))
        .unwrap_or(0)
}

/// Busy and total ticks of a set of CPUs so far (/proc/stat; busy = all but idle and iowait).
pub fn cpus_busy(cpus: &[usize]) -> (u64, u64) {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut busy = 0;
    let mut total = 0;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        let Some(n) = name
            .strip_prefix("cpu")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if !cpus.contains(&n) {
            continue;
        }
        let v: Vec<u64> = words.take(8).filter_map(|w| w.parse().ok()).collect();
        if v.len() == 8 {
            busy += v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
            total += v.iter().sum::<u64>();
        }
    }
    (busy, total)
}

/// The first three fields of /proc/loadavg.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_a_command_name_with_spaces_and_parens() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 0 0 0 0 0 7 3 11 13 20 0 1 0 5";
        let f = stat_fields(line).unwrap();
        assert_eq!(field(&f, 5), 42);
        assert_eq!(field(&f, 14) + field(&f, 15), 10);
        assert_eq!(field(&f, 16) + field(&f, 17), 24);
    }

    #[test]
    fn this_process_is_found_in_its_group() {
        let me = std::process::id();
        let pgid = nix::unistd::getpgrp().as_raw() as u32;
        assert!(group_pids(pgid).contains(&me));
        assert!(group_rss_kib(pgid) > 0);
    }
}
