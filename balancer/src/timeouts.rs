//! The deadlines of the request path, taken from `[timeouts]`, and helpers that turn them into
//! absolute deadlines for `ringway_io::time::timeout_at`.
//!
//! - **head**: a whole request head must arrive within this time of the connection's accept (first
//!   request) or of its first byte (later requests). Cuts off slowloris clients.
//! - **idle**: a keep-alive connection with no request in progress is closed after this long.
//! - **body**: reading a request body, or waiting for the next response body bytes, makes no
//!   progress for this long → the connection is closed.
//! - **response_head**: no response head within this time of the request being sent → 504.
//! - **park**: a known route with no agent on this worker waits this long for one → 503.
//! - **upgrade_idle**: an upgraded (WebSocket) connection idle both ways this long closes.
//! - **linger**: the lingering close after an answer that left request body bytes unread.
//! - **shutdown_grace**: on SIGTERM, how long requests in flight get to finish (see `drain`).
//! - The tunnel heartbeat (`[tunnel] ping_interval`, `dead_after_missed_pings`) lives in core's
//!   tunnel state machine; the agent connection driver only sleeps until its `poll_timeout`.

use std::time::Duration;

use crate::config::TimeoutConfig;

/// The request-path deadlines of one worker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) head: Duration,
    pub(crate) idle: Duration,
    pub(crate) body: Duration,
    pub(crate) response_head: Duration,
    pub(crate) park: Duration,
    pub(crate) upgrade_idle: Duration,
    pub(crate) linger: Duration,
    pub(crate) shutdown_grace: Duration,
}

impl From<TimeoutConfig> for Timeouts {
    fn from(c: TimeoutConfig) -> Self {
        Self {
            head: c.head,
            idle: c.idle,
            body: c.body,
            response_head: c.response_head,
            park: c.park,
            upgrade_idle: c.upgrade_idle,
            linger: c.linger,
            shutdown_grace: c.shutdown_grace,
        }
    }
}

impl Timeouts {
    /// The `Retry-After` seconds sent with a 503 after parking: the park time, rounded up, ≥ 1.
    pub(crate) fn retry_after_secs(&self) -> u32 {
        let secs = self.park.as_secs() + u64::from(self.park.subsec_nanos() > 0);
        u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        let mut t = Timeouts::from(TimeoutConfig::default());
        assert_eq!(t.retry_after_secs(), 2);
        t.park = Duration::from_millis(300);
        assert_eq!(t.retry_after_secs(), 1);
        t.park = Duration::from_millis(2500);
        assert_eq!(t.retry_after_secs(), 3);
    }
}
