//! Open-loop schedules: the intended start time of every request of one connection.
//!
//! The total rate is split evenly across connections. With even arrivals connection `i` of `C`
//! sends at `i/R, i/R + C/R, i/R + 2C/R, …` so that the connections together send one request every
//! `1/R` seconds. With Poisson arrivals each connection draws exponential gaps with mean `C/R`
//! (the sum of `C` Poisson processes of rate `R/C` is a Poisson process of rate `R`).
//!
//! Times are offsets from the start of the run, in `f64` nanoseconds. Even slots are computed
//! from their number (slot `k` at `k/R`), so a long run does not drift from the requested rate
//! and a slot on a boundary (the end of the warm-up or of the run) falls exactly on it.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::cli::ArrivalsArg;

/// The intended start times of one connection's requests.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
    /// Offset of the next intended start, in nanoseconds since the start of the run.
    next_ns: f64,
    /// Mean gap between this connection's requests, in nanoseconds.
    gap_ns: f64,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Slot `n` of this stream is slot `index + n * streams` of the whole schedule.
    Even {
        index: u64,
        streams: u64,
        n: u64,
        rate: f64,
    },
    Poisson(SmallRng),
}

impl Schedule {
    /// The schedule of connection `index` of `connections`, sharing `total_rate` requests/s.
    pub fn new(
        arrivals: ArrivalsArg,
        total_rate: f64,
        connections: usize,
        index: usize,
        seed: u64,
    ) -> Self {
        let gap_ns = 1e9 * connections as f64 / total_rate;
        match arrivals {
            ArrivalsArg::Even => Self {
                kind: Kind::Even {
                    index: index as u64,
                    streams: connections as u64,
                    n: 0,
                    rate: total_rate,
                },
                next_ns: 1e9 * index as f64 / total_rate,
                gap_ns,
            },
            ArrivalsArg::Poisson => {
                let stream = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mut rng = SmallRng::seed_from_u64(stream);
                let first = exponential(&mut rng, gap_ns);
                Self {
                    kind: Kind::Poisson(rng),
                    next_ns: first,
                    gap_ns,
                }
            }
        }
    }

    /// The intended start of the next request, as an offset from the start of the run.
    pub fn peek(&self) -> Duration {
        Duration::from_nanos(self.next_ns as u64)
    }

    /// Moves on to the request after the one [`peek`](Self::peek) shows.
    pub fn advance(&mut self) {
        match &mut self.kind {
            Kind::Even {
                index,
                streams,
                n,
                rate,
            } => {
                // From the slot number, not by adding gaps: slot k is at exactly k/R (a sum of
                // rounded gaps can put the slot due at the end of a run a hair before it).
                *n += 1;
                self.next_ns = 1e9 * (*index + *n * *streams) as f64 / *rate;
            }
            Kind::Poisson(rng) => self.next_ns += exponential(rng, self.gap_ns),
        }
    }
}

/// An exponentially distributed gap with the given mean (inverse transform sampling).
fn exponential(rng: &mut SmallRng, mean_ns: f64) -> f64 {
    // `random::<f64>()` is in [0, 1); 1 - u is in (0, 1], so ln never sees zero.
    let u: f64 = rng.random();
    -mean_ns * (1.0 - u).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_before(mut s: Schedule, end: Duration) -> usize {
        let mut n = 0;
        while s.peek() < end {
            n += 1;
            s.advance();
        }
        n
    }

    #[test]
    fn even_schedules_of_all_connections_add_up_to_the_rate() {
        let total: usize = (0..7)
            .map(|i| {
                count_before(
                    Schedule::new(ArrivalsArg::Even, 2000.0, 7, i, 1),
                    Duration::from_secs(3),
                )
            })
            .sum();
        assert_eq!(total, 6000);
    }

    #[test]
    fn even_starts_are_staggered_across_connections() {
        let a = Schedule::new(ArrivalsArg::Even, 1000.0, 4, 0, 1);
        let b = Schedule::new(ArrivalsArg::Even, 1000.0, 4, 1, 1);
        assert_eq!(a.peek(), Duration::ZERO);
        assert_eq!(b.peek(), Duration::from_millis(1));
    }

    #[test]
    fn even_slots_fall_exactly_on_whole_seconds() {
        // 450 gaps of 1/300 s added up land a hair before 1.5 s; slot 450 is at 1.5 s.
        let n = count_before(
            Schedule::new(ArrivalsArg::Even, 300.0, 1, 0, 1),
            Duration::from_millis(1500),
        );
        assert_eq!(n, 450);
    }

    #[test]
    fn poisson_mean_rate_is_close() {
        let n = count_before(
            Schedule::new(ArrivalsArg::Poisson, 10_000.0, 1, 0, 42),
            Duration::from_secs(10),
        );
        let err = (n as f64 - 100_000.0).abs() / 100_000.0;
        assert!(err < 0.02, "{n} arrivals in 10 s at 10k/s");
    }
}
