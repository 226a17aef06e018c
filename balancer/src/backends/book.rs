//! The process-wide book of static backends: for each route with `backends`, its entries
//! ([`Group`]: one per config entry) and the addresses each entry stands for now
//! ([`Member`]: one per resolved address, with the health-check verdict).
//!
//! Written only by the monitor (name resolution, active health checks), read by the workers
//! when they pick: a member's `up` is one relaxed atomic load, and a group's `generation` tells
//! a worker when its addresses changed, so the request path takes no lock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use ringway_core::health::ActiveHealth;
use ringway_core::pick::PickerKind;
use ringway_core::route::HostPattern;
use ringway_upstream::BackendAddr;

use crate::config::{BackendSpec, BackendTarget, Config, HealthConfig, SendProxy};
use crate::registry::{Registry, RouteId};

/// Every static route of the configuration.
#[derive(Debug, Default)]
pub(crate) struct BackendBook {
    pub(crate) routes: Vec<StaticRoute>,
}

/// One route served by static backends.
#[derive(Debug)]
pub(crate) struct StaticRoute {
    pub(crate) id: RouteId,
    /// The route's canonical text (for logs and metrics).
    pub(crate) text: String,
    pub(crate) picker: PickerKind,
    pub(crate) health: Option<HealthConfig>,
    /// The PROXY protocol header its backend connections (and health checks) start with.
    pub(crate) send_proxy: SendProxy,
    /// The Host header of its health checks.
    pub(crate) check_host: Option<String>,
    pub(crate) groups: Vec<Arc<Group>>,
}

/// One entry of a route's `backends`.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) spec: BackendSpec,
    /// The addresses it stands for now (one for an address, what the name resolved to).
    members: ArcSwap<Vec<Arc<Member>>>,
    /// Bumped on every change of `members`.
    generation: AtomicU64,
}

/// One backend address.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) addr: BackendAddr,
    /// The active checks' verdict (always true without checks).
    up: AtomicBool,
    /// Only the monitor touches it.
    pub(crate) active: Mutex<ActiveHealth>,
    /// Times a worker took it out after `backends.max_fails` failures.
    ejections: AtomicU64,
    /// When the monitor checks it next (`None`: now), and whether a check is under way; only
    /// the monitor touches them.
    pub(crate) schedule: Mutex<CheckSchedule>,
}

/// When a backend's next health check is due.
#[derive(Debug, Default)]
pub(crate) struct CheckSchedule {
    pub(crate) next: Option<std::time::Instant>,
    pub(crate) running: bool,
}

impl BackendBook {
    /// The static routes of `config`, their ids from `registry`; names are not resolved yet
    /// (their groups start empty until the monitor's first resolution).
    pub(crate) fn new(config: &Config, registry: &Registry) -> Self {
        let routes = config
            .routes
            .iter()
            .filter(|r| r.is_static())
            .filter_map(|r| {
                let id = registry.id_of(&r.pattern.text)?;
                let exact = match r.pattern.pattern.host() {
                    HostPattern::Exact(name) => Some(name.to_string()),
                    HostPattern::Suffix(_) | HostPattern::Any => None,
                };
                let check_host = r.health.as_ref().and_then(|h| h.host.clone()).or(exact);
                let rise_fall = r.health.as_ref().map_or((1, 1), |h| (h.rise, h.fall));
                Some(StaticRoute {
                    id,
                    text: r.pattern.text.clone(),
                    picker: r.picker_kind(config.agents.picker),
                    health: r.health.clone(),
                    send_proxy: r.send_proxy,
                    check_host,
                    groups: r
                        .backends
                        .iter()
                        .map(|spec| Arc::new(Group::new(spec.clone(), rise_fall)))
                        .collect(),
                })
            })
            .collect();
        Self { routes }
    }

    /// The book for `config` after a reload: a route whose backend entry and health check stayed
    /// the same keeps that entry as it was (its resolved addresses and health state, and so each
    /// worker's pools to them); new entries start like at start.
    pub(crate) fn rebuild(old: &Self, config: &Config, registry: &Registry) -> Self {
        let mut book = Self::new(config, registry);
        for route in &mut book.routes {
            let Some(before) = old.routes.iter().find(|r| r.text == route.text) else {
                continue;
            };
            if before.health != route.health {
                continue;
            }
            for group in &mut route.groups {
                if let Some(kept) = before.groups.iter().find(|g| g.spec == group.spec) {
                    *group = kept.clone();
                }
            }
        }
        book
    }

    /// Every group that names a host (to be resolved).
    pub(crate) fn named_groups(&self) -> impl Iterator<Item = &Arc<Group>> {
        self.routes
            .iter()
            .flat_map(|r| &r.groups)
            .filter(|g| matches!(g.spec.target, BackendTarget::Name { .. }))
    }
}

impl Group {
    fn new(spec: BackendSpec, (rise, fall): (u32, u32)) -> Self {
        let members = match &spec.target {
            BackendTarget::Addr(addr) => vec![Arc::new(Member::new(addr.clone(), rise, fall))],
            BackendTarget::Name { .. } => Vec::new(),
        };
        Self {
            spec,
            members: ArcSwap::from_pointee(members),
            generation: AtomicU64::new(0),
        }
    }

    /// The members now.
    pub(crate) fn members(&self) -> arc_swap::Guard<Arc<Vec<Arc<Member>>>> {
        self.members.load()
    }

    /// Bumped on every change of the members.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A name resolved to `addrs`: members of addresses still there are kept (with their health
    /// state), new ones start up. Returns whether anything changed.
    pub(crate) fn set_addresses(&self, addrs: &[BackendAddr], (rise, fall): (u32, u32)) -> bool {
        let old = self.members.load();
        let same = old.len() == addrs.len() && old.iter().zip(addrs).all(|(m, a)| m.addr == *a);
        if same {
            return false;
        }
        let members = addrs
            .iter()
            .map(|addr| match old.iter().find(|m| m.addr == *addr) {
                Some(kept) => kept.clone(),
                None => Arc::new(Member::new(addr.clone(), rise, fall)),
            })
            .collect();
        self.members.store(Arc::new(members));
        self.generation.fetch_add(1, Ordering::Release);
        true
    }
}

impl Member {
    fn new(addr: BackendAddr, rise: u32, fall: u32) -> Self {
        Self {
            addr,
            up: AtomicBool::new(true),
            active: Mutex::new(ActiveHealth::new(rise, fall)),
            ejections: AtomicU64::new(0),
            schedule: Mutex::new(CheckSchedule::default()),
        }
    }

    /// Whether the active checks let requests go to it.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Records one health check; returns the new state when it changed.
    pub(crate) fn record_check(&self, healthy: bool) -> Option<bool> {
        let mut active = self
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = active.record(healthy);
        if let Some(up) = changed {
            self.up.store(up, Ordering::Relaxed);
        }
        changed
    }

    /// A worker took it out (passive check).
    pub(crate) fn ejected(&self) {
        self.ejections.fetch_add(1, Ordering::Relaxed);
    }

    /// Times workers took it out.
    pub(crate) fn ejections(&self) -> u64 {
        self.ejections.load(Ordering::Relaxed)
    }
}
