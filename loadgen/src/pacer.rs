//! Waiting for an open-loop request's intended start with µs precision.
//!
//! The runtime's timer wheel has 1 ms slots, so a request due at `t` would be written up to a
//! millisecond late, and that lateness would land in the corrected latency. A [`Pacer`] sleeps
//! on the thread's [`FineTimer`] (a timerfd: an hrtimer, no slack) until the spin window before
//! the due time starts (`--spin-us`, default [`SPIN`]) and then yields to the runtime until the
//! clock says the request is due, so the wake-up latency of the timer (on a virtual machine the
//! vCPU's halt and wake-up: tens of µs) and of the runtime's scheduling does not count. It never
//! spins when nothing is due within the window: a thread waiting for its next request sleeps.
//! One pacer task per load thread waits with it ([`crate::dispatch`]), so a thread spins for at
//! most one due time at once, however many connections it runs.
//!
//! [`decide`] is the whole policy, a function of the clock reading, so it is tested without
//! time passing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ringway_io::{FineSleep, FineTimer};

/// The default of `--spin-us`: the last stretch before a due time that is waited by yielding to
/// the runtime (connections keep running, completions keep being reaped) instead of sleeping,
/// so that the timerfd's and the runtime's wake-up latency does not count as send-lag.
///
/// Chosen from measurement on a generator core not otherwise busy: sleeping only, the send-lag
/// p99 was 70–218 µs at 1k–50k req/s (results/loadgen-vs-wrk-oha-quiet.md); with one pacer per
/// thread and a 30 µs window it is 70 / 7 / 28 µs at 1k / 10k / 20k req/s, against 128 / 38 /
/// 56 µs sleeping only (results/loadgen-vs-wrk-oha-2026-12-03.md; a 50 µs window gave 14 µs at
/// 1k). Near saturation (50k req/s there, 20 µs of CPU a request) the window only takes CPU
/// from the connections: p99 603 µs against 73 µs sleeping only.
///
/// What it costs: at most the window per request of CPU (a thread spins at most once per due
/// time), so at most `rate × 30 µs` per second: 3 % of a core at 1k req/s per thread, 30 % at
/// 10k, and all of it from ~33k req/s per thread up, where the gaps are shorter than the window
/// and the thread never sleeps. Measured: +7 % CPU per request at 1k req/s, nothing measurable
/// at 10k and above (a sleep and its wake-up cost about what the spin does). On a shared,
/// contended core a spinning thread uses up its share and is preempted, which makes the
/// send-lag worse, not better: use `--spin-us 0` there.
pub const SPIN: Duration = Duration::from_micros(30);

/// A request due within this of now is written right away: sleeping for less costs more than
/// it saves. It is measured from the moment it was written (corrected = uncorrected for it),
/// never from a moment before it existed.
pub const EARLY: Duration = Duration::from_micros(1);

/// What to do about a request due at `due` when the clock reads `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Write it now.
    Now,
    /// Due within the spin window: yield to the runtime and look again.
    Spin,
    /// Sleep on the timer until this instant (the start of the spin window).
    Sleep(Instant),
}

/// The pacing policy: write when due (within [`EARLY`]), yield within `spin` of the due time,
/// sleep before that.
pub fn decide(due: Instant, now: Instant, spin: Duration) -> Wait {
    if due <= now + EARLY {
        Wait::Now
    } else if due <= now + spin {
        Wait::Spin
    } else {
        Wait::Sleep(due.checked_sub(spin).unwrap_or(due))
    }
}

/// One thread's way to wait for due times: the fine timer, or the runtime's 1 ms timer if the
/// timerfd could not be set up (then send-lag shows it).
#[derive(Debug, Clone)]
pub struct Pacer {
    timer: Option<FineTimer>,
    spin: Duration,
}

impl Pacer {
    /// A pacer on the current runtime that yields in the last `spin` before a due time (`--spin`,
    /// default [`SPIN`]); the second value says why the fine timer is not available (the pacer
    /// then uses the runtime's timer).
    pub fn new(spin: Duration) -> (Self, Option<String>) {
        match FineTimer::new() {
            Ok(timer) => (
                Self {
                    timer: Some(timer),
                    spin,
                },
                None,
            ),
            Err(e) => (Self::coarse(), Some(e.to_string())),
        }
    }

    /// A pacer on the runtime's timer only (closed loop needs no precision).
    pub fn coarse() -> Self {
        Self {
            timer: None,
            spin: Duration::ZERO,
        }
    }

    /// A future that completes when `due` has come (by [`decide`]).
    pub fn until(&self, due: Instant) -> PaceSleep {
        PaceSleep {
            pacer: self.clone(),
            due,
            sleep: None,
        }
    }
}

/// The future of [`Pacer::until`].
#[derive(Debug)]
pub struct PaceSleep {
    pacer: Pacer,
    due: Instant,
    sleep: Option<Inner>,
}

#[derive(Debug)]
enum Inner {
    Fine(FineSleep),
    Coarse(Pin<Box<ringway_io::time::Sleep>>),
}

impl Future for PaceSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match decide(self.due, Instant::now(), self.pacer.spin) {
                Wait::Now => return Poll::Ready(()),
                Wait::Spin => {
                    // Yield: the runtime polls its other tasks (and the ring) and comes back.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Wait::Sleep(at) => {
                    let this = &mut *self;
                    let sleep = this.sleep.get_or_insert_with(|| match &this.pacer.timer {
                        Some(t) => Inner::Fine(t.sleep_until(at)),
                        None => Inner::Coarse(Box::pin(ringway_io::time::sleep_until(
                            ringway_io::time::Instant::from_std(this.due),
                        ))),
                    });
                    let ready = match sleep {
                        Inner::Fine(s) => Pin::new(s).poll(cx).is_ready(),
                        Inner::Coarse(s) => {
                            // The runtime's timer is late by itself: no spin after it.
                            return s.as_mut().poll(cx);
                        }
                    };
                    if !ready {
                        return Poll::Pending;
                    }
                    // The timer fired (at or after `at`): look at the clock again.
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);
    /// A spin window as `--spin-us 30` sets it.
    const W: Duration = Duration::from_micros(30);

    #[test]
    fn due_or_past_is_now() {
        let now = Instant::now();
        assert_eq!(decide(now, now, W), Wait::Now);
        assert_eq!(decide(now, now + 500 * US, W), Wait::Now);
        assert_eq!(decide(now + EARLY, now, W), Wait::Now);
    }

    #[test]
    fn within_the_spin_window_yields() {
        let now = Instant::now();
        assert_eq!(decide(now + 2 * US, now, W), Wait::Spin);
        assert_eq!(decide(now + W, now, W), Wait::Spin);
    }

    #[test]
    fn before_the_spin_window_sleeps_until_it_starts() {
        let now = Instant::now();
        let due = now + 10 * W;
        assert_eq!(decide(due, now, W), Wait::Sleep(due - W));
        assert_eq!(decide(now + W + US, now, W), Wait::Sleep(now + US));
        // Without a spin window (`--spin-us 0`) it sleeps until the due time itself.
        assert_eq!(decide(due, now, Duration::ZERO), Wait::Sleep(due));
    }

    #[test]
    fn a_far_due_time_never_spins() {
        // The CPU rule: whatever the rate, a wait longer than the window is a sleep.
        let now = Instant::now();
        for gap_us in [W.as_micros() as u32 + 1, 1_000, 1_000_000] {
            assert!(matches!(decide(now + gap_us * US, now, W), Wait::Sleep(_)));
        }
    }
}
