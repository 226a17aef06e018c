//! `--demo`: the balancer, an in-process agent and the built-in hello backend on loopback.

use crate::cli::Cli;

/// Runs the demo until the process is interrupted.
pub fn run(_cli: &Cli) -> Result<(), String> {
    Err("demo not wired yet".to_owned())
}
