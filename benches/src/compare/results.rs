//! `results.json`: what one run of `compare` measured (schema in docs/benchmarks.md; version 1),
//! and the per-system summary over rounds that summary.md and results/README.md quote.

use serde::{Deserialize, Serialize};

use super::peers::Peer;
use super::scenario::Load;

/// The whole document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// 1.
    pub schema_version: u32,
    /// `ringway-compare`.
    pub tool: String,
    /// The scenario's name.
    pub scenario: String,
    /// `--quick`: a harness check, not a measurement.
    pub quick: bool,
    /// UTC, RFC 3339 (`2026-12-02T06:10:00Z`).
    pub started_at: String,
    /// Wall time of the whole run.
    pub elapsed_s: f64,
    /// `git rev-parse HEAD` of the tree the binaries were built from.
    pub commit: String,
    /// Files with uncommitted changes in that tree at the time.
    pub dirty: Vec<String>,
    /// The command line.
    pub command: String,
    /// Where ringway's binaries came from (`target/release`).
    pub binaries: String,
    /// The machine.
    pub host: Host,
    /// Where processes were pinned.
    pub pinning: Pinning,
    /// The load, the same for every system.
    pub plan: Plan,
    /// Key of the system the ratios divide by.
    pub baseline: String,
    /// The peers as found (versions).
    pub peers: Vec<Peer>,
    /// Systems of the scenario that did not run, and why.
    pub skipped: Vec<Skipped>,
    /// One entry per system per round, in the order they ran.
    pub runs: Vec<Run>,
    /// One entry per system that ran: medians and ranges over rounds, ratios.
    pub summary: Vec<SummaryRow>,
    /// Free-form remarks (shared machine, shortfalls).
    pub notes: Vec<String>,
}

/// The machine the run was on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    /// CPUs online.
    pub nproc: usize,
    /// /proc/cpuinfo's first model name.
    pub cpu_model: String,
    /// `uname -r`.
    pub kernel: String,
    /// /proc/loadavg before and after.
    pub loadavg_before: String,
    /// See `loadavg_before`.
    pub loadavg_after: String,
}

/// The pin plan (from `ringway-tune --pin-plan 1`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pinning {
    /// CPUs of the system under test's entrance (the balancer, nginx, HAProxy, rathole server).
    pub entrance_cpus: Vec<usize>,
    /// CPUs of the backend, the tunnels' far half (agent, rathole client) and the load generator.
    pub rest_cpus: Vec<usize>,
}

/// The load every system gets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// Requests and connections.
    pub request: Load,
    /// Seconds of each measured run.
    pub duration_s: f64,
    /// Seconds of closed-loop warm-up before them.
    pub warmup_s: f64,
    /// Repetitions of the whole list of systems.
    pub rounds: u32,
    /// The load generator (`ringway-loadgen`).
    pub generator: String,
    /// Idle scenarios: connections per system.
    pub idle_conns: Option<usize>,
}

/// A system that did not run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Skipped {
    /// Its key.
    pub system: String,
    /// Why (not installed, …).
    pub reason: String,
}

/// One system in one round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// 1-based.
    pub round: u32,
    /// Its key (`nginx`, `ringway-uring`, …).
    pub system: String,
    /// What exactly ran (versions, threads).
    pub label: String,
    /// Closed loop: as fast as the system answers.
    pub closed: Option<LoadRun>,
    /// Open loop at the plan's rate: latency corrected for coordinated omission.
    pub open: Option<LoadRun>,
    /// Idle connections.
    pub idle: Option<IdleRun>,
    /// The open-loop run's corrected latency histogram, a file next to results.json.
    pub hgrm: Option<String>,
}

/// One load-generator run against one system.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadRun {
    /// Requests answered.
    pub requests: u64,
    /// Failed requests (connect, timeout, read, write, parse) plus non-2xx answers.
    pub errors: u64,
    /// Answered requests per second.
    pub rps: f64,
    /// The offered rate (open loop), `None` closed loop.
    pub requested_rate: Option<f64>,
    /// The generator could not keep the offered rate.
    pub rate_shortfall: bool,
    /// Latency percentiles, µs (corrected in open loop).
    pub p50_us: u64,
    /// See `p50_us`.
    pub p99_us: u64,
    /// See `p50_us`.
    pub p99_9_us: u64,
    /// CPU time (user + system, all threads) of the entrance per answered request, µs.
    pub entrance_cpu_us: f64,
    /// The same for a tunnel's far half (agent, rathole client); `None` for a plain proxy.
    pub far_cpu_us: Option<f64>,
    /// entrance + far.
    pub total_cpu_us: f64,
    /// Share of the entrance CPUs used by other processes during the run, %.
    pub entrance_others_pct: f64,
    /// Share of the other CPUs used by processes other than backend, far half and generator, %.
    pub rest_others_pct: f64,
}

/// Idle connections held against one system.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleRun {
    /// Connections opened.
    pub conns: u64,
    /// Why fewer than the scenario's count were opened on this system (its configured
    /// connection limit under this host's open-file limit), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capped: Option<String>,
    /// Connections that got a 200 and stayed open (the divisor).
    pub answered: u64,
    /// VmRSS of the entrance's process group before and with the connections, KiB.
    pub rss_before_kib: u64,
    /// See `rss_before_kib`.
    pub rss_after_kib: u64,
    /// (after − before) × 1024 / answered.
    pub bytes_per_conn: f64,
    /// The far half's VmRSS before and after, KiB (tunnels).
    pub far_rss_kib: Option<(u64, u64)>,
}

/// Median and range over rounds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Stat {
    /// Median.
    pub median: f64,
    /// Smallest round.
    pub min: f64,
    /// Largest round.
    pub max: f64,
}

impl Stat {
    /// `None` for no values.
    pub fn of(mut v: Vec<f64>) -> Option<Self> {
        v.retain(|x| x.is_finite());
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// One system over all rounds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Its key.
    pub system: String,
    /// What ran.
    pub label: String,
    /// Rounds it ran in.
    pub rounds: usize,
    /// Closed loop req/s.
    pub rps: Option<Stat>,
    /// Closed loop p99, µs.
    pub p99_us: Option<Stat>,
    /// Closed loop entrance CPU µs per request.
    pub entrance_cpu_us: Option<Stat>,
    /// Closed loop total (entrance + far) CPU µs per request.
    pub total_cpu_us: Option<Stat>,
    /// Open loop corrected p99, µs.
    pub open_p99_us: Option<Stat>,
    /// Idle bytes per connection.
    pub bytes_per_conn: Option<Stat>,
    /// Highest "others" share seen on either CPU set in its runs, %.
    pub max_others_pct: Option<f64>,
    /// Ratios to the baseline, median of the per-round ratios (same round).
    pub vs_baseline: Ratios,
    /// Ratios to rathole, when it ran.
    pub vs_rathole: Option<Ratios>,
}

/// This system's value ÷ the other's, median over rounds (ratios taken within a round).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ratios {
    /// Closed-loop req/s.
    pub rps: Option<Stat>,
    /// Closed-loop total CPU per request.
    pub total_cpu: Option<Stat>,
    /// Closed-loop entrance CPU per request.
    pub entrance_cpu: Option<Stat>,
    /// Open-loop p99.
    pub open_p99: Option<Stat>,
    /// Idle bytes per connection.
    pub bytes_per_conn: Option<Stat>,
}

/// Builds the summary rows from the runs.
pub fn summarize(runs: &[Run], baseline: &str) -> Vec<SummaryRow> {
    let mut keys: Vec<&str> = Vec::new();
    for r in runs {
        if !keys.contains(&r.system.as_str()) {
            keys.push(&r.system);
        }
    }
    let has_rathole = keys.contains(&"rathole");
    keys.iter()
        .map(|&key| {
            let mine: Vec<&Run> = runs.iter().filter(|r| r.system == key).collect();
            let closed = |f: fn(&LoadRun) -> f64| {
                Stat::of(
                    mine.iter()
                        .filter_map(|r| r.closed.as_ref().map(f))
                        .collect(),
                )
            };
            let others = mine
                .iter()
                .flat_map(|r| [r.closed.as_ref(), r.open.as_ref()])
                .flatten()
                .map(|l| l.entrance_others_pct.max(l.rest_others_pct))
                .reduce(f64::max);
            SummaryRow {
                system: key.to_owned(),
                label: mine.first().map(|r| r.label.clone()).unwrap_or_default(),
                rounds: mine.len(),
                rps: closed(|l| l.rps),
                p99_us: closed(|l| l.p99_us as f64),
                entrance_cpu_us: closed(|l| l.entrance_cpu_us),
                total_cpu_us: closed(|l| l.total_cpu_us),
                open_p99_us: Stat::of(
                    mine.iter()
                        .filter_map(|r| r.open.as_ref().map(|l| l.p99_us as f64))
                        .collect(),
                ),
                bytes_per_conn: Stat::of(
                    mine.iter()
                        .filter_map(|r| r.idle.as_ref().map(|i| i.bytes_per_conn))
                        .collect(),
                ),
                max_others_pct: others,
                vs_baseline: ratios(runs, key, baseline),
                vs_rathole: has_rathole.then(|| ratios(runs, key, "rathole")),
            }
        })
        .collect()
}

/// Per-round ratios of `key` to `other`, summarised.
fn ratios(runs: &[Run], key: &str, other: &str) -> Ratios {
    let pairs: Vec<(&Run, &Run)> = runs
        .iter()
        .filter(|r| r.system == key)
        .filter_map(|r| {
            runs.iter()
                .find(|o| o.system == other && o.round == r.round)
                .map(|o| (r, o))
        })
        .collect();
    let of = |f: &dyn Fn(&Run) -> Option<f64>| {
        Stat::of(
            pairs
                .iter()
                .filter_map(|(a, b)| Some(f(a)? / f(b)?))
                .collect(),
        )
    };
    Ratios {
        rps: of(&|r| r.closed.as_ref().map(|l| l.rps)),
        total_cpu: of(&|r| r.closed.as_ref().map(|l| l.total_cpu_us)),
        entrance_cpu: of(&|r| r.closed.as_ref().map(|l| l.entrance_cpu_us)),
        open_p99: of(&|r| r.open.as_ref().map(|l| l.p99_us as f64)),
        bytes_per_conn: of(&|r| r.idle.as_ref().map(|i| i.bytes_per_conn)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(round: u32, system: &str, rps: f64, cpu: f64) -> Run {
        Run {
            round,
            system: system.into(),
            label: system.into(),
            closed: Some(LoadRun {
                requests: 1,
                errors: 0,
                rps,
                requested_rate: None,
                rate_shortfall: false,
                p50_us: 1,
                p99_us: 2,
                p99_9_us: 3,
                entrance_cpu_us: cpu,
                far_cpu_us: None,
                total_cpu_us: cpu,
                entrance_others_pct: 1.0,
                rest_others_pct: 4.0,
            }),
            open: None,
            idle: None,
            hgrm: None,
        }
    }

    #[test]
    fn ratios_pair_runs_of_the_same_round() {
        let runs = [
            run(1, "nginx", 100.0, 10.0),
            run(1, "ringway-uring", 200.0, 5.0),
            run(2, "nginx", 50.0, 20.0),
            run(2, "ringway-uring", 50.0, 10.0),
            run(3, "nginx", 100.0, 10.0),
            run(3, "ringway-uring", 150.0, 6.0),
        ];
        let rows = summarize(&runs, "nginx");
        let rw = &rows[1];
        assert_eq!(rw.rounds, 3);
        let cpu = rw.vs_baseline.total_cpu.unwrap();
        assert_eq!((cpu.median, cpu.min, cpu.max), (0.5, 0.5, 0.6));
        let rps = rw.vs_baseline.rps.unwrap();
        assert_eq!((rps.median, rps.min, rps.max), (1.5, 1.0, 2.0));
        assert_eq!(rw.max_others_pct, Some(4.0));
        assert!(rw.vs_rathole.is_none());
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let s = Stat::of(vec![4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
        assert!(Stat::of(vec![f64::NAN]).is_none());
    }
}
