//! Wake-ups between tasks of one worker thread: no locks, no atomics, no allocation per signal.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// A single-waiter notification: `notify` sets a flag and wakes the waiter; `wait` resolves once
/// the flag is set and clears it. Notifications before the wait are not lost.
#[derive(Default)]
pub(crate) struct Signal {
    set: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Signal {
    pub(crate) fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    pub(crate) async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.replace(false) {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
    }
}

/// Many waiters woken together (requests parked until an agent for their route appears).
#[derive(Default)]
pub(crate) struct WakerSet {
    wakers: RefCell<Vec<Waker>>,
}

impl WakerSet {
    pub(crate) fn register(&self, waker: &Waker) {
        let mut wakers = self.wakers.borrow_mut();
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }

    pub(crate) fn wake_all(&self) {
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for w in wakers {
            w.wake();
        }
    }
}
