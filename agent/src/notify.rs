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

    #[test]
    fn permit_sent_before_wait_is_kept() {
        block_on(async {
            let n = Notify::new();
            n.notify();
            n.notified().await;
        });
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
            monoio::time::sleep(std::time::Duration::from_millis(5)).await;
            n.notify();
            assert_eq!(waiter.await, 7);
        });
    }
}
