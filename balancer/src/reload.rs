//! Hot reload (SIGHUP, `POST /reload` on the admin listener): the config file is read again,
//! the command-line flags are applied on top as at the start, and the result replaces the
//! running configuration without a restart and without touching a request in flight.
//!
//! 1. **Load and validate**: read and parse the file, apply the flags ([`ConfigSource`]); keys
//!    that need a restart (`runtime.*`) keep their running values and are named in a warning.
//! 2. **Prepare**: bind every listener whose address (or backlog) changed — a new SO_REUSEPORT
//!    group of one socket per worker for `listen.users` / `listen.agents`, a new socket for
//!    `listen.admin` — and open the access log when `[log]` changed it. Any failure here ends
//!    the reload with nothing changed.
//! 3. **Apply**: the registry follows the new routes and tokens, then every worker gets the
//!    config and its new sockets over its command channel (`control::Command::Reload`) and
//!    swaps them in between requests (`Worker::apply_config`, `listener::replace_listeners`);
//!    the admin listener moves last.
//!
//! Reloads are serialised (one lock); each that succeeds bumps the config generation.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringway_tuning::socket::listener_group;
use serde::Serialize;
use tracing::{error, info, warn};

use crate::access_log::AccessLog;
use crate::agent_tls::AgentTls;
use crate::backends::{monitor, BackendBook, SharedBook};
use crate::config::{Config, ConfigError};
use crate::control::{Command, CommandTx, WorkerReload};
use crate::registry::Registry;
use crate::tls::{Tls, TlsError};

/// How long a reload waits for each worker to apply it.
const WORKER_WAIT: Duration = Duration::from_secs(5);

/// Where a reload gets its configuration: the `--config` file (read again each time) with the
/// command-line flags applied on top, exactly as at the start.
pub struct ConfigSource {
    path: Option<PathBuf>,
    load: Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>,
}

impl ConfigSource {
    /// `load` builds the configuration (file, then flags); `path` is the file it reads, if any.
    pub fn new(
        path: Option<PathBuf>,
        load: impl Fn() -> Result<Config, ConfigError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            path,
            load: Box::new(load),
        }
    }

    /// A source with no file: a reload applies `config` again (nothing changes).
    pub fn fixed(config: Config) -> Self {
        Self::new(None, move || Ok(config.clone()))
    }
}

/// What a successful reload did, as the log line and `POST /reload` report it.
#[derive(Debug, Default, Serialize)]
pub struct ReloadReport {
    /// The config generation now (1 at the start, one more per successful reload).
    pub generation: u64,
    /// The file read, if any.
    pub file: Option<String>,
    /// Config routes added.
    pub routes_added: Vec<String>,
    /// Config routes removed (they stay served while agents hold them, then linger).
    pub routes_removed: Vec<String>,
    /// The user listener's new address, when it moved.
    pub users_rebound: Option<SocketAddr>,
    /// The agent listener's new address, when it moved.
    pub agents_rebound: Option<SocketAddr>,
    /// The admin listener's new address (or `off`), when it moved.
    pub admin_rebound: Option<String>,
    /// Agent connections sent away because their token is no longer good for their routes.
    pub agents_sent_away: usize,
    /// Keys whose change needs a restart: they keep their running values.
    pub restart_needed: Vec<String>,
    /// Anything else worth knowing (no file, a worker that did not answer).
    pub notes: Vec<String>,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file could not be read or is invalid (the message says where and why).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A new listener could not be bound.
    #[error("[listen] {key} = {addr}: binding the new listener failed: {source}")]
    Bind {
        /// `users`, `agents` or `admin`.
        key: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
    /// The agent listener would be exposed (see `Config::check_agent_listener`).
    #[error("{key}: {reason}")]
    Unsafe {
        /// The key to set.
        key: String,
        /// Why, and how to fix it.
        reason: String,
    },
    /// A certificate or key of `[tls]` or `[agents.tls]` could not be read or does not fit.
    #[error("{0}")]
    Tls(#[from] TlsError),
    /// The access log could not be opened.
    #[error("[log] access = {path:?}: {source}")]
    AccessLog {
        /// The setting.
        path: String,
        /// The open error.
        source: std::io::Error,
    },
}

/// The reload counters `/metrics` shows.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ReloadCounts {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    /// Unix time of the last successful reload (or of the start), in seconds.
    pub(crate) last_success: f64,
    pub(crate) generation: u64,
}

/// A running admin listener on its thread, as a reload sees it: [`AdminListener::stop`] ends it.
pub(crate) struct AdminListener {
    /// A second descriptor of the socket, to shut it down from another thread.
    pub(crate) control: TcpListener,
    /// Read by the admin thread after every accept.
    pub(crate) stop: Arc<AtomicBool>,
}

impl AdminListener {
    /// Ends the admin thread: the socket is shut down, its blocked accept returns, and the
    /// thread ends after the connection it may be serving (the `/reload` that moved it).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Err(e) = ringway_tuning::socket::shut_down_listener(&self.control) {
            warn!(error = %e, "shutting the old admin listener down failed");
        }
    }
}

/// Starts the admin listener on a socket (`admin::start`, given by `Balancer::start`).
pub(crate) type StartAdmin =
    Box<dyn Fn(TcpListener, Arc<Reloader>) -> std::io::Result<AdminListener> + Send + Sync>;

/// Reloads the running balancer; shared by the signal thread and the admin thread.
pub(crate) struct Reloader {
    source: ConfigSource,
    start_admin: StartAdmin,
    workers: Vec<CommandTx>,
    registry: Arc<Registry>,
    /// The static backends, rebuilt on every reload.
    backends: SharedBook,
    /// The HTTPS listener's certificates, re-read on every reload (`None`: no HTTPS listener).
    tls: Option<Arc<Tls>>,
    /// The agent listener's certificates, re-read on every reload (`None`: plaintext).
    agent_tls: Option<Arc<AgentTls>>,
    running: Mutex<Running>,
    ok: AtomicU64,
    failed: AtomicU64,
    last_success_ms: AtomicU64,
    generation: AtomicU64,
}

/// What a reload compares against and replaces.
struct Running {
    config: Arc<Config>,
    admin: Option<AdminListener>,
}

impl Reloader {
    pub(crate) fn new(
        source: ConfigSource,
        config: Arc<Config>,
        workers: Vec<CommandTx>,
        (registry, backends): (Arc<Registry>, SharedBook),
        (tls, agent_tls): (Option<Arc<Tls>>, Option<Arc<AgentTls>>),
        start_admin: StartAdmin,
    ) -> Self {
        Self {
            source,
            tls,
            agent_tls,
            start_admin,
            workers,
            registry,
            backends,
            running: Mutex::new(Running {
                config,
                admin: None,
            }),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_success_ms: AtomicU64::new(unix_ms()),
            generation: AtomicU64::new(1),
        }
    }

    /// Starts the admin listener on `listener` (at the start; a reload moves it).
    pub(crate) fn start_admin(self: &Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        let admin = (self.start_admin)(listener, self.clone())?;
        self.lock().admin = Some(admin);
        Ok(())
    }

    /// The counters for `/metrics`.
    pub(crate) fn counts(&self) -> ReloadCounts {
        ReloadCounts {
            ok: self.ok.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            last_success: self.last_success_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            generation: self.generation.load(Ordering::Relaxed),
        }
    }

    /// Reloads: loads, validates and binds everything first, then applies it on every worker.
    /// On an error nothing changed; the error is logged and counted.
    pub(crate) fn reload(self: &Arc<Self>) -> Result<ReloadReport, ReloadError> {
        let mut running = self.lock();
        match self.reload_locked(&mut running) {
            Ok(report) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.last_success_ms.store(unix_ms(), Ordering::Relaxed);
                info!(
                    generation = report.generation,
                    routes_added = ?report.routes_added,
                    routes_removed = ?report.routes_removed,
                    users = ?report.users_rebound,
                    agents = ?report.agents_rebound,
                    admin = ?report.admin_rebound,
                    agents_sent_away = report.agents_sent_away,
                    "configuration reloaded"
                );
                for key in &report.restart_needed {
                    warn!(key = %key, "reload: this key needs a restart; its running value is kept");
                }
                for note in &report.notes {
                    warn!("reload: {note}");
                }
                Ok(report)
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                error!(error = %e, "reload failed; the running configuration is unchanged");
                Err(e)
            }
        }
    }

    fn reload_locked(self: &Arc<Self>, running: &mut Running) -> Result<ReloadReport, ReloadError> {
        // 1. Load and validate.
        let mut next = (self.source.load)()?;
        for deprecated in next.deprecations() {
            warn!("reload: {deprecated}");
        }
        let old = running.config.clone();
        let mut report = ReloadReport {
            file: self.source.path.as_ref().map(|p| p.display().to_string()),
            ..ReloadReport::default()
        };
        if report.file.is_none() {
            report.notes.push(
                "no --config file: the defaults and the command line were applied again; \
                 nothing changes"
                    .to_owned(),
            );
        }
        report.restart_needed = restart_keys(&old, &next);
        next.runtime = old.runtime.clone();
        next.listen.https = old.listen.https;
        next.tls.session_tickets = old.tls.session_tickets;
        next.tls.session_cache = old.tls.session_cache;
        // TLS or plaintext on the agent listener is chosen at the start.
        if next.agents.insecure_plaintext != old.agents.insecure_plaintext
            || next.agents.tls.is_on() != old.agents.tls.is_on()
        {
            report.restart_needed.push(
                "agents.insecure_plaintext / agents.tls (plaintext or TLS on the agent listener)"
                    .to_owned(),
            );
            next.agents.insecure_plaintext = old.agents.insecure_plaintext;
            next.agents.tls = old.agents.tls.clone();
        }
        next.check_agent_listener()
            .map_err(|(key, reason)| ReloadError::Unsafe { key, reason })?;

        // 2. Prepare: bind what moved, open what changed. Nothing is applied yet.
        let count = self.workers.len();
        let backlog_changed = old.listen.backlog != next.listen.backlog;
        // What can fail for reasons of its own (a port in use, a directory missing) first; the
        // listener groups last, since a group bound on a port already served (a backlog
        // change) and then dropped would reset what its queue took meanwhile.
        // The certificates first: a file that cannot be read fails the reload, naming it.
        let certs = match &self.tls {
            Some(_) => Some(Tls::prepare(&next.tls)?),
            None => None,
        };
        let agent_certs = match &self.agent_tls {
            Some(_) => Some(AgentTls::prepare(&next.agents.tls)?),
            None => None,
        };
        let mut admin = None;
        if old.listen.admin != next.listen.admin {
            let bound = match next.listen.admin {
                Some(addr) => {
                    Some(TcpListener::bind(addr).map_err(|source| ReloadError::Bind {
                        key: "admin",
                        addr,
                        source,
                    })?)
                }
                None => None,
            };
            report.admin_rebound = Some(match &bound {
                Some(l) => l
                    .local_addr()
                    .map_or_else(|_| "?".to_owned(), |a| a.to_string()),
                None => "off".to_owned(),
            });
            admin = Some(bound);
        }
        let log_changed =
            old.log.access != next.log.access || old.log.access_format != next.log.access_format;
        let mut access = Vec::new();
        if log_changed {
            for _ in 0..count {
                let log = AccessLog::open(&next.log).map_err(|source| ReloadError::AccessLog {
                    path: next.log.access.clone(),
                    source,
                })?;
                access.push(log);
            }
        }

        let rebind = |key: &'static str, was: SocketAddr, addr: SocketAddr| {
            if was == addr && !backlog_changed {
                return Ok(None);
            }
            listener_group(addr, next.listen.backlog, count)
                .map(Some)
                .map_err(|source| ReloadError::Bind { key, addr, source })
        };
        let agents = rebind("agents", old.listen.agents, next.listen.agents)?;
        report.agents_rebound = bound_addr(agents.as_deref());
        let users = rebind("users", old.listen.users, next.listen.users)?;
        report.users_rebound = bound_addr(users.as_deref());
        // 3. Apply: the registry first (the workers check their agents' tokens against it),
        // then every worker, then the admin listener.
        let next = Arc::new(next);
        let changes = self.registry.reload(&next);
        report.routes_added = changes.added;
        report.routes_removed = changes.removed;
        // The static backends: entries that stayed keep their addresses and health state (and
        // so every worker's pools to them); new names are resolved now.
        let book = BackendBook::rebuild(&self.backends.load(), &next, &self.registry);
        monitor::resolve_new(&book);
        let book = Arc::new(book);
        self.backends.store(book.clone());
        if let (Some(tls), Some(certs)) = (&self.tls, certs) {
            tls.apply(certs);
        }
        if let (Some(tls), Some(server)) = (&self.agent_tls, agent_certs) {
            tls.apply(server, &next.agents.tls);
        }
        let mut users = users.map(Vec::into_iter);
        let mut agents = agents.map(Vec::into_iter);
        let mut access = access.into_iter();
        let (done_tx, done_rx) = flume::bounded(count);
        let mut asked = 0;
        for (index, worker) in self.workers.iter().enumerate() {
            let command = Command::Reload(Box::new(WorkerReload {
                config: next.clone(),
                users: users.as_mut().and_then(Iterator::next),
                agents: agents.as_mut().and_then(Iterator::next),
                access: log_changed.then(|| access.next().flatten()),
                backends: book.clone(),
                done: done_tx.clone(),
            }));
            match worker.send_timeout(command, WORKER_WAIT) {
                Ok(()) => asked += 1,
                Err(_) => report
                    .notes
                    .push(format!("worker {index} did not take the reload")),
            }
        }
        drop(done_tx);
        for _ in 0..asked {
            match done_rx.recv_timeout(WORKER_WAIT) {
                Ok(done) => report.agents_sent_away += done.agents_sent_away,
                Err(_) => {
                    report
                        .notes
                        .push("a worker did not confirm the reload in time".to_owned());
                    break;
                }
            }
        }
        if let Some(bound) = admin {
            if let Some(old_admin) = running.admin.take() {
                old_admin.stop();
            }
            if let Some(listener) = bound {
                match (self.start_admin)(listener, self.clone()) {
                    Ok(admin) => running.admin = Some(admin),
                    Err(e) => report
                        .notes
                        .push(format!("the new admin listener did not start: {e}")),
                }
            }
        }
        running.config = next;
        report.generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(report)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The `runtime.*` keys that differ between `old` and `new`, each with both values: they take
/// a restart (the worker threads and their rings exist once).
fn restart_keys(old: &Config, new: &Config) -> Vec<String> {
    let (a, b) = (&old.runtime, &new.runtime);
    let mut keys = Vec::new();
    let show = |w: Option<usize>| w.map_or_else(|| "one per CPU".to_owned(), |w| w.to_string());
    if a.workers != b.workers {
        keys.push(format!(
            "runtime.workers (running: {}, file: {})",
            show(a.workers),
            show(b.workers)
        ));
    }
    if a.io_driver != b.io_driver {
        keys.push(format!(
            "runtime.io_driver (running: {}, file: {})",
            a.io_driver, b.io_driver
        ));
    }
    if a.ring_entries != b.ring_entries {
        keys.push(format!(
            "runtime.ring_entries (running: {}, file: {})",
            a.ring_entries, b.ring_entries
        ));
    }
    // The HTTPS listener and the resumption state are set up once (the certificates reload).
    if old.listen.https != new.listen.https {
        let show = |a: Option<SocketAddr>| a.map_or_else(|| "off".to_owned(), |a| a.to_string());
        keys.push(format!(
            "listen.https (running: {}, file: {})",
            show(old.listen.https),
            show(new.listen.https)
        ));
    }
    if (old.tls.session_tickets, old.tls.session_cache)
        != (new.tls.session_tickets, new.tls.session_cache)
    {
        keys.push("tls.session_tickets, tls.session_cache".to_owned());
    }
    // The ACME thread is started once, with the entries it manages.
    let acme_entries = |c: &Config| -> Vec<Vec<String>> {
        c.tls
            .certs
            .iter()
            .filter(|e| e.acme)
            .map(|e| e.hosts.clone())
            .collect()
    };
    if old.tls.acme != new.tls.acme || acme_entries(old) != acme_entries(new) {
        keys.push("tls.acme, tls.cert[] with acme = true".to_owned());
    }
    // The per-client table exists only while the limit is on (it is process-wide).
    let (was, is) = (
        old.limits.max_connections_per_client,
        new.limits.max_connections_per_client,
    );
    if (was == 0) != (is == 0) {
        keys.push(format!(
            "limits.max_connections_per_client turned {} (running: {was}, file: {is})",
            if is == 0 { "off" } else { "on" }
        ));
    }
    if a.pin != b.pin {
        keys.push(format!("runtime.pin (running: {}, file: {})", a.pin, b.pin));
    }
    keys
}

/// The address a freshly bound listener group listens on.
fn bound_addr(group: Option<&[TcpListener]>) -> Option<SocketAddr> {
    group?.first()?.local_addr().ok()
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_changes_are_named_as_needing_a_restart() {
        let old = Config::parse("[runtime]\nworkers = 2\n").unwrap();
        let new = Config::parse("[runtime]\nworkers = 4\npin = false\n").unwrap();
        let keys = restart_keys(&old, &new);
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(keys[0].starts_with("runtime.workers"), "{keys:?}");
        assert!(keys[0].contains("running: 2") && keys[0].contains("file: 4"));
        assert!(keys[1].starts_with("runtime.pin"), "{keys:?}");
        assert!(restart_keys(&old, &old).is_empty());
        let route = |addr: &str, limit: u32| {
            Config::parse(&format!(
                "[[route]]\npattern = \"s.test\"\nbackends = [\"{addr}\"]\nmax_concurrent = {limit}\n"
            ))
            .unwrap()
        };
        // Static backends and the routes' limits are swapped by a reload.
        assert!(restart_keys(&route("127.0.0.1:9", 1), &route("127.0.0.1:10", 1)).is_empty());
        assert!(restart_keys(&route("127.0.0.1:9", 1), &route("127.0.0.1:9", 2)).is_empty());
        let clients = |n: u32| {
            Config::parse(&format!("[limits]\nmax_connections_per_client = {n}\n")).unwrap()
        };
        assert!(restart_keys(&clients(2), &clients(5)).is_empty());
        let keys = restart_keys(&clients(0), &clients(5));
        assert!(
            keys[0].starts_with("limits.max_connections_per_client turned on"),
            "{keys:?}"
        );
    }

    #[test]
    fn acme_changes_are_named_as_needing_a_restart() {
        let acme = |hosts: &str, renew: &str| {
            Config::parse(&format!(
                "[listen]\nhttps = \"127.0.0.1:8443\"\n[tls.acme]\ndirectory = \"https://a.test/d\"\n\
                 accept_terms = true\nrenew_before = \"{renew}\"\n[[tls.cert]]\nhosts = [{hosts}]\nacme = true\n"
            ))
            .unwrap()
        };
        let old = acme("\"a.test\"", "30d");
        assert!(restart_keys(&old, &old).is_empty());
        for new in [
            acme("\"a.test\", \"b.test\"", "30d"),
            acme("\"a.test\"", "20d"),
        ] {
            let keys = restart_keys(&old, &new);
            assert!(keys.iter().any(|k| k.starts_with("tls.acme")), "{keys:?}");
        }
    }
}
