//! Graceful shutdown: SIGTERM → GOAWAY on every tunnel connection, in-flight streams finish within
//! a bounded grace, then the agent exits 0.

use std::time::Instant;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;

use crate::agent::AgentHandle;
use crate::worker::Worker;

/// Drains one runtime thread: no reconnects, GOAWAY everywhere, wait for the streams (at most the
/// grace period), then close what is left.
pub(crate) async fn drain(worker: &Worker) {
    worker.start_draining();
    let tunnels = worker.live_tunnels();
    tracing::info!(
        thread = worker.index,
        connections = tunnels.len(),
        in_flight = worker.in_flight(),
        "draining"
    );
    for tunnel in &tunnels {
        tunnel.go_away();
    }
    let deadline = Instant::now() + worker.config.drain_grace;
    // Each tunnel closes itself once its streams are done and its last frames are written.
    while !worker.live_tunnels().is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let tunnels = worker.live_tunnels();
            let stuck: usize = tunnels.iter().map(|t| t.active_streams()).sum();
            tracing::warn!(
                thread = worker.index,
                streams = stuck,
                "drain grace expired, closing"
            );
            for tunnel in tunnels {
                tunnel.kill();
            }
            return;
        }
        let _ = monoio::time::timeout(left, worker.progress()).await;
    }
    tracing::info!(thread = worker.index, "drained");
}

/// Blocks SIGTERM and SIGINT in the calling thread (and so in every thread spawned after it) and
/// returns a descriptor that receives them. Call first thing in `main`.
pub fn block_termination_signals() -> nix::Result<SignalFd> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    mask.thread_block()?;
    SignalFd::new(&mask)
}

/// Watches `signals` on a helper thread: the first SIGTERM/SIGINT drains `agent`, a second one
/// kills it.
pub fn watch_signals(mut signals: SignalFd, agent: &AgentHandle) -> std::io::Result<()> {
    let remote = agent.remote();
    std::thread::Builder::new()
        .name("ringway-signals".into())
        .spawn(move || {
            let mut seen = 0;
            loop {
                match signals.read_signal() {
                    Ok(Some(info)) => {
                        seen += 1;
                        if seen == 1 {
                            tracing::info!(signal = info.ssi_signo, "termination signal: draining");
                            remote.drain();
                        } else {
                            tracing::warn!(
                                signal = info.ssi_signo,
                                "second termination signal: exiting now"
                            );
                            remote.kill();
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "reading signals failed");
                        return;
                    }
                }
            }
        })?;
    Ok(())
}
