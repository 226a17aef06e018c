//! Per-endpoint load record: outstanding requests and a peak-EWMA round-trip estimate.
//!
//! The estimate follows Finagle's / linkerd's peak EWMA:
//!
//! - a new endpoint starts at a default RTT ([`DEFAULT_RTT`]), so it is neither shunned nor
//!   flooded before its first response;
//! - a sample above the current estimate replaces it at once (the *peak*: a slow endpoint is
//!   noticed after one slow response);
//! - a sample below it is blended in with weight `1 - e^(-Δt/τ)`, where Δt is the time since the
//!   previous update and τ the decay time constant ([`DEFAULT_DECAY`]);
//! - between samples the estimate decays towards zero with the same time constant, so an endpoint
//!   that was slow a while ago gets probed again instead of being starved forever.
//!
//! The load cost used by pickers is `estimate × (outstanding + 1)`. Nothing here reads a clock:
//! `now` is always an argument.

use std::time::{Duration, Instant};

/// RTT assumed for an endpoint that has not answered yet.
pub const DEFAULT_RTT: Duration = Duration::from_millis(30);

/// Time constant τ of the EWMA decay: after τ without samples the estimate is at 1/e of its value.
pub const DEFAULT_DECAY: Duration = Duration::from_secs(10);

/// Load record of one endpoint (an agent connection or a static backend), owned by whoever owns the
/// endpoint and handed to a [`Picker`](super::Picker) by reference.
#[derive(Debug, Clone)]
pub struct EndpointLoad {
    outstanding: u32,
    /// Peak-EWMA estimate in nanoseconds, as of `stamp`.
    rtt_ns: f64,
    /// When `rtt_ns` was last updated; `None` until the first sample.
    stamp: Option<Instant>,
    /// Decay time constant τ in nanoseconds.
    decay_ns: f64,
    /// Static weight for weighted round robin (default 1; 0 = never picked by weight).
    weight: u32,
}

impl EndpointLoad {
    /// A fresh record: no requests outstanding, estimate [`DEFAULT_RTT`], decay [`DEFAULT_DECAY`],
    /// weight 1.
    pub fn new() -> Self {
        Self::with_params(DEFAULT_RTT, DEFAULT_DECAY)
    }

    /// A fresh record with an explicit starting RTT and decay time constant (τ ≥ 1 ns).
    pub fn with_params(default_rtt: Duration, decay: Duration) -> Self {
        Self {
            outstanding: 0,
            rtt_ns: duration_ns(default_rtt),
            stamp: None,
            decay_ns: duration_ns(decay).max(1.0),
            weight: 1,
        }
    }

    /// Sets the weight used by [`WeightedRoundRobin`](super::WeightedRoundRobin) (builder style).
    #[must_use]
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Changes the weight used by [`WeightedRoundRobin`](super::WeightedRoundRobin).
    pub fn set_weight(&mut self, weight: u32) {
        self.weight = weight;
    }

    /// The static weight (default 1).
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// A request was sent to this endpoint.
    pub fn start(&mut self) {
        self.outstanding = self.outstanding.saturating_add(1);
    }

    /// A request that [`start`](Self::start)ed got its response after `rtt`; records the sample.
    pub fn finish(&mut self, now: Instant, rtt: Duration) {
        self.outstanding = self.outstanding.saturating_sub(1);
        self.observe(now, rtt);
    }

    /// A request that [`start`](Self::start)ed ended without an RTT sample worth recording (the
    /// client went away, the request was cancelled).
    pub fn abandon(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
    }

    /// Feeds one RTT sample into the peak EWMA without touching the outstanding count.
    pub fn observe(&mut self, now: Instant, rtt: Duration) {
        let sample = duration_ns(rtt);
        let decayed = self.decayed_ns(now);
        self.rtt_ns = if sample > decayed {
            sample
        } else {
            let w = self.weight_of_old(now);
            decayed * w + sample * (1.0 - w)
        };
        // Never move the stamp backwards (samples from a caller's slightly older `now`).
        self.stamp = Some(self.stamp.map_or(now, |stamp| stamp.max(now)));
    }

    /// Requests started and not yet finished or abandoned.
    pub fn outstanding(&self) -> u32 {
        self.outstanding
    }

    /// The RTT estimate as of `now` (decayed since the last sample).
    pub fn rtt_estimate(&self, now: Instant) -> Duration {
        Duration::from_secs_f64(self.decayed_ns(now) / 1e9)
    }

    /// The peak-EWMA load cost as of `now`: `rtt estimate in ns × (outstanding + 1)`. Lower is
    /// better.
    pub fn cost(&self, now: Instant) -> f64 {
        self.decayed_ns(now) * (f64::from(self.outstanding) + 1.0)
    }

    /// The stored estimate decayed towards zero over the time since the last update. Before the
    /// first sample the default RTT holds (no decay: there is nothing to forget yet).
    fn decayed_ns(&self, now: Instant) -> f64 {
        match self.stamp {
            Some(_) => self.rtt_ns * self.weight_of_old(now),
            None => self.rtt_ns,
        }
    }

    /// `e^(-Δt/τ)`: how much of the previous estimate survives to `now`.
    fn weight_of_old(&self, now: Instant) -> f64 {
        let Some(stamp) = self.stamp else {
            return 0.0;
        };
        let elapsed = duration_ns(now.saturating_duration_since(stamp));
        (-elapsed / self.decay_ns).exp()
    }
}

impl Default for EndpointLoad {
    fn default() -> Self {
        Self::new()
    }
}

fn duration_ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_below_default_replaces_it() {
        // With no previous sample, the old weight is 0: the first sample is taken as is.
        let t0 = Instant::now();
        let mut e = EndpointLoad::new();
        e.start();
        e.finish(t0, Duration::from_millis(5));
        assert_eq!(e.rtt_estimate(t0), Duration::from_millis(5));
        assert_eq!(e.outstanding(), 0);
    }

    #[test]
    fn counts_saturate() {
        let mut e = EndpointLoad::new();
        e.abandon();
        assert_eq!(e.outstanding(), 0);
        e.start();
        e.start();
        e.abandon();
        assert_eq!(e.outstanding(), 1);
    }
}
