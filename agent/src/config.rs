//! The agent's configuration as typed values with defaults (the CLI parses into this).

use std::path::PathBuf;
use std::time::Duration;

use ringway_core::tunnel;
use ringway_tuning::runtime::IoDriver;
use ringway_upstream::BackendAddr;

use crate::backoff::BackoffConfig;

/// Everything one agent needs to run. Build it with [`AgentConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Balancer agent-listener addresses as `HOST:PORT`; a name with several addresses yields one
    /// set of connections per address.
    pub balancers: Vec<String>,
    /// Shared secret presented in the hello.
    pub token: String,
    /// Routes served, as `host[/prefix]` (`example.com`, `example.com/api`, `*.example.com`).
    pub routes: Vec<String>,
    /// The local HTTP/1.1 backend: a TCP address or a unix socket path.
    pub backend: BackendAddr,
    /// Identity reported to the balancer (default `hostname-pid`).
    pub agent_id: String,
    /// Runtime threads; the balancer's workers are shared out among them.
    pub workers: usize,
    /// io_uring, epoll, or whichever works.
    pub io_driver: IoDriver,
    /// io_uring submission queue entries per runtime thread.
    pub ring_entries: u32,
    /// Idle keep-alive backend connections kept per runtime thread.
    pub pool_size: usize,
    /// Backend connections (in use or idle) per runtime thread; streams beyond wait for one.
    pub max_backend_conns: usize,
    /// How long an idle pooled backend connection may be reused.
    pub pool_idle_timeout: Duration,
    /// Connecting to the backend or to a balancer.
    pub connect_timeout: Duration,
    /// Time from the request head sent to the backend until its response head (then RESET
    /// BackendTimeout).
    pub response_timeout: Duration,
    /// How long a drain waits for in-flight streams before closing anyway.
    pub drain_grace: Duration,
    /// How often balancer names are resolved again (new addresses get connections).
    pub resolve_interval: Duration,
    /// Reconnect delays.
    pub backoff: BackoffConfig,
    /// Tunnel protocol settings (windows, frame size, heartbeat).
    pub tunnel: tunnel::Config,
    /// TLS to the balancer (the default) or plaintext.
    pub transport: Transport,
}

/// How the tunnel connections are carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// TLS, verifying the balancer's certificate.
    Tls(TlsSettings),
    /// Plaintext TCP (`--insecure-plaintext`): only where the network is trusted, against a
    /// balancer with `agents.insecure_plaintext`.
    InsecurePlaintext,
}

impl Default for Transport {
    fn default() -> Self {
        Self::Tls(TlsSettings::default())
    }
}

/// The agent's TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// CA certificates (PEM) that vouch for the balancer (`--ca-file`); `None`: the system's
    /// trust store.
    pub ca_file: Option<PathBuf>,
    /// The name the balancer's certificate is verified against (`--server-name`); `None`: the
    /// host of each `--balancer HOST:PORT`.
    pub server_name: Option<String>,
    /// The agent's client certificate chain (PEM, `--cert`), for a balancer that asks for one.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM, `--key`).
    pub key: Option<PathBuf>,
}

impl AgentConfig {
    /// A configuration with every default filled in.
    pub fn new(
        balancers: Vec<String>,
        token: String,
        routes: Vec<String>,
        backend: impl Into<BackendAddr>,
    ) -> Self {
        Self {
            balancers,
            token,
            routes,
            backend: backend.into(),
            agent_id: default_agent_id(),
            workers: 1,
            io_driver: IoDriver::default(),
            ring_entries: 1024,
            pool_size: 64,
            max_backend_conns: 1024,
            pool_idle_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(60),
            drain_grace: Duration::from_secs(10),
            resolve_interval: Duration::from_secs(10),
            backoff: BackoffConfig::default(),
            tunnel: tunnel::Config::default(),
            transport: Transport::default(),
        }
    }
}

/// `hostname-pid`, the default agent identity.
pub fn default_agent_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "agent".to_owned());
    format!("{host}-{}", std::process::id())
}
