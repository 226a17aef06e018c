//! One runtime thread of the agent: its tunnel slots, its backend pool, its control loop.
//!
//! Balancer worker `i` of every balancer address is served by agent thread `i % threads`, so each
//! thread owns whole tunnel connections and nothing on the request path crosses threads. Threads
//! talk only through the control channel (`Command`): drain/kill, the news that a balancer runs a
//! given number of workers, and new balancer addresses from re-resolution.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ringway_core::tunnel::HelloAck;

use crate::agent::{Command, Control};
use crate::config::AgentConfig;
use crate::notify::Notify;
use crate::pool::{BackendPool, PoolConfig};
use crate::session;
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
    progress: Notify,
}

impl Worker {
    pub(crate) fn new(index: usize, config: Arc<AgentConfig>, control: Arc<Control>) -> Rc<Self> {
        let pool = BackendPool::new(
            config.backend,
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
            progress: Notify::new(),
        })
    }

    /// The thread's main future: starts the first slots, then obeys the control channel until a
    /// drain completes or a kill arrives.
    pub(crate) async fn run(
        self: Rc<Self>,
        commands: flume::Receiver<Command>,
        addrs: Vec<SocketAddr>,
    ) {
        if self.index == 0 {
            for addr in addrs {
                self.add_balancer(addr);
            }
        }
        loop {
            match commands.recv_async().await {
                Ok(Command::OpenSlots {
                    addr,
                    worker_count,
                    taken,
                }) => self.open_slots(addr, worker_count, taken),
                Ok(Command::AddBalancer(addr)) => self.add_balancer(addr),
                Ok(Command::Drain) => break,
                Ok(Command::Kill) | Err(_) => return self.kill(),
            }
        }
        // Draining: a kill may still cut it short.
        let drain = crate::drain::drain(&self);
        let mut drain = std::pin::pin!(drain);
        loop {
            monoio::select! {
                () = &mut drain => return,
                cmd = commands.recv_async() => {
                    if matches!(cmd, Ok(Command::Kill) | Err(_)) {
                        return self.kill();
                    }
                }
            }
        }
    }

    pub(crate) fn stream_env(&self) -> StreamEnv {
        StreamEnv {
            pool: self.pool.clone(),
            response_timeout: self.config.response_timeout,
            head_limits: crate::stream::head_limits(self.config.tunnel.max_frame_payload),
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
        self.progress.notify();
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
        self.progress.notify();
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
        self.progress.notified().await;
    }

    /// Opens the probe connection (any balancer worker) to a new balancer address.
    fn add_balancer(self: &Rc<Self>, addr: SocketAddr) {
        if self.probes.borrow_mut().insert(addr) {
            monoio::spawn(session::run_slot(self.clone(), addr, None));
        }
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

    fn open_slots(self: &Rc<Self>, addr: SocketAddr, worker_count: u16, taken: u16) {
        let threads = self.control.threads();
        for i in 0..worker_count {
            if i == taken || usize::from(i) % threads != self.index {
                continue;
            }
            if self.slots.borrow_mut().insert((addr, i)) {
                tracing::debug!(balancer = %addr, worker = i, thread = self.index, "opening tunnel connection");
                monoio::spawn(session::run_slot(self.clone(), addr, Some(i)));
            }
        }
    }

    fn kill(&self) {
        self.draining.set(true);
        for tunnel in self.live_tunnels() {
            tunnel.kill();
        }
        self.pool.clear();
    }
}
