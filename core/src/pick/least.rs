//! Least outstanding requests: the endpoint with the fewest requests in flight.

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
