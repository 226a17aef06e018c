//! `ringway-tune --probe-stalls`: how noisy the host is, as the benchmarks feel it.
//!
//! On a shared virtual machine the hypervisor takes the vCPU away now and then (another guest
//! runs), and a halted vCPU takes time to wake when its timer fires. Both land in every
//! latency a benchmark measures and neither shows in the load average. The probe measures
//! them directly on one CPU:
//! - **stalls**: a thread spins reading the clock; a gap between two readings longer than
//!   [`STALL_MIN`] is time the thread was not running. Their sum over the spin is the share
//!   of the CPU the host took.
//! - **wake-up lateness**: the thread sleeps 1 ms at a time (timer slack set to 1 ns) and
//!   notes how much later than asked it runs again: what a paced load generator waits on
//!   before every request it sends on time (ringway-loadgen's `--spin-us` covers it).
//!
//! Run it next to a benchmark (before and after) and read the figures as its noise.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sys;

/// A gap between two clock readings of the spinning thread longer than this is a stall.
pub const STALL_MIN: Duration = Duration::from_micros(20);

/// The sleep of each wake-up sample.
pub const SLEEP: Duration = Duration::from_millis(1);

/// What the probe saw.
#[derive(Debug, Clone, Serialize)]
pub struct StallProbe {
    /// The CPU it ran on, if it was pinned.
    pub cpu: Option<usize>,
    /// How long it spun.
    pub spin_seconds: f64,
    /// Time not running while spinning (gaps over [`STALL_MIN`]), µs.
    pub stalled_us: u64,
    /// `stalled_us` as a share of the spin, percent.
    pub stalled_percent: f64,
    /// Gaps over 100 µs.
    pub gaps_over_100us: u64,
    /// Gaps over 1 ms.
    pub gaps_over_1ms: u64,
    /// The longest gap, µs.
    pub max_gap_us: u64,
    /// 1 ms sleeps taken.
    pub wakeups: usize,
    /// How late they ended, µs.
    pub wake_late_us: Percentiles,
    /// Why the sleeps kept the default timer slack, if they did.
    pub slack_error: Option<String>,
}

/// Three points of a distribution, µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// Of `samples` (sorted here).
    pub fn of(samples: &mut [u64]) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).saturating_sub(1);
            samples.get(i).copied().unwrap_or(0)
        };
        Self {
            p50: at(0.50),
            p99: at(0.99),
            max: samples.last().copied().unwrap_or(0),
        }
    }
}

/// Spins for half of `duration` and sleeps 1 ms at a time for the other half, on `cpu` if
/// given (on its own thread, so the caller's affinity is left alone).
pub fn probe(duration: Duration, cpu: Option<usize>) -> StallProbe {
    let run = move || {
        let pinned = cpu.filter(|&c| crate::runtime::pin_current_thread(c));
        let half = duration / 2;
        let spin = spin(half);
        let slack_error = sys::set_timer_slack(1).err().map(|e| e.to_string());
        let mut late = sleeps(half);
        let spin_seconds = half.as_secs_f64();
        StallProbe {
            cpu: pinned,
            spin_seconds,
            stalled_us: spin.stalled_us,
            stalled_percent: if spin_seconds > 0.0 {
                spin.stalled_us as f64 / (spin_seconds * 1e4)
            } else {
                0.0
            },
            gaps_over_100us: spin.over_100us,
            gaps_over_1ms: spin.over_1ms,
            max_gap_us: spin.max_gap_us,
            wakeups: late.len(),
            wake_late_us: Percentiles::of(&mut late),
            slack_error,
        }
    };
    std::thread::Builder::new()
        .name("stall-probe".to_owned())
        .spawn(run)
        .ok()
        .and_then(|h| h.join().ok())
        .unwrap_or_else(|| empty(cpu))
}

fn empty(cpu: Option<usize>) -> StallProbe {
    StallProbe {
        cpu,
        spin_seconds: 0.0,
        stalled_us: 0,
        stalled_percent: 0.0,
        gaps_over_100us: 0,
        gaps_over_1ms: 0,
        max_gap_us: 0,
        wakeups: 0,
        wake_late_us: Percentiles::default(),
        slack_error: Some("the probe thread could not run".to_owned()),
    }
}

/// What spinning saw.
#[derive(Debug, Default, PartialEq, Eq)]
struct Spin {
    stalled_us: u64,
    over_100us: u64,
    over_1ms: u64,
    max_gap_us: u64,
}

impl Spin {
    /// Counts one gap between two clock readings.
    fn gap(&mut self, gap: Duration) {
        if gap <= STALL_MIN {
            return;
        }
        let us = u64::try_from(gap.as_micros()).unwrap_or(u64::MAX);
        self.stalled_us += us;
        self.over_100us += u64::from(us > 100);
        self.over_1ms += u64::from(us > 1000);
        self.max_gap_us = self.max_gap_us.max(us);
    }
}

fn spin(for_: Duration) -> Spin {
    let mut out = Spin::default();
    let start = Instant::now();
    let mut prev = start;
    while prev.duration_since(start) < for_ {
        let now = Instant::now();
        out.gap(now.duration_since(prev));
        prev = now;
    }
    out
}

/// Lateness of each 1 ms sleep, µs.
fn sleeps(for_: Duration) -> Vec<u64> {
    let start = Instant::now();
    let mut late = Vec::new();
    while start.elapsed() < for_ {
        let asked = Instant::now();
        std::thread::sleep(SLEEP);
        let over = asked.elapsed().saturating_sub(SLEEP);
        late.push(u64::try_from(over.as_micros()).unwrap_or(u64::MAX));
    }
    late
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn only_gaps_over_the_threshold_are_stalls() {
        let mut s = Spin::default();
        for g in [1, 19, 20] {
            s.gap(g * US);
        }
        assert_eq!(s, Spin::default());
        s.gap(50 * US);
        s.gap(150 * US);
        s.gap(2500 * US);
        assert_eq!(
            s,
            Spin {
                stalled_us: 2700,
                over_100us: 2,
                over_1ms: 1,
                max_gap_us: 2500
            }
        );
    }

    #[test]
    fn percentiles_pick_ranks() {
        let mut v: Vec<u64> = (1..=200).rev().collect();
        assert_eq!(
            Percentiles::of(&mut v),
            Percentiles {
                p50: 100,
                p99: 198,
                max: 200
            }
        );
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    }

    #[test]
    fn a_short_probe_reports_its_sleeps() {
        let p = probe(Duration::from_millis(40), None);
        assert!(p.wakeups >= 5, "{p:?}");
        assert!((p.spin_seconds - 0.02).abs() < 1e-9);
        assert!(
            p.stalled_percent >= 0.0 && p.stalled_percent <= 100.0,
            "{p:?}"
        );
    }
}
