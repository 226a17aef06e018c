//! The results of a run, in one shape for every output: the text summary, `--json`, `--hgrm`,
//! `--hlog` and `--plot` all read a [`RunResult`].
//!
//! Latencies are in microseconds everywhere (histograms record µs; the hgrm file prints
//! milliseconds, as wrk2 does).

pub mod hgrm;
pub mod hlog;
pub mod json;
pub mod lag;
pub mod plot;
pub mod text;

use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use serde::{Serialize, Serializer};

use crate::config::{RunConfig, Slo};
use crate::cpu::CpuUsage;
use crate::engine::IntervalSample;
use crate::histo::Recorder;

/// Percentiles reported everywhere: wrk2's spectrum.
pub const PERCENTILES: [f64; 10] = [
    50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 99.999, 99.9999, 100.0,
];

/// Serializes a duration as whole microseconds.
pub fn serialize_us<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(crate::histo::micros(*d))
}

/// Everything measured for one target (all rounds merged).
#[derive(Debug, Clone)]
pub struct TargetResult {
    /// The URL.
    pub url: String,
    /// Merged recorder of all rounds.
    pub rec: Recorder,
    /// Interval samples of all rounds, with the wall-clock start of their phase.
    pub intervals: Vec<(SystemTime, IntervalSample)>,
    /// Measured time summed over rounds.
    pub measured: Duration,
    /// CPU time of the watched process over the measured windows.
    pub cpu: Option<Result<Duration, String>>,
    /// The watched pid.
    pub watch_pid: Option<u32>,
    /// The open-loop rate asked for.
    pub requested_rate: Option<f64>,
}

impl TargetResult {
    /// An empty result to merge rounds into.
    pub fn new(url: &str, watch_pid: Option<u32>, requested_rate: Option<f64>) -> Self {
        Self {
            url: url.to_owned(),
            rec: Recorder::default(),
            intervals: Vec::new(),
            measured: Duration::ZERO,
            cpu: None,
            watch_pid,
            requested_rate,
        }
    }

    /// Adds one phase's outcome.
    pub fn add_phase(&mut self, phase: crate::engine::PhaseOutcome) {
        self.rec.add(&phase.rec);
        self.measured += phase.measured;
        let started = phase.started_at;
        self.intervals
            .extend(phase.intervals.into_iter().map(|s| (started, s)));
        self.cpu = match (self.cpu.take(), phase.cpu) {
            (None, c) | (c, None) => c,
            (Some(Ok(a)), Some(Ok(b))) => Some(Ok(a + b)),
            (Some(Err(e)), _) | (_, Some(Err(e))) => Some(Err(e)),
        };
    }

    /// Requests written per second of measured time.
    pub fn achieved_rate(&self) -> f64 {
        self.rec.tally.sent as f64 / self.measured.as_secs_f64().max(1e-9)
    }

    /// Responses per second of measured time.
    pub fn throughput(&self) -> f64 {
        self.rec.tally.completed as f64 / self.measured.as_secs_f64().max(1e-9)
    }

    /// CPU of the watched process per completed request, when watched and readable.
    pub fn cpu_usage(&self) -> Option<CpuUsage> {
        let pid = self.watch_pid?;
        let cpu = self.cpu.as_ref()?.as_ref().ok()?;
        let cpu_us = cpu.as_secs_f64() * 1e6;
        let n = self.rec.tally.completed.max(1) as f64;
        Some(CpuUsage {
            pid,
            cpu_us,
            us_per_request: cpu_us / n,
        })
    }

    /// Whether an open-loop run sent more than 1 % fewer requests than asked.
    pub fn rate_shortfall(&self) -> bool {
        self.requested_rate
            .is_some_and(|r| self.achieved_rate() < 0.99 * r)
    }
}

/// One step of a `--find-max` search.
#[derive(Debug, Clone, Serialize)]
pub struct FindMaxStep {
    /// Rate asked for (req/s).
    pub rate: f64,
    /// Rate achieved (req/s).
    pub achieved_rate: f64,
    /// The SLO's percentile of the corrected latency at this rate, µs.
    pub value_us: u64,
    /// Send-lag p99 at this rate, µs: how much of `value_us` may be the generator's own.
    pub send_lag_p99_us: u64,
    /// Errors during the step.
    pub errors: u64,
    /// Whether the step met the SLO (latency, achieved rate within 1 %, no errors).
    pub ok: bool,
}

/// The outcome of `--find-max`.
#[derive(Debug, Clone, Serialize)]
pub struct FindMaxResult {
    /// The objective searched for.
    pub slo: Slo,
    /// The highest rate that met it (None if even the first step failed).
    pub max_rate: Option<f64>,
    /// Every step in the order run: the latency-by-rate curve.
    pub steps: Vec<FindMaxStep>,
}

/// A whole run: configuration, one result per target, the find-max search, warnings.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The validated configuration.
    pub config: RunConfig,
    /// The IO driver the load threads got.
    pub driver: String,
    /// When the run started.
    pub started_at: SystemTime,
    /// One per target, the first being the baseline.
    pub targets: Vec<TargetResult>,
    /// The `--find-max` search, when asked for.
    pub find_max: Option<FindMaxResult>,
    /// Everything the user must not miss (rate shortfall, unreadable /proc, errors).
    pub warnings: Vec<String>,
}

/// Summary statistics of one histogram.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Smallest, µs.
    pub min: u64,
    /// Mean, µs.
    pub mean: f64,
    /// Standard deviation, µs.
    pub stdev: f64,
    /// Largest, µs.
    pub max: u64,
    /// [`PERCENTILES`] with their values.
    pub percentiles: Vec<PercentileValue>,
}

/// One percentile and its value.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PercentileValue {
    /// e.g. 99.9
    pub percentile: f64,
    /// µs
    pub value: u64,
}

impl Summary {
    /// Summarises a histogram.
    pub fn of(h: &Histogram<u64>) -> Self {
        Self {
            count: h.len(),
            min: if h.is_empty() { 0 } else { h.min() },
            mean: h.mean(),
            stdev: h.stdev(),
            max: h.max(),
            percentiles: PERCENTILES
                .iter()
                .map(|&p| PercentileValue {
                    percentile: p,
                    value: h.value_at_percentile(p),
                })
                .collect(),
        }
    }

    /// The value at a percentile of the spectrum (or computed between its points).
    pub fn at(&self, p: f64) -> Option<u64> {
        self.percentiles
            .iter()
            .find(|v| (v.percentile - p).abs() < 1e-9)
            .map(|v| v.value)
    }
}

/// Formats microseconds for people: `850us`, `12.35ms`, `1.20s`.
pub fn human_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// Ratio `b / a`, or None when `a` is zero.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (a > 0.0).then(|| b / a)
}

/// File name for target `index` of `n`: the name itself for one target, else `stem-<index>.ext`.
pub fn per_target_path(path: &std::path::Path, index: usize, n: usize) -> std::path::PathBuf {
    if n <= 1 {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{index}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{index}"),
    };
    path.with_file_name(name)
}
