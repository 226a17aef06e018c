//! A single-thread notification: one task waits, any task on the same thread wakes it.
//!
//! Tunnel connections, their streams and the writer task all live on one monoio thread and share
//! state through `Rc`; this is the doorbell between them. A notification sent while nobody waits
//! is remembered (one permit), so a wake-up between "check state" and "wait" is never lost.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// One-permit doorbell for a single waiting task on the current thread.
#[derive(Debug, Default)]
pub(crate) struct Notify {
    permit: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Stores a permit and wakes the waiting task, if any.
    pub(crate) fn notify(&self) {
        self.permit.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Completes once a permit is available, consuming it.
    pub(crate) fn notified(&self) -> Notified<'_> {
        Notified { notify: self }
    }
}

/// Future returned by [`Notify::notified`].
#[derive(Debug)]
pub(crate) struct Notified<'a> {
    notify: &'a Notify,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.permit.replace(false) {
            return Poll::Ready(());
        }
        let mut slot = self.notify.waker.borrow_mut();
        match slot.as_ref() {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_runtime::block_on;
    use std::rc::Rc;
    use std::time::Duration;

    /// Longer than any of these waits should take; reaching it fails the test instead of
    /// hanging it.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// Polls `fut` once with a waker that does nothing: whether it is ready right now.
    fn ready_now<F: Future>(fut: F) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        std::pin::pin!(fut).poll(&mut cx).is_ready()
    }

    #[test]
    fn permit_sent_before_wait_is_kept_and_used_once() {
        block_on(async {
            let n = Notify::new();
            n.notify();
            n.notify();
            monoio::time::timeout(PATIENCE, n.notified())
                .await
                .expect("a permit sent before the wait completes it");
            assert!(
                !ready_now(n.notified()),
                "two notifications with nobody waiting are one permit, and it was used"
            );
        });
    }

    #[test]
    fn nothing_completes_without_a_notification() {
        assert!(!ready_now(Notify::new().notified()));
    }

    #[test]
    fn wakes_a_waiting_task() {
        block_on(async {
            let n = Rc::new(Notify::new());
            let n2 = n.clone();
            let waiter = monoio::spawn(async move {
                n2.notified().await;
                7
            });
            // Until the waiter has polled and parked (its waker stored). A self-wake would not
            // do: monoio runs a task that wakes itself again first.
            let deadline = std::time::Instant::now() + PATIENCE;
            while n.waker.borrow().is_none() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the waiter never waited"
                );
                monoio::time::sleep(Duration::from_millis(1)).await;
            }
            n.notify();
            let got = monoio::time::timeout(PATIENCE, waiter)
                .await
                .expect("the notification woke the waiting task");
            assert_eq!(got, 7);
            assert!(!n.permit.get(), "the woken task consumed the permit");
        });
    }
}
