//! Termination signals for the binaries: SIGTERM and SIGINT (and, for a binary that reloads,
//! SIGHUP) are blocked in every thread and read from a signalfd on a thread of their own (a safe
//! API: no handler runs in a signal context). The first SIGTERM/SIGINT starts a graceful
//! shutdown, a second one ends the process at once; every SIGHUP calls the reload.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;

/// Blocks SIGTERM and SIGINT in the calling thread (and so in every thread spawned after it) and
/// returns a descriptor that receives them. Call first thing in `main`, before any thread exists.
pub fn block_termination_signals() -> nix::Result<SignalFd> {
    block(false)
}

/// [`block_termination_signals`] and SIGHUP too, for [`watch_signals`] with a reload.
pub fn block_termination_and_hangup() -> nix::Result<SignalFd> {
    block(true)
}

fn block(hangup: bool) -> nix::Result<SignalFd> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    if hangup {
        mask.add(Signal::SIGHUP);
    }
    mask.thread_block()?;
    SignalFd::new(&mask)
}

/// Watches `signals` on a thread named `name`: the first SIGTERM/SIGINT calls `graceful`, a
/// second one calls `now`.
pub fn watch_termination(
    signals: SignalFd,
    name: &str,
    graceful: impl FnOnce() + Send + 'static,
    now: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    watch_signals(signals, name, graceful, now, || {})
}

/// [`watch_termination`], and every SIGHUP (when `signals` was made by
/// [`block_termination_and_hangup`]) calls `hangup` on the same thread.
pub fn watch_signals(
    mut signals: SignalFd,
    name: &str,
    graceful: impl FnOnce() + Send + 'static,
    now: impl FnOnce() + Send + 'static,
    mut hangup: impl FnMut() + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let mut graceful = Some(graceful);
            loop {
                match signals.read_signal() {
                    Ok(Some(info)) if info.ssi_signo == Signal::SIGHUP as u32 => {
                        tracing::info!(signal = info.ssi_signo, "SIGHUP: reloading");
                        hangup();
                    }
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
