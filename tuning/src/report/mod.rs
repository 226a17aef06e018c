//! The host report printed by `ringway-tune`: what the host offers ringway (CPUs, io_uring,
//! socket sysctls, limits), a verdict with a fix for each setting, and optionally where to pin
//! workers and load generators and how the two IO drivers compare here.
//!
//! JSON keys (stable; `docs/tuning.md` describes each): `kernel_release`, `cpu`, `io_uring`,
//! `net`, `rlimit_nofile`, `transparent_hugepages`, `cpu_governors`, `findings`, `summary`,
//! `pin_plan` (null unless asked for), `driver_probe` (null unless asked for).

pub mod checks;
pub mod drivers;
pub mod host;
pub mod stalls;
mod text;

use std::time::Duration;

use serde::Serialize;

use crate::cpu::{self, PinPlan};
use crate::runtime::IoDriver;
pub use checks::{Finding, Status};
pub use drivers::DriverTiming;
pub use host::HostFacts;

/// Everything `ringway-tune` prints.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    /// What was read.
    #[serde(flatten)]
    pub facts: HostFacts,
    /// One verdict per setting.
    pub findings: Vec<Finding>,
    /// Counts of findings per status.
    pub summary: Summary,
    /// `--pin-plan N`.
    pub pin_plan: Option<PinAdvice>,
    /// `--probe-drivers`.
    pub driver_probe: Option<Vec<DriverTiming>>,
    /// `--probe-stalls`.
    pub stall_probe: Option<stalls::StallProbe>,
}

/// Findings per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Fine.
    pub ok: usize,
    /// For information.
    pub info: usize,
    /// To fix.
    pub warn: usize,
}

/// The pin plan with the commands that apply it.
#[derive(Debug, Clone, Serialize)]
pub struct PinAdvice {
    /// Balancer workers asked for.
    pub workers_requested: usize,
    /// CPU per worker, and the CPUs left over.
    #[serde(flatten)]
    pub plan: PinPlan,
    /// Shell commands that start each part where the plan puts it.
    pub commands: Vec<String>,
}

/// What to add to the report.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// `Some(n)`: include the pin plan for `n` balancer workers.
    pub pin_plan: Option<usize>,
    /// `Some(d)`: run the echo on each driver for `d`.
    pub probe_drivers: Option<Duration>,
    /// CPU to pin the driver probe's worker (and the stall probe) to.
    pub probe_cpu: Option<usize>,
    /// `Some(d)`: measure the host's stalls and wake-up lateness for `d`.
    pub probe_stalls: Option<Duration>,
}

impl HostReport {
    /// Reads the host and builds the report.
    pub fn collect(opts: &ReportOptions) -> Self {
        let facts = HostFacts::read();
        let findings = checks::findings(&facts);
        let mut summary = Summary::default();
        for f in &findings {
            match f.status {
                Status::Ok => summary.ok += 1,
                Status::Info => summary.info += 1,
                Status::Warn => summary.warn += 1,
            }
        }
        let pin_plan = opts.pin_plan.map(|n| pin_advice(&facts.cpu.allowed, n));
        let driver_probe = opts.probe_drivers.map(|d| {
            let mut drivers = vec![IoDriver::Uring, IoDriver::Epoll];
            if facts.io_uring.probe.defer_taskrun.ok {
                drivers.insert(1, IoDriver::UringDefer);
            }
            drivers::probe(&drivers, d, opts.probe_cpu)
        });
        let stall_probe = opts.probe_stalls.map(|d| stalls::probe(d, opts.probe_cpu));
        Self {
            facts,
            findings,
            summary,
            pin_plan,
            driver_probe,
            stall_probe,
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"serialising report: {e}\"}}"))
    }

    /// The report as text for a terminal.
    pub fn to_text(&self) -> String {
        text::render(self)
    }
}

/// Where `n` balancer workers go on `allowed`, and the commands the benchmarks use.
pub fn pin_advice(allowed: &[usize], n: usize) -> PinAdvice {
    let plan = PinPlan::new(allowed, n);
    let workers = plan.workers.len();
    let balancer_cpus = cpu::cpu_list(&plan.workers);
    let mut commands = vec![format!(
        "taskset -c {balancer_cpus} ringway-balancer --workers {workers} ..."
    )];
    if plan.rest.is_empty() {
        commands.push(format!("# no CPU left over: backends and load generator share CPUs {balancer_cpus} with the balancer"));
    } else {
        let rest = cpu::cpu_list(&plan.rest);
        let threads = plan.rest.len();
        commands.push(format!(
            "taskset -c {rest} <backend> ...   # backends + ringway-agent"
        ));
        commands.push(format!(
            "taskset -c {rest} ringway-loadgen -t {threads} --cpus {} ...",
            plan.rest
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    PinAdvice {
        workers_requested: n,
        plan,
        commands,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_core_advice_matches_the_benchmarks() {
        let a = pin_advice(&[0, 1], 1);
        assert_eq!(a.plan.workers, vec![0]);
        assert_eq!(a.plan.rest, vec![1]);
        assert_eq!(
            a.commands[0],
            "taskset -c 0 ringway-balancer --workers 1 ..."
        );
        assert!(a.commands[2].starts_with("taskset -c 1 ringway-loadgen -t 1 --cpus 1"));
    }

    #[test]
    fn report_counts_its_findings() {
        let r = HostReport::collect(&ReportOptions {
            pin_plan: Some(1),
            ..ReportOptions::default()
        });
        assert_eq!(
            r.summary.ok + r.summary.info + r.summary.warn,
            r.findings.len()
        );
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert!(json["pin_plan"]["workers"].is_array());
        assert!(json["driver_probe"].is_null());
        assert!(r.to_text().contains("Pin plan"));
    }
}
