//! Least outstanding requests, and power-of-two-choices over peak-EWMA cost.

use std::time::Instant;

use rand::{Rng, RngCore};

use super::{EndpointLoad, Picker, PickerKind};

/// Picks the endpoint with the fewest outstanding requests; ties are broken uniformly at random
/// (so idle endpoints share the load instead of the first one taking it all).
#[derive(Debug, Clone, Copy, Default)]
pub struct LeastOutstanding;

impl LeastOutstanding {
    /// The (stateless) picker.
    pub fn new() -> Self {
        Self
    }
}

impl Picker for LeastOutstanding {
    fn pick(
        &mut self,
        loads: &[&EndpointLoad],
        rng: &mut dyn RngCore,
        _now: Instant,
    ) -> Option<usize> {
        let mut best = None;
        let mut best_outstanding = u32::MAX;
        let mut ties = 0u32;
        for (i, load) in loads.iter().enumerate() {
            let outstanding = load.outstanding();
            if best.is_none() || outstanding < best_outstanding {
                best = Some(i);
                best_outstanding = outstanding;
                ties = 1;
            } else if outstanding == best_outstanding {
                // Reservoir sampling: the k-th tie replaces the choice with probability 1/k.
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = Some(i);
                }
            }
        }
        best
    }

    fn kind(&self) -> PickerKind {
        PickerKind::LeastOutstanding
    }
}

/// Power of two choices over peak-EWMA cost (the default picker, as in Finagle and linkerd):
/// draw two distinct endpoints at random and take the one with the lower
/// [`EndpointLoad::cost`] (`rtt estimate × (outstanding + 1)`); on equal cost the first drawn.
/// Cheap (two cost reads whatever the endpoint count) and it avoids the herd effect of always
/// choosing the global minimum from stale information.
#[derive(Debug, Clone, Copy, Default)]
pub struct P2cPeakEwma;

impl P2cPeakEwma {
    /// The (stateless) picker.
    pub fn new() -> Self {
        Self
    }
}

impl Picker for P2cPeakEwma {
    fn pick(
        &mut self,
        loads: &[&EndpointLoad],
        rng: &mut dyn RngCore,
        now: Instant,
    ) -> Option<usize> {
        match loads.len() {
            0 => None,
            1 => Some(0),
            n => {
                let a = rng.random_range(0..n);
                let mut b = rng.random_range(0..n - 1);
                if b >= a {
                    b += 1;
                }
                let cheaper_b = loads[b].cost(now) < loads[a].cost(now);
                Some(if cheaper_b { b } else { a })
            }
        }
    }

    fn kind(&self) -> PickerKind {
        PickerKind::P2cPeakEwma
    }
}
