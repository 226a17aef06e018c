//! One system's load runs: a closed-loop warm-up, a closed-loop run (req/s, CPU per request) and
//! an open-loop run at the plan's rate (corrected latency, the .hgrm file), each with
//! `ringway-loadgen` on the other CPUs, CPU time read from /proc around it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::proc_stat::{cpus_busy, group_cpu_ticks, reaped_children_ticks};
use super::procs::{run_to_end, Guard};
use super::results::LoadRun;
use super::scenario::Load;
use super::systems::{Ctx, Running, HOST};

/// What every load run shares.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// The requests.
    pub load: Load,
    /// Seconds of each measured run.
    pub duration: f64,
    /// Seconds of the closed-loop warm-up.
    pub warmup: f64,
    /// The request body file (`--body @FILE`), for uploads.
    pub body: Option<PathBuf>,
    /// Clock ticks per second of /proc.
    pub clk_tck: f64,
}

/// The three runs against one started system. `hgrm` is where the open-loop histogram goes.
pub fn measure(
    ctx: &mut Ctx,
    sys: &Running,
    backend: &Guard,
    plan: &LoadPlan,
    tag: &str,
    hgrm: &Path,
) -> Result<(LoadRun, LoadRun), String> {
    let json = ctx.work.join(format!("{tag}.json"));
    if plan.warmup > 0.0 {
        generate(
            ctx,
            plan,
            None,
            plan.warmup,
            &json,
            None,
            &format!("{tag}-warmup"),
        )?;
    }
    let closed = sampled(ctx, sys, backend, plan, || {
        (
            None,
            plan.duration,
            json.clone(),
            None,
            format!("{tag}-closed"),
        )
    })?;
    let open = sampled(ctx, sys, backend, plan, || {
        (
            Some(plan.load.rate),
            plan.duration,
            json.clone(),
            Some(hgrm.to_path_buf()),
            format!("{tag}-open"),
        )
    })?;
    Ok((closed, open))
}

type RunArgs = (Option<f64>, f64, PathBuf, Option<PathBuf>, String);

/// One generator run with the CPU counters read before and after.
fn sampled(
    ctx: &mut Ctx,
    sys: &Running,
    backend: &Guard,
    plan: &LoadPlan,
    args: impl Fn() -> RunArgs,
) -> Result<LoadRun, String> {
    let (rate, secs, json, hgrm, name) = args();
    let far_pid = sys.far.as_ref().map(Guard::pid);
    let before = Sample::take(ctx, sys.entrance.pid(), far_pid, backend.pid());
    generate(ctx, plan, rate, secs, &json, hgrm.as_deref(), &name)?;
    let after = Sample::take(ctx, sys.entrance.pid(), far_pid, backend.pid());
    let text = std::fs::read_to_string(&json)
        .map_err(|e| format!("{name}: reading {}: {e}", json.display()))?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| format!("{name}: loadgen JSON: {e}"))?;
    let target = &doc["targets"][0];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let requests = n(&target["requests"]["completed"]);
    let not_2xx: u64 = target["requests"]["statuses"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(code, _)| !code.starts_with('2'))
                .map(|(_, c)| n(c))
                .sum()
        })
        .unwrap_or(0);
    let pct = |p: f64| {
        target["latency_us"]["corrected"]["percentiles"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["percentile"].as_f64() == Some(p)))
            .map_or(0, |x| n(&x["value"]))
    };
    let per = |ticks: u64| {
        if requests == 0 {
            f64::NAN
        } else {
            ticks as f64 / plan.clk_tck * 1e6 / requests as f64
        }
    };
    let d_entrance = after.entrance.saturating_sub(before.entrance);
    let d_far = after.far.saturating_sub(before.far);
    let d_backend = after.backend.saturating_sub(before.backend);
    let d_gen = after.generators.saturating_sub(before.generators);
    let entrance_cpu_us = per(d_entrance);
    let far_cpu_us = far_pid.map(|_| per(d_far));
    Ok(LoadRun {
        requests,
        errors: n(&target["requests"]["error_total"]) + not_2xx,
        rps: target["throughput"].as_f64().unwrap_or(0.0),
        requested_rate: rate,
        rate_shortfall: target["rate_shortfall"].as_bool().unwrap_or(false),
        p50_us: pct(50.0),
        p99_us: pct(99.0),
        p99_9_us: pct(99.9),
        entrance_cpu_us,
        far_cpu_us,
        total_cpu_us: entrance_cpu_us + far_cpu_us.unwrap_or(0.0),
        entrance_others_pct: others(before.entrance_cpus, after.entrance_cpus, d_entrance),
        rest_others_pct: others(before.rest_cpus, after.rest_cpus, d_backend + d_far + d_gen),
    })
}

/// Share (%) of a CPU set's time used by others than `known` ticks between two readings.
fn others(a: (u64, u64), b: (u64, u64), known: u64) -> f64 {
    let total = b.1.saturating_sub(a.1).max(1) as f64;
    let busy = b.0.saturating_sub(a.0) as f64;
    ((busy - known as f64) / total * 100.0).max(0.0)
}

/// Every counter a run compares.
struct Sample {
    entrance: u64,
    far: u64,
    backend: u64,
    generators: u64,
    entrance_cpus: (u64, u64),
    rest_cpus: (u64, u64),
}

impl Sample {
    fn take(ctx: &Ctx, entrance: u32, far: Option<u32>, backend: u32) -> Self {
        Self {
            entrance: group_cpu_ticks(entrance),
            far: far.map_or(0, group_cpu_ticks),
            backend: group_cpu_ticks(backend),
            generators: reaped_children_ticks(),
            entrance_cpus: cpus_busy(&ctx.pin.entrance_cpus),
            rest_cpus: cpus_busy(&ctx.pin.rest_cpus),
        }
    }
}

/// Runs ringway-loadgen once on the other CPUs: closed loop when `rate` is `None`.
fn generate(
    ctx: &mut Ctx,
    plan: &LoadPlan,
    rate: Option<f64>,
    secs: f64,
    json: &Path,
    hgrm: Option<&Path>,
    name: &str,
) -> Result<(), String> {
    let loadgen = ctx.bins.join("ringway-loadgen");
    let l = &plan.load;
    let mut args: Vec<String> = vec![
        "-q".into(),
        "-c".into(),
        l.connections.to_string(),
        "-d".into(),
        format!("{secs}"),
        "-H".into(),
        format!("Host: {HOST}"),
        "--json".into(),
        json.display().to_string(),
    ];
    if let Some(r) = rate {
        // No spin window: the generator shares its CPUs with the backend and the tunnels' far
        // halves, and a spinning generator would take that CPU from them (docs/loadgen.md).
        args.extend(["-R".into(), format!("{r}"), "--spin-us".into(), "0".into()]);
    }
    if l.close {
        args.push("--close".into());
    }
    if l.method != "GET" {
        args.extend(["-m".into(), l.method.clone()]);
    }
    if let Some(body) = &plan.body {
        args.extend(["--body".into(), format!("@{}", body.display())]);
    }
    if let Some(h) = hgrm {
        args.extend(["--hgrm".into(), h.display().to_string()]);
    }
    let scheme = match (&ctx.pki, ctx.https) {
        (Some(pki), true) => {
            args.extend(pki.loadgen_args());
            "https"
        }
        _ => "http",
    };
    args.push(format!(
        "{scheme}://127.0.0.1:{}{}",
        ctx.ports.entrance, l.path
    ));
    let rest = ctx.pin.rest_cpus.clone();
    let cmd = ctx.pinned(&rest, &loadgen, &args);
    let log = ctx.work.join(format!("{name}.log"));
    run_to_end(name, cmd, &log, Duration::from_secs_f64(secs + 60.0))
}
