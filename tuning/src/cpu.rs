//! Which CPUs this process may use, pinning a thread to one, and how ringway spreads its
//! workers over them.
//!
//! ringway runs one worker thread per core. The benchmarks keep the balancer's workers on the
//! first allowed CPUs and the load generator and backends on the rest (on a 2-core box:
//! balancer on CPU 0, backend + load generator on CPU 1), so the two never compete for a core
//! and CPU time per request can be read per process.

use serde::Serialize;

use crate::sys;

/// The CPUs this process may run on (its `sched_getaffinity` mask), ascending.
///
/// Falls back to `0..available_parallelism` if the mask cannot be read.
pub fn allowed_cpus() -> Vec<usize> {
    match sys::process_affinity() {
        Ok(cpus) if !cpus.is_empty() => cpus,
        Ok(_) | Err(_) => {
            let n = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
            (0..n).collect()
        }
    }
}

/// Pins the calling thread to `cpu`. Returns false if the kernel refused (the CPU does not
/// exist, is outside the process's affinity mask, or is beyond the 1024 CPUs a `cpu_set_t`
/// holds).
pub fn pin_current_thread(cpu: usize) -> bool {
    // core_affinity would hit libc's CPU_SET bounds assertion (an abort, in a non-unwinding
    // function) for an index past the set.
    if cpu >= sys::CPU_SET_CAPACITY {
        return false;
    }
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu })
}

/// The affinity mask as a hexadecimal string, as `taskset -p` prints it (`0x3` for CPUs 0–1).
pub fn mask_hex(cpus: &[usize]) -> String {
    let Some(&max) = cpus.iter().max() else {
        return "0x0".to_owned();
    };
    let mut nibbles = vec![0u8; max / 4 + 1];
    for &cpu in cpus {
        nibbles[cpu / 4] |= 1 << (cpu % 4);
    }
    let digits: String = nibbles
        .iter()
        .rev()
        .map(|n| char::from_digit(u32::from(*n), 16).unwrap_or('?'))
        .collect();
    format!("0x{digits}")
}

/// Where `n` balancer workers go, and which CPUs are left for a load generator or backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinPlan {
    /// CPU of worker `i` at index `i`.
    pub workers: Vec<usize>,
    /// Allowed CPUs no worker uses: where to put the load generator and backends.
    pub rest: Vec<usize>,
    /// True if there are more workers than allowed CPUs, so workers share cores.
    pub oversubscribed: bool,
}

impl PinPlan {
    /// Worker `i` goes to the `i`-th allowed CPU (wrapping around when `n` exceeds them); the
    /// CPUs after the last worker are the rest. `n = 0` means one worker per allowed CPU.
    pub fn new(allowed: &[usize], n: usize) -> Self {
        if allowed.is_empty() {
            return Self {
                workers: Vec::new(),
                rest: Vec::new(),
                oversubscribed: n > 0,
            };
        }
        let n = if n == 0 { allowed.len() } else { n };
        let workers = (0..n).map(|i| allowed[i % allowed.len()]).collect();
        let rest = allowed.iter().skip(n).copied().collect();
        Self {
            workers,
            rest,
            oversubscribed: n > allowed.len(),
        }
    }

    /// The plan for this process's allowed CPUs.
    pub fn for_host(n: usize) -> Self {
        Self::new(&allowed_cpus(), n)
    }

    /// The CPU of worker `index`, if the plan has one.
    pub fn worker_cpu(&self, index: usize) -> Option<usize> {
        self.workers.get(index).copied()
    }
}

/// A CPU list in `taskset -c` form: `0-3,6`.
pub fn cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_core_box_matches_the_benchmarks() {
        let plan = PinPlan::new(&[0, 1], 1);
        assert_eq!(plan.workers, vec![0]);
        assert_eq!(plan.rest, vec![1]);
        assert!(!plan.oversubscribed);
    }

    #[test]
    fn zero_means_one_per_cpu_and_excess_wraps() {
        assert_eq!(PinPlan::new(&[2, 3, 5], 0).workers, vec![2, 3, 5]);
        let plan = PinPlan::new(&[0, 1], 3);
        assert_eq!(plan.workers, vec![0, 1, 0]);
        assert!(plan.rest.is_empty());
        assert!(plan.oversubscribed);
        assert_eq!(plan.worker_cpu(2), Some(0));
        assert_eq!(plan.worker_cpu(3), None);
    }

    #[test]
    fn masks_and_lists() {
        assert_eq!(mask_hex(&[0, 1]), "0x3");
        assert_eq!(mask_hex(&[4]), "0x10");
        assert_eq!(mask_hex(&[]), "0x0");
        assert_eq!(cpu_list(&[0, 1, 2, 3, 6, 8, 9]), "0-3,6,8-9");
        assert_eq!(cpu_list(&[1]), "1");
    }

    #[test]
    fn allowed_cpus_are_pinnable() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        let cpu = cpus[cpus.len() - 1];
        let pinned = std::thread::spawn(move || pin_current_thread(cpu))
            .join()
            .unwrap();
        assert!(pinned);
    }
}
