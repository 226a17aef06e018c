//! The state of one runtime thread of the agent: its tunnel slots and connections, its backend
//! pool, its streams in flight. (The thread's control loop is `agent::run_thread`; the slots'
//! reconnect loops are `session`.)
//!
//! Balancer worker `i` of every balancer address is served by agent thread `i % threads`, so each
//! thread owns whole tunnel connections and nothing on the request path crosses threads. Threads
//! talk only through the control channel (`control::Command`): drain/kill, the news that a
//! balancer runs a given number of workers, and new balancer addresses from re-resolution.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ringway_core::tunnel::HelloAck;
use ringway_core::upstream::UpstreamConfig;
use ringway_io::Doorbell;
use ringway_upstream::{BackendPool, PoolConfig};

use crate::config::AgentConfig;
use crate::control::{Command, Control};
use crate::stream::StreamEnv;
use crate::tunnel::Tunnel;

/// Per-thread agent state, shared by the thread's tasks through `Rc`.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) index: usize,
    pub(crate) config: Arc<AgentConfig>,
    control: Arc<Control>,
    pool: Rc<BackendPool>,
    /// (balancer, worker index) pairs that have a slot task on this thread.
    slots: RefCell<HashSet<(SocketAddr, u16)>>,
    /// Balancer addresses with a probe slot (first thread only).
    probes: RefCell<HashSet<SocketAddr>>,
    tunnels: RefCell<Vec<Weak<Tunnel>>>,
    draining: Cell<bool>,
    in_flight: Cell<usize>,
    /// Rung when a tunnel closes or a stream finishes (drain waits on it).
    progress: Doorbell,
}

impl Worker {
    pub(crate) fn new(index: usize, config: Arc<AgentConfig>, control: Arc<Control>) -> Rc<Self> {
        let pool = BackendPool::new(
            config.backend.clone(),
            PoolConfig {
                max_open: config.max_backend_conns,
                max_idle: config.pool_size,
                idle_timeout: config.pool_idle_timeout,
                connect_timeout: config.connect_timeout,
            },
        );
        Rc::new(Self {
            index,
            config,
            control,
            pool,
            slots: RefCell::new(HashSet::new()),
            probes: RefCell::new(HashSet::new()),
            tunnels: RefCell::new(Vec::new()),
            draining: Cell::new(false),
            in_flight: Cell::new(0),
            progress: Doorbell::new(),
        })
    }

    pub(crate) fn stream_env(&self) -> StreamEnv {
        let head_limits = crate::stream::head_limits(self.config.tunnel.max_frame_payload);
        StreamEnv {
            pool: self.pool.clone(),
            upstream: UpstreamConfig {
                head_limits,
                response_timeout: self.config.response_timeout,
                ..UpstreamConfig::default()
            },
            head_limits,
        }
    }

    pub(crate) fn register(&self, tunnel: &Rc<Tunnel>) {
        let mut tunnels = self.tunnels.borrow_mut();
        tunnels.retain(|t| t.strong_count() > 0);
        tunnels.push(Rc::downgrade(tunnel));
    }

    pub(crate) fn unregister(&self, tunnel: &Rc<Tunnel>) {
        self.tunnels
            .borrow_mut()
            .retain(|t| t.upgrade().is_some_and(|t| !Rc::ptr_eq(&t, tunnel)));
        if tunnel.ack().is_some() {
            self.control.live.fetch_sub(1, Ordering::AcqRel);
        }
        self.progress.ring();
    }

    /// A tunnel connection was accepted by its balancer worker.
    pub(crate) fn acked(&self, tunnel: &Rc<Tunnel>, ack: HelloAck) {
        self.control.live.fetch_add(1, Ordering::AcqRel);
        if self.draining.get() {
            tunnel.go_away();
            return;
        }
        let addr = tunnel.peer();
        self.slots.borrow_mut().insert((addr, ack.worker_index));
        if self.control.learn_worker_count(addr, ack.worker_count) {
            self.control.broadcast(&Command::OpenSlots {
                addr,
                worker_count: ack.worker_count,
                taken: ack.worker_index,
            });
        }
    }

    pub(crate) fn stream_started(&self) {
        self.in_flight.set(self.in_flight.get() + 1);
    }

    pub(crate) fn stream_finished(&self) {
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
        self.progress.ring();
    }

    /// Streams being served on this thread.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.get()
    }

    /// Live tunnel connections of this thread.
    pub(crate) fn live_tunnels(&self) -> Vec<Rc<Tunnel>> {
        self.tunnels
            .borrow()
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    pub(crate) fn start_draining(&self) {
        self.draining.set(true);
    }

    pub(crate) async fn progress(&self) {
        self.progress.wait().await;
    }

    /// Claims the probe slot of balancer `addr`; false when it has one already.
    pub(crate) fn claim_probe(&self, addr: SocketAddr) -> bool {
        self.probes.borrow_mut().insert(addr)
    }

    /// Claims the slot for worker `index` of balancer `addr`; false when it is taken.
    pub(crate) fn claim_slot(&self, addr: SocketAddr, index: u16) -> bool {
        self.slots.borrow_mut().insert((addr, index))
    }

    /// TLS to the balancers (`None`: plaintext).
    pub(crate) fn tls(&self) -> Option<&crate::tls::ClientTls> {
        self.control.tls.as_deref()
    }

    /// The host balancer `addr` was resolved from.
    pub(crate) fn host_of(&self, addr: SocketAddr) -> String {
        self.control.host_of(addr)
    }

    /// How many runtime threads the agent runs.
    pub(crate) fn threads(&self) -> usize {
        self.control.threads()
    }

    /// Whether a slot should keep reconnecting to `addr`.
    pub(crate) fn wants(&self, addr: SocketAddr) -> bool {
        !self.draining.get() && self.control.is_current(addr)
    }

    /// A slot gave up on `addr` (it left DNS): forget it so that it can come back.
    pub(crate) fn slot_ended(&self, addr: SocketAddr, worker: Option<u16>, probe: bool) {
        if let Some(index) = worker {
            self.slots.borrow_mut().remove(&(addr, index));
        }
        if probe {
            self.probes.borrow_mut().remove(&addr);
        }
    }

    /// Kills every tunnel connection of this thread and empties its backend pool.
    pub(crate) fn kill(&self) {
        self.draining.set(true);
        for tunnel in self.live_tunnels() {
            tunnel.kill();
        }
        self.pool.clear();
    }
}
