//! Termination signals: the first SIGTERM/SIGINT drains the agent (GOAWAY on every tunnel
//! connection, in-flight streams finish within the drain grace, exit 0), a second one kills it.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;

use crate::agent::AgentHandle;

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
