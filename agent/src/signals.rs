//! Termination signals: the first SIGTERM/SIGINT drains the agent (GOAWAY on every tunnel
//! connection, in-flight streams finish within the drain grace, exit 0), a second one kills it.
//! The signalfd and its thread are `ringway_io::signals`, shared with the balancer.

use nix::sys::signalfd::SignalFd;
pub use ringway_io::signals::block_termination_signals;

use crate::agent::AgentHandle;

/// Watches `signals` on a helper thread: the first SIGTERM/SIGINT drains `agent`, a second one
/// kills it.
pub fn watch_signals(signals: SignalFd, agent: &AgentHandle) -> std::io::Result<()> {
    let drain = agent.remote();
    let kill = drain.clone();
    ringway_io::signals::watch_termination(
        signals,
        "ringway-signals",
        move || drain.drain(),
        move || kill.kill(),
    )
}
