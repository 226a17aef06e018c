//! ringway-loadgen as a library: the open/closed-loop engine, histograms and reports.
//!
//! - [`cli`] / [`config`]: flags and the validated [`config::RunConfig`].
//! - [`schedule`]: open-loop intended start times (even or Poisson); [`dispatch`]: one pacer
//!   per thread that hands each due request to a free connection; [`pacer`]: waiting for due
//!   times with µs precision (a timerfd, then a short yield loop).
//! - [`conn`]: one connection's request loop over a [`wire::Wire`] (TCP, or TLS for `https://`
//!   with the client of [`tls`]); [`response`]: reading responses with core's parser.
//! - [`engine`]: pinned threads, warm-up, duration, interval samples; [`histo`]: per-thread
//!   HdrHistograms and counters, merged.
//! - [`findmax`]: the `--find-max` search; [`cpu`]: `--watch-pid`; [`progress`]: live progress.
//! - [`report`]: text, JSON, hgrm, interval log and SVG plot.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod conn;
pub mod cpu;
pub mod dispatch;
pub mod engine;
pub mod findmax;
pub mod histo;
pub mod pacer;
pub mod progress;
pub mod report;
pub mod response;
pub mod schedule;
pub mod tls;
pub mod wire;

use std::time::SystemTime;

use config::RunConfig;
use engine::{run_phase, EngineError, PhaseSpec};
use progress::Progress;
use report::{RunResult, TargetResult};

/// Runs what the configuration asks for: one target, `--compare` rounds, or `--find-max`.
pub fn run(cfg: &RunConfig) -> Result<RunResult, EngineError> {
    let started_at = SystemTime::now();
    let mut progress = Progress::new(cfg.quiet);
    let mut warnings = Vec::new();
    let mut driver = None;
    let (targets, find_max) = if let Some(slo) = cfg.find_max {
        let (fm, best) = findmax::search(cfg, slo, &mut progress)?;
        (best.into_iter().collect(), Some(fm))
    } else {
        let rounds = if cfg.targets.len() > 1 { cfg.rounds } else { 1 };
        let round_duration = cfg.duration / rounds;
        let mut results: Vec<TargetResult> = cfg
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| TargetResult::new(&t.url, cfg.watch_pids.get(i).copied(), cfg.rate))
            .collect();
        for round in 0..rounds {
            // A B A B …: every target sees the same schedule, interleaved in time, so drift of
            // the machine (thermal, noisy neighbours) spreads over all targets alike.
            for (i, target) in cfg.targets.iter().enumerate() {
                let warmup = if round == 0 {
                    cfg.warmup
                } else {
                    std::time::Duration::ZERO
                };
                let label = if rounds > 1 {
                    format!("{} round {}/{rounds}", target.url, round + 1)
                } else {
                    target.url.clone()
                };
                progress.begin(&label, warmup + round_duration);
                let spec = PhaseSpec {
                    target,
                    watch_pid: cfg.watch_pids.get(i).copied(),
                    rate: cfg.rate,
                    warmup,
                    duration: round_duration,
                };
                let outcome = run_phase(cfg, spec, &mut progress)?;
                progress.end();
                driver = Some(outcome.driver);
                results[i].add_phase(outcome);
            }
        }
        (results, None)
    };
    for t in &targets {
        if let (true, Some(req)) = (t.rate_shortfall(), t.requested_rate) {
            let w = format!(
                "{}: achieved rate {:.1} req/s is {:.2} % short of the requested {req:.1} req/s; \
                 the load generator (or the connection count) could not keep the schedule, so the \
                 latencies describe a lower load than asked",
                t.url,
                t.achieved_rate(),
                100.0 * (1.0 - t.achieved_rate() / req)
            );
            progress.warn(&w);
            warnings.push(w);
        }
        if let Some(w) = report::lag::warning(t) {
            progress.warn(&w);
            warnings.push(w);
        }
        if let Some(Err(e)) = &t.cpu {
            let w = format!("{}: --watch-pid: {e}", t.url);
            progress.warn(&w);
            warnings.push(w);
        }
        if t.rec.tally.errors.total() > 0 {
            let e = &t.rec.tally.errors;
            warnings.push(format!(
                "{}: {} requests failed (connect {}, timeout {}, read {}, write {}, parse {})",
                t.url,
                e.total(),
                e.connect,
                e.timeout,
                e.read,
                e.write,
                e.parse
            ));
        }
    }
    let driver = driver.map_or_else(
        || ringway_io::runtime::auto_driver().to_string(),
        |d| d.to_string(),
    );
    Ok(RunResult {
        config: cfg.clone(),
        driver,
        started_at,
        targets,
        find_max,
        warnings,
    })
}

/// Writes every file output the configuration asks for.
pub fn write_outputs(run: &RunResult, cli: &cli::Cli) -> Result<(), String> {
    let n = run.targets.len();
    if let Some(path) = &cli.json {
        let text = report::json::render(run).map_err(|e| format!("--json: {e}"))?;
        std::fs::write(path, text).map_err(|e| format!("--json {}: {e}", path.display()))?;
    }
    if let Some(path) = &cli.hgrm {
        for (i, t) in run.targets.iter().enumerate() {
            let p = report::per_target_path(path, i, n);
            std::fs::write(&p, report::hgrm::render(&t.rec.latencies.corrected))
                .map_err(|e| format!("--hgrm {}: {e}", p.display()))?;
        }
    }
    if let Some(path) = &cli.hlog {
        let mut file =
            std::fs::File::create(path).map_err(|e| format!("--hlog {}: {e}", path.display()))?;
        report::hlog::write(run, &mut file)
            .map_err(|e| format!("--hlog {}: {e}", path.display()))?;
    }
    if let Some(path) = &cli.plot {
        let axis = if cli.plot_log_latency {
            report::plot::LatencyAxis::Log
        } else {
            report::plot::LatencyAxis::Linear
        };
        report::plot::write(run, path, axis)?;
    }
    Ok(())
}
