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

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tracing::info;

use crate::worker::Worker;

/// How often the drain looks whether the worker's connections are gone.
const POLL: Duration = Duration::from_millis(20);
/// How long agent connections get to send their GOAWAY and close.
const AGENT_CLOSE: Duration = Duration::from_secs(1);

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

/// Steps 2–3 of the drain, once it started (the accept loops stop by themselves): returns when
/// the worker may end.
pub(crate) async fn run(worker: &Worker, grace: Duration) {
    worker.drain.wait().await;
    let started = Instant::now();
    info!(
        open = worker.stats.user_conns_open(),
        "draining: listeners closed, idle connections closing"
    );
    // Idle connections wait on coarse deadlines marked idle: end those waits now.
    worker.deadlines.wake_idle();
    // Until the listeners have emptied their queues (what they accept meanwhile is served too)
    // and every user connection is gone.
    while (worker.drain.listeners.get() > 0 || worker.stats.user_conns_open() > 0)
        && started.elapsed() < grace
    {
        ringway_io::time::sleep(POLL).await;
    }
    let left = worker.stats.user_conns_open();
    if left > 0 {
        info!(
            left,
            "drain grace passed; closing the connections still open"
        );
    }
    let agents = worker.go_away_agents(AGENT_CLOSE);
    let until = Instant::now() + AGENT_CLOSE;
    while agents.iter().any(|a| !a.is_closed()) && Instant::now() < until {
        ringway_io::time::sleep(POLL).await;
    }
    info!(
        agents = agents.len(),
        took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "drained"
    );
}
