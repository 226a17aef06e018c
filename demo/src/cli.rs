//! The `ringway-demo` command line.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use ringway_balancer::cli::ServerArgs;
use ringway_tuning::runtime::IoDriver;

/// ringway-demo: the balancer, an agent and the hello backend on loopback, in one process.
#[derive(Debug, Parser)]
#[command(
    name = "ringway-demo",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Run something other than the whole demo.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the demo.
    #[command(flatten)]
    pub demo: DemoArgs,
    /// Log format and filter (`ringway-demo hello` takes them after `hello`).
    #[command(flatten)]
    pub log: ringway_log::LogArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hello HTTP/1.1 backend alone (benchmarks, a backend for a separate agent).
    Hello {
        /// Address to listen on (port 0 picks a free one; the bound address is printed).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// I/O driver.
        #[arg(long, value_enum, default_value_t = IoDriver::Auto)]
        io_driver: IoDriver,
    },
}

/// Flags of the demo: the balancer's listener and runtime flags (`ringway-balancer --help`),
/// each overriding a key of the embedded configuration (users on 127.0.0.1:8080, agents on
/// 127.0.0.1:7000; port 0 picks a free one, printed at start).
pub type DemoArgs = ServerArgs;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_embedded_config() {
        let cli = Cli::try_parse_from([
            "ringway-demo",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--no-pin",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        let mut c = crate::demo_config();
        cli.demo.apply(&mut c).unwrap();
        assert_eq!(c.listen.users, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.listen.agents, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(c.runtime.workers, Some(1));
        assert!(!c.runtime.pin);
        assert_eq!(c.routes.len(), 1);
        assert_eq!(c.routes[0].pattern.text, format!("{}/", crate::DEMO_ROUTE));
        assert_eq!(
            c.token_for(&c.routes[0].pattern.text),
            Some(crate::DEMO_TOKEN)
        );
    }

    #[test]
    fn zero_workers_is_rejected() {
        let cli = Cli::try_parse_from(["ringway-demo", "--workers", "0"]).unwrap();
        assert!(cli.demo.apply(&mut crate::demo_config()).is_err());
    }

    #[test]
    fn log_flags_for_the_demo_and_after_the_subcommand() {
        use ringway_log::LogFormat;
        let cli = Cli::try_parse_from(["ringway-demo", "hello", "--log-format", "json"]).unwrap();
        assert_eq!(cli.log.log_format, Some(LogFormat::Json));
        let cli = Cli::try_parse_from(["ringway-demo", "hello", "--log-level", "debug"]).unwrap();
        assert_eq!(cli.log.log_level.as_deref(), Some("debug"));
        let cli = Cli::try_parse_from(["ringway-demo", "--log-format", "text", "--workers", "1"])
            .unwrap();
        assert_eq!(cli.log.log_format, Some(LogFormat::Text));
    }

    #[test]
    fn hello_subcommand() {
        let cli =
            Cli::try_parse_from(["ringway-demo", "hello", "--listen", "127.0.0.1:9999"]).unwrap();
        match cli.command {
            Some(Command::Hello { listen, io_driver }) => {
                assert_eq!(listen.port(), 9999);
                assert_eq!(io_driver, IoDriver::Auto);
            }
            other => panic!("{other:?}"),
        }
    }
}
