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

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use ringway_tuning::runtime::{spawn_worker, WorkerSpec};

use crate::config::AgentConfig;
use crate::worker::Worker;

/// Entry point of the agent library.
#[derive(Debug)]
pub struct Agent;

impl Agent {
    /// Resolves the balancer addresses and starts `config.workers` runtime threads that connect to
    /// every balancer worker (retrying with backoff while a balancer is down).
    pub fn start(config: AgentConfig) -> io::Result<AgentHandle> {
        let addrs = resolve(&config.balancers)?;
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
    Drain,
    Kill,
}

/// What the agent's threads share.
#[derive(Debug)]
pub(crate) struct Control {
    senders: Vec<flume::Sender<Command>>,
    pub(crate) live: AtomicUsize,
    worker_counts: Mutex<HashMap<SocketAddr, u16>>,
}

impl Control {
    pub(crate) fn threads(&self) -> usize {
        self.senders.len()
    }

    pub(crate) fn broadcast(&self, command: &Command) {
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

/// Every address of every `HOST:PORT`, deduplicated, in order.
fn resolve(balancers: &[String]) -> io::Result<Vec<SocketAddr>> {
    let mut addrs = Vec::new();
    for name in balancers {
        let resolved = name
            .to_socket_addrs()
            .map_err(|e| io::Error::new(e.kind(), format!("resolving balancer {name}: {e}")))?;
        for addr in resolved {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
    }
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no balancer address",
        ));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_and_deduplicates() {
        let addrs = resolve(&[
            "127.0.0.1:7000".into(),
            "127.0.0.1:7000".into(),
            "localhost:7001".into(),
        ])
        .unwrap();
        assert_eq!(addrs[0], "127.0.0.1:7000".parse::<SocketAddr>().unwrap());
        assert!(addrs.len() >= 2);
        assert!(addrs.iter().all(|a| a.port() == 7000 || a.port() == 7001));
    }

    #[test]
    fn unresolvable_balancer_names_the_balancer() {
        let err = resolve(&["no-such-host.invalid:7000".into()]).unwrap_err();
        assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
    }
}
