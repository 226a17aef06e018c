//! The `ringway-agent` binary.

use std::process::ExitCode;

use clap::Parser;
use ringway_agent::cli::Cli;
use ringway_agent::{block_termination_signals, watch_signals, Agent};
use tracing_subscriber::EnvFilter;

/// mimalloc: cheaper per-request allocations than glibc's on the request path, and freed
/// memory goes back (glibc kept the buffers of a burst after it ended); see Cargo.toml.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before any thread exists, so that every thread inherits the blocked mask.
    let signals = match block_termination_signals() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("ringway-agent: setting up signal handling: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            // RINGWAY_LOG (as the balancer), else RUST_LOG, else info.
            EnvFilter::try_from_env("RINGWAY_LOG")
                .or_else(|_| EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = match cli.agent.into_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ringway-agent: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(
        agent = %config.agent_id,
        balancers = ?config.balancers,
        routes = ?config.routes,
        backend = %config.backend,
        workers = config.workers,
        "starting"
    );
    let agent = match Agent::start(config) {
        Ok(agent) => agent,
        Err(e) => {
            eprintln!("ringway-agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = watch_signals(signals, &agent) {
        eprintln!("ringway-agent: starting the signal thread: {e}");
        agent.kill();
        agent.join();
        return ExitCode::FAILURE;
    }
    agent.join();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
