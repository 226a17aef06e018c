//! The schedule is kept to within µs, not to the runtime's 1 ms timer tick: at 10 000 req/s
//! against a loopback server (answering at once: a known service time of ~0) the send-lag stays
//! far below a tick.
//!
//! The bound is on the median. With the runtime's timer a sleep ends on the first 1 ms tick at
//! or after its deadline, so the send-lag is spread over (0, 1 ms] and its p50 is ~500 µs or
//! more (measured here with the timerfd disabled: 885–1569 µs); with the fine timer it was
//! 46–150 µs on this shared 2-core machine under a load average of 5. The p99 cannot tell the
//! two apart on such a machine: it is the neighbours' (0.8–70 ms measured with the fine timer),
//! so it is reported, not bounded. A probe thread that works and sleeps in turn records how late
//! the kernel lets it run; when even the probe is more than [`SATURATED_US`] late at p99 the
//! run says nothing about a tick and is not judged. A run that misses is retried (up to three
//! runs): a neighbour's burst can fall on one run, the tick falls on every run.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{loadgen_json, ServerOptions, TestServer};

/// How much later than asked a thread that works 50 µs and sleeps 150 µs in turn gets through
/// one cycle, sampled until `stop`; sorted, µs.
fn cycle_delay_while(stop: &AtomicBool) -> Vec<u64> {
    let work = Duration::from_micros(50);
    let nap = Duration::from_micros(150);
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
/// Send-lag p50 at or below which the tick is surely gone (it puts the p50 at ~500 µs).
const P50_BOUND_US: u64 = 250;

fn p99(sorted: &[u64]) -> u64 {
    sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
}

#[test]
fn send_lag_at_10k_per_second_is_far_below_a_timer_tick() {
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
        let lag_p50 = lag["p50"].as_u64().unwrap();
        let lag_p99 = lag["p99"].as_u64().unwrap();
        assert_eq!(t["requests"]["error_total"], 0);
        // The summary and the full spectrum come from the same histogram.
        let full = &t["latency_us"]["send_lag"];
        assert_eq!(common::percentile(full, 99.0), lag_p99);
        assert_eq!(full["max"], lag["max"]);
        // `--spin-us auto` (the default) measured its timer and kept its window within 30 % of
        // the 100 µs gap between due times of the one load thread.
        assert_eq!(doc["config"]["spin_us"], "auto");
        let pacing = &t["pacing"];
        assert!(pacing["wakeups"].as_u64().unwrap() > 0, "{pacing}");
        assert!(
            pacing["window_us"]["max"].as_u64().unwrap() <= 50,
            "{pacing}"
        );
        let late = &pacing["timer_late_us"];
        assert!(late["p50"].as_u64().unwrap() <= late["max"].as_u64().unwrap());
        let machine_p99 = p99(&machine);
        if lag_p50 <= P50_BOUND_US {
            eprintln!("send-lag {lag} (probe p99 {machine_p99} µs)");
            return;
        }
        if machine_p99 > SATURATED_US {
            eprintln!(
                "not judged: the machine is saturated (probe p99 {machine_p99} µs); send-lag {lag}"
            );
            continue;
        }
        misses.push(format!(
            "send-lag {lag}: p50 {lag_p50} µs; the probe's p99 {machine_p99} µs ({} samples)",
            machine.len()
        ));
    }
    if misses.is_empty() {
        eprintln!("send-lag precision not judged: the machine was saturated in every run");
        return;
    }
    panic!(
        "send-lag p50 at 10k req/s was above {P50_BOUND_US} µs in every judged run (the 1 ms \
         timer tick is back?):\n{}",
        misses.join("\n")
    );
}
