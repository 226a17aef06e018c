//! One pinned worker: its user and agent listeners, the agent connections it owns, and its own
//! table of which of those serve each route. Everything here is single-threaded (`Rc`, `RefCell`):
//! a request, its agent connection and its endpoint table never leave this thread.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use rand::rngs::SmallRng;
use std::hash::{BuildHasher, Hasher};

use rand::{RngCore, SeedableRng};
use ringway_core::pick::Picker;
use ringway_core::tunnel::ResetCode;
use ringway_io::{BufPool, IdMap};
use tracing::warn;

use ringway_core::exchange::ProxyError;
use ringway_core::http::Limits;
use ringway_core::upstream::UpstreamConfig;

use crate::access_log::AccessLog;
use crate::agent_conn::{AgentConn, ConnOwner};
use crate::agent_tls::AgentTls;
use crate::auth::Denial;
use crate::backends::{BackendBook, BackendTable, WorkerBackend};
use crate::config::Config;
use crate::deadlines::Deadlines;
use crate::drain::Drain;
use crate::early::{EarlyAnswers, EarlySetup};
use crate::handoff::{HandoffRx, HandoffTx};
use crate::limits::{ClientAdmission, ClientTable, ConnLimit, RouteLimits};
use crate::peer_log::PeerLog;
use crate::pick_scratch::PickScratch;
use crate::registry::{Registry, RouteId};
use crate::signal::WaitQueue;
use crate::stats::{AgentInfo, WorkerSnapshot, WorkerStats};
use crate::timeouts::Timeouts;

/// Bytes of a user connection's read (and write) buffer: room for a request head, or for one
/// read of body bytes (a body read asks for more, see `user_io::BODY_READ`).
const USER_BUF: usize = 8 * 1024;
/// Spare user buffers a worker keeps.
const SPARE_USER_BUFS: usize = 64;

/// What every worker is started with (the listeners go to `listener::run`).
pub(crate) struct WorkerSetup {
    pub(crate) index: u16,
    pub(crate) count: u16,
    pub(crate) config: Arc<Config>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) users: std::net::TcpListener,
    pub(crate) agents: std::net::TcpListener,
    /// This worker's member of the HTTPS listener group, and the TLS configuration its
    /// handshakes use (`[listen] https`, `[tls]`).
    pub(crate) https: Option<(std::net::TcpListener, Arc<rustls::ServerConfig>)>,
    pub(crate) handoff_tx: HandoffTx,
    pub(crate) handoff_rx: HandoffRx,
    /// What other threads ask of this worker (`control`).
    pub(crate) commands: crate::control::CommandRx,
    /// Set (with a `Drain` command) when the balancer shuts down.
    pub(crate) shutdown: Arc<std::sync::atomic::AtomicBool>,
    /// This worker's access log (`None`: off); taken by the worker when it starts.
    pub(crate) access: Option<AccessLog>,
    /// The static routes and their backends (process-wide; each worker builds its pools).
    pub(crate) backends: Arc<BackendBook>,
    /// Open connections per client address, shared by every worker (`None`: no limit).
    pub(crate) clients: Option<Arc<ClientTable>>,
    /// The agent listener's TLS (`None`: `agents.insecure_plaintext`).
    pub(crate) agent_tls: Option<Arc<AgentTls>>,
    /// ACME challenges and the HTTPS port of redirects (`early`).
    pub(crate) early: EarlySetup,
}

/// The agent connections of one route on this worker, and the picker that chooses among them.
struct RouteEndpoints {
    conns: Vec<Rc<AgentConn>>,
    picker: Box<dyn Picker>,
}

/// The settings requests and new connections run with, derived once from a config: swapped
/// whole by a reload ([`Worker::apply_config`]). A request takes them once
/// ([`Worker::settings`]) and keeps them to its end, so a reload never changes a request in
/// flight; an agent connection keeps the tunnel settings it was accepted with.
pub(crate) struct Settings {
    pub(crate) config: Arc<Config>,
    pub(crate) limits: Limits,
    pub(crate) tunnel: ringway_core::tunnel::Config,
    pub(crate) timeouts: Timeouts,
}

impl Settings {
    fn of(config: Arc<Config>) -> Rc<Self> {
        Rc::new(Self {
            limits: config.limits.to_core(),
            tunnel: config.tunnel.to_core(),
            timeouts: Timeouts::from(config.timeouts),
            config,
        })
    }
}

/// How long an agent connection sent away by a reload (its token is no longer good) gets to
/// finish the streams it carries before it is closed.
const SENT_AWAY_LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// A worker's state, shared by its tasks.
pub(crate) struct Worker {
    pub(crate) index: u16,
    pub(crate) count: u16,
    /// Swapped by a reload between requests (the worker is one thread: no lock, no atomic).
    settings: RefCell<Rc<Settings>>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) handoff: HandoffTx,
    /// Coarse deadlines of the connections that wait (head, idle) and of requests' timers.
    pub(crate) deadlines: Deadlines,
    /// Read and write buffers of user connections, taken when bytes arrive and given back
    /// when the connection is idle again.
    pub(crate) bufs: BufPool,
    /// What `/metrics` shows of this worker.
    pub(crate) stats: WorkerStats,
    /// Set when the balancer shuts down (`drain`).
    pub(crate) drain: Drain,
    /// The process-wide shutdown flag (see `Shutdown`).
    pub(crate) shutdown: Arc<std::sync::atomic::AtomicBool>,
    /// Limits the log lines misbehaving peers cause.
    pub(crate) peer_log: PeerLog,
    /// The access log, when one is configured (a reload may open another).
    access: RefCell<Option<Rc<AccessLog>>>,
    /// Stops the accept loop of the current user listener (a reload that rebinds starts
    /// another); the worker's `drain` stops it too.
    pub(crate) user_listener: RefCell<Rc<Drain>>,
    /// The same for the agent listener.
    pub(crate) agent_listener: RefCell<Rc<Drain>>,
    /// This worker's static backends.
    backends: BackendTable,
    /// `[limits] max_connections_per_worker`.
    pub(crate) conn_limit: ConnLimit,
    /// `[limits] max_connections_per_client` (`None`: no limit).
    pub(crate) clients: Option<Arc<ClientTable>>,
    /// The agent listener's TLS, shared by every worker (`None`: plaintext).
    pub(crate) agent_tls: Option<Arc<AgentTls>>,
    /// The routes' `max_concurrent` gates on this worker.
    /// Swapped by a reload that changed them; a request keeps the ones it started with.
    route_limits: RefCell<Rc<RouteLimits>>,
    /// ACME challenges and redirects to HTTPS; rebuilt by a reload.
    early: RefCell<Rc<EarlyAnswers>>,
    endpoints: RefCell<IdMap<RouteId, RouteEndpoints>>,
    /// Requests parked until an agent for their route can take them.
    parked: WaitQueue<RouteId>,
    rng: RefCell<SmallRng>,
    pick_scratch: RefCell<PickScratch>,
    next_conn: Cell<u64>,
    request_ids: RequestIds,
}

impl Worker {
    /// A worker's state, built from its setup.
    pub(crate) fn new(setup: &WorkerSetup, access: Option<AccessLog>) -> Rc<Self> {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let mut rng = SmallRng::seed_from_u64(seed ^ u64::from(setup.index));
        let request_ids = RequestIds::new(rng.next_u32() as u16, setup.index);
        Rc::new(Self {
            index: setup.index,
            count: setup.count,
            settings: RefCell::new(Settings::of(setup.config.clone())),
            deadlines: Deadlines::default(),
            bufs: BufPool::new(USER_BUF, SPARE_USER_BUFS),
            stats: WorkerStats::default(),
            drain: Drain::default(),
            shutdown: setup.shutdown.clone(),
            peer_log: PeerLog::new(&setup.config.log),
            access: RefCell::new(access.map(Rc::new)),
            user_listener: RefCell::default(),
            agent_listener: RefCell::default(),
            backends: BackendTable::new(&setup.backends, setup.config.backends),
            conn_limit: ConnLimit::new(setup.config.limits.max_connections_per_worker),
            clients: setup.clients.clone(),
            agent_tls: setup.agent_tls.clone(),
            route_limits: RefCell::new(Rc::new(RouteLimits::new(&setup.config, &setup.registry))),
            early: RefCell::new(Rc::new(EarlyAnswers::new(
                setup.early.clone(),
                &setup.config,
                &setup.registry,
            ))),
            registry: setup.registry.clone(),
            handoff: setup.handoff_tx.clone(),
            endpoints: RefCell::new(IdMap::default()),
            parked: WaitQueue::default(),
            rng: RefCell::new(rng),
            pick_scratch: RefCell::new(PickScratch::default()),
            next_conn: Cell::new(1),
            request_ids,
        })
    }

    /// A user connection was accepted: counts it, and says whether its client may have one
    /// more (`[limits] max_connections_per_client`).
    pub(crate) fn conn_opened(&self, peer: std::net::IpAddr) -> ClientAdmission {
        self.stats.conn_opened();
        match &self.clients {
            None => ClientAdmission::Uncounted,
            Some(t) if t.admit(peer) => ClientAdmission::Counted,
            Some(_) => ClientAdmission::Refused,
        }
    }

    /// A user connection ended (`counted`: its client's count was taken at the accept).
    pub(crate) fn conn_closed(&self, peer: std::net::IpAddr, counted: bool) {
        self.stats.conn_closed();
        self.conn_limit.closed(self.stats.user_conns_open());
        if counted {
            if let Some(t) = &self.clients {
                t.release(peer);
            }
        }
    }

    /// The routes' concurrency gates now (a request keeps the ones it started with).
    pub(crate) fn route_limits(&self) -> Rc<RouteLimits> {
        self.route_limits.borrow().clone()
    }

    /// The early answers now (ACME challenges, redirects to HTTPS).
    pub(crate) fn early(&self) -> Rc<EarlyAnswers> {
        self.early.borrow().clone()
    }

    /// The settings now: a request takes them once and keeps them to its end.
    pub(crate) fn settings(&self) -> Rc<Settings> {
        self.settings.borrow().clone()
    }

    /// The deadlines now (a copy).
    pub(crate) fn timeouts(&self) -> Timeouts {
        self.settings.borrow().timeouts
    }

    /// The access log now, if any.
    pub(crate) fn access(&self) -> Option<Rc<AccessLog>> {
        self.access.borrow().clone()
    }

    /// Replaces the access log (a reload changed `[log] access` or `access_format`); what the
    /// old one buffered is written first.
    pub(crate) fn replace_access_log(&self, access: Option<AccessLog>) {
        let old = self.access.replace(access.map(Rc::new));
        if let Some(old) = old {
            old.flush();
        }
    }

    /// A reload: every request from now on runs with `new` (those in flight keep what they
    /// started with), route pickers follow `agents.picker`, the peer-log limits follow `[log]`,
    /// and every agent connection whose token is no longer good for its routes (the registry
    /// follows `new` already) gets a GOAWAY and is closed once its streams are done. Returns how
    /// many connections were sent away. Per-worker state built from the config is swapped here,
    /// the static backends too (`backends`: pools to addresses that stayed are kept); the
    /// routes' concurrency gates are not (a change to them is reported as needing a restart).
    pub(crate) fn apply_config(&self, new: Arc<Config>, backends: Arc<BackendBook>) -> usize {
        let old = self.settings.replace(Settings::of(new));
        let new = self.settings().config.clone();
        self.backends.replace(backends, new.backends);
        self.conn_limit
            .set_max(new.limits.max_connections_per_worker);
        if let Some(clients) = &self.clients {
            clients.set_max(new.limits.max_connections_per_client);
        }
        if route_limits_of(&old.config) != route_limits_of(&new) {
            *self.route_limits.borrow_mut() = Rc::new(RouteLimits::new(&new, &self.registry));
        }
        if old.config.agents.picker != new.agents.picker {
            for entry in self.endpoints.borrow_mut().values_mut() {
                entry.picker = new.agents.picker.build();
            }
        }
        let early = self.early().rebuilt(&new, &self.registry);
        *self.early.borrow_mut() = Rc::new(early);
        self.peer_log.reconfigure(&new.log);
        let mut sent_away = 0;
        for conn in self.agent_conn_list() {
            if !conn.is_open() {
                continue;
            }
            let Err((route, denial)) = self.registry.token_check(conn.routes(), conn.token())
            else {
                continue;
            };
            let (code, reason) = match denial {
                Denial::BadToken => (ResetCode::Unauthorized, "bad_token"),
                Denial::OutOfScope { .. } => (ResetCode::OutOfScope, "out_of_scope"),
            };
            warn!(
                agent = %conn.agent_id(),
                worker = self.index,
                token = conn.token_name(),
                route,
                reason,
                "agent token no longer allows its routes after a reload: sending it away"
            );
            conn.go_away_with(code, SENT_AWAY_LINGER);
            sent_away += 1;
        }
        sent_away
    }

    /// This worker's counters and agent connections, for the admin listener.
    pub(crate) fn snapshot(&self, driver: &'static str) -> WorkerSnapshot {
        let mut counters = self.stats.snapshot(|id| self.registry.route_text(id));
        counters.route_limits = self
            .route_limits()
            .snapshot(|id| self.registry.route_text(id));
        let endpoints = self.endpoints.borrow();
        let mut seen = std::collections::BTreeMap::new();
        for entry in endpoints.values() {
            for conn in &entry.conns {
                seen.entry(conn.key()).or_insert_with(|| AgentInfo {
                    id: conn.agent_id().to_owned(),
                    worker: self.index,
                    routes: conn
                        .routes()
                        .iter()
                        .map(|&r| self.registry.route_text(r))
                        .collect(),
                    streams: conn.load().outstanding(),
                    open: conn.is_open(),
                    tls: conn.is_tls(),
                    id_from: conn.id_source().as_str(),
                });
            }
        }
        WorkerSnapshot {
            worker: self.index,
            driver,
            counters,
            agents: seen.into_values().collect(),
        }
    }

    /// This worker's agent connections (each once, whatever its routes).
    fn agent_conn_list(&self) -> Vec<Rc<AgentConn>> {
        let endpoints = self.endpoints.borrow();
        let mut seen = std::collections::BTreeMap::new();
        for conn in endpoints.values().flat_map(|e| &e.conns) {
            seen.entry(conn.key()).or_insert_with(|| conn.clone());
        }
        seen.into_values().collect()
    }

    /// GOAWAY to every agent connection (the balancer shuts down); returns them, to wait for
    /// their closing.
    pub(crate) fn go_away_agents(&self, linger: std::time::Duration) -> Vec<Rc<AgentConn>> {
        let conns = self.agent_conn_list();
        for conn in &conns {
            conn.go_away_with(ResetCode::NoError, linger);
        }
        conns
    }

    /// A fresh id for an agent connection owned by this worker.
    pub(crate) fn next_conn_key(&self) -> u64 {
        let key = self.next_conn.get();
        self.next_conn.set(key + 1);
        key
    }

    /// A request id unique across workers and restarts, built without allocating.
    pub(crate) fn next_request_id(&self) -> RequestId {
        self.request_ids.next()
    }

    /// Picks a static backend of `route` (other than the one keyed `exclude`); `None` when
    /// `route` is served by agents.
    pub(crate) fn pick_backend(
        &self,
        route: RouteId,
        exclude: Option<u64>,
    ) -> Option<Result<Rc<WorkerBackend>, ProxyError>> {
        let mut rng = self.rng.borrow_mut();
        self.backends
            .pick(route, exclude, &mut *rng, self.deadlines.now())
    }

    /// A user connection that owned private backend connections (`send_proxy` routes) closed:
    /// its idle ones close too.
    pub(crate) fn close_private(&self, owner: u64) {
        self.backends.close_owned(owner);
    }

    /// The settings of a request's backend side (static backends).
    pub(crate) fn upstream_config(&self) -> UpstreamConfig {
        UpstreamConfig {
            head_limits: Limits::default().forwarded(),
            response_timeout: self.timeouts().response_head,
            ..UpstreamConfig::default()
        }
    }

    /// Adds an agent connection as an endpoint of each of its routes and wakes parked requests.
    pub(crate) fn add_endpoint(&self, conn: &Rc<AgentConn>) {
        let mut endpoints = self.endpoints.borrow_mut();
        for &route in conn.routes() {
            let entry = endpoints.entry(route).or_insert_with(|| RouteEndpoints {
                conns: Vec::new(),
                picker: self.settings.borrow().config.agents.picker.build(),
            });
            entry.conns.push(conn.clone());
        }
        drop(endpoints);
        for &route in conn.routes() {
            self.parked.wake_all(route);
        }
    }

    /// A stream of a connection serving `routes` ended: the longest-parked request of each of
    /// those routes may take the freed stream (one each, not every parked request).
    pub(crate) fn stream_ended(&self, routes: &[RouteId]) {
        for &route in routes {
            self.parked.wake_one(route);
        }
    }

    /// Removes an agent connection from every route (it closed or is draining). A route left
    /// without connections on this worker leaves the table, so routes forgotten by the registry
    /// do not pile up here.
    pub(crate) fn remove_endpoint(&self, key: u64, routes: &[RouteId]) {
        let mut endpoints = self.endpoints.borrow_mut();
        for route in routes {
            if let Some(entry) = endpoints.get_mut(route) {
                entry.conns.retain(|c| c.key() != key);
                if entry.conns.is_empty() {
                    endpoints.remove(route);
                }
            }
        }
    }

    /// Picks an agent connection for `route`, skipping the one keyed `exclude`, without
    /// allocating (the candidate and load lists live in the worker's scratch buffers).
    pub(crate) fn pick(&self, route: RouteId, exclude: Option<u64>) -> Option<Rc<AgentConn>> {
        let mut endpoints = self.endpoints.borrow_mut();
        let entry = endpoints.get_mut(&route)?;
        let conns = &entry.conns;
        let mut rng = self.rng.borrow_mut();
        let chosen = self.pick_scratch.borrow_mut().pick(
            conns.len(),
            |i| Some(conns[i].key()) != exclude && conns[i].is_open() && conns[i].has_capacity(),
            |i| conns[i].load().clone(),
            &mut *entry.picker,
            (&mut *rng, Instant::now()),
        )?;
        entry.conns.get(chosen).cloned()
    }

    /// Waits until an agent for `route` (other than `exclude`) is connected to this worker.
    /// The caller bounds the wait with the park time.
    pub(crate) async fn wait_for_agent(
        &self,
        route: RouteId,
        exclude: Option<u64>,
    ) -> Rc<AgentConn> {
        let parked = Parked {
            queue: &self.parked,
            ticket: self.parked.ticket(),
            route,
            queued: Cell::new(false),
            served: Cell::new(false),
        };
        poll_fn(|cx| match self.pick(route, exclude) {
            Some(conn) => {
                parked.served.set(true);
                Poll::Ready(conn)
            }
            None => {
                self.parked.register(parked.ticket, route, cx.waker());
                parked.queued.set(true);
                Poll::Pending
            }
        })
        .await
    }
}

/// An agent connection reports to the worker that owns it.
impl ConnOwner for Worker {
    fn stream_ended(&self, routes: &[RouteId]) {
        Self::stream_ended(self, routes);
    }

    fn remove_endpoint(&self, key: u64, routes: &[RouteId]) {
        Self::remove_endpoint(self, key, routes);
    }
}

/// One parked request's place in the worker's queue. Leaving (served, or the park time ran out)
/// takes it out; a request that was woken but leaves unserved passes the wake-up on, so a freed
/// stream is never lost on a request that gave up.
struct Parked<'a> {
    queue: &'a WaitQueue<RouteId>,
    ticket: u64,
    route: RouteId,
    queued: Cell<bool>,
    served: Cell<bool>,
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        let still_queued = self.queue.remove(self.ticket);
        if self.queued.get() && !still_queued && !self.served.get() {
            self.queue.wake_one(self.route);
        }
    }
}

/// The request ids of one worker: a 16-bit random prefix (per start), 8 bits of worker index
/// and a 40-bit counter, which repeats only after 2^40 requests on one worker.
struct RequestIds {
    base: u64,
    next: Cell<u64>,
}

impl RequestIds {
    const COUNTER_BITS: u32 = 40;
    const COUNTER_MASK: u64 = (1 << Self::COUNTER_BITS) - 1;

    fn new(prefix: u16, worker: u16) -> Self {
        Self {
            base: (u64::from(prefix) << 48) | (u64::from(worker & 0xff) << Self::COUNTER_BITS),
            next: Cell::new(1),
        }
    }

    fn next(&self) -> RequestId {
        let n = self.next.get();
        self.next.set(n.wrapping_add(1));
        RequestId::new(self.base | (n & Self::COUNTER_MASK))
    }
}

/// A request id the balancer generated: 16 lowercase hex digits.
#[derive(Clone, Copy)]
pub(crate) struct RequestId([u8; 16]);

impl RequestId {
    fn new(value: u64) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0u8; 16];
        for (i, d) in digits.iter_mut().enumerate() {
            *d = HEX[((value >> (60 - 4 * i)) & 0xf) as usize];
        }
        Self(digits)
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("0000000000000000")
    }
}

/// Every route's concurrency limit, by route text (what a reload compares).
fn route_limits_of(config: &Config) -> Vec<(&str, crate::config::RouteLimit)> {
    let mut limits: Vec<_> = config
        .routes
        .iter()
        .filter_map(|r| Some((r.pattern.text.as_str(), r.limit()?)))
        .collect();
    limits.sort_by(|a, b| a.0.cmp(b.0));
    limits
}

#[cfg(test)]
mod tests {
    use super::{RequestId, RequestIds};

    #[test]
    fn request_ids_are_hex() {
        assert_eq!(
            RequestId::new(0x0123_4567_89ab_cdef).as_str(),
            "0123456789abcdef"
        );
        assert_eq!(RequestId::new(1).as_str(), "0000000000000001");
    }

    #[test]
    fn request_ids_do_not_repeat_after_2_pow_24() {
        let ids = RequestIds::new(0xbeef, 3);
        let first = ids.next().as_str().to_owned();
        assert_eq!(first, "beef030000000001");
        // Past the old 24-bit counter the ids keep counting instead of wrapping to the first one.
        ids.next.set(1 << 24 | 1);
        let later = ids.next().as_str().to_owned();
        assert_ne!(later, first);
        assert_eq!(later, "beef030001000001");
        ids.next.set((1 << 40) - 1);
        assert_eq!(ids.next().as_str(), "beef03ffffffffff");
    }
}
