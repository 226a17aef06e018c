//! The wake-up between tasks of one thread: a doorbell with one permit and one waiter.
//!
//! Tunnel connections, their streams and their driver tasks live on one monoio thread and share
//! state through `Rc`; a task that changed something rings the doorbell of the task that must
//! act on it (the writer, a stream's reader). A ring while nobody waits is kept as the permit, so
//! a wake-up between "check state" and "wait" is never lost; rings before a wait count once.
//! No lock, no atomic, no allocation per ring.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// One-permit doorbell for a single waiting task on the current thread.
///
/// Only one task may wait at a time: a second waiter replaces the first one's waker. Waiting
/// for several conditions from different tasks takes one doorbell each (as a stream's inbound
/// events and its send credit do).
#[derive(Default)]
pub struct Doorbell {
    permit: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl std::fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doorbell")
            .field("permit", &self.permit.get())
            .finish_non_exhaustive()
    }
}

impl Doorbell {
    /// A doorbell without a permit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores the permit and wakes the waiting task, if any.
    pub fn ring(&self) {
        self.permit.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Completes once the permit is there, taking it.
    pub fn wait(&self) -> Rung<'_> {
        Rung { bell: self }
    }

    /// Takes the permit if it is there, without waiting.
    pub fn take(&self) -> bool {
        self.permit.replace(false)
    }

    /// [`Self::wait`] for hand-written futures: `Ready` (permit taken) or `Pending` with `cx`'s
    /// waker registered.
    pub fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.permit.replace(false) {
            return Poll::Ready(());
        }
        let waker = match self.waker.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        self.waker.set(Some(waker));
        Poll::Pending
    }
}

/// Future returned by [`Doorbell::wait`].
#[derive(Debug)]
#[must_use = "a doorbell is only waited for when the future is awaited"]
pub struct Rung<'a> {
    bell: &'a Doorbell,
}

impl Future for Rung<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.bell.poll_wait(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::time::Duration;

    use super::*;
    use crate::runtime::{block_on, IoDriver};

    /// Longer than any of these waits should take; reaching it fails the test instead of
    /// hanging it.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// Whether a task waits on `bell` (its waker is stored).
    fn has_waiter(bell: &Doorbell) -> bool {
        let waker = bell.waker.take();
        let waiting = waker.is_some();
        bell.waker.set(waker);
        waiting
    }

    #[test]
    fn a_ring_before_the_wait_is_kept_and_counts_once() {
        block_on(IoDriver::Epoll, 256, |_| async {
            let bell = Rc::new(Doorbell::new());
            bell.ring();
            bell.ring();
            monoio::time::timeout(PATIENCE, bell.wait())
                .await
                .expect("a ring before the wait completes it");
            let waited = monoio::time::timeout(Duration::from_millis(20), bell.wait()).await;
            assert!(waited.is_err(), "two rings before one wait count once");
            let ringer = bell.clone();
            monoio::spawn(async move { ringer.ring() });
            monoio::time::timeout(PATIENCE, bell.wait())
                .await
                .expect("a ring from another task completes the wait");
        });
    }

    #[test]
    fn wakes_a_waiting_task() {
        block_on(IoDriver::Epoll, 256, |_| async {
            let bell = Rc::new(Doorbell::new());
            let theirs = bell.clone();
            let waiter = monoio::spawn(async move {
                theirs.wait().await;
                7
            });
            // Until the waiter has polled and parked (its waker stored). A self-wake would not
            // do: monoio runs a task that wakes itself again first.
            let deadline = std::time::Instant::now() + PATIENCE;
            while !has_waiter(&bell) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the waiter never waited"
                );
                monoio::time::sleep(Duration::from_millis(1)).await;
            }
            bell.ring();
            let got = monoio::time::timeout(PATIENCE, waiter)
                .await
                .expect("the ring woke the waiting task");
            assert_eq!(got, 7);
            assert!(!bell.take(), "the woken task took the permit");
        });
    }

    #[test]
    fn take_consumes_the_permit_without_waiting() {
        let bell = Doorbell::new();
        assert!(!bell.take());
        bell.ring();
        assert!(bell.take());
        assert!(!bell.take());
    }
}
