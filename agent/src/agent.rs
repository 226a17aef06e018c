//! The agent as a library: start it on its own runtime threads, then drain, kill or join it.
//!
//! ```no_run
//! use ringway_agent::{Agent, AgentConfig};
//! let config = AgentConfig::new(
//!     vec!["127.0.0.1:7000".into()],
//!     "token".into(),
//!     vec!["example.com".into()],
//!     "127.0.0.1:8080".parse::<std::net::SocketAddr>().unwrap(),
//! );
//! let agent = Agent::start(config).unwrap();
//! agent.drain();
//! agent.join();
//! ```

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringway_io::runtime::{spawn_worker, WorkerSpec};

use crate::config::{AgentConfig, Transport};
use crate::control::{Command, Control};
use crate::tls::ClientTls;
use crate::worker::Worker;
use crate::{drain, resolve, session};

/// How long a killed thread waits for its tunnel connections' drivers to end.
const KILL_WAIT: Duration = Duration::from_millis(200);

/// Entry point of the agent library.
#[derive(Debug)]
pub struct Agent;

impl Agent {
    /// Resolves the balancer addresses and starts `config.workers` runtime threads that connect to
    /// every balancer worker (retrying with backoff while a balancer is down).
    pub fn start(config: AgentConfig) -> io::Result<AgentHandle> {
        resolve::check_names(&config.balancers)?;
        let tls = match &config.transport {
            Transport::Tls(settings) => Some(Arc::new(ClientTls::new(settings)?)),
            Transport::InsecurePlaintext => {
                tracing::warn!(
                    "--insecure-plaintext: the tunnel to the balancer is not encrypted; the \
                     token and every request cross the network in the clear"
                );
                None
            }
        };
        let named = resolve::resolve_hosts(&config.balancers);
        let addrs: Vec<SocketAddr> = named.iter().map(|(addr, _)| *addr).collect();
        let threads = config.workers.max(1);
        let mut senders = Vec::with_capacity(threads);
        let mut receivers = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (tx, rx) = flume::unbounded();
            senders.push(tx);
            receivers.push(rx);
        }
        let control = Arc::new(Control::new(senders, &named, tls));
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
                run_thread(Worker::new(index, config, shared), rx, addrs).await;
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

/// One runtime thread's main task: starts the first slots, then obeys the control channel until
/// a drain completes or a kill arrives.
async fn run_thread(
    worker: Rc<Worker>,
    commands: flume::Receiver<Command>,
    addrs: Vec<SocketAddr>,
) {
    if worker.index == 0 {
        for addr in addrs {
            session::open_probe(&worker, addr);
        }
    }
    loop {
        match commands.recv_async().await {
            Ok(Command::OpenSlots {
                addr,
                worker_count,
                taken,
            }) => session::open_slots(&worker, addr, worker_count, taken),
            Ok(Command::AddBalancer(addr)) => session::open_probe(&worker, addr),
            Ok(Command::Drain) => break,
            Ok(Command::Kill) | Err(_) => return kill(&worker).await,
        }
    }
    // Draining: a kill may still cut it short.
    let drain = drain::drain(&worker);
    let mut drain = std::pin::pin!(drain);
    loop {
        ringway_io::select! {
            () = &mut drain => return,
            cmd = commands.recv_async() => {
                if matches!(cmd, Ok(Command::Kill) | Err(_)) {
                    return kill(&worker).await;
                }
            }
        }
    }
}

/// Kills the thread's tunnel connections and waits, briefly, until their drivers have ended:
/// tasks still parked when the thread's runtime goes away are never dropped, and neither would
/// their sockets be.
async fn kill(worker: &Worker) {
    worker.kill();
    let deadline = Instant::now() + KILL_WAIT;
    while !worker.live_tunnels().is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!(
                thread = worker.index,
                "tunnel connections still closing after a kill"
            );
            return;
        }
        let _ = ringway_io::time::timeout(left, worker.progress()).await;
    }
}
