//! Liveness: a PING every `ping_interval` of inbound silence, and death after
//! `dead_after_missed_pings` intervals without any inbound frame.

use std::time::{Duration, Instant};

/// What a timeout asks the connection to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Beat {
    /// Send a PING with this payload.
    pub(crate) ping: Option<u64>,
    /// The peer is dead.
    pub(crate) dead: bool,
}

/// The heartbeat timers of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    interval: Duration,
    missed: u32,
    last_inbound: Instant,
    last_ping: Instant,
    pings_sent: u64,
}

impl Heartbeat {
    pub(crate) fn new(interval: Duration, missed: u32, now: Instant) -> Self {
        Self {
            interval,
            missed: missed.max(1),
            last_inbound: now,
            last_ping: now,
            pings_sent: 0,
        }
    }

    /// Any inbound frame proves the peer alive.
    pub(crate) fn on_inbound(&mut self, now: Instant) {
        self.last_inbound = self.last_inbound.max(now);
    }

    fn next_ping(&self) -> Instant {
        self.last_inbound.max(self.last_ping) + self.interval
    }

    fn dead_at(&self) -> Instant {
        self.last_inbound + self.interval * self.missed
    }

    /// When [`Self::on_timeout`] has something to do; pings only count once `pinging`
    /// (after the handshake).
    pub(crate) fn poll_timeout(&self, pinging: bool) -> Instant {
        if pinging {
            self.next_ping().min(self.dead_at())
        } else {
            self.dead_at()
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant, pinging: bool) -> Beat {
        let mut beat = Beat::default();
        if now >= self.dead_at() {
            beat.dead = true;
            return beat;
        }
        if pinging && now >= self.next_ping() {
            self.pings_sent += 1;
            self.last_ping = now;
            beat.ping = Some(self.pings_sent);
        }
        beat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn pings_after_an_interval_of_silence() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(5 * SEC, 3, t0);
        assert_eq!(hb.poll_timeout(true), t0 + 5 * SEC);
        assert_eq!(hb.on_timeout(t0 + 4 * SEC, true), Beat::default());
        assert_eq!(hb.on_timeout(t0 + 5 * SEC, true).ping, Some(1));
        assert_eq!(hb.poll_timeout(true), t0 + 10 * SEC);
        assert_eq!(hb.on_timeout(t0 + 10 * SEC, true).ping, Some(2));
    }

    #[test]
    fn inbound_frames_postpone_pings_and_death() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(5 * SEC, 3, t0);
        hb.on_inbound(t0 + 4 * SEC);
        assert_eq!(hb.poll_timeout(true), t0 + 9 * SEC);
        assert!(!hb.on_timeout(t0 + 18 * SEC, true).dead);
        assert!(hb.on_timeout(t0 + 19 * SEC, true).dead);
    }

    #[test]
    fn no_pings_before_the_handshake_but_death_still_counts() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(5 * SEC, 3, t0);
        assert_eq!(hb.poll_timeout(false), t0 + 15 * SEC);
        assert_eq!(hb.on_timeout(t0 + 10 * SEC, false), Beat::default());
        assert!(hb.on_timeout(t0 + 15 * SEC, false).dead);
    }
}
