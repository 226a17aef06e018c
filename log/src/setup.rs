//! The log set-up: tracing events to stderr, as text or one JSON object a line, filtered by
//! `--log-level` (else `RINGWAY_LOG`, else `RUST_LOG`, else `info`), with ANSI colours only when
//! stderr is a terminal.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (`2026-01-01T00:00:00Z  INFO worker{index=0}: worker started`).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`, the event's fields,
    /// `span` and `spans`.
    Json,
}

/// The log flags every ringway binary takes.
#[derive(Debug, Clone, Default, Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long, value_enum, env = "RINGWAY_LOG_FORMAT", global = true)]
    pub log_format: Option<LogFormat>,
    /// Log filter: a level (`warn`, `info`, `debug`) or tracing directives
    /// (`info,ringway_balancer=debug`). Default: `RINGWAY_LOG`, else `RUST_LOG`, else `info`.
    #[arg(long, value_name = "FILTER", env = "RINGWAY_LOG", global = true)]
    pub log_level: Option<String>,
}

impl LogArgs {
    /// The filter directives in force: the flag (or `RINGWAY_LOG`), else `RUST_LOG`, else `info`.
    pub fn filter(&self) -> String {
        self.log_level
            .clone()
            .or_else(|| std::env::var("RUST_LOG").ok())
            .filter(|f| !f.trim().is_empty())
            .unwrap_or_else(|| "info".to_owned())
    }
}

/// Installs the global subscriber: events to stderr as `args` say. Fails on an invalid filter
/// (the message names it) or when a subscriber is already installed.
pub fn init(args: &LogArgs) -> Result<(), String> {
    let directives = args.filter();
    let filter =
        EnvFilter::try_new(&directives).map_err(|e| format!("--log-level {directives:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match args.log_format.unwrap_or_default() {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_ansi(false)
            .try_init(),
    };
    installed.map_err(|e| format!("installing the logger: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        log: LogArgs,
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from(["x", "--log-format", "json", "--log-level", "debug"])
            .expect("valid flags");
        assert_eq!(cli.log.log_format, Some(LogFormat::Json));
        assert_eq!(cli.log.filter(), "debug");
        let err = Cli::try_parse_from(["x", "--log-format", "xml"]).expect_err("unknown format");
        assert!(err.to_string().contains("--log-format"), "{err}");
    }

    #[test]
    fn an_invalid_filter_is_named() {
        let args = LogArgs {
            log_format: None,
            log_level: Some("info,=[".to_owned()),
        };
        let err = init(&args).expect_err("invalid filter");
        assert!(err.contains("--log-level"), "{err}");
    }
}
