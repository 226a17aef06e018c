//! The `ringway-agent` command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};
use ringway_tuning::duration::{format_duration, parse_duration};
use ringway_tuning::runtime::IoDriver;
use ringway_upstream::BackendAddr;

use crate::config::{default_agent_id, AgentConfig, TlsSettings, Transport};

/// ringway-agent: dials out to ringway-balancer and serves its routes from a local backend.
#[derive(Debug, Parser)]
#[command(name = "ringway-agent", version)]
pub struct Cli {
    /// Agent options.
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Validate the flags, print the effective settings as TOML (one key per flag), and exit.
    #[arg(long)]
    pub check: bool,
    /// Log format and filter.
    #[command(flatten)]
    pub log: ringway_log::LogArgs,
}

/// Options of the agent itself.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Balancer agent listener, HOST:PORT (repeatable; a name with several addresses connects to
    /// each of them).
    #[arg(long = "balancer", value_name = "HOST:PORT", env = "RINGWAY_BALANCER")]
    pub balancers: Vec<String>,
    /// Token presented to the balancer.
    #[arg(long, env = "RINGWAY_TOKEN", default_value = "")]
    pub token: String,
    /// Route served, host[/prefix] (repeatable).
    #[arg(long = "route", value_name = "HOST[/PREFIX]")]
    pub routes: Vec<String>,
    /// The local HTTP/1.1 backend: IP:PORT, or unix:/path/to.sock for a unix socket.
    #[arg(long, value_name = "ADDR")]
    pub backend: Option<BackendAddr>,
    /// Runtime threads.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// I/O driver of the runtime threads.
    #[arg(long, value_enum, default_value_t = IoDriver::Auto)]
    pub io_driver: IoDriver,
    /// Agent identity reported to the balancer (default hostname-pid).
    #[arg(long)]
    pub agent_id: Option<String>,
    /// Idle keep-alive backend connections kept per runtime thread.
    #[arg(long, default_value_t = 64)]
    pub pool_size: usize,
    /// Backend connections (in use or idle) per runtime thread; streams beyond wait for one.
    #[arg(long, default_value_t = 1024)]
    pub max_backend_conns: usize,
    /// Idle time after which a pooled backend connection is not reused (`250ms`, `15s`, `1m`).
    #[arg(long, value_parser = parse_duration, default_value = "15s")]
    pub pool_idle: Duration,
    /// Connect timeout, backend and balancer.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub connect_timeout: Duration,
    /// Backend response-head timeout, counted from the end of the request body.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub response_timeout: Duration,
    /// How often balancer names are resolved again.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub resolve_interval: Duration,
    /// Grace period for in-flight requests on SIGTERM.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub drain_grace: Duration,
    /// CA certificates (PEM) that vouch for the balancer's certificate (default: the system's
    /// trust store).
    #[arg(long, value_name = "PEM", env = "RINGWAY_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Verify every balancer's certificate against this name (default: the host of its
    /// --balancer HOST:PORT).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// Client certificate chain (PEM) for a balancer that requires one (mutual TLS).
    #[arg(long, value_name = "PEM", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Plaintext tunnel, no TLS: only on a trusted network, against a balancer with
    /// agents.insecure_plaintext.
    #[arg(long, conflicts_with_all = ["ca_file", "server_name", "cert", "key"])]
    pub insecure_plaintext: bool,
}

/// Why the agent options do not make a configuration.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `--balancer` was not given.
    #[error("at least one --balancer HOST:PORT is required")]
    NoBalancer,
    /// `--route` was not given.
    #[error("at least one --route HOST[/PREFIX] is required")]
    NoRoute,
    /// `--backend` was not given.
    #[error("--backend ADDR is required")]
    NoBackend,
    /// `--workers 0`.
    #[error("--workers must be at least 1")]
    NoWorkers,
}

impl AgentArgs {
    /// Turns the options into a configuration.
    pub fn into_config(self) -> Result<AgentConfig, CliError> {
        if self.balancers.is_empty() {
            return Err(CliError::NoBalancer);
        }
        if self.routes.is_empty() {
            return Err(CliError::NoRoute);
        }
        let backend = self.backend.ok_or(CliError::NoBackend)?;
        if self.workers == 0 {
            return Err(CliError::NoWorkers);
        }
        let mut config = AgentConfig::new(self.balancers, self.token, self.routes, backend);
        config.agent_id = self.agent_id.unwrap_or_else(default_agent_id);
        config.workers = self.workers;
        config.io_driver = self.io_driver;
        config.pool_size = self.pool_size;
        config.max_backend_conns = self.max_backend_conns.max(1);
        config.pool_idle_timeout = self.pool_idle;
        config.connect_timeout = self.connect_timeout;
        config.response_timeout = self.response_timeout;
        config.resolve_interval = self.resolve_interval.max(Duration::from_millis(100));
        config.drain_grace = self.drain_grace;
        config.transport = if self.insecure_plaintext {
            Transport::InsecurePlaintext
        } else {
            Transport::Tls(TlsSettings {
                ca_file: self.ca_file,
                server_name: self.server_name,
                cert: self.cert,
                key: self.key,
            })
        };
        Ok(config)
    }
}

/// The settings the flags control, keyed by flag name, for `--check`.
#[derive(serde::Serialize)]
#[serde(rename_all = "kebab-case")]
struct EffectiveFlags<'a> {
    balancer: &'a [String],
    token: &'a str,
    route: &'a [String],
    backend: String,
    workers: usize,
    io_driver: String,
    agent_id: &'a str,
    pool_size: usize,
    max_backend_conns: usize,
    pool_idle: String,
    connect_timeout: String,
    response_timeout: String,
    resolve_interval: String,
    drain_grace: String,
    /// `""`: the system's trust store.
    ca_file: String,
    /// `""`: each --balancer host.
    server_name: String,
    cert: String,
    key: String,
    insecure_plaintext: bool,
}

/// The effective settings of `config` as TOML, one key per flag (`pool-idle = "15s"`), as
/// `ringway-agent --check` prints them.
pub fn effective_flags(config: &AgentConfig) -> Result<String, String> {
    let tls = match &config.transport {
        Transport::Tls(settings) => Some(settings),
        Transport::InsecurePlaintext => None,
    };
    let view = EffectiveFlags {
        balancer: &config.balancers,
        token: &config.token,
        route: &config.routes,
        backend: config.backend.to_string(),
        workers: config.workers,
        io_driver: config.io_driver.to_string(),
        agent_id: &config.agent_id,
        pool_size: config.pool_size,
        max_backend_conns: config.max_backend_conns,
        pool_idle: format_duration(config.pool_idle_timeout),
        connect_timeout: format_duration(config.connect_timeout),
        response_timeout: format_duration(config.response_timeout),
        resolve_interval: format_duration(config.resolve_interval),
        drain_grace: format_duration(config.drain_grace),
        ca_file: tls
            .and_then(|t| t.ca_file.as_ref())
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        server_name: tls.and_then(|t| t.server_name.clone()).unwrap_or_default(),
        cert: tls
            .and_then(|t| t.cert.as_ref())
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        key: tls
            .and_then(|t| t.key.as_ref())
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        insecure_plaintext: tls.is_none(),
    };
    toml::to_string(&view).map_err(|e| format!("writing the settings as TOML: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_issue_example() {
        let cli = Cli::try_parse_from([
            "ringway-agent",
            "--balancer",
            "127.0.0.1:7000",
            "--balancer",
            "lb.example:7000",
            "--token",
            "s3cret",
            "--route",
            "example.com",
            "--route",
            "example.com/api",
            "--backend",
            "127.0.0.1:8080",
            "--workers",
            "2",
            "--io-driver",
            "epoll",
            "--drain-grace",
            "1500ms",
            "--response-timeout",
            "2m",
        ])
        .unwrap();
        let config = cli.agent.into_config().unwrap();
        assert_eq!(config.balancers, ["127.0.0.1:7000", "lb.example:7000"]);
        assert_eq!(config.routes, ["example.com", "example.com/api"]);
        assert_eq!(
            config.backend,
            BackendAddr::Tcp("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(config.workers, 2);
        assert_eq!(config.io_driver, IoDriver::Epoll);
        assert_eq!(config.token, "s3cret");
        assert_eq!(config.drain_grace, Duration::from_millis(1500));
        assert_eq!(config.response_timeout, Duration::from_secs(120));
        assert_eq!(config.connect_timeout, Duration::from_secs(2), "default");
        assert!(config
            .agent_id
            .ends_with(&format!("-{}", std::process::id())));
    }

    #[test]
    fn effective_flags_print_every_setting() {
        let cli = Cli::try_parse_from([
            "ringway-agent",
            "--balancer",
            "127.0.0.1:7000",
            "--route",
            "example.com",
            "--backend",
            "127.0.0.1:8080",
            "--agent-id",
            "a1",
            "--pool-idle",
            "1m 30s",
        ])
        .unwrap();
        let text = effective_flags(&cli.agent.into_config().unwrap()).unwrap();
        for line in [
            "balancer = [\"127.0.0.1:7000\"]",
            "route = [\"example.com\"]",
            "backend = \"127.0.0.1:8080\"",
            "agent-id = \"a1\"",
            "io-driver = \"auto\"",
            "pool-idle = \"1m 30s\"",
            "connect-timeout = \"2s\"",
            "drain-grace = \"10s\"",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        let value: toml::Table = text.parse().unwrap();
        assert_eq!(value.len(), 19, "one key per flag:\n{text}");
        assert!(
            text.lines().any(|l| l == "insecure-plaintext = false"),
            "{text}"
        );
        assert!(text.lines().any(|l| l == "ca-file = \"\""), "{text}");
    }

    #[test]
    fn missing_options_are_named() {
        let cli = Cli::try_parse_from([
            "ringway-agent",
            "--route",
            "a.com",
            "--backend",
            "127.0.0.1:1",
        ])
        .unwrap();
        assert!(matches!(cli.agent.into_config(), Err(CliError::NoBalancer)));
    }

    #[test]
    fn a_unix_socket_backend_is_a_path() {
        let cli = Cli::try_parse_from([
            "ringway-agent",
            "--balancer",
            "127.0.0.1:7000",
            "--route",
            "a.com",
            "--backend",
            "unix:/run/app/http.sock",
        ])
        .unwrap();
        let config = cli.agent.into_config().unwrap();
        assert_eq!(
            config.backend,
            BackendAddr::Unix("/run/app/http.sock".into())
        );
        let err = Cli::try_parse_from(["ringway-agent", "--backend", "unix:"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unix:/path"), "{err}");
    }

    #[test]
    fn a_bad_duration_names_the_flag() {
        let err = Cli::try_parse_from(["ringway-agent", "--pool-idle", "5 parsecs"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--pool-idle"), "{err}");
        assert!(err.contains("parsecs"), "{err}");
    }
}
