//! Shutting a worker down without losing a request (SIGTERM on the balancer):
//! 1. the accept loops stop and their listeners close at once, so that a balancer started next
//!    on the same ports gets every new connection (no listener of this one lingers in the port's
//!    SO_REUSEPORT group to have connections reset when it finally closes);
//! 2. idle keep-alive connections close now; a connection with a request in flight finishes it,
//!    its response says `Connection: close`, and it closes after;
//! 3. once no user connection is left (or the grace passed), every agent connection gets a
//!    GOAWAY and closes when its streams are done (none are, by then): agents reconnect to
//!    whichever balancer answers next;
//! 4. the worker ends; the process exits 0 when all have.
//!
//! This module holds the worker's drain signal; steps 2–4 are `listener::drain`, the end of
//! the worker's main task.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A worker's shutdown signal: started once, seen by every loop that must stop.
#[derive(Default)]
pub(crate) struct Drain {
    started: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
    /// Listeners still open (they empty their accept queue before closing).
    listeners: Cell<u32>,
}

impl Drain {
    /// Starts the drain (once) and wakes whoever waits for it.
    pub(crate) fn start(&self) {
        if self.started.replace(true) {
            return;
        }
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// A listener of the worker opened; [`Self::listener_closed`] when it closed.
    pub(crate) fn listener_opened(&self) {
        self.listeners.set(self.listeners.get() + 1);
    }

    /// A listener of the worker closed.
    pub(crate) fn listener_closed(&self) {
        self.listeners.set(self.listeners.get().saturating_sub(1));
    }

    /// Listeners of the worker still open.
    pub(crate) fn listeners_open(&self) -> u32 {
        self.listeners.get()
    }

    /// Whether the drain started.
    pub(crate) fn is_started(&self) -> bool {
        self.started.get()
    }

    /// Completes once the drain started.
    pub(crate) fn wait(&self) -> DrainStarted<'_> {
        DrainStarted { drain: self }
    }
}

/// Future of [`Drain::wait`].
pub(crate) struct DrainStarted<'a> {
    drain: &'a Drain,
}

impl Future for DrainStarted<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.drain.is_started() {
            return Poll::Ready(());
        }
        let mut waiters = self.drain.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
