//! Whether a static backend is up, decided without IO.
//!
//! Two independent verdicts, as HAProxy and nginx keep them:
//! - [`ActiveHealth`]: the result of periodic checks (`GET path`, any 2xx or 3xx is healthy).
//!   A backend goes down after `fall` consecutive failed checks and comes back after `rise`
//!   consecutive good ones; it starts up, so a balancer that just started serves at once.
//! - [`Ejection`]: what the requests themselves saw (passive checks). `max_fails` consecutive
//!   failures (a connect error, a timeout, a 5xx) take the backend out for `fail_timeout`; after
//!   that it is tried again, and one more failure takes it out again at once, while one success
//!   clears the count.
//!
//! [`probe_request`] writes a check's request and [`probe_verdict`] judges its response.

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};

use crate::http::{Limits, ResponseParser};

/// Active checks' view of one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveHealth {
    rise: u32,
    fall: u32,
    up: bool,
    /// Consecutive results that disagree with `up`.
    streak: u32,
}

impl ActiveHealth {
    /// A backend that is up until `fall` checks in a row fail. `rise` and `fall` of 0 count as 1.
    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            up: true,
            streak: 0,
        }
    }

    /// Whether the backend is up.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Records one check; returns the new state when it changed.
    pub fn record(&mut self, healthy: bool) -> Option<bool> {
        if healthy == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.up { self.fall } else { self.rise };
        if self.streak < needed {
            return None;
        }
        self.up = healthy;
        self.streak = 0;
        Some(self.up)
    }
}

/// Passive checks' view of one backend (on one worker: each worker sees its own requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ejection {
    max_fails: u32,
    fail_timeout: Duration,
    /// Consecutive failed requests.
    fails: u32,
    /// Out until then.
    until: Option<Instant>,
}

impl Ejection {
    /// Ejects after `max_fails` consecutive failures for `fail_timeout`; `max_fails` 0 never
    /// ejects.
    pub fn new(max_fails: u32, fail_timeout: Duration) -> Self {
        Self {
            max_fails,
            fail_timeout,
            fails: 0,
            until: None,
        }
    }

    /// Whether requests may go to the backend at `now`.
    pub fn is_available(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now >= until)
    }

    /// A request to the backend succeeded: the count starts over.
    pub fn success(&mut self) {
        self.fails = 0;
        self.until = None;
    }

    /// A request to the backend failed at `now`; returns true when this ejected it.
    pub fn failure(&mut self, now: Instant) -> bool {
        if self.max_fails == 0 {
            return false;
        }
        self.fails = self.fails.saturating_add(1);
        if self.fails < self.max_fails || !self.is_available(now) {
            return false;
        }
        self.until = Some(now + self.fail_timeout);
        true
    }
}

/// Writes a health check's request: `GET path` for `host`, closing the connection after it.
pub fn probe_request(host: &str, path: &str, out: &mut BytesMut) {
    out.reserve(64 + host.len() + path.len());
    out.put_slice(b"GET ");
    out.put_slice(path.as_bytes());
    out.put_slice(b" HTTP/1.1\r\nHost: ");
    out.put_slice(host.as_bytes());
    out.put_slice(b"\r\nUser-Agent: ringway-health-check\r\nConnection: close\r\n\r\n");
}

/// What a check's response so far says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeVerdict {
    /// Not a whole response head yet.
    NeedMore,
    /// A final status of 2xx or 3xx.
    Healthy(u16),
    /// Any other final status.
    Unhealthy(u16),
    /// Not an HTTP/1.x response.
    Malformed,
}

/// Judges the bytes a check has read (interim 1xx heads are skipped).
pub fn probe_verdict(buf: &mut BytesMut) -> ProbeVerdict {
    let mut parser = ResponseParser::new(Limits::default());
    loop {
        match parser.parse(buf) {
            Ok(None) => return ProbeVerdict::NeedMore,
            Err(_) => return ProbeVerdict::Malformed,
            Ok(Some(head)) if head.is_interim() => {}
            Ok(Some(head)) => {
                let status = head.status();
                return if (200..400).contains(&status) {
                    ProbeVerdict::Healthy(status)
                } else {
                    ProbeVerdict::Unhealthy(status)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falls_after_fall_failures_and_rises_after_rise_successes() {
        let mut h = ActiveHealth::new(2, 3);
        assert!(h.is_up(), "up from the start");
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(true), None, "a good check breaks the streak");
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), Some(false), "third failure in a row");
        assert!(!h.is_up());
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(false), None, "a failure breaks the rise");
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), Some(true));
        assert!(h.is_up());
    }

    #[test]
    fn zero_rise_and_fall_act_as_one() {
        let mut h = ActiveHealth::new(0, 0);
        assert_eq!(h.record(false), Some(false));
        assert_eq!(h.record(true), Some(true));
    }

    #[test]
    fn ejection_after_consecutive_failures_then_retry_after_timeout() {
        let t0 = Instant::now();
        let mut e = Ejection::new(3, Duration::from_secs(10));
        assert!(e.is_available(t0));
        assert!(!e.failure(t0));
        assert!(!e.failure(t0));
        e.success();
        assert!(!e.failure(t0));
        assert!(!e.failure(t0));
        assert!(e.failure(t0), "third in a row ejects");
        assert!(!e.is_available(t0 + Duration::from_secs(9)));
        let later = t0 + Duration::from_secs(10);
        assert!(e.is_available(later), "tried again after fail_timeout");
        assert!(e.failure(later), "one more failure ejects it again at once");
        assert!(!e.is_available(later + Duration::from_secs(1)));
        e.success();
        assert!(e.is_available(later + Duration::from_secs(1)));
    }

    #[test]
    fn failures_while_ejected_do_not_extend_it() {
        let t0 = Instant::now();
        let mut e = Ejection::new(1, Duration::from_secs(10));
        assert!(e.failure(t0));
        assert!(!e.failure(t0 + Duration::from_secs(5)), "already out");
        assert!(e.is_available(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn zero_max_fails_never_ejects() {
        let t0 = Instant::now();
        let mut e = Ejection::new(0, Duration::from_secs(10));
        for _ in 0..100 {
            assert!(!e.failure(t0));
        }
        assert!(e.is_available(t0));
    }

    #[test]
    fn probe_request_is_a_closing_get() {
        let mut out = BytesMut::new();
        probe_request("app.test", "/healthz", &mut out);
        assert_eq!(
            &out[..],
            b"GET /healthz HTTP/1.1\r\nHost: app.test\r\nUser-Agent: ringway-health-check\r\n\
              Connection: close\r\n\r\n"
        );
    }

    #[test]
    fn verdicts() {
        let judge = |text: &[u8]| probe_verdict(&mut BytesMut::from(text));
        assert_eq!(judge(b"HTTP/1.1 200 OK\r\n"), ProbeVerdict::NeedMore);
        assert_eq!(
            judge(b"HTTP/1.1 204 No Content\r\n\r\n"),
            ProbeVerdict::Healthy(204)
        );
        assert_eq!(
            judge(b"HTTP/1.1 301 Moved\r\nLocation: /\r\n\r\n"),
            ProbeVerdict::Healthy(301)
        );
        assert_eq!(
            judge(b"HTTP/1.1 503 Busy\r\n\r\n"),
            ProbeVerdict::Unhealthy(503)
        );
        assert_eq!(
            judge(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"),
            ProbeVerdict::Healthy(200)
        );
        assert_eq!(judge(b"SSH-2.0-OpenSSH\r\n\r\n"), ProbeVerdict::Malformed);
    }
}
