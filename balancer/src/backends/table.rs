//! One worker's view of the static backends: per route, the backends it may pick, each with
//! this worker's keep-alive pool, load (for the pickers) and passive-check state.
//!
//! Built from the process-wide [`BackendBook`]; a route's list is rebuilt on this worker when a
//! group's generation moved (a name resolved to other addresses), keeping the pools of the
//! addresses that stayed.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use rand::RngCore;
use ringway_core::exchange::{ErrorKind, ProxyError};
use ringway_core::health::Ejection;
use ringway_core::pick::{EndpointLoad, Picker};
use ringway_io::IdMap;
use ringway_upstream::{BackendPool, PoolConfig};
use tracing::warn;

use super::book::{BackendBook, Member, StaticRoute};
use crate::config::{BackendsConfig, SendProxy};
use crate::pick_scratch::PickScratch;
use crate::registry::RouteId;

/// One backend on one worker.
pub(crate) struct WorkerBackend {
    pub(crate) member: Arc<Member>,
    /// This worker's connections to it.
    pub(crate) pool: Rc<BackendPool>,
    pub(crate) load: RefCell<EndpointLoad>,
    ejection: RefCell<Ejection>,
    /// Unique on this worker (a retry excludes the backend that failed).
    pub(crate) key: u64,
    /// The route's text, for logs.
    route: Rc<str>,
    /// The route's `send_proxy` (a reload may change it).
    send_proxy: Cell<SendProxy>,
}

impl WorkerBackend {
    /// How its last request went, for the passive check: `ok` false for a connect error, a
    /// timeout or a 5xx.
    pub(crate) fn record(&self, ok: bool, now: Instant) {
        let mut ejection = self.ejection.borrow_mut();
        if ok {
            ejection.success();
        } else if ejection.failure(now) {
            self.member.ejected();
            warn!(route = %self.route, backend = %self.member.addr, "backend taken out after consecutive failures (passive check)");
        }
    }

    /// The PROXY protocol header this backend's connections start with, if any.
    pub(crate) fn send_proxy(&self) -> SendProxy {
        self.send_proxy.get()
    }

    fn is_available(&self, now: Instant) -> bool {
        self.member.is_up()
            && self.ejection.borrow().is_available(now)
            && self.load.borrow().weight() > 0
    }
}

/// One static route on one worker.
struct WorkerRoute {
    /// Its place in the book.
    source: usize,
    /// The generation of each group when `backends` was built.
    seen: Vec<u64>,
    backends: Vec<Rc<WorkerBackend>>,
    picker: Box<dyn Picker>,
}

/// A worker's static backends.
pub(crate) struct BackendTable {
    book: RefCell<Arc<BackendBook>>,
    pool: Cell<PoolConfig>,
    config: Cell<BackendsConfig>,
    routes: RefCell<IdMap<RouteId, WorkerRoute>>,
    next_key: Cell<u64>,
    /// Reused by every pick (no allocation on the request path).
    scratch: RefCell<PickScratch>,
}

impl BackendTable {
    /// This worker's table of every static route in `book`.
    pub(crate) fn new(book: &Arc<BackendBook>, config: BackendsConfig) -> Self {
        let pool = PoolConfig {
            max_open: config.max_connections,
            max_idle: config.max_idle,
            idle_timeout: config.idle_timeout,
            connect_timeout: config.connect_timeout,
        };
        let table = Self {
            book: RefCell::new(book.clone()),
            pool: Cell::new(pool),
            config: Cell::new(config),
            routes: RefCell::new(IdMap::default()),
            next_key: Cell::new(1),
            scratch: RefCell::new(PickScratch::default()),
        };
        let mut routes = IdMap::default();
        for (source, route) in book.routes.iter().enumerate() {
            let mut entry = WorkerRoute {
                source,
                seen: Vec::new(),
                backends: Vec::new(),
                picker: route.picker.build(),
            };
            table.rebuild(route, &mut entry);
            routes.insert(route.id, entry);
        }
        *table.routes.borrow_mut() = routes;
        table
    }

    /// A reload: the routes of `book` from now on. A backend whose book entry stayed (same
    /// member) keeps its pool, load and passive state, unless `config`'s pool settings changed;
    /// the connections of backends that left close as their requests end.
    pub(crate) fn replace(&self, book: Arc<BackendBook>, config: BackendsConfig) {
        let keep_pools = config.max_connections == self.config.get().max_connections
            && config.max_idle == self.config.get().max_idle
            && config.idle_timeout == self.config.get().idle_timeout
            && config.connect_timeout == self.config.get().connect_timeout;
        self.config.set(config);
        self.pool.set(PoolConfig {
            max_open: config.max_connections,
            max_idle: config.max_idle,
            idle_timeout: config.idle_timeout,
            connect_timeout: config.connect_timeout,
        });
        let mut old = std::mem::take(&mut *self.routes.borrow_mut());
        let mut routes = IdMap::default();
        for (source, route) in book.routes.iter().enumerate() {
            let mut entry = old.remove(&route.id).unwrap_or_else(|| WorkerRoute {
                source,
                seen: Vec::new(),
                backends: Vec::new(),
                picker: route.picker.build(),
            });
            entry.source = source;
            if entry.picker.kind() != route.picker {
                entry.picker = route.picker.build();
            }
            if !keep_pools {
                entry.backends.clear();
            }
            self.rebuild(route, &mut entry);
            routes.insert(route.id, entry);
        }
        *self.book.borrow_mut() = book;
        *self.routes.borrow_mut() = routes;
    }

    /// A user connection that had private backend connections (`send_proxy` routes) closed:
    /// so do its idle ones.
    pub(crate) fn close_owned(&self, owner: u64) {
        for entry in self.routes.borrow().values() {
            for backend in &entry.backends {
                backend.pool.close_owned(owner);
            }
        }
    }

    /// Picks a backend of `route` (other than `exclude`); `None` when the route is not static.
    pub(crate) fn pick(
        &self,
        route: RouteId,
        exclude: Option<u64>,
        rng: &mut dyn RngCore,
        now: Instant,
    ) -> Option<Result<Rc<WorkerBackend>, ProxyError>> {
        let mut routes = self.routes.borrow_mut();
        let entry = routes.get_mut(&route)?;
        let book = self.book.borrow();
        let source = &book.routes[entry.source];
        let moved = source
            .groups
            .iter()
            .zip(&entry.seen)
            .any(|(g, &seen)| g.generation() != seen);
        if moved {
            self.rebuild(source, entry);
        }
        let backends = &entry.backends;
        let chosen = self.scratch.borrow_mut().pick(
            backends.len(),
            |i| Some(backends[i].key) != exclude && backends[i].is_available(now),
            |i| backends[i].load.borrow().clone(),
            &mut *entry.picker,
            (rng, now),
        );
        let Some(chosen) = chosen else {
            return Some(Err(ProxyError::new(ErrorKind::NoBackend)));
        };
        entry.backends.get(chosen).cloned().map(Ok)
    }

    /// Rebuilds `entry`'s backends from the book's members, keeping the pools (and state) of
    /// the addresses that stayed.
    fn rebuild(&self, source: &StaticRoute, entry: &mut WorkerRoute) {
        let route: Rc<str> = source.text.as_str().into();
        let mut backends = Vec::new();
        entry.seen.clear();
        for group in &source.groups {
            entry.seen.push(group.generation());
            for member in group.members().iter() {
                let kept = entry
                    .backends
                    .iter()
                    .find(|b| Arc::ptr_eq(&b.member, member))
                    .cloned();
                let backend = kept.unwrap_or_else(|| {
                    let key = self.next_key.get();
                    self.next_key.set(key + 1);
                    Rc::new(WorkerBackend {
                        member: member.clone(),
                        pool: BackendPool::new(member.addr.clone(), self.pool.get()),
                        load: RefCell::new(EndpointLoad::new().with_weight(group.spec.weight)),
                        ejection: RefCell::new(Ejection::new(
                            self.config.get().max_fails,
                            self.config.get().fail_timeout,
                        )),
                        key,
                        route: route.clone(),
                        send_proxy: Cell::new(source.send_proxy),
                    })
                });
                backend.send_proxy.set(source.send_proxy);
                backends.push(backend);
            }
        }
        entry.backends = backends;
    }
}
