//! Peak-EWMA behaviour of `EndpointLoad` with a fake clock (`Instant` + offsets).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use ringway_core::pick::{EndpointLoad, DEFAULT_DECAY};

const MS: Duration = Duration::from_millis(1);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * b.abs().max(1.0)
}

fn sample(e: &mut EndpointLoad, at: Instant, rtt: Duration) {
    e.start();
    e.finish(at, rtt);
}

#[test]
fn a_higher_sample_is_taken_as_the_new_peak_at_once() {
    let t0 = Instant::now();
    let mut e = EndpointLoad::new();
    sample(&mut e, t0, 10 * MS);
    sample(&mut e, t0 + MS, 400 * MS);
    assert_eq!(e.rtt_estimate(t0 + MS), 400 * MS);
}

#[test]
fn a_lower_sample_is_blended_by_elapsed_time() {
    let t0 = Instant::now();
    let mut e = EndpointLoad::new();
    sample(&mut e, t0, 100 * MS);
    // One time constant later the old estimate keeps weight 1/e, also in what it decayed to.
    let t1 = t0 + DEFAULT_DECAY;
    sample(&mut e, t1, 10 * MS);
    let w = (-1.0f64).exp();
    let expected = 100.0 * w * w + 10.0 * (1.0 - w);
    assert!(
        close(ms(e.rtt_estimate(t1)), expected),
        "{:?} vs {expected}",
        e.rtt_estimate(t1)
    );
}

#[test]
fn a_lower_sample_right_after_a_peak_barely_moves_it() {
    let t0 = Instant::now();
    let mut e = EndpointLoad::new();
    sample(&mut e, t0, 500 * MS);
    sample(&mut e, t0 + MS, MS);
    let est = ms(e.rtt_estimate(t0 + MS));
    assert!(est > 499.0 && est < 500.0, "{est}");
}

#[test]
fn the_estimate_decays_towards_zero_with_the_time_constant() {
    let t0 = Instant::now();
    let mut e = EndpointLoad::new();
    sample(&mut e, t0, 100 * MS);
    assert!(close(ms(e.rtt_estimate(t0)), 100.0));
    assert!(close(
        ms(e.rtt_estimate(t0 + DEFAULT_DECAY)),
        100.0 * (-1.0f64).exp()
    ));
    assert!(close(
        ms(e.rtt_estimate(t0 + 3 * DEFAULT_DECAY)),
        100.0 * (-3.0f64).exp()
    ));
    assert!(e.rtt_estimate(t0 + 100 * DEFAULT_DECAY) < Duration::from_micros(1));
}

#[test]
fn the_decay_time_constant_is_configurable() {
    let t0 = Instant::now();
    let mut e = EndpointLoad::with_params(20 * MS, Duration::from_secs(1));
    assert_eq!(e.rtt_estimate(t0), 20 * MS);
    sample(&mut e, t0, 100 * MS);
    assert!(close(
        ms(e.rtt_estimate(t0 + Duration::from_secs(1))),
        100.0 * (-1.0f64).exp()
    ));
}

#[test]
fn a_clock_that_goes_backwards_does_not_inflate_the_estimate() {
    let t0 = Instant::now() + Duration::from_secs(5);
    let mut e = EndpointLoad::new();
    sample(&mut e, t0, 100 * MS);
    assert_eq!(e.rtt_estimate(t0 - Duration::from_secs(1)), 100 * MS);
    sample(&mut e, t0 - Duration::from_secs(1), 50 * MS);
    assert_eq!(e.rtt_estimate(t0), 100 * MS);
}

#[test]
fn cost_is_estimate_times_outstanding_plus_one() {
    let t0 = Instant::now();
    let mut e = EndpointLoad::new();
    sample(&mut e, t0, 10 * MS);
    assert!(close(e.cost(t0), 10e6));
    e.start();
    e.start();
    assert_eq!(e.outstanding(), 2);
    assert!(close(e.cost(t0), 30e6));
    e.abandon();
    assert!(close(e.cost(t0), 20e6));
    let later = t0 + DEFAULT_DECAY;
    assert!(close(e.cost(later), 20e6 * (-1.0f64).exp()));
}

#[test]
fn a_slow_endpoint_is_probed_again_once_its_peak_has_decayed() {
    // After a 1 s spike, a 30 ms endpoint looks cheaper until the spike has decayed below 30 ms:
    // ln(1000/30) time constants ≈ 3.5 τ.
    let t0 = Instant::now();
    let mut spiky = EndpointLoad::new();
    sample(&mut spiky, t0, 1000 * MS);
    let mut steady = EndpointLoad::new();
    sample(&mut steady, t0, 30 * MS);
    let mut at = t0;
    for _ in 0..60 {
        if spiky.cost(at) < steady.cost(at) {
            break;
        }
        at += Duration::from_secs(1);
        sample(&mut steady, at, 30 * MS);
    }
    assert!(spiky.cost(at) < steady.cost(at), "the spike never decayed");
    let taus = at.duration_since(t0).as_secs_f64() / DEFAULT_DECAY.as_secs_f64();
    assert!((3.4..3.7).contains(&taus), "{taus}");
}
