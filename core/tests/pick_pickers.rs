//! Picker distributions with a seeded rng and a fake clock, and a property test that no picker ever
//! returns an index outside the slice.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use ringway_core::pick::{
    EndpointLoad, LeastOutstanding, P2cPeakEwma, Picker, PickerKind, RoundRobin, WeightedRoundRobin,
};

fn rng() -> StdRng {
    StdRng::seed_from_u64(0x5eed)
}

fn picks(picker: &mut dyn Picker, loads: &[EndpointLoad], n: usize, now: Instant) -> Vec<usize> {
    let refs: Vec<&EndpointLoad> = loads.iter().collect();
    let mut rng = rng();
    (0..n)
        .map(|_| picker.pick(&refs, &mut rng, now).unwrap())
        .collect()
}

fn counts(picked: &[usize], endpoints: usize) -> Vec<usize> {
    let mut counts = vec![0; endpoints];
    for &i in picked {
        counts[i] += 1;
    }
    counts
}

/// An endpoint whose estimate is `rtt` at `now`.
fn measured(now: Instant, rtt: Duration) -> EndpointLoad {
    let mut e = EndpointLoad::new();
    e.start();
    e.finish(now, rtt);
    e
}

#[test]
fn every_picker_returns_none_for_no_endpoints() {
    let mut rng = rng();
    for kind in PickerKind::ALL {
        assert_eq!(
            kind.build().pick(&[], &mut rng, Instant::now()),
            None,
            "{kind}"
        );
    }
    assert_eq!(
        WeightedRoundRobin::new(vec![3]).pick(&[], &mut rng, Instant::now()),
        None
    );
}

#[test]
fn every_picker_returns_the_only_endpoint() {
    let mut rng = rng();
    let one = EndpointLoad::new();
    for kind in PickerKind::ALL {
        let mut picker = kind.build();
        for _ in 0..10 {
            assert_eq!(
                picker.pick(&[&one], &mut rng, Instant::now()),
                Some(0),
                "{kind}"
            );
        }
    }
}

#[test]
fn round_robin_is_exact() {
    let loads = vec![EndpointLoad::new(); 3];
    let picked = picks(&mut RoundRobin::new(), &loads, 7, Instant::now());
    assert_eq!(picked, [0, 1, 2, 0, 1, 2, 0]);
}

#[test]
fn round_robin_continues_when_the_endpoint_count_shrinks() {
    let mut rr = RoundRobin::new();
    let mut rng = rng();
    let (a, b, c) = (
        EndpointLoad::new(),
        EndpointLoad::new(),
        EndpointLoad::new(),
    );
    let now = Instant::now();
    assert_eq!(rr.pick(&[&a, &b, &c], &mut rng, now), Some(0));
    assert_eq!(rr.pick(&[&a, &b, &c], &mut rng, now), Some(1));
    assert_eq!(rr.pick(&[&a, &b, &c], &mut rng, now), Some(2));
    assert_eq!(rr.pick(&[&a, &b], &mut rng, now), Some(1));
    assert_eq!(rr.pick(&[&a, &b], &mut rng, now), Some(0));
}

#[test]
fn smooth_weighted_round_robin_matches_nginx() {
    // nginx's documented example: weights 5, 1, 1 give a a b a c a a.
    let loads = vec![EndpointLoad::new(); 3];
    let picked = picks(
        &mut WeightedRoundRobin::new(vec![5, 1, 1]),
        &loads,
        14,
        Instant::now(),
    );
    assert_eq!(picked, [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
}

#[test]
fn weighted_round_robin_ratios_are_exact_over_every_cycle() {
    let weights = [3u32, 1, 4, 2];
    let total: u32 = weights.iter().sum();
    let loads: Vec<EndpointLoad> = weights
        .iter()
        .map(|&w| EndpointLoad::new().with_weight(w))
        .collect();
    // Weights from the endpoints themselves (what PickerKind::build uses).
    let picked = picks(
        &mut *PickerKind::WeightedRoundRobin.build(),
        &loads,
        5 * total as usize,
        Instant::now(),
    );
    for cycle in picked.chunks(total as usize) {
        let expected: Vec<usize> = weights.iter().map(|&w| w as usize).collect();
        assert_eq!(counts(cycle, weights.len()), expected);
    }
}

#[test]
fn weighted_round_robin_explicit_weights_override_and_zero_excludes() {
    let loads = vec![EndpointLoad::new().with_weight(100); 3];
    let picked = picks(
        &mut WeightedRoundRobin::new(vec![0, 2]),
        &loads,
        102,
        Instant::now(),
    );
    // Endpoint 0 has explicit weight 0, endpoint 1 explicit 2, endpoint 2 its own 100.
    assert_eq!(counts(&picked, 3), [0, 2, 100]);
    let mut rng = rng();
    let zero = EndpointLoad::new().with_weight(0);
    assert_eq!(
        WeightedRoundRobin::default().pick(&[&zero, &zero], &mut rng, Instant::now()),
        None
    );
}

#[test]
fn least_outstanding_avoids_the_busy_endpoint() {
    let mut loads = vec![EndpointLoad::new(); 3];
    for _ in 0..5 {
        loads[1].start();
    }
    loads[2].start();
    let picked = picks(&mut LeastOutstanding::new(), &loads, 50, Instant::now());
    assert!(picked.iter().all(|&i| i == 0), "{picked:?}");
}

#[test]
fn least_outstanding_breaks_ties_randomly() {
    let mut loads = vec![EndpointLoad::new(); 4];
    loads[3].start();
    let picked = picks(&mut LeastOutstanding::new(), &loads, 3000, Instant::now());
    let counts = counts(&picked, 4);
    assert_eq!(counts[3], 0);
    for &c in &counts[..3] {
        assert!((800..1200).contains(&c), "uneven tie-break: {counts:?}");
    }
}

#[test]
fn least_outstanding_spreads_as_requests_start() {
    // Simulate the driver: each pick starts a request there; nothing finishes.
    let mut loads = vec![EndpointLoad::new(); 3];
    let mut rng = rng();
    let mut picker = LeastOutstanding::new();
    for _ in 0..30 {
        let refs: Vec<&EndpointLoad> = loads.iter().collect();
        let i = picker.pick(&refs, &mut rng, Instant::now()).unwrap();
        loads[i].start();
    }
    assert!(loads.iter().all(|l| l.outstanding() == 10));
}

#[test]
fn p2c_prefers_the_fast_endpoint() {
    let now = Instant::now();
    let mut loads: Vec<EndpointLoad> = (0..4)
        .map(|_| measured(now, Duration::from_millis(100)))
        .collect();
    loads[2] = measured(now, Duration::from_millis(2));
    let picked = picks(&mut P2cPeakEwma::new(), &loads, 1000, now);
    let counts = counts(&picked, 4);
    // The fast one wins every draw it is part of: P(drawn) = 1 - (3/4 · 2/3) = 1/2.
    assert!((420..580).contains(&counts[2]), "{counts:?}");
    for (i, &c) in counts.iter().enumerate() {
        assert!(i == 2 || c < counts[2] / 2, "{counts:?}");
    }
}

#[test]
fn p2c_with_two_endpoints_always_takes_the_cheaper() {
    let now = Instant::now();
    let loads = [
        measured(now, Duration::from_millis(50)),
        measured(now, Duration::from_millis(5)),
    ];
    let picked = picks(&mut P2cPeakEwma::new(), &loads, 100, now);
    assert!(picked.iter().all(|&i| i == 1));
}

#[test]
fn p2c_weighs_outstanding_requests() {
    let now = Instant::now();
    // Same latency, but endpoint 0 has 3 requests in flight: cost 4× that of endpoint 1.
    let mut busy = measured(now, Duration::from_millis(10));
    for _ in 0..3 {
        busy.start();
    }
    let idle = measured(now, Duration::from_millis(10));
    let picked = picks(&mut P2cPeakEwma::new(), &[busy, idle], 20, now);
    assert!(picked.iter().all(|&i| i == 1));
    // A fast endpoint stays preferred while its queue is short: 1 ms × 5 < 10 ms × 1.
    let mut fast_busy = measured(now, Duration::from_millis(1));
    for _ in 0..4 {
        fast_busy.start();
    }
    let slow_idle = measured(now, Duration::from_millis(10));
    let picked = picks(&mut P2cPeakEwma::new(), &[slow_idle, fast_busy], 20, now);
    assert!(picked.iter().all(|&i| i == 1));
}

#[test]
fn new_endpoints_start_at_the_default_rtt() {
    let now = Instant::now();
    let fresh = EndpointLoad::new();
    assert_eq!(
        fresh.rtt_estimate(now + Duration::from_secs(60)),
        ringway_core::pick::DEFAULT_RTT
    );
    // A fresh endpoint beats a measured slow one and loses to a measured fast one.
    let slow = measured(now, Duration::from_millis(300));
    let fast = measured(now, Duration::from_millis(3));
    assert!(fresh.cost(now) < slow.cost(now));
    assert!(fresh.cost(now) > fast.cost(now));
}

proptest! {
    #[test]
    fn pickers_never_return_an_out_of_range_index(
        seed in any::<u64>(),
        endpoints in prop::collection::vec((0u32..8, 0u64..500, 0u32..4), 0..12),
        weights in prop::collection::vec(0u32..5, 0..12),
        rounds in 1usize..40,
        shrink_to in 0usize..12,
    ) {
        let now = Instant::now();
        let loads: Vec<EndpointLoad> = endpoints
            .iter()
            .map(|&(outstanding, rtt_ms, weight)| {
                let mut e = measured(now, Duration::from_millis(rtt_ms)).with_weight(weight);
                for _ in 0..outstanding {
                    e.start();
                }
                e
            })
            .collect();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut pickers: Vec<Box<dyn Picker>> = PickerKind::ALL.iter().map(|k| k.build()).collect();
        pickers.push(Box::new(WeightedRoundRobin::new(weights)));
        for picker in &mut pickers {
            for round in 0..rounds {
                // Change the endpoint count half-way, as agents come and go.
                let n = if round < rounds / 2 { loads.len() } else { shrink_to.min(loads.len()) };
                let refs: Vec<&EndpointLoad> = loads[..n].iter().collect();
                let at = now + Duration::from_millis(round as u64 * 100);
                match picker.pick(&refs, &mut rng, at) {
                    Some(i) => prop_assert!(i < n, "{:?} picked {} of {}", picker, i, n),
                    None => prop_assert!(n == 0 || picker.kind() == PickerKind::WeightedRoundRobin),
                }
            }
        }
    }
}
