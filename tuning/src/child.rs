//! Starting child processes in a known signal state.

use std::process::Command;

/// The child of `cmd` starts with no signal blocked. A parent that takes SIGINT/SIGTERM with
/// sigwait or a signalfd blocks them in every thread, and a blocked mask survives fork and exec:
/// without this, the child would never see a SIGTERM meant to stop it.
pub fn clear_signal_mask(cmd: &mut Command) {
    crate::sys::clear_signal_mask_before_exec(cmd);
}
