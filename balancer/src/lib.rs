//! ringway-balancer as a library: workers, listeners, agent registry and the request path.
//!
//! [`Balancer::start`] binds the user and agent listeners (one SO_REUSEPORT socket per worker on
//! each port) and starts one pinned worker thread per core; each runs its own monoio runtime and
//! serves its users and its agent connections without sharing anything mutable with the others
//! (only the known-route snapshot, swapped atomically). See ARCHITECTURE.md for the request flow.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod reload;
pub mod token_cmd;

mod access_log;
mod acme;
mod admin;
mod agent_accept;
mod agent_conn;
mod agent_tls;
mod answer;
mod attempt_stream;
mod auth;
mod backends;
mod client;
mod client_addr;
mod control;
mod deadlines;
mod drain;
mod duplex;
mod early;
mod handoff;
mod limits;
mod listener;
mod peer_log;
mod pick_scratch;
mod proxy;
mod proxy_header;
mod registry;
mod signal;
mod stats;
mod timeouts;
mod tls;
mod tunnel_stream;
mod user_conn;
mod user_io;
mod user_stream;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use ringway_io::runtime::{spawn_worker, WorkerSpec};
use ringway_tuning::cpu::PinPlan;
use ringway_tuning::socket::listener_group;

pub use config::Config;
pub use reload::{ConfigSource, ReloadError, ReloadReport};
pub use tls::TlsError;

use crate::registry::Registry;
use crate::reload::Reloader;
use crate::worker::WorkerSetup;

/// A running balancer.
pub struct Balancer {
    user_addr: SocketAddr,
    agent_addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    workers: Vec<JoinHandle<()>>,
    shutdown: Shutdown,
    reloader: Arc<Reloader>,
}

/// Reloads the running balancer from any thread (the signal thread on SIGHUP, a test).
#[derive(Clone)]
pub struct Reload(Arc<Reloader>);

impl Reload {
    /// Reads the configuration again and applies it (see `reload`); on an error nothing
    /// changed.
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        self.0.reload()
    }
}

/// Starts the balancer's graceful shutdown from any thread (a signal handler's, a test's).
#[derive(Clone)]
pub struct Shutdown {
    workers: Vec<control::CommandTx>,
    /// Also read by every worker on its deadline tick.
    flag: Arc<std::sync::atomic::AtomicBool>,
}

impl Shutdown {
    /// Every worker stops accepting, closes its listeners and idle connections, finishes the
    /// requests in flight (within `timeouts.shutdown_grace`), sends GOAWAY to its agents and
    /// ends; [`Balancer::join`] then returns.
    pub fn start(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in &self.workers {
            let _ = w.send(control::Command::Drain);
        }
    }
}

impl Balancer {
    /// Binds the listeners and starts the workers; a reload applies `config` again (nothing
    /// changes).
    pub fn start(config: Config) -> io::Result<Self> {
        Self::start_reloadable(config.clone(), ConfigSource::fixed(config))
    }

    /// Binds the listeners and starts the workers; a reload reads `source` again.
    pub fn start_reloadable(config: Config, source: ConfigSource) -> io::Result<Self> {
        for deprecated in config.deprecations() {
            tracing::warn!("{deprecated}");
        }
        let count = config
            .runtime
            .workers
            .unwrap_or_else(|| ringway_tuning::cpu::allowed_cpus().len())
            .max(1);
        let count16 = u16::try_from(count)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many workers"))?;
        config.check_agent_listener().map_err(|(key, reason)| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{key}: {reason}"))
        })?;
        let agent_tls = agent_tls::AgentTls::new(&config.agents.tls)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?
            .map(Arc::new);
        if agent_tls.is_none() {
            tracing::warn!(
                listen = %config.listen.agents,
                "agents.insecure_plaintext: the agent tunnel is not encrypted; tokens and \
                 requests cross the network in the clear"
            );
        }
        let registry =
            Registry::new(&config).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let registry = Arc::new(registry);
        let book = backends::BackendBook::new(&config, &registry);
        backends::monitor::resolve_all(&book);
        let backends: backends::SharedBook = Arc::new(arc_swap::ArcSwap::from_pointee(book));
        let users = listener_group(config.listen.users, config.listen.backlog, count)?;
        let agents = listener_group(config.listen.agents, config.listen.backlog, count)?;
        let (https, tls) = match config.listen.https {
            Some(addr) => {
                let tls = tls::Tls::new(&config.tls)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
                let group = listener_group(addr, config.listen.backlog, count).map_err(|e| {
                    io::Error::new(e.kind(), format!("[listen] https = {addr}: {e}"))
                })?;
                (group, Some(Arc::new(tls)))
            }
            None => (Vec::new(), None),
        };
        let https_addr = https
            .first()
            .map(std::net::TcpListener::local_addr)
            .transpose()?;
        let mut https = https.into_iter();
        let user_addr = users[0].local_addr()?;
        let agent_addr = agents[0].local_addr()?;
        let plan = PinPlan::for_host(count);
        let admin_listener = match config.listen.admin {
            Some(addr) => Some(std::net::TcpListener::bind(addr).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("admin listener [listen] admin = {addr}: {e}"),
                )
            })?),
            None => None,
        };
        let admin_addr = admin_listener
            .as_ref()
            .map(std::net::TcpListener::local_addr)
            .transpose()?;
        let (command_txs, command_rxs) = control::channels(count);
        let shutdown_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (handoff_tx, handoff_rxs) = handoff::channels(count);
        let clients =
            limits::ClientTable::new(config.limits.max_connections_per_client, count).map(Arc::new);
        let early = early::EarlySetup {
            challenges: config
                .tls
                .acme
                .is_some()
                .then(|| Arc::new(acme::Challenges::default())),
            https_port: https_addr.map(|a| a.port()),
        };
        let config = Arc::new(config);
        let mut workers = Vec::with_capacity(count);
        for (index, (((users, agents), handoff_rx), commands)) in users
            .into_iter()
            .zip(agents)
            .zip(handoff_rxs)
            .zip(command_rxs)
            .enumerate()
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
                https: https.next().zip(tls.as_ref().map(|t| t.server_config())),
                handoff_tx: handoff_tx.clone(),
                handoff_rx,
                commands,
                shutdown: shutdown_flag.clone(),
                clients: clients.clone(),
                access: access_log::AccessLog::open(&config.log)?,
                backends: backends.load_full(),
                agent_tls: agent_tls.clone(),
                early: early.clone(),
            };
            workers.push(spawn_worker(spec, move |driver| {
                listener::run(setup, driver)
            })?);
        }
        backends::monitor::start(&backends, &config.backends, config.runtime.io_driver)?;
        if let (Some(tls), Some(challenges)) = (&tls, early.challenges) {
            acme::start(
                &config.tls,
                tls.resolver(),
                challenges,
                shutdown_flag.clone(),
            )?;
        }
        let start_admin: reload::StartAdmin = {
            let (workers, registry) = (command_txs.clone(), registry.clone());
            let backends = backends.clone();
            Box::new(move |listener, reloader| {
                admin::start(
                    listener,
                    workers.clone(),
                    registry.clone(),
                    backends.clone(),
                    reloader,
                )
            })
        };
        let reloader = Arc::new(Reloader::new(
            source,
            config,
            command_txs.clone(),
            (registry, backends),
            (tls, agent_tls),
            start_admin,
        ));
        if let Some(listener) = admin_listener {
            reloader.start_admin(listener)?;
        }
        Ok(Self {
            reloader,
            user_addr,
            agent_addr,
            https_addr,
            admin_addr,
            workers,
            shutdown: Shutdown {
                workers: command_txs,
                flag: shutdown_flag,
            },
        })
    }

    /// Where users connect (at the start: a reload may move it).
    pub fn user_addr(&self) -> SocketAddr {
        self.user_addr
    }

    /// Where HTTPS users connect (`[listen] https`), if anywhere.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// Where agents connect (at the start: a reload may move it).
    pub fn agent_addr(&self) -> SocketAddr {
        self.agent_addr
    }

    /// A handle that starts the graceful shutdown.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// A handle that reloads the configuration.
    pub fn reload_handle(&self) -> Reload {
        Reload(self.reloader.clone())
    }

    /// Where the admin listener is (`None`: turned off), at the start: a reload may move it.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Number of worker threads.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Waits for every worker to end (they run until a shutdown drained them).
    pub fn join(self) {
        for w in self.workers {
            let _ = w.join();
        }
    }
}
