//! ringway-balancer as a library: workers, listeners, agent registry and the request path.
//!
//! [`Balancer::start`] binds the user and agent listeners (one SO_REUSEPORT socket per worker on
//! each port) and starts one pinned worker thread per core; each runs its own monoio runtime and
//! serves its users and its agent connections without sharing anything mutable with the others
//! (only the known-route snapshot, swapped atomically). See ARCHITECTURE.md for the request flow.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;

mod agent_accept;
mod agent_conn;
mod answer;
mod client;
mod deadlines;
mod duplex;
mod handoff;
mod listener;
mod peer_log;
mod proxy;
mod registry;
mod signal;
mod timeouts;
mod tunnel_stream;
mod user_conn;
mod user_io;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use ringway_io::runtime::{spawn_worker, WorkerSpec};
use ringway_tuning::cpu::PinPlan;
use ringway_tuning::socket::listener_group;

pub use config::Config;

use crate::registry::Registry;
use crate::worker::WorkerSetup;

/// A running balancer.
pub struct Balancer {
    user_addr: SocketAddr,
    agent_addr: SocketAddr,
    workers: Vec<JoinHandle<()>>,
}

impl Balancer {
    /// Binds the listeners and starts the workers.
    pub fn start(config: Config) -> io::Result<Self> {
        let count = config
            .runtime
            .workers
            .unwrap_or_else(|| ringway_tuning::cpu::allowed_cpus().len())
            .max(1);
        let count16 = u16::try_from(count)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many workers"))?;
        let registry =
            Registry::new(&config).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let registry = Arc::new(registry);
        let users = listener_group(config.listen.users, config.listen.backlog, count)?;
        let agents = listener_group(config.listen.agents, config.listen.backlog, count)?;
        let user_addr = users[0].local_addr()?;
        let agent_addr = agents[0].local_addr()?;
        let plan = PinPlan::for_host(count);
        let (handoff_tx, handoff_rxs) = handoff::channels(count);
        let config = Arc::new(config);
        let mut workers = Vec::with_capacity(count);
        for (index, ((users, agents), handoff_rx)) in
            users.into_iter().zip(agents).zip(handoff_rxs).enumerate()
        {
            let spec = WorkerSpec {
                name: format!("ringway-w{index}"),
                cpu: if config.runtime.pin {
                    plan.worker_cpu(index)
                } else {
                    None
                },
                driver: config.runtime.io_driver,
                ring_entries: config.runtime.ring_entries,
            };
            let setup = WorkerSetup {
                index: u16::try_from(index).unwrap_or(u16::MAX),
                count: count16,
                config: config.clone(),
                registry: registry.clone(),
                users,
                agents,
                handoff_tx: handoff_tx.clone(),
                handoff_rx,
            };
            workers.push(spawn_worker(spec, move |driver| {
                listener::run(setup, driver)
            })?);
        }
        Ok(Self {
            user_addr,
            agent_addr,
            workers,
        })
    }

    /// Where users connect.
    pub fn user_addr(&self) -> SocketAddr {
        self.user_addr
    }

    /// Where agents connect.
    pub fn agent_addr(&self) -> SocketAddr {
        self.agent_addr
    }

    /// Number of worker threads.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Waits for every worker to end (they run until the process exits).
    pub fn join(self) {
        for w in self.workers {
            let _ = w.join();
        }
    }
}
