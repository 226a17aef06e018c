//! The `ringway-agent` command line.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ringway_tuning::runtime::IoDriver;

use crate::config::{default_agent_id, AgentConfig};

/// ringway-agent: dials out to ringway-balancer and serves its routes from a local backend.
#[derive(Debug, Parser)]
#[command(
    name = "ringway-agent",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Run something other than the agent.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Agent options.
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the built-in hello HTTP/1.1 backend alone (demos, benchmarks).
    Hello {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
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
    /// The local HTTP/1.1 backend.
    #[arg(long, value_name = "ADDR")]
    pub backend: Option<SocketAddr>,
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
    /// Idle time after which a pooled backend connection is not reused, in milliseconds.
    #[arg(long, default_value_t = 15_000)]
    pub pool_idle_ms: u64,
    /// Connect timeout (backend and balancer), in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    pub connect_timeout_ms: u64,
    /// Backend response-head timeout, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    pub response_timeout_ms: u64,
    /// How often balancer names are resolved again, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub resolve_interval_ms: u64,
    /// Grace period for in-flight requests on SIGTERM, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub drain_grace_ms: u64,
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
        config.pool_idle_timeout = Duration::from_millis(self.pool_idle_ms);
        config.connect_timeout = Duration::from_millis(self.connect_timeout_ms);
        config.response_timeout = Duration::from_millis(self.response_timeout_ms);
        config.drain_grace = Duration::from_millis(self.drain_grace_ms);
        config.resolve_interval = Duration::from_millis(self.resolve_interval_ms.max(100));
        Ok(config)
    }
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
        ])
        .unwrap();
        assert!(cli.command.is_none());
        let config = cli.agent.into_config().unwrap();
        assert_eq!(config.balancers, ["127.0.0.1:7000", "lb.example:7000"]);
        assert_eq!(config.routes, ["example.com", "example.com/api"]);
        assert_eq!(config.backend, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.workers, 2);
        assert_eq!(config.io_driver, IoDriver::Epoll);
        assert_eq!(config.token, "s3cret");
        assert!(config
            .agent_id
            .ends_with(&format!("-{}", std::process::id())));
    }

    #[test]
    fn hello_subcommand() {
        let cli =
            Cli::try_parse_from(["ringway-agent", "hello", "--listen", "127.0.0.1:9999"]).unwrap();
        match cli.command {
            Some(Command::Hello { listen }) => assert_eq!(listen.port(), 9999),
            other => panic!("{other:?}"),
        }
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
}
