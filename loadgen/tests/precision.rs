//! The schedule is kept to within µs, not to the runtime's 1 ms timer tick: at 10 000 req/s
//! against a loopback server the send-lag p99 stays far below a tick.
//!
//! The machine this runs on is shared (2 cores, other builds): a thread that is not given the
//! CPU is late however precise its timer is. So the bound is relative to what the machine does
//! at the same moment: a probe thread that works and sleeps in turn records how late the kernel
//! lets it run, and the send-lag p99 must stay within 500 µs of the probe's p99. On an idle
//! machine that is ~0.5 ms — a 1 ms tick (p99 ~1 ms) fails it; on a saturated one both grow
//! together. A run that misses is retried (up to three runs): a neighbour's burst can fall on
//! one run, the tick falls on every run. When even the probe is more than [`SATURATED_US`] late
//! at p99, the machine hides a 1 ms tick in its own noise and the run is not judged.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{loadgen_json, ServerOptions, TestServer};

/// How much later than asked a thread that works 100 µs and sleeps 100 µs in turn (about the
/// duty cycle of the debug-built generator at this rate) gets through one cycle, sampled until
/// `stop`; sorted, µs.
fn cycle_delay_while(stop: &AtomicBool) -> Vec<u64> {
    let work = Duration::from_micros(100);
    let nap = Duration::from_micros(100);
    let mut late = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        while t.elapsed() < work {
            std::hint::spin_loop();
        }
        thread::sleep(nap);
        late.push(t.elapsed().saturating_sub(work + nap).as_micros() as u64);
    }
    late.sort_unstable();
    late
}

/// Probe p99 above which a run says nothing about a 1 ms tick.
const SATURATED_US: u64 = 1000;

fn p99(sorted: &[u64]) -> u64 {
    sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
}

#[test]
fn send_lag_p99_at_10k_per_second_is_far_below_a_timer_tick() {
    let _timing = common::timing_lock();
    let server = TestServer::start(ServerOptions::default());
    let url = server.url();
    let mut misses = Vec::new();
    for _ in 0..3 {
        let stop = Arc::new(AtomicBool::new(false));
        let probe = {
            let stop = stop.clone();
            thread::spawn(move || cycle_delay_while(&stop))
        };
        let (doc, _) = loadgen_json(
            "precision",
            &[
                &url, "--rate", "10000", "-c", "20", "-w", "0.3", "-d", "1.5",
            ],
        );
        stop.store(true, Ordering::Relaxed);
        let machine = probe.join().unwrap();
        let t = &doc["targets"][0];
        let lag = &t["send_lag_us"];
        let lag_p99 = lag["p99"].as_u64().unwrap();
        assert_eq!(t["requests"]["error_total"], 0);
        // The summary and the full spectrum come from the same histogram.
        let full = &t["latency_us"]["send_lag"];
        assert_eq!(common::percentile(full, 99.0), lag_p99);
        assert_eq!(full["max"], lag["max"]);
        let machine_p99 = p99(&machine);
        if lag_p99 <= 500 + machine_p99 {
            return;
        }
        if machine_p99 > SATURATED_US {
            eprintln!(
                "not judged: the machine is saturated (probe p99 {machine_p99} µs); send-lag {lag}"
            );
            continue;
        }
        misses.push(format!(
            "send-lag {lag}: p99 {lag_p99} µs vs the probe's p99 {machine_p99} µs ({} samples)",
            machine.len()
        ));
    }
    if misses.is_empty() {
        eprintln!("send-lag precision not judged: the machine was saturated in every run");
        return;
    }
    panic!(
        "send-lag p99 at 10k req/s was more than 500 µs above the probe's in every run:\n{}",
        misses.join("\n")
    );
}
