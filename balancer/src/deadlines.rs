//! Coarse deadlines for the many connections that wait: one small slab entry per waiting
//! connection and one ticking task per worker, instead of a runtime timer per connection (a
//! monoio `Sleep` is 640 bytes, more than everything else an idle connection holds).
//!
//! A deadline fires on the first tick at or after it, so it is late by at most [`TICK`]: right
//! for the head, idle and linger timeouts (seconds), not for anything that needs precision.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

/// How often the worker checks its coarse deadlines.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// The coarse deadlines of one worker.
#[derive(Default)]
pub(crate) struct Deadlines {
    entries: RefCell<Slab<Entry>>,
}

struct Entry {
    at: Instant,
    waker: Option<Waker>,
    fired: bool,
}

impl Deadlines {
    /// Completes at the first tick at or after `at`.
    pub(crate) fn sleep_until(&self, at: Instant) -> CoarseSleep<'_> {
        CoarseSleep {
            deadlines: self,
            at,
            key: None,
        }
    }

    /// Runs `fut` until it completes (`Some`) or `at` passes (`None`).
    pub(crate) fn timeout_at<F: Future>(&self, at: Instant, fut: F) -> Timeout<'_, F> {
        Timeout {
            fut,
            sleep: self.sleep_until(at),
        }
    }

    /// The ticking task: fires every deadline that passed, forever.
    pub(crate) async fn run(&self) {
        loop {
            monoio::time::sleep(TICK).await;
            self.fire(Instant::now());
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
    key: Option<usize>,
}

impl Future for CoarseSleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // The clock is read once, on the first poll; later polls only look at the entry (the
        // ticking task fires it), so a future polled often costs no clock reads.
        if self.key.is_none() && self.at <= Instant::now() {
            return Poll::Ready(());
        }
        let mut entries = self.deadlines.entries.borrow_mut();
        match self.key {
            Some(key) => {
                let Some(entry) = entries.get_mut(key) else {
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
                });
                drop(entries);
                self.key = Some(key);
            }
        }
        Poll::Pending
    }
}

impl Drop for CoarseSleep<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.deadlines.entries.borrow_mut().try_remove(key);
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
}
