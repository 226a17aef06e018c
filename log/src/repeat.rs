//! A sans-IO limiter for log lines that peers can cause: per key (say, a peer address and the
//! kind of mistake), the first `burst` events of an interval are logged, the rest are counted,
//! and one summary per key reports how many were held back.
//!
//! It reads no clock: every call takes `now`. The driver calls [`RepeatLimiter::check`] before
//! it logs, and [`RepeatLimiter::expire`] from time to time (every interval is enough) to learn
//! which keys' intervals ended with events held back, and logs one summary line for each.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// What to do with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it.
    Log,
    /// The key's previous interval ended with this many events held back: log a summary of
    /// them, then this event.
    LogAfterSummary(u64),
    /// Do not log it (it is counted for the summary).
    Suppress,
}

/// Events held back for one key in an interval that has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed<K> {
    /// The key; `None` for events of keys beyond [`RepeatLimiter::max_keys`], which are not
    /// tracked one by one.
    pub key: Option<K>,
    /// How many events were not logged.
    pub count: u64,
}

/// One key's current interval.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// When the interval ends.
    until: Instant,
    /// Events in the interval, logged or not.
    seen: u64,
}

/// Logs the first `burst` events per key and interval, counts the rest.
#[derive(Debug)]
pub struct RepeatLimiter<K> {
    burst: u64,
    interval: Duration,
    max_keys: usize,
    windows: HashMap<K, Window>,
    /// Events of keys that found the table full, since the last [`Self::expire`].
    overflow: u64,
}

impl<K: Eq + Hash + Clone> RepeatLimiter<K> {
    /// Keys tracked at once by [`Self::new`]; events of further keys share one count.
    pub const DEFAULT_MAX_KEYS: usize = 4096;

    /// Logs up to `burst` events per key in each `interval`, tracking up to
    /// [`Self::DEFAULT_MAX_KEYS`] keys. A `burst` of 0 suppresses everything but the summaries.
    pub fn new(burst: u32, interval: Duration) -> Self {
        Self::with_max_keys(burst, interval, Self::DEFAULT_MAX_KEYS)
    }

    /// As [`Self::new`], with at most `max_keys` keys tracked at once (memory stays bounded
    /// whatever the peers do).
    pub fn with_max_keys(burst: u32, interval: Duration, max_keys: usize) -> Self {
        Self {
            burst: u64::from(burst),
            interval,
            max_keys,
            windows: HashMap::new(),
            overflow: 0,
        }
    }

    /// The most keys tracked at once.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Whether the event `key` at `now` is logged.
    pub fn check(&mut self, key: K, now: Instant) -> Verdict {
        if let Some(w) = self.windows.get_mut(&key) {
            if now < w.until {
                w.seen += 1;
                return if w.seen <= self.burst {
                    Verdict::Log
                } else {
                    Verdict::Suppress
                };
            }
            let held = w.seen.saturating_sub(self.burst);
            *w = Window {
                until: now + self.interval,
                seen: 1,
            };
            return match (held, self.burst) {
                (_, 0) => Verdict::Suppress,
                (0, _) => Verdict::Log,
                (held, _) => Verdict::LogAfterSummary(held),
            };
        }
        if self.windows.len() >= self.max_keys {
            self.windows
                .retain(|_, w| now < w.until || w.seen <= self.burst);
        }
        if self.windows.len() >= self.max_keys {
            self.overflow += 1;
            return Verdict::Suppress;
        }
        self.windows.insert(
            key,
            Window {
                until: now + self.interval,
                seen: 1,
            },
        );
        if self.burst == 0 {
            Verdict::Suppress
        } else {
            Verdict::Log
        }
    }

    /// Forgets the keys whose interval ended by `now` and returns those that had events held
    /// back (and the count of untracked keys' events, if any), for one summary line each.
    pub fn expire(&mut self, now: Instant) -> Vec<Suppressed<K>> {
        let mut out = Vec::new();
        let burst = self.burst;
        self.windows.retain(|key, w| {
            if now < w.until {
                return true;
            }
            if w.seen > burst {
                out.push(Suppressed {
                    key: Some(key.clone()),
                    count: w.seen - burst,
                });
            }
            false
        });
        if self.overflow > 0 {
            out.push(Suppressed {
                key: None,
                count: std::mem::take(&mut self.overflow),
            });
        }
        out
    }

    /// Keys tracked now.
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn logged(verdicts: &[Verdict]) -> usize {
        verdicts.iter().filter(|v| **v != Verdict::Suppress).count()
    }

    #[test]
    fn first_burst_logged_then_one_summary() {
        let t0 = Instant::now();
        let mut l = RepeatLimiter::new(3, SEC);
        let verdicts: Vec<_> = (0..200).map(|_| l.check("a", t0)).collect();
        assert_eq!(logged(&verdicts), 3);
        assert_eq!(
            &verdicts[..4],
            &[Verdict::Log, Verdict::Log, Verdict::Log, Verdict::Suppress]
        );
        assert!(
            l.expire(t0 + SEC / 2).is_empty(),
            "the interval has not ended"
        );
        assert_eq!(
            l.expire(t0 + SEC),
            [Suppressed {
                key: Some("a"),
                count: 197
            }]
        );
        assert!(l.expire(t0 + 2 * SEC).is_empty(), "reported once");
        assert_eq!(l.tracked(), 0);
        assert_eq!(l.check("a", t0 + 3 * SEC), Verdict::Log, "a new interval");
    }

    #[test]
    fn keys_are_limited_apart() {
        let t0 = Instant::now();
        let mut l = RepeatLimiter::new(1, SEC);
        assert_eq!(l.check(("10.0.0.1", "garbage"), t0), Verdict::Log);
        assert_eq!(l.check(("10.0.0.1", "garbage"), t0), Verdict::Suppress);
        assert_eq!(l.check(("10.0.0.1", "timeout"), t0), Verdict::Log);
        assert_eq!(l.check(("10.0.0.2", "garbage"), t0), Verdict::Log);
        let summaries = l.expire(t0 + SEC);
        assert_eq!(
            summaries,
            [Suppressed {
                key: Some(("10.0.0.1", "garbage")),
                count: 1
            }]
        );
    }

    #[test]
    fn an_event_after_the_interval_carries_the_summary() {
        let t0 = Instant::now();
        let mut l = RepeatLimiter::new(2, SEC);
        for _ in 0..10 {
            l.check(1, t0);
        }
        assert_eq!(l.check(1, t0 + SEC), Verdict::LogAfterSummary(8));
        assert!(
            l.expire(t0 + SEC).is_empty(),
            "the summary was given already"
        );
        assert_eq!(l.check(1, t0 + SEC), Verdict::Log);
        assert_eq!(l.check(1, t0 + SEC), Verdict::Suppress);
    }

    #[test]
    fn keys_beyond_the_table_share_one_count() {
        let t0 = Instant::now();
        let mut l = RepeatLimiter::with_max_keys(1, SEC, 2);
        assert_eq!(l.check(1, t0), Verdict::Log);
        assert_eq!(l.check(2, t0), Verdict::Log);
        assert_eq!(l.check(3, t0), Verdict::Suppress);
        assert_eq!(l.check(4, t0), Verdict::Suppress);
        assert_eq!(l.tracked(), 2, "memory stays bounded");
        assert_eq!(
            l.expire(t0 + SEC),
            [Suppressed {
                key: None,
                count: 2
            }]
        );
        // An expired key with nothing held back makes room without a summary.
        assert_eq!(l.check(5, t0 + 2 * SEC), Verdict::Log);
    }

    #[test]
    fn zero_burst_keeps_only_summaries() {
        let t0 = Instant::now();
        let mut l = RepeatLimiter::new(0, SEC);
        assert_eq!(l.check('x', t0), Verdict::Suppress);
        assert_eq!(l.check('x', t0), Verdict::Suppress);
        assert_eq!(
            l.expire(t0 + SEC),
            [Suppressed {
                key: Some('x'),
                count: 2
            }]
        );
    }
}
