//! Command-line flags. Every flag overrides the matching key of the config file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use ringway_tuning::runtime::IoDriver;

use crate::config::{self, Config, ConfigError, RouteConfig, RouteSpec};

/// ringway-balancer: the inverted HTTP/1.1 load balancer.
#[derive(Debug, Parser)]
#[command(name = "ringway-balancer", version, about)]
pub struct Cli {
    /// A tool instead of the balancer (without one, the balancer runs).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// TOML configuration file (every key optional; see docs/CONFIG.md).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Load and validate the configuration, print it, and exit.
    #[arg(long)]
    pub check: bool,
    /// Listeners and runtime.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Deprecated plaintext token any agent may present (`[agents] token`); prefer
    /// `[[agents.tokens]]` (`ringway-balancer token new`).
    #[arg(long, env = "RINGWAY_TOKEN")]
    pub token: Option<String>,
    /// A known route `host[/prefix]` (repeatable; adds `[[route]]` entries).
    #[arg(long = "route", value_name = "PATTERN")]
    pub routes: Vec<String>,
    /// A route served by static backends, `PATTERN=ADDR[,ADDR…]` (classic mode; repeatable;
    /// a `[[route]]` with `backends`). An ADDR is `IP:PORT`, `unix:/path` or `NAME:PORT`.
    #[arg(long = "backend", value_name = "PATTERN=ADDR,…")]
    pub backends: Vec<String>,
    /// Picker (`[agents] picker`).
    #[arg(long)]
    pub picker: Option<String>,
    /// Request head deadline, e.g. `10s` (`[timeouts] head`).
    #[arg(long, value_parser = config::parse_duration)]
    pub head_timeout: Option<Duration>,
    /// Idle keep-alive timeout (`[timeouts] idle`).
    #[arg(long, value_parser = config::parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// Request/response body progress timeout (`[timeouts] body`).
    #[arg(long, value_parser = config::parse_duration)]
    pub body_timeout: Option<Duration>,
    /// Response head timeout (`[timeouts] response_head`).
    #[arg(long, value_parser = config::parse_duration)]
    pub response_timeout: Option<Duration>,
    /// Park time for a known route without agents (`[timeouts] park`).
    #[arg(long, value_parser = config::parse_duration)]
    pub park_time: Option<Duration>,
    /// Access log: `off`, `stdout` or a file (`[log] access`).
    #[arg(long, value_name = "off|stdout|PATH")]
    pub access_log: Option<String>,
    /// Access log lines (`[log] access_format`).
    #[arg(long, value_enum)]
    pub access_log_format: Option<config::AccessFormat>,
    /// On SIGTERM, how long requests in flight get to finish (`[timeouts] shutdown_grace`).
    #[arg(long, value_parser = config::parse_duration)]
    pub shutdown_grace: Option<Duration>,
    /// Tunnel ping interval (`[tunnel] ping_interval`).
    #[arg(long, value_parser = config::parse_duration)]
    pub ping_interval: Option<Duration>,
    /// Open user connections per worker, 0 = no limit (`[limits] max_connections_per_worker`).
    #[arg(long, value_name = "N")]
    pub max_connections_per_worker: Option<u32>,
    /// Open user connections per client IP, 0 = no limit
    /// (`[limits] max_connections_per_client`).
    #[arg(long, value_name = "N")]
    pub max_connections_per_client: Option<u32>,
    /// Every user connection begins with a PROXY protocol header from an L4 front
    /// (`[listen] proxy_protocol = true`).
    #[arg(long)]
    pub proxy_protocol: bool,
    /// The agent listener's certificate chain, PEM (`[agents.tls] cert`).
    #[arg(long, value_name = "PEM", requires = "agent_tls_key")]
    pub agent_tls_cert: Option<PathBuf>,
    /// Its private key, PEM (`[agents.tls] key`).
    #[arg(long, value_name = "PEM", requires = "agent_tls_cert")]
    pub agent_tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that sign the agents' client certificates (`[agents.tls]
    /// client_ca`): mutual TLS, the certificate's name is the agent id.
    #[arg(long, value_name = "PEM")]
    pub agent_client_ca: Option<PathBuf>,
    /// Plaintext agent tunnel, no TLS (`[agents] insecure_plaintext = true`): only on a
    /// trusted network.
    #[arg(long, conflicts_with_all = ["agent_tls_cert", "agent_client_ca"])]
    pub insecure_plaintext: bool,
    /// Log format and filter.
    #[command(flatten)]
    pub log: ringway_log::LogArgs,
}

/// `ringway-balancer COMMAND`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Agent tokens: `token new` draws one, `token hash` hashes one from stdin; both print the
    /// `[[agents.tokens]]` entry to paste into the configuration.
    #[command(subcommand)]
    Token(crate::token_cmd::TokenCommand),
}

/// The value of `--admin-listen`: an address, or none (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminListen(pub Option<SocketAddr>);

fn parse_admin_flag(text: &str) -> Result<AdminListen, String> {
    config::parse_admin(text).map(AdminListen)
}

/// The listener and runtime flags, shared with `ringway-demo`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// User listener address (`[listen] users`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Agent listener address (`[listen] agents`).
    #[arg(long, value_name = "ADDR")]
    pub agent_listen: Option<SocketAddr>,
    /// Admin listener address, or `off` (`[listen] admin`; default 127.0.0.1:9180).
    #[arg(long, value_name = "ADDR|off", value_parser = parse_admin_flag)]
    pub admin_listen: Option<AdminListen>,
    /// listen(2) backlog (`[listen] backlog`).
    #[arg(long)]
    pub backlog: Option<i32>,
    /// Worker threads (`[runtime] workers`; default: CPUs in the affinity mask).
    #[arg(long)]
    pub workers: Option<usize>,
    /// IO driver (`[runtime] io_driver`).
    #[arg(long, value_enum)]
    pub io_driver: Option<IoDriver>,
    /// Do not pin workers to CPUs (`[runtime] pin = false`).
    #[arg(long)]
    pub no_pin: bool,
}

impl ServerArgs {
    /// Applies these flags to `c`.
    pub fn apply(&self, c: &mut Config) -> Result<(), String> {
        if let Some(a) = self.listen {
            c.listen.users = a;
        }
        if let Some(a) = self.agent_listen {
            c.listen.agents = a;
        }
        if let Some(AdminListen(a)) = self.admin_listen {
            c.listen.admin = a;
        }
        if let Some(b) = self.backlog {
            c.listen.backlog = b;
        }
        if let Some(w) = self.workers {
            if w == 0 {
                return Err("--workers must be at least 1".to_owned());
            }
            c.runtime.workers = Some(w);
        }
        if let Some(d) = self.io_driver {
            c.runtime.io_driver = d;
        }
        if self.no_pin {
            c.runtime.pin = false;
        }
        Ok(())
    }
}

/// Parses `PATTERN=ADDR[,ADDR…]`.
fn parse_backend_flag(text: &str) -> Result<(RouteSpec, Vec<config::BackendSpec>), String> {
    let (pattern, addrs) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected PATTERN=ADDR[,ADDR…]"))?;
    let pattern = RouteSpec::parse(pattern)?;
    let addrs = addrs
        .split(',')
        .map(|a| {
            config::BackendTarget::parse(a.trim())
                .map(|target| config::BackendSpec { target, weight: 1 })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((pattern, addrs))
}

impl Cli {
    /// The configuration: the file (or defaults) with every given flag applied on top.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut c = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        self.apply(&mut c).map_err(ConfigError::Flag)?;
        Ok(c)
    }

    /// Applies the flags to `c`.
    pub fn apply(&self, c: &mut Config) -> Result<(), String> {
        self.server.apply(c)?;
        if let Some(t) = &self.token {
            c.agents.token = Some(t.clone());
        }
        if let Some(cert) = &self.agent_tls_cert {
            c.agents.tls.cert = Some(cert.clone());
            c.agents.tls.key.clone_from(&self.agent_tls_key);
            c.agents.insecure_plaintext = false;
        }
        if let Some(ca) = &self.agent_client_ca {
            c.agents.tls.client_ca = Some(ca.clone());
        }
        if self.insecure_plaintext {
            c.agents.insecure_plaintext = true;
            c.agents.tls = config::AgentTlsConfig::default();
        }
        for r in &self.routes {
            let pattern = RouteSpec::parse(r).map_err(|e| format!("--route: {e}"))?;
            if !c
                .routes
                .iter()
                .any(|known| known.pattern.text == pattern.text)
            {
                c.routes.push(RouteConfig::new(pattern));
            }
        }
        for b in &self.backends {
            let (pattern, addrs) = parse_backend_flag(b).map_err(|e| format!("--backend: {e}"))?;
            match c
                .routes
                .iter_mut()
                .find(|known| known.pattern.text == pattern.text)
            {
                Some(known) => {
                    known.token = None;
                    known.backends = addrs;
                }
                None => {
                    let mut route = RouteConfig::new(pattern);
                    route.backends = addrs;
                    c.routes.push(route);
                }
            }
        }
        if let Some(p) = &self.picker {
            c.agents.picker = config::parse_picker(p).map_err(|e| format!("--picker: {e}"))?;
        }
        if let Some(d) = self.head_timeout {
            c.timeouts.head = d;
        }
        if let Some(d) = self.idle_timeout {
            c.timeouts.idle = d;
        }
        if let Some(d) = self.body_timeout {
            c.timeouts.body = d;
        }
        if let Some(d) = self.response_timeout {
            c.timeouts.response_head = d;
        }
        if let Some(a) = &self.access_log {
            c.log.access.clone_from(a);
        }
        if let Some(f) = self.access_log_format {
            c.log.access_format = f;
        }
        if let Some(d) = self.shutdown_grace {
            c.timeouts.shutdown_grace = d;
        }
        if let Some(d) = self.park_time {
            c.timeouts.park = d;
        }
        if self.proxy_protocol {
            c.listen.proxy_protocol = true;
        }
        if let Some(d) = self.ping_interval {
            c.tunnel.ping_interval = d;
        }
        if let Some(n) = self.max_connections_per_worker {
            c.limits.max_connections_per_worker = n;
        }
        if let Some(n) = self.max_connections_per_client {
            c.limits.max_connections_per_client = n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults() {
        let cli = Cli::parse_from([
            "ringway-balancer",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--io-driver",
            "epoll",
            "--route",
            "a.test/x",
            "--park-time",
            "300ms",
            "--proxy-protocol",
        ]);
        let c = cli.config().unwrap();
        assert_eq!(c.listen.users, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.runtime.workers, Some(2));
        assert_eq!(c.runtime.io_driver, IoDriver::Epoll);
        assert_eq!(c.routes[0].pattern.text, "a.test/x");
        assert_eq!(c.timeouts.park, Duration::from_millis(300));
        assert!(c.listen.proxy_protocol);
    }

    #[test]
    fn backend_flags_make_static_routes() {
        let cli = Cli::parse_from([
            "ringway-balancer",
            "--backend",
            "shop.test=127.0.0.1:9001, unix:/run/a.sock",
            "--backend",
            "api.test/v1=app.internal:8080",
        ]);
        let c = cli.config().unwrap();
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[0].pattern.text, "shop.test/");
        assert_eq!(c.routes[0].backends.len(), 2);
        assert_eq!(
            c.routes[1].backends[0].target.to_string(),
            "app.internal:8080"
        );
        for bad in ["shop.test", "shop.test=", "shop.test=nowhere"] {
            let cli = Cli::parse_from(["ringway-balancer", "--backend", bad]);
            let e = cli.config().unwrap_err().to_string();
            assert!(e.contains("--backend"), "{bad}: {e}");
        }
    }

    #[test]
    fn connection_limit_flags_override_the_file() {
        let cli = Cli::parse_from(["ringway-balancer"]);
        let c = cli.config().unwrap();
        assert_eq!(c.limits.max_connections_per_worker, 10_000);
        let cli = Cli::parse_from([
            "ringway-balancer",
            "--max-connections-per-worker",
            "0",
            "--max-connections-per-client",
            "8",
        ]);
        let c = cli.config().unwrap();
        assert_eq!(c.limits.max_connections_per_worker, 0);
        assert_eq!(c.limits.max_connections_per_client, 8);
    }

    #[test]
    fn without_a_command_the_balancer_runs_with_its_flags() {
        let cli = Cli::parse_from(["ringway-balancer", "--route", "a.test"]);
        assert!(cli.command.is_none());
        let cli = Cli::parse_from([
            "ringway-balancer",
            "token",
            "new",
            "--hosts",
            "*.a.test,b.test",
            "--prefix",
            "/api",
        ]);
        let Some(Command::Token(crate::token_cmd::TokenCommand::New(scope))) = cli.command else {
            panic!("{cli:?}");
        };
        assert_eq!(scope.hosts, ["*.a.test", "b.test"]);
        assert_eq!(scope.prefixes, ["/api"]);
        assert!(
            Cli::try_parse_from(["ringway-balancer", "token", "new"]).is_err(),
            "--hosts is required"
        );
    }

    #[test]
    fn zero_workers_is_rejected() {
        let cli = Cli::parse_from(["ringway-balancer", "--workers", "0"]);
        assert!(cli.config().is_err());
    }
}
