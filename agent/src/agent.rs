//! The agent as a library: start it on its own runtime threads, then drain, kill or join it.
//!
//! ```no_run
//! use ringway_agent::{Agent, AgentConfig};
//! let config = AgentConfig::new(
//!     vec!["127.0.0.1:7000".into()],
//!     "token".into(),
//!     vec!["example.com".into()],
//!     "127.0.0.1:8080".parse().unwrap(),
//! );
//! let agent = Agent::start(config).unwrap();
//! agent.drain();
//! agent.join();
//! ```

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use ringway_tuning::runtime::{spawn_worker, WorkerSpec};

use crate::config::AgentConfig;
use crate::resolve;
use crate::worker::Worker;

/// Entry point of the agent library.
#[derive(Debug)]
pub struct Agent;

impl Agent {
    /// Resolves the balancer addresses and starts `config.workers` runtime threads that connect to
    /// every balancer worker (retrying with backoff while a balancer is down).
    pub fn start(config: AgentConfig) -> io::Result<AgentHandle> {
        resolve::check_names(&config.balancers)?;
        let addrs = resolve::resolve_all(&config.balancers);
        let threads = config.workers.max(1);
        let mut senders = Vec::with_capacity(threads);
        let mut receivers = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (tx, rx) = flume::unbounded();
            senders.push(tx);
            receivers.push(rx);
        }
        let control = Arc::new(Control {
            senders,
            live: AtomicUsize::new(0),
            worker_counts: Mutex::new(HashMap::new()),
            balancers: Mutex::new(addrs.iter().copied().collect()),
            resolutions: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        });
        let config = Arc::new(config);
        let mut handles = Vec::with_capacity(threads);
        for (index, rx) in receivers.into_iter().enumerate() {
            let spec = WorkerSpec {
                name: format!("ringway-agent-{index}"),
                cpu: None,
                driver: config.io_driver,
                ring_entries: config.ring_entries,
            };
            let (config, shared, addrs) = (config.clone(), control.clone(), addrs.clone());
            let spawned = spawn_worker(spec, move |driver| async move {
                tracing::info!(thread = index, %driver, agent = %config.agent_id, "agent thread started");
                Worker::new(index, config, shared).run(rx, addrs).await;
            });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    control.broadcast(&Command::Kill);
                    for handle in handles {
                        let _ = handle.join();
                    }
                    return Err(e);
                }
            }
        }
        let resolver = match resolve::spawn_resolver(
            control.clone(),
            config.balancers.clone(),
            config.resolve_interval,
        ) {
            Ok(resolver) => resolver,
            Err(e) => {
                control.broadcast(&Command::Kill);
                return Err(e);
            }
        };
        handles.extend(resolver);
        Ok(AgentHandle {
            remote: AgentRemote { control },
            threads: handles,
            balancers: addrs,
        })
    }
}

/// A running agent.
#[derive(Debug)]
pub struct AgentHandle {
    remote: AgentRemote,
    threads: Vec<JoinHandle<()>>,
    balancers: Vec<SocketAddr>,
}

impl AgentHandle {
    /// Graceful stop: GOAWAY on every connection, in-flight requests finish (within the drain
    /// grace), then the threads end. Returns at once; [`AgentHandle::join`] waits.
    pub fn drain(&self) {
        self.remote.drain();
    }

    /// Immediate stop: every connection closes, in-flight requests are cut.
    pub fn kill(&self) {
        self.remote.kill();
    }

    /// Waits for the runtime threads to end (after a drain or a kill).
    pub fn join(self) {
        for handle in self.threads {
            if handle.join().is_err() {
                tracing::error!("an agent thread panicked");
            }
        }
    }

    /// Tunnel connections currently accepted by a balancer (all threads).
    pub fn live_connections(&self) -> usize {
        self.remote.live_connections()
    }

    /// The resolved balancer addresses this agent connects to.
    pub fn balancers(&self) -> &[SocketAddr] {
        &self.balancers
    }

    /// How many times the balancer names were resolved again since the start (one per
    /// `resolve_interval`); always 0 when every balancer is a literal address.
    pub fn resolutions(&self) -> u64 {
        self.remote.control.resolutions.load(Ordering::Acquire)
    }

    /// A `Send` handle that can drain or kill the agent from another thread (signal handling).
    pub fn remote(&self) -> AgentRemote {
        self.remote.clone()
    }
}

/// Drain/kill from any thread.
#[derive(Debug, Clone)]
pub struct AgentRemote {
    control: Arc<Control>,
}

impl AgentRemote {
    /// See [`AgentHandle::drain`].
    pub fn drain(&self) {
        self.control.broadcast(&Command::Drain);
    }

    /// See [`AgentHandle::kill`].
    pub fn kill(&self) {
        self.control.broadcast(&Command::Kill);
    }

    /// See [`AgentHandle::live_connections`].
    pub fn live_connections(&self) -> usize {
        self.control.live.load(Ordering::Acquire)
    }
}

/// Messages between the agent's threads.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    /// A balancer runs `worker_count` workers; `taken` already has a connection.
    OpenSlots {
        addr: SocketAddr,
        worker_count: u16,
        taken: u16,
    },
    /// A balancer address appeared (first thread only): open a probe connection to it.
    AddBalancer(SocketAddr),
    Drain,
    Kill,
}

/// What the agent's threads share.
#[derive(Debug)]
pub(crate) struct Control {
    senders: Vec<flume::Sender<Command>>,
    pub(crate) live: AtomicUsize,
    worker_counts: Mutex<HashMap<SocketAddr, u16>>,
    /// Balancer addresses as last resolved.
    pub(crate) balancers: Mutex<HashSet<SocketAddr>>,
    /// Re-resolutions done by the resolver thread.
    pub(crate) resolutions: AtomicU64,
    /// Set by drain/kill: background helpers (the resolver) stop.
    pub(crate) stopping: AtomicBool,
}

impl Control {
    pub(crate) fn threads(&self) -> usize {
        self.senders.len()
    }

    /// Sends `command` to the first runtime thread.
    pub(crate) fn send_first(&self, command: Command) {
        if let Some(tx) = self.senders.first() {
            let _ = tx.send(command);
        }
    }

    /// Whether `addr` is still among the resolved balancer addresses.
    pub(crate) fn is_current(&self, addr: SocketAddr) -> bool {
        self.balancers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&addr)
    }

    /// Forgets a balancer's worker count (its address left DNS; if it returns, its count is
    /// news again).
    pub(crate) fn forget_worker_count(&self, addr: SocketAddr) {
        self.worker_counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&addr);
    }

    pub(crate) fn broadcast(&self, command: &Command) {
        if matches!(command, Command::Drain | Command::Kill) {
            self.stopping.store(true, Ordering::Release);
        }
        for tx in &self.senders {
            // A thread that already ended has nothing left to do with it.
            let _ = tx.send(command.clone());
        }
    }

    /// Records a balancer's worker count; true when it is news.
    pub(crate) fn learn_worker_count(&self, addr: SocketAddr, count: u16) -> bool {
        let mut counts = self
            .worker_counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.insert(addr, count) != Some(count)
    }
}
