//! What the agent's runtime threads share, and the commands they send each other: drain/kill,
//! the news that a balancer runs a given number of workers, new balancer addresses from
//! re-resolution. Nothing on the request path goes through here.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::tls::ClientTls;

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
    /// TLS to the balancers (`None`: `--insecure-plaintext`).
    pub(crate) tls: Option<Arc<ClientTls>>,
    /// The host each balancer address was resolved from (its certificate's name).
    hosts: Mutex<HashMap<SocketAddr, String>>,
}

impl Control {
    /// The shared state of threads reached through `senders` (one per thread, in order),
    /// connecting to `balancers`.
    pub(crate) fn new(
        senders: Vec<flume::Sender<Command>>,
        balancers: &[(SocketAddr, String)],
        tls: Option<Arc<ClientTls>>,
    ) -> Self {
        Self {
            senders,
            live: AtomicUsize::new(0),
            worker_counts: Mutex::new(HashMap::new()),
            balancers: Mutex::new(balancers.iter().map(|(a, _)| *a).collect()),
            resolutions: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            tls,
            hosts: Mutex::new(balancers.iter().cloned().collect()),
        }
    }

    /// Records the host names of freshly resolved addresses (the first name of each stays).
    pub(crate) fn learn_hosts(&self, named: &[(SocketAddr, String)]) {
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (addr, host) in named {
            hosts.entry(*addr).or_insert_with(|| host.clone());
        }
    }

    /// The host balancer `addr` was resolved from (its IP address if none is known).
    pub(crate) fn host_of(&self, addr: SocketAddr) -> String {
        self.hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&addr)
            .cloned()
            .unwrap_or_else(|| addr.ip().to_string())
    }

    /// How many runtime threads the agent runs.
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
