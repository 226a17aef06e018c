//! The `ringway-balancer` binary.

use std::process::ExitCode;

use clap::Parser;
use ringway_balancer::cli::{Cli, Command};
use ringway_balancer::{Balancer, ConfigSource};

/// mimalloc: cheaper per-request allocations than glibc's on the request path, and freed
/// memory goes back (glibc kept the buffers of a burst after it ended); see Cargo.toml.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Token(command)) = &cli.command {
        return match ringway_balancer::token_cmd::run(command) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ringway-balancer token: {e}");
                ExitCode::from(2)
            }
        };
    }
    // Before any thread exists, so that every thread inherits the blocked mask.
    let signals = match ringway_io::signals::block_termination_and_hangup() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("ringway-balancer: setting up signal handling: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = ringway_log::init(&cli.log) {
        eprintln!("ringway-balancer: {e}");
        return ExitCode::from(2);
    }
    let config = match cli.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringway-balancer: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        return match config.to_toml() {
            Ok(text) => {
                println!("# ringway-balancer: configuration OK; the effective configuration:");
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ringway-balancer: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // A reload (SIGHUP, POST /reload) reads the file again and applies the same flags on top.
    let path = cli.config.clone();
    let source = ConfigSource::new(path, move || cli.config());
    let balancer = match Balancer::start_reloadable(config, source) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("ringway-balancer: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Tests and scripts read these lines to learn the ports (port 0 picks free ones).
    println!(
        "ringway-balancer: users listening on {}",
        balancer.user_addr()
    );
    println!(
        "ringway-balancer: agents listening on {}",
        balancer.agent_addr()
    );
    if let Some(https) = balancer.https_addr() {
        println!("ringway-balancer: https listening on {https}");
    }
    if let Some(admin) = balancer.admin_addr() {
        println!("ringway-balancer: admin listening on {admin}");
    }
    println!("ringway-balancer: {} workers", balancer.worker_count());
    let shutdown = balancer.shutdown_handle();
    let reload = balancer.reload_handle();
    let watched = ringway_io::signals::watch_signals(
        signals,
        "ringway-signals",
        move || shutdown.start(),
        || std::process::exit(1),
        // The outcome is logged by the reload itself.
        move || {
            let _ = reload.reload();
        },
    );
    if let Err(e) = watched {
        eprintln!("ringway-balancer: watching signals: {e}");
        return ExitCode::FAILURE;
    }
    balancer.join();
    tracing::info!("shut down");
    ExitCode::SUCCESS
}
