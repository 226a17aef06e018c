//! `--json`: the whole run as one JSON document. Its schema is docs/loadgen.schema.json and the
//! fields are described in docs/loadgen.md; keep the three in step.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use super::lag::SendLag;
use super::{ratio, FindMaxResult, RunResult, Summary, TargetResult};
use crate::cpu::CpuUsage;
use crate::histo::{micros, ErrorCounts, Tally};

/// Version of the JSON document's layout (bumped on incompatible changes).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    tool: &'static str,
    version: &'static str,
    started_at_unix_ms: u64,
    host: Host,
    config: Config<'a>,
    targets: Vec<Target<'a>>,
    comparison: Option<Vec<Comparison<'a>>>,
    find_max: Option<&'a FindMaxResult>,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct Host {
    hostname: String,
    kernel: String,
    nproc: usize,
}

/// `--spin-us`: a number of µs, or `"auto"`.
#[derive(Serialize)]
#[serde(untagged)]
enum SpinJson {
    Us(u64),
    Auto(&'static str),
}

/// Open loop: what the pacer saw (µs).
#[derive(Serialize)]
struct Pacing {
    /// Timer wake-ups the pacer waited for.
    wakeups: u64,
    /// Requests already due when the pacer came to them (the thread was behind).
    behind: u64,
    /// How late they came behind the instant they were armed for.
    timer_late_us: SendLag,
    /// The spin window at each wait for a due time.
    window_us: Window,
}

#[derive(Serialize)]
struct Window {
    p50: u64,
    max: u64,
}

#[derive(Serialize)]
struct Config<'a> {
    targets: Vec<&'a str>,
    method: &'a str,
    mode: &'static str,
    rate: Option<f64>,
    arrivals: crate::cli::ArrivalsArg,
    seed: u64,
    spin_us: SpinJson,
    connections: usize,
    threads: usize,
    cpus: &'a [usize],
    io_driver: String,
    driver: &'a str,
    pipeline: usize,
    close: bool,
    timeout_us: u64,
    warmup_us: u64,
    duration_us: u64,
    rounds: u32,
    interval_us: u64,
}

#[derive(Serialize)]
struct Requests<'a> {
    sent: u64,
    completed: u64,
    errors: &'a ErrorCounts,
    error_total: u64,
    statuses: BTreeMap<String, u64>,
    connects: u64,
    bytes_read: u64,
}

impl<'a> Requests<'a> {
    fn of(t: &'a Tally) -> Self {
        Self {
            sent: t.sent,
            completed: t.completed,
            errors: &t.errors,
            error_total: t.errors.total(),
            statuses: t
                .statuses
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
            connects: t.connects,
            bytes_read: t.bytes_read,
        }
    }
}

#[derive(Serialize)]
struct Latency {
    corrected: Summary,
    uncorrected: Summary,
    send_lag: Summary,
}

#[derive(Serialize)]
struct Interval {
    round_start_unix_ms: u64,
    start_us: u64,
    length_us: u64,
    warmup: bool,
    completed: u64,
    errors: u64,
    rate: f64,
    p99_us: u64,
}

#[derive(Serialize)]
struct Target<'a> {
    url: &'a str,
    requested_rate: Option<f64>,
    achieved_rate: f64,
    throughput: f64,
    rate_shortfall: bool,
    measured_us: u64,
    requests: Requests<'a>,
    warmup_requests: Requests<'a>,
    latency_us: Latency,
    send_lag_us: SendLag,
    pacing: Option<Pacing>,
    cpu: Option<CpuUsage>,
    intervals: Vec<Interval>,
}

#[derive(Serialize)]
struct Comparison<'a> {
    url: &'a str,
    throughput_ratio: Option<f64>,
    p50_ratio: Option<f64>,
    p99_ratio: Option<f64>,
    p99_9_ratio: Option<f64>,
    max_ratio: Option<f64>,
    cpu_us_per_request_ratio: Option<f64>,
}

fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn target(t: &TargetResult) -> Target<'_> {
    let lat = &t.rec.latencies;
    Target {
        url: &t.url,
        requested_rate: t.requested_rate,
        achieved_rate: t.achieved_rate(),
        throughput: t.throughput(),
        rate_shortfall: t.rate_shortfall(),
        measured_us: micros(t.measured),
        requests: Requests::of(&t.rec.tally),
        warmup_requests: Requests::of(&t.rec.warmup),
        latency_us: Latency {
            corrected: Summary::of(&lat.corrected),
            uncorrected: Summary::of(&lat.uncorrected),
            send_lag: Summary::of(&lat.send_lag),
        },
        send_lag_us: SendLag::of(&lat.send_lag),
        pacing: t.requested_rate.map(|_| {
            let p = &t.rec.pace;
            Pacing {
                wakeups: p.wake_late.len(),
                behind: p.behind,
                timer_late_us: SendLag::of(&p.wake_late),
                window_us: Window {
                    p50: p.window.value_at_percentile(50.0),
                    max: p.window.max(),
                },
            }
        }),
        cpu: t.cpu_usage(),
        intervals: t
            .intervals
            .iter()
            .map(|(round, s)| Interval {
                round_start_unix_ms: unix_ms(*round),
                start_us: micros(s.start),
                length_us: micros(s.length),
                warmup: s.warmup,
                completed: s.completed,
                errors: s.errors,
                rate: s.completed as f64 / s.length.as_secs_f64().max(1e-9),
                p99_us: s.corrected.value_at_quantile(0.99),
            })
            .collect(),
    }
}

fn comparison(targets: &[TargetResult]) -> Vec<Comparison<'_>> {
    let base = &targets[0];
    let h0 = &base.rec.latencies.corrected;
    let cpu = |t: &TargetResult| t.cpu_usage().map(|c| c.us_per_request);
    targets
        .iter()
        .map(|t| {
            let h = &t.rec.latencies.corrected;
            let p = |q: f64| {
                ratio(
                    h0.value_at_percentile(q) as f64,
                    h.value_at_percentile(q) as f64,
                )
            };
            Comparison {
                url: &t.url,
                throughput_ratio: ratio(base.throughput(), t.throughput()),
                p50_ratio: p(50.0),
                p99_ratio: p(99.0),
                p99_9_ratio: p(99.9),
                max_ratio: ratio(h0.max() as f64, h.max() as f64),
                cpu_us_per_request_ratio: cpu(base).zip(cpu(t)).and_then(|(a, b)| ratio(a, b)),
            }
        })
        .collect()
}

fn host() -> Host {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    Host {
        hostname: read("/proc/sys/kernel/hostname"),
        kernel: read("/proc/sys/kernel/osrelease"),
        nproc: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    }
}

/// Renders the run as a JSON document.
pub fn render(run: &RunResult) -> serde_json::Result<String> {
    let cfg = &run.config;
    let us = |d: Duration| micros(d);
    let doc = Document {
        schema_version: SCHEMA_VERSION,
        tool: "ringway-loadgen",
        version: env!("CARGO_PKG_VERSION"),
        started_at_unix_ms: unix_ms(run.started_at),
        host: host(),
        config: Config {
            targets: cfg.targets.iter().map(|t| t.url.as_str()).collect(),
            method: &cfg.method,
            mode: if cfg.rate.is_some() || cfg.find_max.is_some() {
                "open"
            } else {
                "closed"
            },
            rate: cfg.rate,
            arrivals: cfg.arrivals,
            seed: cfg.seed,
            spin_us: match cfg.spin {
                crate::pacer::Spin::Fixed(d) => SpinJson::Us(us(d)),
                crate::pacer::Spin::Auto => SpinJson::Auto("auto"),
            },
            connections: cfg.connections,
            threads: cfg.threads,
            cpus: &cfg.cpus,
            io_driver: cfg.io_driver.to_string(),
            driver: &run.driver,
            pipeline: cfg.pipeline,
            close: cfg.close,
            timeout_us: us(cfg.timeout),
            warmup_us: us(cfg.warmup),
            duration_us: us(cfg.duration),
            rounds: cfg.rounds,
            interval_us: us(cfg.interval),
        },
        targets: run.targets.iter().map(target).collect(),
        comparison: (run.targets.len() > 1).then(|| comparison(&run.targets)),
        find_max: run.find_max.as_ref(),
        warnings: &run.warnings,
    };
    serde_json::to_string_pretty(&doc)
}
