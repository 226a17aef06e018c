//! summary.md: the run's conditions, the per-system table (medians; ranges over rounds are the
//! noise columns; ratios to the baseline and to rathole) and every run; and the one-line headline
//! results/README.md quotes.

use std::fmt::Write as _;

use super::results::{Results, Stat, SummaryRow};
use super::systems::cpu_list;

/// `12.3 (11.9–13.0)` with `digits` decimals; `—` for none.
fn stat(s: Option<Stat>, scale: f64, digits: usize) -> (String, String) {
    match s {
        None => ("—".into(), "—".into()),
        Some(s) => (
            format!("{:.digits$}", s.median * scale),
            format!("{:.digits$}–{:.digits$}", s.min * scale, s.max * scale),
        ),
    }
}

fn ratio(s: Option<Stat>) -> String {
    s.map_or("—".into(), |s| {
        if (s.max - s.min).abs() < 0.005 {
            format!("{:.2}×", s.median)
        } else {
            format!("{:.2}× ({:.2}–{:.2})", s.median, s.min, s.max)
        }
    })
}

/// The headline: each ringway row's ratios to the baseline (and rathole).
pub fn headline(r: &Results) -> String {
    let mut parts = Vec::new();
    for row in r.summary.iter().filter(|s| s.system != r.baseline) {
        if !(row.system.starts_with("ringway") || row.system.starts_with("classic")) {
            continue;
        }
        parts.push(row_headline(row, &r.baseline));
    }
    if parts.is_empty() {
        return "no ringway row".into();
    }
    let mut text = parts.join("; ");
    if r.quick {
        text.push_str(" (quick: a harness check, not a measurement)");
    }
    text
}

fn row_headline(row: &SummaryRow, baseline: &str) -> String {
    let b = &row.vs_baseline;
    if let Some(bytes) = row.bytes_per_conn {
        return format!(
            "{}: {:.0} B per idle connection, {} {baseline}",
            row.system,
            bytes.median,
            ratio(b.bytes_per_conn)
        );
    }
    let mut s = format!(
        "{}: CPU/request {} {baseline}, req/s {}",
        row.system,
        ratio(b.total_cpu),
        ratio(b.rps)
    );
    if let Some(rat) = &row.vs_rathole {
        let _ = write!(s, ", CPU/request {} rathole", ratio(rat.total_cpu));
    }
    s
}

/// The whole summary.md.
pub fn render(r: &Results) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# `{}`: ringway side by side\n", r.scenario);
    if r.quick {
        let _ = writeln!(
            o,
            "**Quick mode** (`--quick`): seconds per system, a check that the harness works end to end; the figures mean nothing.\n"
        );
    }
    let _ = writeln!(o, "**Headline:** {}\n", headline(r));
    let p = &r.plan;
    let l = &p.request;
    let _ = writeln!(o, "- date: {} (took {:.0} s)", r.started_at, r.elapsed_s);
    let _ = writeln!(o, "- command: `{}`", r.command);
    let dirty = if r.dirty.is_empty() {
        String::new()
    } else {
        format!(" + uncommitted changes in {}", r.dirty.join(" "))
    };
    let _ = writeln!(
        o,
        "- ringway: commit {}{dirty}, binaries from `{}`",
        r.commit, r.binaries
    );
    let _ = writeln!(
        o,
        "- machine: {} CPUs, {}, Linux {}; load average {} before, {} after. **The machine is shared** with other work (builds, tests, other benchmarks): compare ratios within this run, not absolute figures across runs; the *others %* column says how busy the CPUs were with processes outside the run",
        r.host.nproc, r.host.cpu_model, r.host.kernel, r.host.loadavg_before, r.host.loadavg_after
    );
    let versions: Vec<String> = r
        .peers
        .iter()
        .filter(|x| x.path.is_some())
        .map(|x| format!("{} {}", x.name, x.version))
        .collect();
    let _ = writeln!(o, "- peers: {}", versions.join(", "));
    let _ = writeln!(
        o,
        "- pinning (`ringway-tune --pin-plan 1`, host.txt): entrance (nginx worker, HAProxy, rathole server, balancer) on CPU {}; backend, tunnel far half (agent, rathole client) and load generator on CPU {}",
        cpu_list(&r.pinning.entrance_cpus),
        cpu_list(&r.pinning.rest_cpus)
    );
    if let Some(n) = p.idle_conns {
        let _ = writeln!(
            o,
            "- load: {n} keep-alive connections per system (`idle-clients`), each one `GET {}` answered, then idle; VmRSS of the entrance's process group before and 2 s after the last was answered",
            l.path
        );
    } else {
        let body = if l.body_bytes > 0 {
            format!(" with a {} B body", l.body_bytes)
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "- load ({}): {} {} connections, `{} {}`{body}; per system and round a {} s closed-loop warm-up, a {} s closed-loop run (req/s, CPU per request) and a {} s open-loop run at {} req/s (corrected latency, the .hgrm files, latency.svg); {} round(s), the baseline first, the others rotated by one place per round",
            p.generator,
            l.connections,
            if l.close { "new (`Connection: close`)" } else { "keep-alive" },
            l.method,
            l.path,
            p.warmup_s,
            p.duration_s,
            p.duration_s,
            l.rate,
            p.rounds
        );
        if l.https {
            let _ = writeln!(
                o,
                "- users connect over HTTPS: {}; the generator offers only these, nginx accepts only these, ringway's listener (rustls defaults, tickets and cache off) negotiates what is offered; what each system negotiated, and whether it resumes a session, is in its label (a probe before the load){}",
                super::pki::DESCRIPTION,
                if l.close {
                    "; every request is a new connection and a full handshake: req/s = handshakes/s, CPU per request = CPU per handshake"
                } else {
                    ""
                }
            );
        }
    }
    for s in &r.skipped {
        let _ = writeln!(o, "- skipped {}: {}", s.system, s.reason);
    }
    for n in &r.notes {
        let _ = writeln!(o, "- note: {n}");
    }
    o.push('\n');
    let _ = writeln!(
        o,
        "## Per system (median over rounds; the range columns are min–max over rounds, the noise)\n"
    );
    if p.idle_conns.is_some() {
        idle_table(&mut o, r);
    } else {
        load_table(&mut o, r);
    }
    runs_table(&mut o, r);
    let _ = writeln!(
        o,
        "\nFiles: `results.json` (schema in docs/benchmarks.md), `*.hgrm` (open-loop corrected latency, ms), `latency.svg`, `host.txt` (`ringway-tune --pin-plan 1`), `commands.txt` (every command, in order). Made by `compare` (benches/src/bin/compare; docs/benchmarks.md)."
    );
    o
}

fn load_table(o: &mut String, r: &Results) {
    let b = &r.baseline;
    let _ = writeln!(
        o,
        "| system | req/s | range | total CPU µs/req | range | entrance CPU µs/req | p99 ms (closed) | p99 ms at {} req/s (corrected) | range | CPU/req ÷ {b} | req/s ÷ {b} | CPU/req ÷ rathole | max others % |",
        r.plan.request.rate
    );
    let _ = writeln!(
        o,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for s in &r.summary {
        let (rps, rps_r) = stat(s.rps, 1.0, 0);
        let (cpu, cpu_r) = stat(s.total_cpu_us, 1.0, 2);
        let (ent, _) = stat(s.entrance_cpu_us, 1.0, 2);
        let (p99, _) = stat(s.p99_us, 1e-3, 2);
        let (op99, op99_r) = stat(s.open_p99_us, 1e-3, 2);
        let rathole = s
            .vs_rathole
            .as_ref()
            .map_or("—".into(), |x| ratio(x.total_cpu));
        let _ = writeln!(
            o,
            "| {} | {rps} | {rps_r} | {cpu} | {cpu_r} | {ent} | {p99} | {op99} | {op99_r} | {} | {} | {rathole} | {} |",
            s.label,
            ratio(s.vs_baseline.total_cpu),
            ratio(s.vs_baseline.rps),
            s.max_others_pct.map_or("—".into(), |x| format!("{x:.0}"))
        );
    }
}

fn idle_table(o: &mut String, r: &Results) {
    let _ = writeln!(
        o,
        "| system | bytes / idle conn | range | ÷ {} |",
        r.baseline
    );
    let _ = writeln!(o, "|---|---:|---:|---:|");
    for s in &r.summary {
        let (v, range) = stat(s.bytes_per_conn, 1.0, 0);
        let _ = writeln!(
            o,
            "| {} | {v} | {range} | {} |",
            s.label,
            ratio(s.vs_baseline.bytes_per_conn)
        );
    }
    let mut capped: Vec<(&str, &str)> = r
        .runs
        .iter()
        .filter_map(|run| Some((run.system.as_str(), run.idle.as_ref()?.capped.as_deref()?)))
        .collect();
    capped.dedup();
    for (system, why) in capped {
        let _ = writeln!(
            o,
            "\n{system} held {why}; its figure is per connection held."
        );
    }
}

fn runs_table(o: &mut String, r: &Results) {
    let _ = writeln!(o, "\n## Every run\n");
    if r.plan.idle_conns.is_some() {
        let _ = writeln!(o, "| round | system | opened | answered | RSS before KiB | RSS after KiB | bytes / conn | far RSS KiB |");
        let _ = writeln!(o, "|---:|---|---:|---:|---:|---:|---:|---|");
        for run in &r.runs {
            if let Some(i) = &run.idle {
                let far = i
                    .far_rss_kib
                    .map_or("—".into(), |(a, b)| format!("{a} → {b}"));
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} | {} | {:.0} | {far} |",
                    run.round,
                    run.system,
                    i.conns,
                    i.answered,
                    i.rss_before_kib,
                    i.rss_after_kib,
                    i.bytes_per_conn
                );
            }
        }
        return;
    }
    let _ = writeln!(
        o,
        "| round | system | req/s | p99 ms | entrance µs/req | far µs/req | open p99 ms | open total µs/req | errors | others % entrance / rest (closed; open) |"
    );
    let _ = writeln!(o, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for run in &r.runs {
        let (Some(c), Some(op)) = (&run.closed, &run.open) else {
            continue;
        };
        let far = c.far_cpu_us.map_or("—".into(), |x| format!("{x:.2}"));
        let short = if op.rate_shortfall {
            " (rate shortfall)"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {far} | {:.2}{short} | {:.2} | {} | {:.0} / {:.0}; {:.0} / {:.0} |",
            run.round,
            run.system,
            c.rps,
            c.p99_us as f64 / 1e3,
            c.entrance_cpu_us,
            op.p99_us as f64 / 1e3,
            op.total_cpu_us,
            c.errors + op.errors,
            c.entrance_others_pct,
            c.rest_others_pct,
            op.entrance_others_pct,
            op.rest_others_pct
        );
    }
}
