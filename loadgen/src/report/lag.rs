//! Send-lag in every output: its distribution in a few numbers, and the warning that says when
//! the generator's own lateness is large enough to blur the latencies it measures.
//!
//! Send-lag (written − intended start) is part of every corrected latency. When its p99 is more
//! than [`LAG_SHARE`] of the corrected p50, latencies of that size are mostly the generator's
//! own doing, and the report says so.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{human_us, TargetResult};

/// Send-lag p99 above this share of the corrected p50 gets a warning.
pub const LAG_SHARE: f64 = 0.10;

/// The send-lag distribution, µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SendLag {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// Largest.
    pub max: u64,
}

impl SendLag {
    /// Summarises a send-lag histogram (µs).
    pub fn of(h: &Histogram<u64>) -> Self {
        Self {
            p50: h.value_at_percentile(50.0),
            p90: h.value_at_percentile(90.0),
            p99: h.value_at_percentile(99.0),
            p99_9: h.value_at_percentile(99.9),
            max: h.max(),
        }
    }

    /// `p50 1us  p90 3us  p99 12us  p99.9 40us  max 120us`
    pub fn line(&self) -> String {
        format!(
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            human_us(self.p50 as f64),
            human_us(self.p90 as f64),
            human_us(self.p99 as f64),
            human_us(self.p99_9 as f64),
            human_us(self.max as f64)
        )
    }
}

/// The warning for a target whose send-lag p99 exceeds [`LAG_SHARE`] of its corrected p50.
pub fn warning(t: &TargetResult) -> Option<String> {
    let lat = &t.rec.latencies;
    if lat.corrected.is_empty() {
        return None;
    }
    let lag_p99 = lat.send_lag.value_at_percentile(99.0);
    let p50 = lat.corrected.value_at_percentile(50.0);
    too_laggy(lag_p99, p50).then(|| {
        format!(
            "{}: send-lag p99 {} is more than {:.0} % of the corrected p50 latency {}: latencies \
             below {} are the generator's own lag (give the generator a core of its own, more \
             threads, or a lower rate)",
            t.url,
            human_us(lag_p99 as f64),
            LAG_SHARE * 100.0,
            human_us(p50 as f64),
            human_us(lag_p99 as f64)
        )
    })
}

/// Whether a send-lag p99 is too large next to a corrected p50 (both µs).
fn too_laggy(lag_p99: u64, p50: u64) -> bool {
    lag_p99 as f64 > LAG_SHARE * p50 as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histo::new_histogram;

    #[test]
    fn the_threshold_is_ten_percent_of_the_median() {
        assert!(!too_laggy(10, 100));
        assert!(too_laggy(11, 100));
        assert!(!too_laggy(0, 0));
        assert!(too_laggy(1, 0));
    }

    #[test]
    fn summary_reads_the_histogram() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let s = SendLag::of(&h);
        assert_eq!(
            (s.p50, s.p90, s.p99, s.p99_9, s.max),
            (500, 900, 990, 1000, 1000)
        );
        assert_eq!(
            s.line(),
            "p50 500us  p90 900us  p99 990us  p99.9 1.00ms  max 1.00ms"
        );
    }
}
