//! The text summary printed on stdout: per target the throughput, the full percentile spectrum
//! (corrected, uncorrected, send-lag), errors and statuses, CPU per request; then the comparison
//! table and the find-max curve.

use std::fmt::Write as _;

use super::{human_us, ratio, RunResult, Summary, TargetResult};

/// Renders the whole summary.
pub fn render(run: &RunResult) -> String {
    let mut out = String::new();
    let cfg = &run.config;
    let mode = match cfg.rate {
        Some(r) => {
            format!("open loop at {r:.0} req/s ({:?} arrivals)", cfg.arrivals).to_lowercase()
        }
        None => "closed loop".to_owned(),
    };
    let _ = writeln!(
        out,
        "ringway-loadgen: {mode}, {} connections, {} thread(s), {} driver, pipeline {}{}",
        cfg.connections,
        cfg.threads,
        run.driver,
        cfg.pipeline,
        if cfg.close {
            ", new connection per request"
        } else {
            ""
        }
    );
    for t in &run.targets {
        target(&mut out, t);
    }
    if run.targets.len() > 1 {
        comparison(&mut out, &run.targets);
    }
    if let Some(fm) = &run.find_max {
        let _ = writeln!(
            out,
            "\nfind-max: p{} <= {}",
            fm.slo.percentile,
            human_us(fm.slo.limit.as_secs_f64() * 1e6)
        );
        let _ = writeln!(
            out,
            "  {:>12} {:>12} {:>12} {:>12} {:>8}  ok",
            "rate", "achieved", "value", "lag p99", "errors"
        );
        for s in &fm.steps {
            let _ = writeln!(
                out,
                "  {:>12.0} {:>12.0} {:>12} {:>12} {:>8}  {}",
                s.rate,
                s.achieved_rate,
                human_us(s.value_us as f64),
                human_us(s.send_lag_p99_us as f64),
                s.errors,
                if s.ok { "yes" } else { "no" }
            );
        }
        match fm.max_rate {
            Some(r) => _ = writeln!(out, "  highest rate within the SLO: {r:.0} req/s"),
            None => _ = writeln!(out, "  no rate tried met the SLO"),
        }
    }
    for w in &run.warnings {
        let _ = writeln!(out, "\nWARNING: {w}");
    }
    out
}

fn target(out: &mut String, t: &TargetResult) {
    let tally = &t.rec.tally;
    let secs = t.measured.as_secs_f64();
    let _ = writeln!(out, "\nTarget {}  ({secs:.2} s measured)", t.url);
    let _ = write!(
        out,
        "  {} requests sent, {} responses, {:.1} req/s, {:.1} MB/s read",
        tally.sent,
        tally.completed,
        t.throughput(),
        tally.bytes_read as f64 / secs.max(1e-9) / 1e6
    );
    if let Some(req) = t.requested_rate {
        let _ = write!(
            out,
            "  (requested {req:.0} req/s, sent {:.1} req/s = {:.2} %)",
            t.achieved_rate(),
            100.0 * t.achieved_rate() / req
        );
    }
    let _ = writeln!(out);
    let lat = &t.rec.latencies;
    let (c, u, l) = (
        Summary::of(&lat.corrected),
        Summary::of(&lat.uncorrected),
        Summary::of(&lat.send_lag),
    );
    let _ = writeln!(
        out,
        "  Latency   {:>12} {:>12} {:>12}",
        "corrected", "uncorrected", "send-lag"
    );
    for ((pc, pu), pl) in c.percentiles.iter().zip(&u.percentiles).zip(&l.percentiles) {
        let label = if pc.percentile >= 100.0 {
            "max".to_owned()
        } else {
            format!("{}%", pc.percentile)
        };
        let _ = writeln!(
            out,
            "  {label:>9} {:>12} {:>12} {:>12}",
            human_us(pc.value as f64),
            human_us(pu.value as f64),
            human_us(pl.value as f64)
        );
    }
    let _ = writeln!(
        out,
        "  {:>9} {:>12} {:>12} {:>12}",
        "mean",
        human_us(c.mean),
        human_us(u.mean),
        human_us(l.mean)
    );
    if t.requested_rate.is_some() {
        let _ = writeln!(
            out,
            "  Send-lag: {}",
            super::lag::SendLag::of(&lat.send_lag).line()
        );
        let p = &t.rec.pace;
        if !p.window.is_empty() {
            let _ = writeln!(
                out,
                "  Pacing: spin window p50 {} max {}; timer woke late {}; {} already due",
                human_us(p.window.value_at_percentile(50.0) as f64),
                human_us(p.window.max() as f64),
                super::lag::SendLag::of(&p.wake_late).line(),
                p.behind
            );
        }
    }
    let e = &tally.errors;
    let _ = writeln!(
        out,
        "  Errors: connect {}, timeout {}, read {}, write {}, parse {}",
        e.connect, e.timeout, e.read, e.write, e.parse
    );
    let statuses: Vec<String> = tally
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    let _ = writeln!(
        out,
        "  Status: {}",
        if statuses.is_empty() {
            "none".to_owned()
        } else {
            statuses.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "  Connections opened: {} ({:.1}/s)",
        tally.connects,
        tally.connects as f64 / secs.max(1e-9)
    );
    if let Some(cpu) = t.cpu_usage() {
        let _ = writeln!(
            out,
            "  CPU of pid {}: {:.0} µs total, {:.2} µs/request",
            cpu.pid, cpu.cpu_us, cpu.us_per_request
        );
    }
}

fn comparison(out: &mut String, targets: &[TargetResult]) {
    let base = &targets[0];
    let _ = writeln!(
        out,
        "\nComparison against {} (ratio = target / baseline; corrected latency)",
        base.url
    );
    let _ = writeln!(
        out,
        "  {:<40} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "target", "req/s", "p50", "p99", "p99.9", "max", "cpu/req"
    );
    let stats = |t: &TargetResult| {
        let h = &t.rec.latencies.corrected;
        [
            t.throughput(),
            h.value_at_percentile(50.0) as f64,
            h.value_at_percentile(99.0) as f64,
            h.value_at_percentile(99.9) as f64,
            h.max() as f64,
            t.cpu_usage().map_or(0.0, |c| c.us_per_request),
        ]
    };
    let b = stats(base);
    for t in targets {
        let s = stats(t);
        let cells: Vec<String> = b
            .iter()
            .zip(s.iter())
            .map(|(a, v)| ratio(*a, *v).map_or_else(|| "-".to_owned(), |r| format!("{r:.3}")))
            .collect();
        let _ = writeln!(
            out,
            "  {:<40} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            t.url, cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]
        );
    }
}
