//! `--find-max --slo p99=2ms`: the highest open-loop rate whose corrected latency percentile stays
//! within the objective.
//!
//! Each step is a full open-loop phase (warm-up excluded from the measurement). A step passes
//! when the percentile is within the limit, the achieved rate is within 1 % of the requested one
//! and no request failed. The search doubles the rate from the start rate until a step fails,
//! then bisects between the last passing and the first failing rate until they are within 5 % of
//! each other or the step budget (`--find-max-steps`) is spent, so it always ends in bounded time.

use crate::config::{RunConfig, Slo};
use crate::engine::{run_phase, EngineError, PhaseSpec};
use crate::progress::Progress;
use crate::report::{FindMaxResult, FindMaxStep, TargetResult};

/// Rate of the first step when `--rate` is not given.
pub const DEFAULT_START_RATE: f64 = 1000.0;
/// The search stops when the passing and failing rates are this close (relative).
const RESOLUTION: f64 = 0.05;

/// Runs the search against the first target; returns the curve and the result at the best rate.
pub fn search(
    cfg: &RunConfig,
    slo: Slo,
    progress: &mut Progress,
) -> Result<(FindMaxResult, Option<TargetResult>), EngineError> {
    let target = &cfg.targets[0];
    let mut lo: Option<f64> = None;
    let mut hi: Option<f64> = None;
    let mut rate = cfg.rate.unwrap_or(DEFAULT_START_RATE);
    let mut steps = Vec::new();
    let mut best: Option<TargetResult> = None;
    let limit_us = crate::histo::micros(slo.limit);
    for _ in 0..cfg.find_max_steps {
        progress.begin(
            &format!("find-max {rate:.0} req/s"),
            cfg.warmup + cfg.duration,
        );
        let spec = PhaseSpec {
            target,
            watch_pid: cfg.watch_pids.first().copied(),
            rate: Some(rate),
            warmup: cfg.warmup,
            duration: cfg.duration,
        };
        let outcome = run_phase(cfg, spec, progress)?;
        progress.end();
        let mut result = TargetResult::new(&target.url, spec.watch_pid, Some(rate));
        result.add_phase(outcome);
        let value_us = result
            .rec
            .latencies
            .corrected
            .value_at_percentile(slo.percentile);
        let errors = result.rec.tally.errors.total();
        let ok = value_us <= limit_us && !result.rate_shortfall() && errors == 0;
        steps.push(FindMaxStep {
            rate,
            achieved_rate: result.achieved_rate(),
            value_us,
            send_lag_p99_us: result.rec.latencies.send_lag.value_at_percentile(99.0),
            errors,
            ok,
        });
        if ok {
            lo = Some(rate);
            best = Some(result);
        } else {
            hi = Some(rate);
        }
        rate = match (lo, hi) {
            (Some(l), None) => l * 2.0,
            (None, Some(h)) => h / 2.0,
            (Some(l), Some(h)) if (h - l) / l <= RESOLUTION => break,
            (Some(l), Some(h)) => (l + h) / 2.0,
            (None, None) => break,
        };
        if rate < 1.0 {
            break;
        }
    }
    Ok((
        FindMaxResult {
            slo,
            max_rate: lo,
            steps,
        },
        best,
    ))
}
