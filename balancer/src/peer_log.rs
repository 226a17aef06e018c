//! Log lines a peer can cause by misbehaving (garbage on the agent port, a wrong token, malformed
//! requests) pass through one [`PeerLog`] per worker: per peer address and kind of mistake, the
//! first `log.peer_error_burst` lines of each `log.peer_error_interval` are written, and the rest
//! are counted and reported in one line, "… suppressed N similar", when the interval ends. The
//! decisions are `ringway_log::RepeatLimiter`'s (sans-IO); this is its driver.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ringway_log::{RepeatLimiter, Suppressed, Verdict};
use ringway_tuning::duration::format_duration;
use tracing::warn;

use crate::config::LogConfig;

/// The kinds of mistake a peer's lines are limited by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PeerMistake {
    /// An agent connection broke the tunnel protocol before its hello.
    AgentProtocol,
    /// An agent connection's TLS handshake failed, or it spoke TLS to a plaintext listener.
    AgentTls,
    /// An agent connection sent no hello in time, or closed before it.
    AgentNoHello,
    /// An agent's hello was refused (token, route pattern, route count).
    AgentRejected,
    /// A user request the balancer refused as the client's fault (4xx).
    BadRequest,
    /// A user connection that did not begin with a valid PROXY protocol header
    /// (`listen.proxy_protocol`).
    ProxyProtocol,
}

impl PeerMistake {
    /// The kind as it appears in the summary line's `kind` field.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::AgentProtocol => "agent protocol error",
            Self::AgentTls => "agent TLS handshake failed",
            Self::AgentNoHello => "agent without hello",
            Self::AgentRejected => "agent rejected",
            Self::BadRequest => "bad request",
            Self::ProxyProtocol => "bad PROXY protocol header",
        }
    }
}

/// One worker's limiter of peer-caused log lines.
pub(crate) struct PeerLog {
    limiter: RefCell<RepeatLimiter<(IpAddr, PeerMistake)>>,
    interval: Cell<Duration>,
    burst: Cell<u32>,
}

impl PeerLog {
    /// A limiter as `config` says.
    pub(crate) fn new(config: &LogConfig) -> Self {
        Self {
            limiter: RefCell::new(RepeatLimiter::new(
                config.peer_error_burst,
                config.peer_error_interval,
            )),
            interval: Cell::new(config.peer_error_interval),
            burst: Cell::new(config.peer_error_burst),
        }
    }

    /// A reload: new limits, when they changed (the counts so far start again).
    pub(crate) fn reconfigure(&self, config: &LogConfig) {
        if self.interval.get() == config.peer_error_interval
            && self.burst.get() == config.peer_error_burst
        {
            return;
        }
        self.limiter.replace(RepeatLimiter::new(
            config.peer_error_burst,
            config.peer_error_interval,
        ));
        self.interval.set(config.peer_error_interval);
        self.burst.set(config.peer_error_burst);
    }

    /// Whether the caller should log this mistake of `peer` now. A summary of the same key's
    /// previous interval, if lines were held back in it, is logged first.
    pub(crate) fn allow(&self, peer: SocketAddr, mistake: PeerMistake) -> bool {
        let verdict = self
            .limiter
            .borrow_mut()
            .check((peer.ip(), mistake), Instant::now());
        match verdict {
            Verdict::Log => true,
            Verdict::Suppress => false,
            Verdict::LogAfterSummary(count) => {
                self.summary(&Suppressed {
                    key: Some((peer.ip(), mistake)),
                    count,
                });
                true
            }
        }
    }

    /// Writes the summaries of ended intervals, once per interval, forever (a task of the
    /// worker).
    pub(crate) async fn run(&self) {
        let tick = self.interval.get().max(Duration::from_millis(100));
        loop {
            ringway_io::time::sleep(tick).await;
            let ended = self.limiter.borrow_mut().expire(Instant::now());
            for s in &ended {
                self.summary(s);
            }
        }
    }

    fn summary(&self, s: &Suppressed<(IpAddr, PeerMistake)>) {
        let every = format_duration(self.interval.get());
        match s.key {
            Some((ip, mistake)) => warn!(
                peer = %ip,
                kind = mistake.as_str(),
                suppressed = s.count,
                "{}: suppressed {} similar from this peer in the last {every}",
                mistake.as_str(),
                s.count
            ),
            None => warn!(
                suppressed = s.count,
                "suppressed {} similar lines from peers beyond the tracked ones in the last {every}",
                s.count
            ),
        }
    }
}
