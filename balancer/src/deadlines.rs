//! Coarse deadlines for the many connections that wait: one small slab entry per waiting
//! connection and one ticking task per worker, instead of a runtime timer per connection (a
//! monoio `Sleep` is 640 bytes, more than everything else an idle connection holds).
//!
//! A deadline fires on the first tick at or after it, so it is late by at most [`TICK`]: right
//! for the head, idle and linger timeouts (seconds), not for anything that needs precision.
//!
//! The worker's coarse clock ([`Deadlines::now`]) is read off the same tick: the request path
//! computes its deadlines and the exchange's progress times from it, without a clock read
//! (each is a `clock_gettime`; a request used to make a dozen). It lags the real clock by at
//! most one tick, so deadlines computed from it add one tick ([`Deadlines::after`]): a timeout
//! never fires early, and at most two ticks late.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

/// How often the worker checks its coarse deadlines.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// The coarse deadlines of one worker.
pub(crate) struct Deadlines {
    entries: RefCell<Slab<Entry>>,
    /// The coarse clock: the time of the last tick.
    now: Cell<Instant>,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            entries: RefCell::default(),
            now: Cell::new(Instant::now()),
        }
    }
}

struct Entry {
    at: Instant,
    waker: Option<Waker>,
    fired: bool,
    /// The wait of an idle connection: [`Deadlines::wake_idle`] ends it early.
    idle: bool,
}

impl Deadlines {
    /// The coarse clock: the time of the last tick (at most one [`TICK`] behind).
    pub(crate) fn now(&self) -> Instant {
        self.now.get()
    }

    /// A deadline at least `d` from the real now: `d` and one tick (what the coarse clock may
    /// lag) after the coarse clock, saturating far in the future instead of overflowing.
    pub(crate) fn after(&self, d: Duration) -> Instant {
        self.later(self.now(), d)
    }

    /// `at + d + TICK` (saturating): a deadline `d` after a time read off the coarse clock,
    /// never early.
    pub(crate) fn later(&self, at: Instant, d: Duration) -> Instant {
        d.checked_add(TICK)
            .and_then(|d| at.checked_add(d))
            .unwrap_or_else(|| at + Duration::from_secs(86_400 * 365))
    }

    /// Completes at the first tick at or after `at`.
    pub(crate) fn sleep_until(&self, at: Instant) -> CoarseSleep<'_> {
        CoarseSleep {
            deadlines: self,
            at,
            key: None,
            idle: false,
        }
    }

    /// [`Self::timeout_at`] for an idle connection's wait: it also ends (`None`) when
    /// [`Self::wake_idle`] is called (the worker drains).
    pub(crate) fn idle_timeout_at<F: Future>(&self, at: Instant, fut: F) -> Timeout<'_, F> {
        let mut sleep = self.sleep_until(at);
        sleep.idle = true;
        Timeout { fut, sleep }
    }

    /// Ends every idle connection's wait now.
    pub(crate) fn wake_idle(&self) {
        let mut entries = self.entries.borrow_mut();
        for (_, entry) in entries.iter_mut() {
            if entry.idle && !entry.fired {
                entry.fired = true;
                if let Some(w) = entry.waker.take() {
                    w.wake();
                }
            }
        }
    }

    /// Runs `fut` until it completes (`Some`) or `at` passes (`None`).
    pub(crate) fn timeout_at<F: Future>(&self, at: Instant, fut: F) -> Timeout<'_, F> {
        Timeout {
            fut,
            sleep: self.sleep_until(at),
        }
    }

    /// Runs `fut` until it completes (`Some`) or `limit` from the coarse clock passes (`None`).
    pub(crate) fn timeout_after<F: Future>(&self, limit: Duration, fut: F) -> Timeout<'_, F> {
        Timeout {
            fut,
            sleep: self.sleep_until(self.after(limit)),
        }
    }

    /// The ticking task: fires every deadline that passed, and calls `on_tick`, forever.
    pub(crate) async fn run(&self, on_tick: impl Fn()) {
        loop {
            ringway_io::time::sleep(TICK).await;
            let now = Instant::now();
            self.now.set(now);
            self.fire(now);
            on_tick();
        }
    }

    /// Fires every deadline at or before `now`.
    pub(crate) fn fire(&self, now: Instant) {
        let mut entries = self.entries.borrow_mut();
        for (_, entry) in entries.iter_mut() {
            if !entry.fired && entry.at <= now {
                entry.fired = true;
                if let Some(w) = entry.waker.take() {
                    w.wake();
                }
            }
        }
    }

    /// Deadlines now waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.borrow().len()
    }
}

pin_project_lite::pin_project! {
    /// Future of [`Deadlines::timeout_at`]: the future it bounds plus one coarse sleep, nothing
    /// else (an idle connection's task is mostly this).
    pub(crate) struct Timeout<'a, F> {
        #[pin]
        fut: F,
        sleep: CoarseSleep<'a>,
    }
}

impl<F: Future> Future for Timeout<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(Some(out));
        }
        Pin::new(this.sleep).poll(cx).map(|()| None)
    }
}

/// Future of [`Deadlines::sleep_until`]; its entry goes when it is dropped.
pub(crate) struct CoarseSleep<'a> {
    deadlines: &'a Deadlines,
    at: Instant,
    /// Its slab entry, once polled (`u32`: this future sits in every idle connection's task,
    /// and its size decides the allocator's size class for that task).
    key: Option<u32>,
    idle: bool,
}

impl CoarseSleep<'_> {
    /// Moves the deadline to `at` in place (its entry, if it has one, is kept: no slab churn
    /// for a loop that re-arms its timer on every turn).
    pub(crate) fn reset(&mut self, at: Instant) {
        self.at = at;
        if let Some(key) = self.key {
            if let Some(entry) = self.deadlines.entries.borrow_mut().get_mut(key as usize) {
                entry.at = at;
                entry.fired = at <= self.deadlines.now();
            }
        }
    }
}

impl Future for CoarseSleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Against the coarse clock: no clock read. Later polls only look at the entry (the
        // ticking task fires it).
        if self.key.is_none() && self.at <= self.deadlines.now() {
            return Poll::Ready(());
        }
        let mut entries = self.deadlines.entries.borrow_mut();
        match self.key {
            Some(key) => {
                let Some(entry) = entries.get_mut(key as usize) else {
                    return Poll::Ready(());
                };
                if entry.fired {
                    return Poll::Ready(());
                }
                match &entry.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => entry.waker = Some(cx.waker().clone()),
                }
            }
            None => {
                let key = entries.insert(Entry {
                    at: self.at,
                    waker: Some(cx.waker().clone()),
                    fired: false,
                    idle: self.idle,
                });
                drop(entries);
                let Ok(key) = u32::try_from(key) else {
                    // Four billion waiting deadlines: not reachable; treat this one as due.
                    self.deadlines.entries.borrow_mut().remove(key);
                    return Poll::Ready(());
                };
                self.key = Some(key);
            }
        }
        Poll::Pending
    }
}

impl Drop for CoarseSleep<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.deadlines.entries.borrow_mut().try_remove(key as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::Wake;

    struct Flag(std::sync::atomic::AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn a_deadline_fires_on_the_tick_after_it_and_its_entry_goes_when_dropped() {
        let deadlines = Deadlines::default();
        let flag = Arc::new(Flag(false.into()));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let at = Instant::now() + Duration::from_secs(3600);
        {
            let mut sleep = pin!(deadlines.sleep_until(at));
            assert!(sleep.as_mut().poll(&mut cx).is_pending());
            assert_eq!(deadlines.len(), 1);
            deadlines.fire(at - Duration::from_secs(1));
            assert!(!flag.0.load(std::sync::atomic::Ordering::SeqCst));
            assert!(sleep.as_mut().poll(&mut cx).is_pending());
            deadlines.fire(at);
            assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst), "woken");
            assert!(sleep.as_mut().poll(&mut cx).is_ready());
        }
        assert_eq!(deadlines.len(), 0, "dropped with its future");
    }

    #[test]
    fn a_reset_moves_the_deadline_in_place_and_the_coarse_clock_follows_the_tick() {
        let deadlines = Deadlines::default();
        let flag = Arc::new(Flag(false.into()));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let start = deadlines.now();
        assert_eq!(
            deadlines.after(Duration::from_secs(5)),
            start + Duration::from_secs(5) + TICK,
            "one tick more than asked: the coarse clock may lag by one"
        );
        let mut sleep = deadlines.sleep_until(start + Duration::from_secs(10));
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        // Moved earlier, in place: still one entry, and the tick past the new time fires it.
        sleep.reset(start + Duration::from_secs(2));
        assert_eq!(deadlines.len(), 1);
        deadlines.fire(start + Duration::from_secs(3));
        assert!(
            flag.0.load(std::sync::atomic::Ordering::SeqCst),
            "woken at the new time"
        );
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_ready());
        // Moved later again: pending until its new time.
        sleep.reset(start + Duration::from_secs(3600));
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        assert_eq!(deadlines.len(), 1);
        // A deadline already behind the coarse clock is due without a clock read.
        let due = deadlines.sleep_until(start);
        let mut due = pin!(due);
        assert!(due.as_mut().poll(&mut cx).is_ready());
    }
}
