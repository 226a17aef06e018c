//! The pick of one endpoint among a route's (agent connections, static backends) without
//! allocating: the eligible indices and their loads live in buffers the worker reuses.

use std::time::Instant;

use rand::RngCore;
use ringway_core::pick::{EndpointLoad, Picker};

/// Buffers one kind of pick reuses.
#[derive(Default)]
pub(crate) struct PickScratch {
    /// Indices of the eligible endpoints of the route.
    candidates: Vec<usize>,
    /// Their loads, copied out of their cells for the picker.
    loads: Vec<EndpointLoad>,
    /// Kept empty between picks: only its allocation is reused.
    refs: Vec<&'static EndpointLoad>,
}

impl PickScratch {
    /// The index (of `0..count`) that `picker` chooses among those `eligible`, given each one's
    /// `load`; `None` when none is eligible.
    pub(crate) fn pick(
        &mut self,
        count: usize,
        eligible: impl Fn(usize) -> bool,
        load: impl Fn(usize) -> EndpointLoad,
        picker: &mut dyn Picker,
        (rng, now): (&mut dyn RngCore, Instant),
    ) -> Option<usize> {
        let Self {
            candidates,
            loads,
            refs,
        } = self;
        candidates.clear();
        candidates.extend((0..count).filter(|&i| eligible(i)));
        match candidates.len() {
            0 => None,
            1 => Some(candidates[0]),
            _ => {
                loads.clear();
                loads.extend(candidates.iter().map(|&i| load(i)));
                let mut load_refs: Vec<&EndpointLoad> = std::mem::take(refs);
                load_refs.extend(loads.iter());
                let picked = picker.pick(&load_refs, rng, now);
                // Hand the (emptied) allocation back for the next pick.
                *refs = recycle(load_refs);
                candidates.get(picked?).copied()
            }
        }
    }
}

/// Empties `refs` and returns its allocation with the borrow's lifetime forgotten (the
/// collect over an empty vector of the same layout happens in place).
fn recycle(mut refs: Vec<&EndpointLoad>) -> Vec<&'static EndpointLoad> {
    refs.clear();
    refs.into_iter()
        .map(|_| unreachable!("the vector was emptied"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::recycle;
    use ringway_core::pick::EndpointLoad;

    #[test]
    fn pick_scratch_keeps_its_allocation() {
        let load = EndpointLoad::new();
        let mut refs: Vec<&EndpointLoad> = Vec::with_capacity(8);
        refs.extend([&load, &load, &load]);
        let ptr = refs.as_ptr() as usize;
        let kept = recycle(refs);
        assert!(kept.is_empty());
        assert_eq!(kept.capacity(), 8);
        assert_eq!(kept.as_ptr() as usize, ptr);
    }
}
