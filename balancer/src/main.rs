//! The `ringway-balancer` binary.

use std::process::ExitCode;

use clap::Parser;
use ringway_balancer::cli::Cli;
use ringway_balancer::Balancer;

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let balancer = match Balancer::start(config) {
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
    println!("ringway-balancer: {} workers", balancer.worker_count());
    balancer.join();
    ExitCode::SUCCESS
}
