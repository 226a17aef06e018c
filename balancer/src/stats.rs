//! What one worker counts about its requests and connections, for `GET /metrics`: plain numbers
//! in the worker's own memory (no atomics, no cache line shared with another worker on the
//! request path), copied into a [`WorkerSnapshot`] when the admin listener asks (see
//! `admin`), and merged over the workers there.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use ringway_io::IdMap;
use serde::Serialize;

use crate::limits::RouteLimitCounts;
use crate::registry::RouteId;

/// Upper bounds (seconds) of the request-duration histogram's buckets (`+Inf` is implied).
pub(crate) const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Labels of [`RouteCounts::by_class`]: the status class the user got, or `none` when the
/// request ended with no response at all (the user went away, or the connection was cut).
pub(crate) const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// Requests of one route (or of no route) on one worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct RouteCounts {
    /// Requests by status class, in the order of [`CLASSES`].
    pub(crate) by_class: [u64; 6],
    /// Requests that took at most each bound of [`DURATION_BUCKETS`] (not cumulative).
    pub(crate) buckets: [u64; DURATION_BUCKETS.len()],
    /// Requests longer than the last bound.
    pub(crate) over: u64,
    /// Sum of the durations, seconds.
    pub(crate) duration_sum: f64,
    /// Body bytes read from users (request bodies, and what an upgraded connection sent up).
    pub(crate) bytes_in: u64,
    /// Body bytes written to users.
    pub(crate) bytes_out: u64,
}

impl RouteCounts {
    /// Requests counted.
    pub(crate) fn total(&self) -> u64 {
        self.by_class.iter().sum()
    }

    fn record(
        &mut self,
        status: Option<u16>,
        elapsed: Duration,
        (bytes_in, bytes_out): (u64, u64),
    ) {
        self.bytes_in += bytes_in;
        self.bytes_out += bytes_out;
        let class = match status {
            Some(s @ 100..=599) => usize::from(s / 100 - 1),
            _ => 5,
        };
        self.by_class[class] += 1;
        let secs = elapsed.as_secs_f64();
        self.duration_sum += secs;
        match DURATION_BUCKETS.iter().position(|&b| secs <= b) {
            Some(i) => self.buckets[i] += 1,
            None => self.over += 1,
        }
    }

    /// Adds `other`'s counts to these.
    pub(crate) fn merge(&mut self, other: &Self) {
        for (a, b) in self.by_class.iter_mut().zip(other.by_class) {
            *a += b;
        }
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.over += other.over;
        self.duration_sum += other.duration_sum;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
    }
}

/// One worker's counters.
#[derive(Default)]
pub(crate) struct WorkerStats {
    routes: RefCell<IdMap<RouteId, RouteCounts>>,
    /// Requests that matched no route (or were refused before routing: a malformed head).
    unrouted: RefCell<RouteCounts>,
    retries: Cell<u64>,
    parked: Cell<u64>,
    user_conns_open: Cell<u64>,
    user_conns_total: Cell<u64>,
    accept_paused: Cell<u64>,
    clients_refused: Cell<u64>,
    proxy_protocol_errors: Cell<u64>,
    agent_rejections: Cell<[u64; Rejection::ALL.len()]>,
}

/// Why an agent's hello was refused, as `ringway_agent_rejections_total{reason}` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// `UNAUTHORIZED`: the token may not register a route.
    BadToken,
    /// `OUT_OF_SCOPE`: a known token, a route outside its scope.
    OutOfScope,
    /// `BAD_ROUTE`: a malformed route, or one served by static backends.
    BadRoute,
    /// `TOO_MANY_ROUTES`: over `tunnel.max_routes_per_hello` or `agents.max_routes_per_agent`.
    TooManyRoutes,
}

impl Rejection {
    /// Every reason, in the order of the counters.
    pub(crate) const ALL: [Self; 4] = [
        Self::BadToken,
        Self::OutOfScope,
        Self::BadRoute,
        Self::TooManyRoutes,
    ];

    /// The metric label.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Self::BadToken => "bad_token",
            Self::OutOfScope => "out_of_scope",
            Self::BadRoute => "bad_route",
            Self::TooManyRoutes => "too_many_routes",
        }
    }
}

impl WorkerStats {
    /// A request ended: `status` is what the user got (`None`: no response).
    pub(crate) fn request_done(
        &self,
        route: Option<RouteId>,
        status: Option<u16>,
        elapsed: Duration,
        bytes: (u64, u64),
    ) {
        match route {
            Some(route) => self
                .routes
                .borrow_mut()
                .entry(route)
                .or_default()
                .record(status, elapsed, bytes),
            None => self.unrouted.borrow_mut().record(status, elapsed, bytes),
        }
    }

    /// A failed attempt went to another agent.
    pub(crate) fn retried(&self) {
        self.retries.set(self.retries.get() + 1);
    }

    /// A request had to wait for an agent of its route.
    pub(crate) fn parked(&self) {
        self.parked.set(self.parked.get() + 1);
    }

    /// A user connection was accepted.
    pub(crate) fn conn_opened(&self) {
        self.user_conns_open.set(self.user_conns_open.get() + 1);
        self.user_conns_total.set(self.user_conns_total.get() + 1);
    }

    /// A user connection did not begin with a valid PROXY protocol header.
    pub(crate) fn proxy_protocol_error(&self) {
        self.proxy_protocol_errors
            .set(self.proxy_protocol_errors.get() + 1);
    }

    /// A user connection ended.
    pub(crate) fn conn_closed(&self) {
        self.user_conns_open
            .set(self.user_conns_open.get().saturating_sub(1));
    }

    /// The user listener stopped accepting: the worker was at `max_connections_per_worker`.
    pub(crate) fn accept_paused(&self) {
        self.accept_paused.set(self.accept_paused.get() + 1);
    }

    /// A user connection was refused (429): its client was at `max_connections_per_client`.
    pub(crate) fn client_refused(&self) {
        self.clients_refused.set(self.clients_refused.get() + 1);
    }

    /// An agent's hello was refused.
    pub(crate) fn agent_rejected(&self, why: Rejection) {
        let mut counts = self.agent_rejections.get();
        counts[why as usize] += 1;
        self.agent_rejections.set(counts);
    }

    /// User connections open now.
    pub(crate) fn user_conns_open(&self) -> u64 {
        self.user_conns_open.get()
    }

    /// The counters, with route ids turned into their text by `route_text`.
    pub(crate) fn snapshot(&self, route_text: impl Fn(RouteId) -> String) -> Counters {
        let mut routes: Vec<(String, RouteCounts)> = self
            .routes
            .borrow()
            .iter()
            .map(|(&id, c)| (route_text(id), c.clone()))
            .collect();
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        Counters {
            routes,
            unrouted: self.unrouted.borrow().clone(),
            retries: self.retries.get(),
            parked: self.parked.get(),
            user_conns_open: self.user_conns_open.get(),
            user_conns_total: self.user_conns_total.get(),
            accept_paused: self.accept_paused.get(),
            clients_refused: self.clients_refused.get(),
            route_limits: Vec::new(),
            proxy_protocol_errors: self.proxy_protocol_errors.get(),
            agent_rejections: self.agent_rejections.get(),
        }
    }
}

/// A copy of one worker's counters.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Counters {
    /// Requests by route (its text, `host/path`).
    pub(crate) routes: Vec<(String, RouteCounts)>,
    /// Requests that matched no route.
    pub(crate) unrouted: RouteCounts,
    /// Failed attempts retried on another agent.
    pub(crate) retries: u64,
    /// Requests that waited for an agent.
    pub(crate) parked: u64,
    /// User connections open now.
    pub(crate) user_conns_open: u64,
    /// User connections accepted since the start.
    pub(crate) user_conns_total: u64,
    /// Times the user listener stopped accepting at `max_connections_per_worker`.
    pub(crate) accept_paused: u64,
    /// User connections refused (429) at `max_connections_per_client`.
    pub(crate) clients_refused: u64,
    /// The limited routes (`max_concurrent`), by their text (filled in by the worker).
    pub(crate) route_limits: Vec<(String, RouteLimitCounts)>,
    /// User connections closed for want of a valid PROXY protocol header.
    pub(crate) proxy_protocol_errors: u64,
    /// Agent hellos refused, by [`Rejection`] (in the order of [`Rejection::ALL`]).
    pub(crate) agent_rejections: [u64; Rejection::ALL.len()],
}

/// One agent connection, as `GET /agents` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AgentInfo {
    /// The agent's id (its client certificate's name, or its hello's id).
    pub(crate) id: String,
    /// The worker that owns the connection.
    pub(crate) worker: u16,
    /// Routes it serves.
    pub(crate) routes: Vec<String>,
    /// Streams open on it now.
    pub(crate) streams: u32,
    /// Whether it takes new streams (not draining, not closed).
    pub(crate) open: bool,
    /// Whether the tunnel connection is TLS.
    pub(crate) tls: bool,
    /// Where `id` came from: `certificate` (the name of its verified client certificate) or
    /// `hello`.
    pub(crate) id_from: &'static str,
}

/// Everything one worker tells the admin listener.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WorkerSnapshot {
    /// The worker's index.
    pub(crate) worker: u16,
    /// Its IO driver (`io_uring` or `epoll`).
    pub(crate) driver: &'static str,
    /// Its counters.
    pub(crate) counters: Counters,
    /// Its agent connections.
    pub(crate) agents: Vec<AgentInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_land_in_their_class_and_bucket_and_merge() {
        let stats = WorkerStats::default();
        stats.request_done(None, Some(200), Duration::from_micros(300), (5, 7));
        stats.request_done(None, Some(503), Duration::from_millis(30), (0, 0));
        stats.request_done(None, None, Duration::from_secs(60), (0, 0));
        stats.request_done(None, Some(101), Duration::from_millis(1), (0, 0));
        let c = stats.snapshot(|_| String::new()).unrouted;
        assert_eq!(c.by_class, [1, 1, 0, 0, 1, 1]);
        assert_eq!(c.total(), 4);
        assert_eq!(c.buckets[0], 1, "300 µs ≤ 0.5 ms");
        assert_eq!(c.buckets[1], 1, "1 ms ≤ 1 ms");
        assert_eq!(c.buckets[6], 1, "30 ms in the 25–50 ms bucket");
        assert_eq!(c.over, 1, "60 s is past the last bound");
        let mut merged = c.clone();
        merged.merge(&c);
        assert_eq!(merged.total(), 8);
        assert!((merged.duration_sum - 2.0 * c.duration_sum).abs() < 1e-9);
        assert_eq!((merged.bytes_in, merged.bytes_out), (10, 14));
    }
}
