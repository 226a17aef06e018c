//! `[[route]] max_concurrent`, `max_queue`, `queue_timeout`: requests of one route in flight at
//! once **on one worker** (the balancer shares nothing on the request path, so with W workers a
//! route admits up to W × `max_concurrent`, as nginx's per-worker limits do).
//!
//! A request takes a slot before it looks for an agent and holds it for its whole exchange:
//! the [`RouteSlot`] guard gives it back when the request ends, however it ends. Past the limit
//! a request waits in the route's FIFO queue (at most `max_queue` of them; one more gets 503 at
//! once) for up to `queue_timeout` (then 503). A freed slot goes straight to the longest waiter
//! (a request arriving meanwhile cannot take it first), and a waiter that gives up after it was
//! handed a slot passes it on: a slot is never lost.
//!
//! A route without `max_concurrent` has no gate: its request path pays one map lookup that
//! finds nothing (none at all when no route has a limit), no allocation and no counter.

use std::cell::Cell;
use std::future::poll_fn;
use std::task::Poll;

use ringway_core::exchange::{ErrorKind, ProxyError};
use ringway_io::IdMap;
use serde::Serialize;

use crate::config::{Config, RouteLimit};
use crate::deadlines::Deadlines;
use crate::registry::{Registry, RouteId};
use crate::signal::WaitQueue;

/// The gates of one worker's limited routes.
#[derive(Default)]
pub(crate) struct RouteLimits {
    gates: IdMap<RouteId, RouteGate>,
    /// Requests waiting for a slot, by route, oldest first.
    waiters: WaitQueue<RouteId>,
}

/// One route's limit and where it stands on this worker.
struct RouteGate {
    limit: RouteLimit,
    retry_after_secs: u32,
    in_flight: Cell<u32>,
    waiting: Cell<u32>,
    queued: Cell<u64>,
    queue_full: Cell<u64>,
    queue_timeout: Cell<u64>,
}

/// What `/metrics` shows of one route's limit on one worker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct RouteLimitCounts {
    /// Requests holding a slot now.
    pub(crate) in_flight: u64,
    /// Requests waiting for a slot now.
    pub(crate) waiting: u64,
    /// Requests that had to wait for a slot (since the start).
    pub(crate) queued: u64,
    /// Requests refused at once: the queue was full.
    pub(crate) rejected_queue_full: u64,
    /// Requests refused after waiting `queue_timeout`.
    pub(crate) rejected_queue_timeout: u64,
}

impl RouteLimitCounts {
    /// Adds `other`'s counts to these.
    pub(crate) fn merge(&mut self, other: &Self) {
        self.in_flight += other.in_flight;
        self.waiting += other.waiting;
        self.queued += other.queued;
        self.rejected_queue_full += other.rejected_queue_full;
        self.rejected_queue_timeout += other.rejected_queue_timeout;
    }
}

impl RouteLimits {
    /// The gates of the config's routes that have a limit (the first entry of a pattern given
    /// twice wins, as in the registry).
    pub(crate) fn new(config: &Config, registry: &Registry) -> Self {
        let mut gates = IdMap::default();
        for route in &config.routes {
            let (Some(limit), Some(id)) = (route.limit(), registry.id_of(&route.pattern.text))
            else {
                continue;
            };
            gates.entry(id).or_insert_with(|| RouteGate::new(limit));
        }
        Self {
            gates,
            waiters: WaitQueue::default(),
        }
    }

    /// The gate of `route`; `None` (nothing to wait for) when it has no limit.
    pub(crate) fn gate(&self, route: RouteId) -> Option<Gate<'_>> {
        if self.gates.is_empty() {
            return None;
        }
        let gate = self.gates.get(&route)?;
        Some(Gate {
            gate,
            waiters: &self.waiters,
            route,
        })
    }

    /// The `Retry-After` seconds of a refusal by `route`'s limit: its queue timeout rounded up
    /// (a request that waited that long found no slot), at least 1.
    pub(crate) fn retry_after_secs(&self, route: RouteId) -> Option<u32> {
        self.gates.get(&route).map(|g| g.retry_after_secs)
    }

    /// The counts of every limited route, with route ids turned into their text.
    pub(crate) fn snapshot(
        &self,
        route_text: impl Fn(RouteId) -> String,
    ) -> Vec<(String, RouteLimitCounts)> {
        let mut counts: Vec<(String, RouteLimitCounts)> = self
            .gates
            .iter()
            .map(|(&id, g)| (route_text(id), g.counts()))
            .collect();
        counts.sort_by(|a, b| a.0.cmp(&b.0));
        counts
    }
}

impl RouteGate {
    fn new(limit: RouteLimit) -> Self {
        let t = limit.queue_timeout;
        let secs = t.as_secs() + u64::from(t.subsec_nanos() > 0);
        Self {
            limit,
            retry_after_secs: u32::try_from(secs.max(1)).unwrap_or(u32::MAX),
            in_flight: Cell::new(0),
            waiting: Cell::new(0),
            queued: Cell::new(0),
            queue_full: Cell::new(0),
            queue_timeout: Cell::new(0),
        }
    }

    fn counts(&self) -> RouteLimitCounts {
        RouteLimitCounts {
            in_flight: u64::from(self.in_flight.get()),
            waiting: u64::from(self.waiting.get()),
            queued: self.queued.get(),
            rejected_queue_full: self.queue_full.get(),
            rejected_queue_timeout: self.queue_timeout.get(),
        }
    }
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// A limited route's gate on this worker.
#[derive(Clone, Copy)]
pub(crate) struct Gate<'a> {
    gate: &'a RouteGate,
    waiters: &'a WaitQueue<RouteId>,
    route: RouteId,
}

impl<'a> Gate<'a> {
    /// A slot for one request: at once when one is free, else after waiting in the route's
    /// queue; `QueueFull` at once when the queue is full, `QueueTimeout` after waiting
    /// `queue_timeout` (on `deadlines`, the worker's coarse clock).
    pub(crate) async fn admit(self, deadlines: &Deadlines) -> Result<RouteSlot<'a>, ProxyError> {
        let g = self.gate;
        // Waiters exist only while every slot is taken (a freed slot goes to one of them), so
        // a free slot here is nobody's.
        if g.in_flight.get() < g.limit.max_concurrent.get() {
            g.in_flight.set(g.in_flight.get() + 1);
            return Ok(RouteSlot { gate: self });
        }
        if g.waiting.get() >= g.limit.max_queue {
            bump(&g.queue_full);
            return Err(ProxyError::new(ErrorKind::QueueFull));
        }
        bump(&g.queued);
        let waiting = Waiting {
            gate: self,
            ticket: self.waiters.ticket(),
            queued: Cell::new(false),
            served: Cell::new(false),
        };
        g.waiting.set(g.waiting.get() + 1);
        let handed = poll_fn(|cx| {
            // Woken by `release`, which unlinked it: the slot it freed is this request's now.
            if waiting.queued.get() && !self.waiters.is_queued(waiting.ticket) {
                waiting.served.set(true);
                return Poll::Ready(());
            }
            self.waiters
                .register(waiting.ticket, self.route, cx.waker());
            waiting.queued.set(true);
            Poll::Pending
        });
        let at = deadlines.after(g.limit.queue_timeout);
        match deadlines.timeout_at(at, handed).await {
            Some(()) => Ok(RouteSlot { gate: self }),
            None => {
                bump(&g.queue_timeout);
                Err(ProxyError::new(ErrorKind::QueueTimeout))
            }
        }
    }

    /// A slot was given back: the longest waiter takes it over, or it is free again.
    fn release(self) {
        if !self.waiters.wake_one(self.route) {
            let g = self.gate;
            g.in_flight.set(g.in_flight.get().saturating_sub(1));
        }
    }
}

/// A request's slot of its route; given back when dropped (the request ended, however).
pub(crate) struct RouteSlot<'a> {
    gate: Gate<'a>,
}

impl Drop for RouteSlot<'_> {
    fn drop(&mut self) {
        self.gate.release();
    }
}

/// A request's place in its route's queue. Leaving it unserved (timed out, or the request went
/// away) takes it out; one that was handed a slot but leaves without it passes the slot on.
struct Waiting<'a> {
    gate: Gate<'a>,
    ticket: u64,
    queued: Cell<bool>,
    served: Cell<bool>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let g = self.gate.gate;
        g.waiting.set(g.waiting.get().saturating_sub(1));
        let still_queued = self.gate.waiters.remove(self.ticket);
        if self.queued.get() && !still_queued && !self.served.get() {
            self.gate.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::num::NonZeroU32;
    use std::pin::Pin;
    use std::task::{Context, Waker};
    use std::time::{Duration, Instant};

    use super::*;

    const ROUTE: RouteId = 7;

    fn limits(max_concurrent: u32, max_queue: u32) -> RouteLimits {
        let limit = RouteLimit {
            max_concurrent: NonZeroU32::new(max_concurrent).expect("not 0"),
            max_queue,
            queue_timeout: Duration::from_millis(1500),
        };
        let mut l = RouteLimits::default();
        l.gates.insert(ROUTE, RouteGate::new(limit));
        l
    }

    type Admit<'a> = Pin<Box<dyn Future<Output = Result<RouteSlot<'a>, ProxyError>> + 'a>>;

    fn admit<'a>(limits: &'a RouteLimits, deadlines: &'a Deadlines) -> Admit<'a> {
        let gate = limits.gate(ROUTE).expect("a limited route");
        Box::pin(gate.admit(deadlines))
    }

    fn poll<'a>(f: &mut Admit<'a>) -> Poll<Result<RouteSlot<'a>, ProxyError>> {
        f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }

    fn kind(p: &Poll<Result<RouteSlot<'_>, ProxyError>>) -> Option<ErrorKind> {
        match p {
            Poll::Ready(Err(e)) => Some(e.kind),
            _ => None,
        }
    }

    fn counts(l: &RouteLimits) -> RouteLimitCounts {
        l.snapshot(|_| String::new()).remove(0).1
    }

    #[test]
    fn a_route_without_a_limit_has_no_gate_and_the_retry_after_is_the_queue_timeout() {
        let l = limits(1, 0);
        assert!(l.gate(ROUTE + 1).is_none());
        assert!(RouteLimits::default().gate(ROUTE).is_none());
        assert_eq!(l.retry_after_secs(ROUTE), Some(2), "1.5 s rounded up");
        assert_eq!(l.retry_after_secs(ROUTE + 1), None);
    }

    #[test]
    fn past_the_slots_and_the_queue_a_request_is_refused_at_once() {
        let (l, d) = (limits(2, 0), Deadlines::default());
        let Poll::Ready(Ok(a)) = poll(&mut admit(&l, &d)) else {
            panic!("a free slot")
        };
        let Poll::Ready(Ok(b)) = poll(&mut admit(&l, &d)) else {
            panic!("a free slot")
        };
        assert_eq!(kind(&poll(&mut admit(&l, &d))), Some(ErrorKind::QueueFull));
        assert_eq!(counts(&l).in_flight, 2);
        drop(a);
        let Poll::Ready(Ok(_c)) = poll(&mut admit(&l, &d)) else {
            panic!("the freed slot")
        };
        drop(b);
        let c = counts(&l);
        assert_eq!((c.in_flight, c.rejected_queue_full, c.queued), (1, 1, 0));
    }

    #[test]
    fn waiters_get_freed_slots_in_arrival_order_and_none_is_taken_past_them() {
        let (l, d) = (limits(1, 3), Deadlines::default());
        let Poll::Ready(Ok(first)) = poll(&mut admit(&l, &d)) else {
            panic!("a free slot")
        };
        let mut waiting: Vec<Admit<'_>> = (0..3).map(|_| admit(&l, &d)).collect();
        for w in &mut waiting {
            assert!(poll(w).is_pending(), "queued");
        }
        assert_eq!(
            kind(&poll(&mut admit(&l, &d))),
            Some(ErrorKind::QueueFull),
            "three wait already"
        );
        assert_eq!(counts(&l).waiting, 3);
        drop(first);
        // The slot went to the oldest waiter: neither a newcomer nor a younger waiter has it.
        assert!(poll(&mut waiting[2]).is_pending());
        assert!(poll(&mut waiting[1]).is_pending());
        let Poll::Ready(Ok(second)) = poll(&mut waiting[0]) else {
            panic!("the oldest waiter is served first")
        };
        drop(second);
        assert!(poll(&mut waiting[2]).is_pending());
        assert!(matches!(poll(&mut waiting[1]), Poll::Ready(Ok(_))));
        assert!(
            matches!(poll(&mut waiting[2]), Poll::Ready(Ok(_))),
            "the slot of waiting[1] came back when it was dropped"
        );
        let c = counts(&l);
        assert_eq!((c.queued, c.waiting, c.rejected_queue_full), (3, 0, 1));
        drop(waiting);
        assert_eq!(counts(&l).in_flight, 0, "every slot came back");
    }

    #[test]
    fn a_waiter_that_leaves_after_it_was_handed_a_slot_passes_it_on() {
        let (l, d) = (limits(1, 2), Deadlines::default());
        let Poll::Ready(Ok(first)) = poll(&mut admit(&l, &d)) else {
            panic!("a free slot")
        };
        let (mut b, mut c) = (admit(&l, &d), admit(&l, &d));
        assert!(poll(&mut b).is_pending() && poll(&mut c).is_pending());
        drop(first);
        // `b` was handed the slot but goes away (its user left) before it took it.
        drop(b);
        assert!(matches!(poll(&mut c), Poll::Ready(Ok(_))), "not lost");
        drop(c);
        // A waiter that leaves while still queued changes nothing for the others.
        let Poll::Ready(Ok(first)) = poll(&mut admit(&l, &d)) else {
            panic!("a free slot")
        };
        let (mut b, mut c) = (admit(&l, &d), admit(&l, &d));
        assert!(poll(&mut b).is_pending() && poll(&mut c).is_pending());
        drop(b);
        assert!(poll(&mut c).is_pending(), "the slot is still taken");
        drop(first);
        assert!(matches!(poll(&mut c), Poll::Ready(Ok(_))));
        drop(c);
        let n = counts(&l);
        assert_eq!((n.in_flight, n.waiting), (0, 0));
    }

    #[test]
    fn a_waiter_gets_503_after_the_queue_timeout() {
        let (l, d) = (limits(1, 1), Deadlines::default());
        let Poll::Ready(Ok(first)) = poll(&mut admit(&l, &d)) else {
            panic!("a free slot")
        };
        let mut waiter = admit(&l, &d);
        assert!(poll(&mut waiter).is_pending());
        d.fire(Instant::now() + Duration::from_millis(500));
        assert!(poll(&mut waiter).is_pending(), "not yet");
        d.fire(Instant::now() + Duration::from_secs(2));
        assert_eq!(kind(&poll(&mut waiter)), Some(ErrorKind::QueueTimeout));
        drop(waiter);
        let c = counts(&l);
        assert_eq!(
            (c.in_flight, c.waiting, c.rejected_queue_timeout),
            (1, 0, 1)
        );
        drop(first);
        assert_eq!(counts(&l).in_flight, 0);
    }
}
