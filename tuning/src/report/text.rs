//! The terminal form of the report: facts, then one line per finding with its fix.

use std::fmt::Write as _;

use super::drivers::EchoOutcome;
use super::{HostReport, Status};

pub(super) fn render(r: &HostReport) -> String {
    let mut out = String::new();
    let f = &r.facts;
    let _ = writeln!(out, "ringway-tune: host report");
    let _ = writeln!(
        out,
        "  kernel            {}",
        f.kernel_release.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(
        out,
        "  cpus              {} online, allowed {} (mask {})",
        f.cpu.online, f.cpu.allowed_list, f.cpu.affinity_mask
    );
    let p = &f.io_uring.probe;
    let yes_no = |ok: bool| if ok { "yes" } else { "no" };
    let _ = writeln!(
        out,
        "  io_uring          ring {}, COOP_TASKRUN {}, SINGLE_ISSUER {}, DEFER_TASKRUN {}; --io-driver auto -> {}",
        yes_no(p.plain.ok),
        yes_no(p.coop_taskrun.ok),
        yes_no(p.single_issuer.ok),
        yes_no(p.defer_taskrun.ok),
        f.io_uring.auto_driver
    );
    out.push('\n');

    let width = r.findings.iter().map(|x| x.check.len()).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "Findings ({} ok, {} info, {} warn):",
        r.summary.ok, r.summary.info, r.summary.warn
    );
    for x in &r.findings {
        let tag = match x.status {
            Status::Ok => "ok  ",
            Status::Info => "info",
            Status::Warn => "WARN",
        };
        let _ = writeln!(out, "  [{tag}] {:<width$}  {}", x.check, x.value);
        let _ = writeln!(out, "         {:<width$}  {}", "", x.recommendation);
        if let Some(cmd) = &x.command {
            let verb = if x.status == Status::Warn {
                "fix"
            } else {
                "optional"
            };
            let _ = writeln!(out, "         {:<width$}  {verb}: {cmd}", "");
        }
    }

    if let Some(a) = &r.pin_plan {
        out.push('\n');
        let _ = writeln!(
            out,
            "Pin plan for {} balancer worker(s) on allowed CPUs {}:",
            a.plan.workers.len(),
            f.cpu.allowed_list
        );
        for (i, cpu) in a.plan.workers.iter().enumerate() {
            let _ = writeln!(out, "  worker {i:<3} -> CPU {cpu}");
        }
        if a.plan.rest.is_empty() {
            let _ = writeln!(
                out,
                "  load generator / backends -> no CPU left (they share the workers' CPUs)"
            );
        } else {
            let _ = writeln!(
                out,
                "  load generator / backends -> CPUs {}",
                crate::cpu::cpu_list(&a.plan.rest)
            );
        }
        if a.plan.oversubscribed {
            let _ = writeln!(
                out,
                "  note: more workers than allowed CPUs; workers share cores"
            );
        }
        for c in &a.commands {
            let _ = writeln!(out, "  $ {c}");
        }
    }

    if let Some(probe) = &r.driver_probe {
        out.push('\n');
        let _ = writeln!(
            out,
            "Driver probe (loopback echo of {} bytes, client + server on one thread):",
            super::drivers::MESSAGE_BYTES
        );
        for t in probe {
            match &t.outcome {
                EchoOutcome::Done {
                    round_trips,
                    seconds,
                    round_trips_per_sec,
                    cpu_us_per_round_trip,
                } => {
                    let _ = writeln!(out, "  {:<12} {round_trips:>8} round trips in {seconds:.2} s = {round_trips_per_sec:>9.0}/s, {cpu_us_per_round_trip:.2} CPU µs per round trip", t.driver.to_string());
                }
                EchoOutcome::Failed { error } => {
                    let _ = writeln!(out, "  {:<12} failed: {error}", t.driver.to_string());
                }
            }
        }
    }

    if let Some(p) = &r.stall_probe {
        out.push('\n');
        let on = p
            .cpu
            .map_or_else(|| "unpinned".to_owned(), |c| format!("CPU {c}"));
        let _ = writeln!(
            out,
            "Stall probe ({on}): spinning {:.1} s, not running {:.1} ms ({:.2} %), {} gaps over 100 µs, {} over 1 ms, longest {} µs",
            p.spin_seconds,
            p.stalled_us as f64 / 1000.0,
            p.stalled_percent,
            p.gaps_over_100us,
            p.gaps_over_1ms,
            p.max_gap_us
        );
        let _ = writeln!(
            out,
            "  {} sleeps of 1 ms woke late by p50 {} µs, p99 {} µs, max {} µs{}",
            p.wakeups,
            p.wake_late_us.p50,
            p.wake_late_us.p99,
            p.wake_late_us.max,
            p.slack_error
                .as_deref()
                .map(|e| format!(" (default timer slack kept: {e})"))
                .unwrap_or_default()
        );
    }
    out
}
