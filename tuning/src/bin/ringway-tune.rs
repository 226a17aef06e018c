//! `ringway-tune`: a report on how this host is set up for ringway, with the command that fixes
//! each setting that holds it back. See docs/tuning.md.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ringway_tuning::report::{HostReport, ReportOptions};

/// Report CPU, io_uring, socket sysctls and limits, with recommendations for ringway.
#[derive(Debug, Parser)]
#[command(name = "ringway-tune", version, about, long_about = None)]
struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also print where N balancer workers and the load generator / backends would be pinned
    /// (0: one worker per allowed CPU).
    #[arg(long, value_name = "N")]
    pin_plan: Option<usize>,
    /// Also time a short loopback echo on each IO driver.
    #[arg(long)]
    probe_drivers: bool,
    /// How long each driver's echo runs, in seconds (at most 5).
    #[arg(long, default_value_t = 0.5, value_name = "SECONDS")]
    probe_seconds: f64,
    /// Pin the driver probe's worker and the stall probe to this CPU (default: unpinned).
    #[arg(long, value_name = "CPU")]
    probe_cpu: Option<usize>,
    /// Also measure how noisy the host is: for this many seconds (at most 30), half spinning
    /// (time the CPU was taken away) and half in 1 ms sleeps (how late they wake).
    #[arg(long, value_name = "SECONDS")]
    probe_stalls: Option<f64>,
    /// Exit with status 2 if any finding is a warning (for scripts).
    #[arg(long)]
    strict: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let probe_drivers = args
        .probe_drivers
        .then(|| Duration::from_secs_f64(args.probe_seconds.clamp(0.01, 5.0)));
    let report = HostReport::collect(&ReportOptions {
        pin_plan: args.pin_plan,
        probe_drivers,
        probe_cpu: args.probe_cpu,
        probe_stalls: args
            .probe_stalls
            .map(|s| Duration::from_secs_f64(s.clamp(0.01, 30.0))),
    });
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if args.strict && report.summary.warn > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
