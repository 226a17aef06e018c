//! Termination signals for the binaries: SIGTERM and SIGINT are blocked in every thread and
//! read from a signalfd on a thread of their own (a safe API: no handler runs in a signal
//! context). The first one starts a graceful shutdown, a second one ends the process at once.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;

/// Blocks SIGTERM and SIGINT in the calling thread (and so in every thread spawned after it) and
/// returns a descriptor that receives them. Call first thing in `main`, before any thread exists.
pub fn block_termination_signals() -> nix::Result<SignalFd> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    mask.thread_block()?;
    SignalFd::new(&mask)
}

/// Watches `signals` on a thread named `name`: the first SIGTERM/SIGINT calls `graceful`, a
/// second one calls `now`.
pub fn watch_termination(
    mut signals: SignalFd,
    name: &str,
    graceful: impl FnOnce() + Send + 'static,
    now: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let mut graceful = Some(graceful);
            loop {
                match signals.read_signal() {
                    Ok(Some(info)) => {
                        if let Some(graceful) = graceful.take() {
                            tracing::info!(signal = info.ssi_signo, "termination signal: draining");
                            graceful();
                        } else {
                            tracing::warn!(
                                signal = info.ssi_signo,
                                "second termination signal: exiting now"
                            );
                            now();
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
