//! The `ringway-agent` binary.

use std::process::ExitCode;

use clap::Parser;
use ringway_agent::cli::{effective_flags, Cli};
use ringway_agent::{block_termination_signals, watch_signals, Agent};

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
    let cli = Cli::parse();
    if let Err(e) = ringway_log::init(&cli.log) {
        eprintln!("ringway-agent: {e}");
        return ExitCode::from(2);
    }
    let config = match cli.agent.into_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ringway-agent: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        return match effective_flags(&config) {
            Ok(text) => {
                println!("# ringway-agent: flags OK; the effective settings, one key per flag:");
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ringway-agent: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
