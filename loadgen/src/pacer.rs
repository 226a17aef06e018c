//! Waiting for an open-loop request's intended start with µs precision.
//!
//! The runtime's timer wheel has 1 ms slots, so a request due at `t` would be written up to a
//! millisecond late, and that lateness would land in the corrected latency. A [`Pacer`] sleeps
//! on the thread's [`FineTimer`] (a timerfd: an hrtimer, no slack) until the spin window before
//! the due time starts and then yields to the runtime until the clock says the request is due,
//! so the wake-up latency of the timer (on a virtual machine the vCPU's halt and wake-up: tens
//! to a hundred µs) and of the runtime's scheduling does not count. It never spins when nothing
//! is due within the window: a thread waiting for its next request sleeps. One pacer task per
//! load thread waits with it ([`crate::dispatch`]), so a thread spins for at most one due time
//! at once, however many connections it runs.
//!
//! The window is `--spin-us`: a fixed number of µs, or `auto` (the default), where the pacer
//! measures how late its own timer wake-ups are and sizes the window to cover them
//! ([`SpinWindow`]): the wake-up latency is a property of the host (2026-12-03: p99 7–28 µs of
//! lag behind a 30 µs window on one VM, ~100 µs wake-ups on the next), so no fixed default fits.
//!
//! [`decide`] and [`SpinWindow`] are the whole policy, functions of clock readings, so they are
//! tested without time passing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use std::cell::RefCell;
use std::rc::Rc;

use hdrhistogram::Histogram;
use ringway_io::{FineSleep, FineTimer};

use crate::histo::{merge, micros, new_histogram};

/// The window of `--spin-us N`'s old default, and where `auto` starts before it has measured
/// anything: the last stretch before a due time that is waited by yielding to the runtime
/// (connections keep running, completions keep being reaped) instead of sleeping.
///
/// What a window costs: at most the window per request of CPU (a thread spins at most once per
/// due time), so at most `rate × window` per second: 3 % of a core at 1k req/s per thread with
/// 30 µs. On a shared, contended core a spinning thread uses up its share and is preempted,
/// which makes the send-lag worse, not better: use `--spin-us 0` there.
pub const SPIN: Duration = Duration::from_micros(30);

/// `auto` never spins longer than this before a due time, however late the timer wakes: the old
/// fixed default. Wider windows were measured and did not pay on a shared VM: at 1k req/s a
/// 100 µs window cost 193 µs of CPU a request against 79 µs with 30 µs, for send-lag p99 of
/// 161 / 1,288 / 4,057 µs over three rounds against 139 / 153 / 17,551 µs
/// (results/loadgen-vs-wrk-oha-2026-12-03d.md): a vCPU that spins longer is the one the host
/// preempts. What `auto` adds to a fixed 30 µs is the shrinking: to the measured lateness when
/// the host wakes on time, to 30 % of the gap near saturation, to nothing when behind.
pub const AUTO_MAX: Duration = Duration::from_micros(30);

/// `auto` spins at most this share of the mean gap between a thread's due times, so that near
/// saturation the window gives the CPU back to the connections (at 50k req/s a thread has 20 µs
/// a request: 6 µs of window at most), and a thread never spins most of its time: on a shared
/// VM a vCPU that burns its time is the one the host preempts (2026-12-03, 10k req/s on one
/// thread: a 50 µs window, half the gap, gave p99 119–3 813 µs in four runs, 30 µs 127–138 µs;
/// one pair of them in results/loadgen-vs-wrk-oha-2026-12-03b.md).
pub const AUTO_GAP_SHARE: f64 = 0.3;

/// Timer wake-ups `auto` looks at before it sizes the window again.
pub const AUTO_BLOCK: usize = 128;

/// `auto` stops spinning when more than this share of a block's requests were already due when
/// the pacer came to them: the thread is behind its schedule (saturated).
pub const AUTO_BEHIND_SHARE: f64 = 0.25;

/// Added to the measured lateness: the clock read and the hand-over after the wake-up.
pub const AUTO_MARGIN: Duration = Duration::from_micros(5);

/// How `--spin-us` sets the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spin {
    /// Always this window.
    Fixed(Duration),
    /// Sized from the measured timer wake-up lateness ([`SpinWindow`]).
    Auto,
}

impl std::fmt::Display for Spin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(d) => write!(f, "{}", d.as_micros()),
            Self::Auto => f.write_str("auto"),
        }
    }
}

/// The spin window of one thread's pacer. With [`Spin::Auto`] it starts at [`SPIN`] and, after
/// every [`AUTO_BLOCK`] timer wake-ups, becomes the second-latest wake-up of that block (its
/// ~p99) plus [`AUTO_MARGIN`], at most [`AUTO_MAX`] and [`AUTO_GAP_SHARE`] of the mean gap. The
/// timer is armed at `due − window` whatever the window is, so its lateness does not depend on
/// the window: no feedback loop.
#[derive(Debug, Clone)]
pub struct SpinWindow {
    spin: Spin,
    cap: Duration,
    current: Duration,
    /// Wake-up lateness of the block in progress.
    block: Vec<Duration>,
    /// Requests of the block in progress that were due before the pacer came to them.
    behind: usize,
}

impl SpinWindow {
    /// The window for `spin` on a thread whose due times are `mean_gap` apart on average
    /// (`None`: unknown, only [`AUTO_MAX`] bounds it).
    pub fn new(spin: Spin, mean_gap: Option<Duration>) -> Self {
        let cap = mean_gap.map_or(AUTO_MAX, |g| g.mul_f64(AUTO_GAP_SHARE).min(AUTO_MAX));
        let current = match spin {
            Spin::Fixed(d) => d,
            Spin::Auto => SPIN.min(cap),
        };
        Self {
            spin,
            cap,
            current,
            block: Vec::with_capacity(AUTO_BLOCK),
            behind: 0,
        }
    }

    /// The window now.
    pub fn get(&self) -> Duration {
        self.current
    }

    /// A timer wake-up came `late` after the instant it was armed for.
    pub fn observe(&mut self, late: Duration) {
        if self.spin == Spin::Auto {
            self.block.push(late);
            self.end_of_block();
        }
    }

    /// A request was already due when the pacer came to it: no wait, no wake-up.
    pub fn behind(&mut self) {
        if self.spin == Spin::Auto {
            self.behind += 1;
            self.end_of_block();
        }
    }

    /// Sizes the window once a block of [`AUTO_BLOCK`] requests is complete: none if more than
    /// [`AUTO_BEHIND_SHARE`] of them were already due (the thread is saturated and a spin only
    /// takes CPU from the connections), else the block's ~p99 wake-up lateness.
    fn end_of_block(&mut self) {
        let seen = self.block.len() + self.behind;
        if seen < AUTO_BLOCK {
            return;
        }
        if self.behind as f64 > AUTO_BEHIND_SHARE * seen as f64 || self.block.len() < 2 {
            self.current = Duration::ZERO;
        } else {
            self.block.sort_unstable();
            let p99 = self.block[self.block.len() - 2];
            self.current = (p99 + AUTO_MARGIN).min(self.cap);
        }
        self.block.clear();
        self.behind = 0;
    }
}

/// What one thread's pacer saw: how late its timer woke and the windows it used (µs).
#[derive(Debug, Clone)]
pub struct PaceStats {
    /// Lateness of each timer wake-up behind the instant it was armed for.
    pub wake_late: Histogram<u64>,
    /// The window in force at each wait for a due time.
    pub window: Histogram<u64>,
    /// Requests already due when the pacer came to them (handed out without a wait).
    pub behind: u64,
}

impl Default for PaceStats {
    fn default() -> Self {
        Self {
            wake_late: new_histogram(),
            window: new_histogram(),
            behind: 0,
        }
    }
}

impl PaceStats {
    /// Merges another thread's.
    pub fn add(&mut self, o: &Self) {
        self.behind += o.behind;
        merge(&mut self.wake_late, &o.wake_late);
        merge(&mut self.window, &o.window);
    }
}

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
    state: Rc<RefCell<State>>,
}

#[derive(Debug)]
struct State {
    window: SpinWindow,
    stats: PaceStats,
}

impl Pacer {
    /// A pacer on the current runtime whose spin window follows `spin` (`--spin-us`) for due
    /// times `mean_gap` apart; the second value says why the fine timer is not available (the
    /// pacer then uses the runtime's timer).
    pub fn new(spin: Spin, mean_gap: Option<Duration>) -> (Self, Option<String>) {
        let state = Rc::new(RefCell::new(State {
            window: SpinWindow::new(spin, mean_gap),
            stats: PaceStats::default(),
        }));
        match FineTimer::new() {
            Ok(timer) => (
                Self {
                    timer: Some(timer),
                    state,
                },
                None,
            ),
            Err(e) => (Self { timer: None, state }, Some(e.to_string())),
        }
    }

    /// A future that completes when `due` has come (by [`decide`]).
    pub fn until(&self, due: Instant) -> PaceSleep {
        let window = micros(self.window());
        self.state
            .borrow_mut()
            .stats
            .window
            .saturating_record(window);
        PaceSleep {
            pacer: self.clone(),
            due,
            sleep: None,
        }
    }

    /// What the pacer saw so far.
    pub fn stats(&self) -> PaceStats {
        self.state.borrow().stats.clone()
    }

    fn window(&self) -> Duration {
        self.state.borrow().window.get()
    }

    fn woke(&self, late: Duration) {
        let mut s = self.state.borrow_mut();
        s.stats.wake_late.saturating_record(micros(late));
        s.window.observe(late);
    }

    /// A request was due before the pacer came to it (it is handed out without a wait).
    pub fn behind(&self) {
        let mut s = self.state.borrow_mut();
        s.stats.behind += 1;
        s.window.behind();
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
    /// The sleep and the instant it was armed for.
    Fine(FineSleep, Instant),
    Coarse(Pin<Box<ringway_io::time::Sleep>>),
}

impl Future for PaceSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let now = Instant::now();
            let wait = decide(self.due, now, self.pacer.window());
            if !matches!(wait, Wait::Sleep(_)) {
                // Woken by the timer (or past its instant anyway): note how late.
                if let Some(Inner::Fine(_, armed)) = self.sleep.take() {
                    self.pacer.woke(now.saturating_duration_since(armed));
                }
            }
            match wait {
                Wait::Now => return Poll::Ready(()),
                Wait::Spin => {
                    // Yield: the runtime polls its other tasks (and the ring) and comes back.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Wait::Sleep(at) => {
                    let this = &mut *self;
                    let sleep = this.sleep.get_or_insert_with(|| match &this.pacer.timer {
                        Some(t) => Inner::Fine(t.sleep_until(at), at),
                        None => Inner::Coarse(Box::pin(ringway_io::time::sleep_until(
                            ringway_io::time::Instant::from_std(this.due),
                        ))),
                    });
                    let armed = match sleep {
                        Inner::Fine(s, armed) => {
                            if Pin::new(s).poll(cx).is_pending() {
                                return Poll::Pending;
                            }
                            *armed
                        }
                        Inner::Coarse(s) => {
                            // The runtime's timer is late by itself: no spin after it.
                            return s.as_mut().poll(cx);
                        }
                    };
                    // The timer fired (at or after `armed`): note how late, look at the clock
                    // again.
                    this.sleep = None;
                    this.pacer
                        .woke(Instant::now().saturating_duration_since(armed));
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

#[cfg(test)]
mod window_tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    fn feed(w: &mut SpinWindow, late_us: impl IntoIterator<Item = u32>) {
        for l in late_us {
            w.observe(l * US);
        }
    }

    #[test]
    fn fixed_never_moves() {
        let mut w = SpinWindow::new(Spin::Fixed(30 * US), Some(1000 * US));
        feed(&mut w, std::iter::repeat_n(150, 4 * AUTO_BLOCK));
        assert_eq!(w.get(), 30 * US);
        // A fixed window is what was asked, even past the auto caps.
        let w = SpinWindow::new(Spin::Fixed(500 * US), Some(20 * US));
        assert_eq!(w.get(), 500 * US);
    }

    #[test]
    fn auto_starts_at_the_old_default_and_covers_the_measured_p99() {
        let mut w = SpinWindow::new(Spin::Auto, Some(1000 * US));
        assert_eq!(w.get(), SPIN);
        // One block of wake-ups: most 4 µs late, one 12 µs, one 300 µs (an outlier that the
        // ~p99 leaves out).
        let mut block = vec![4; AUTO_BLOCK - 2];
        block.extend([12, 300]);
        feed(&mut w, block[..AUTO_BLOCK - 1].iter().copied());
        assert_eq!(w.get(), SPIN, "sized only once a block is complete");
        feed(&mut w, [block[AUTO_BLOCK - 1]]);
        assert_eq!(w.get(), 12 * US + AUTO_MARGIN);
        // A host that wakes later than the cap: the cap.
        feed(&mut w, std::iter::repeat_n(90, AUTO_BLOCK));
        assert_eq!(w.get(), AUTO_MAX);
        // A quieter block brings it down again.
        feed(&mut w, std::iter::repeat_n(3, AUTO_BLOCK));
        assert_eq!(w.get(), 3 * US + AUTO_MARGIN);
    }

    #[test]
    fn auto_stops_spinning_when_the_thread_falls_behind() {
        let mut w = SpinWindow::new(Spin::Auto, Some(1000 * US));
        feed(&mut w, std::iter::repeat_n(15, AUTO_BLOCK));
        assert_eq!(w.get(), 15 * US + AUTO_MARGIN);
        // A block where a third of the requests were due before the pacer came to them.
        for i in 0..AUTO_BLOCK {
            if i % 3 == 0 {
                w.behind();
            } else {
                w.observe(15 * US);
            }
        }
        assert_eq!(w.get(), Duration::ZERO);
        // A block of a fifth behind still spins (the share is 25 %).
        for i in 0..AUTO_BLOCK {
            if i % 5 == 0 {
                w.behind();
            } else {
                w.observe(15 * US);
            }
        }
        assert_eq!(w.get(), 15 * US + AUTO_MARGIN);
        // A fixed window ignores it.
        let mut w = SpinWindow::new(Spin::Fixed(30 * US), None);
        for _ in 0..AUTO_BLOCK {
            w.behind();
        }
        assert_eq!(w.get(), 30 * US);
    }

    #[test]
    fn auto_is_capped_by_the_gap_and_the_maximum() {
        // 50k req/s on one thread: 20 µs between due times, 30 % of it at most.
        let mut w = SpinWindow::new(Spin::Auto, Some(20 * US));
        assert_eq!(w.get(), 6 * US);
        feed(&mut w, std::iter::repeat_n(100, AUTO_BLOCK));
        assert_eq!(w.get(), 6 * US);
        // A slow schedule: the absolute cap.
        let mut w = SpinWindow::new(Spin::Auto, Some(Duration::from_secs(1)));
        feed(&mut w, std::iter::repeat_n(5000, AUTO_BLOCK));
        assert_eq!(w.get(), AUTO_MAX);
        let w = SpinWindow::new(Spin::Auto, None);
        assert_eq!(w.get(), SPIN);
    }

    #[test]
    fn stats_merge_across_threads() {
        let mut a = PaceStats::default();
        let mut b = PaceStats::default();
        a.wake_late.saturating_record(10);
        b.wake_late.saturating_record(1000);
        b.window.saturating_record(35);
        a.add(&b);
        assert_eq!(a.wake_late.len(), 2);
        assert_eq!(a.wake_late.max(), 1000);
        assert_eq!(a.window.len(), 1);
    }
}
