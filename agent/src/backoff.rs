//! Reconnect delays: exponential backoff with full jitter, a fast first retry and a cap.
//!
//! A balancer restart drops every agent connection at once; jitter spreads the reconnects so the
//! new balancer is not hit by all agents in the same millisecond, and the fast first retry makes a
//! restart cost well under a second of unavailability.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Backoff parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Delay before the first retry after a connection was lost (jittered by ±50 %).
    pub first: Duration,
    /// Base of the exponential series used from the second retry on.
    pub base: Duration,
    /// Upper bound of any delay.
    pub cap: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(20),
            base: Duration::from_millis(100),
            cap: Duration::from_secs(3),
        }
    }
}

/// The delay series of one reconnecting connection.
#[derive(Debug)]
pub(crate) struct Backoff {
    config: BackoffConfig,
    attempt: u32,
    rng: SmallRng,
}

impl Backoff {
    pub(crate) fn new(config: BackoffConfig) -> Self {
        Self {
            config,
            attempt: 0,
            rng: SmallRng::seed_from_u64(random_seed()),
        }
    }

    /// A connection got through the hello exchange: the next failure retries fast again.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let attempt = self.attempt;
        self.attempt = self.attempt.saturating_add(1);
        if attempt == 0 {
            let first = self.config.first.min(self.config.cap);
            let half = first / 2;
            return half + first.mul_f64(self.rng.random::<f64>()).min(first - half);
        }
        // base · 2^(attempt-1), capped; then full jitter over [ceiling/2, ceiling].
        let exp = attempt.saturating_sub(1).min(20);
        let ceiling = self
            .config
            .base
            .saturating_mul(1 << exp)
            .min(self.config.cap);
        let half = ceiling / 2;
        half + (ceiling - half).mul_f64(self.rng.random::<f64>())
    }
}

/// A per-call random seed from the std hasher's random keys (no OS-RNG feature needed).
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_retry_is_fast_then_grows_to_the_cap() {
        let config = BackoffConfig::default();
        let mut b = Backoff::new(config);
        let first = b.next_delay();
        assert!(first <= config.first, "{first:?}");
        assert!(first >= config.first / 2, "{first:?}");
        let mut last_ceiling = Duration::ZERO;
        for _ in 0..30 {
            let d = b.next_delay();
            assert!(d <= config.cap, "{d:?} over the cap");
            last_ceiling = last_ceiling.max(d);
        }
        assert!(
            last_ceiling >= config.cap / 2,
            "never approached the cap: {last_ceiling:?}"
        );
    }

    #[test]
    fn reset_makes_the_next_retry_fast_again() {
        let config = BackoffConfig::default();
        let mut b = Backoff::new(config);
        for _ in 0..10 {
            b.next_delay();
        }
        b.reset();
        assert!(b.next_delay() <= config.first);
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut b = Backoff::new(BackoffConfig::default());
        let delays: Vec<Duration> = (0..8)
            .map(|_| {
                b.reset();
                b.next_delay();
                b.next_delay()
            })
            .collect();
        assert!(
            delays.iter().any(|d| *d != delays[0]),
            "no jitter: {delays:?}"
        );
    }
}
