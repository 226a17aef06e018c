//! The open-file limit: every client, agent and backend connection is one descriptor.

use std::io;

use crate::sys;

/// Soft and hard `RLIMIT_NOFILE`; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct NofileLimit {
    /// The limit enforced now.
    pub soft: Option<u64>,
    /// The ceiling an unprivileged process may raise `soft` to.
    pub hard: Option<u64>,
}

/// Reads `RLIMIT_NOFILE`.
pub fn nofile() -> io::Result<NofileLimit> {
    let (soft, hard) = sys::get_rlimit(libc::RLIMIT_NOFILE)
        .map_err(|e| io::Error::new(e.kind(), format!("getrlimit(RLIMIT_NOFILE): {e}")))?;
    Ok(NofileLimit { soft, hard })
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (capped at `cap`, since an unlimited hard
/// limit cannot be a soft one on Linux). Returns the limit in force afterwards. Servers call
/// this once at start-up: the default soft limit of 1024 runs out at about a thousand clients.
pub fn raise_nofile(cap: u64) -> io::Result<NofileLimit> {
    let now = nofile()?;
    let target = now.hard.map_or(cap, |h| h.min(cap));
    if now.soft.is_some_and(|s| s < target) {
        sys::set_soft_rlimit(libc::RLIMIT_NOFILE, target).map_err(|e| {
            io::Error::new(e.kind(), format!("setrlimit(RLIMIT_NOFILE, {target}): {e}"))
        })?;
    }
    nofile()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_never_lowers() {
        let before = nofile().unwrap();
        let after = raise_nofile(1 << 20).unwrap();
        assert_eq!(before.hard, after.hard);
        match (before.soft, after.soft) {
            (Some(b), Some(a)) => assert!(a >= b),
            (None, a) => assert_eq!(a, None),
            (Some(_), None) => panic!("soft limit became unlimited"),
        }
    }
}
