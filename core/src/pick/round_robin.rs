//! Round robin and smooth weighted round robin (nginx's algorithm).

use std::time::Instant;

use rand::RngCore;

use super::{EndpointLoad, Picker, PickerKind};

/// Picks endpoints in turn: 0, 1, …, n-1, 0, … (the position survives changes in `n`; after a
/// change the rotation simply continues modulo the new count).
#[derive(Debug, Clone, Default)]
pub struct RoundRobin {
    next: usize,
}

impl RoundRobin {
    /// Starts at endpoint 0.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Picker for RoundRobin {
    fn pick(
        &mut self,
        loads: &[&EndpointLoad],
        _rng: &mut dyn RngCore,
        _now: Instant,
    ) -> Option<usize> {
        if loads.is_empty() {
            return None;
        }
        let index = self.next % loads.len();
        self.next = index + 1;
        Some(index)
    }

    fn kind(&self) -> PickerKind {
        PickerKind::RoundRobin
    }
}

/// Smooth weighted round robin as nginx does it: every pick adds each endpoint's weight to its
/// running score, takes the endpoint with the highest score (the first on ties) and subtracts the
/// total weight from it. Over any `total weight` consecutive picks each endpoint is chosen exactly
/// `weight` times, and heavy endpoints are interleaved with light ones rather than picked in a
/// burst (weights 5,1,1 give a a b a c a a, not a a a a a b c).
///
/// The weight of endpoint `i` is `weights[i]` when the picker was built with that many weights,
/// else the endpoint's own [`EndpointLoad::weight`]. Weight 0 means never picked; all-zero weights
/// pick nothing. The running scores restart when the number of endpoints changes.
#[derive(Debug, Clone, Default)]
pub struct WeightedRoundRobin {
    weights: Vec<u32>,
    scores: Vec<i64>,
}

impl WeightedRoundRobin {
    /// A picker with fixed weights by endpoint index (missing ones come from the endpoints).
    pub fn new(weights: Vec<u32>) -> Self {
        Self {
            weights,
            scores: Vec::new(),
        }
    }

    /// A picker that takes every weight from [`EndpointLoad::weight`].
    pub fn from_endpoint_weights() -> Self {
        Self::default()
    }

    fn weight_of(&self, index: usize, load: &EndpointLoad) -> i64 {
        i64::from(
            self.weights
                .get(index)
                .copied()
                .unwrap_or_else(|| load.weight()),
        )
    }
}

impl Picker for WeightedRoundRobin {
    fn pick(
        &mut self,
        loads: &[&EndpointLoad],
        _rng: &mut dyn RngCore,
        _now: Instant,
    ) -> Option<usize> {
        if self.scores.len() != loads.len() {
            self.scores.clear();
            self.scores.resize(loads.len(), 0);
        }
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, load) in loads.iter().enumerate() {
            let weight = self.weight_of(i, load);
            if weight == 0 {
                continue;
            }
            self.scores[i] += weight;
            total += weight;
            if best.is_none_or(|b| self.scores[i] > self.scores[b]) {
                best = Some(i);
            }
        }
        let best = best?;
        self.scores[best] -= total;
        Some(best)
    }

    fn kind(&self) -> PickerKind {
        PickerKind::WeightedRoundRobin
    }
}
