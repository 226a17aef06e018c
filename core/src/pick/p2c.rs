//! Power of two choices over peak-EWMA cost: the default picker.

use std::time::Instant;

use rand::{Rng, RngCore};

use super::{EndpointLoad, Picker, PickerKind};

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
