//! `compare`: runs ringway and its peers side by side on one scenario and writes
//! `results/<date>-<scenario>/` (docs/benchmarks.md).
//!
//! ```text
//! cargo run --release -p ringway-benches --bin compare -- --scenario small-get [--install-peers]
//! cargo run --release -p ringway-benches --bin compare -- --scenario small-get --quick
//! cargo run --release -p ringway-benches --bin compare -- --reindex
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ringway_benches::compare::run::{run, Options};
use ringway_benches::compare::scenario::Scenario;
use ringway_benches::compare::{index, procs};

/// ringway side by side with nginx, HAProxy and rathole: same pinning, same backend, same load.
#[derive(Debug, Parser)]
#[command(name = "compare", about, long_about = None)]
struct Args {
    /// The scenario.
    #[arg(long, value_enum, required_unless_present_any = ["reindex", "serve_hello"])]
    scenario: Option<Scenario>,
    /// A few seconds per system and one round: proves the harness works, measures nothing.
    #[arg(long)]
    quick: bool,
    /// Rounds of the whole list of systems (default 3; --quick 1).
    #[arg(long)]
    rounds: Option<u32>,
    /// Seconds of each measured run (default 5; --quick 1).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Seconds of closed-loop warm-up before them (default 1; --quick 0.3).
    #[arg(long, value_name = "SECONDS")]
    warmup: Option<f64>,
    /// Offered rate of the open-loop run (default: the scenario's).
    #[arg(long, value_name = "REQ/S")]
    rate: Option<f64>,
    /// Connections (default: the scenario's).
    #[arg(long)]
    connections: Option<usize>,
    /// Idle connections per system in idle-10k (default 10000; --quick 200).
    #[arg(long)]
    idle_conns: Option<usize>,
    /// Only these systems (keys as in results.json: nginx, haproxy, rathole, ringway-uring, …).
    #[arg(long, value_delimiter = ',')]
    systems: Vec<String>,
    /// Install missing peers first: nginx, haproxy, wrk with apt-get; rathole, oha with cargo.
    #[arg(long, conflicts_with = "no_peers")]
    install_peers: bool,
    /// Act as if no peer were installed: ringway alone, against ringway's hello backend.
    #[arg(long)]
    no_peers: bool,
    /// Where the run's directory goes; its README.md index, if it has one, is rebuilt.
    #[arg(long, default_value = "results")]
    out_dir: PathBuf,
    /// ringway's binaries (default: this binary's directory).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Use the binaries as they are (no cargo build first).
    #[arg(long)]
    no_build: bool,
    /// First of the four loopback ports used (backend, entrance, agents, rathole control).
    #[arg(long, default_value_t = 18600)]
    base_port: u16,
    /// Only rebuild OUT_DIR/README.md's index of runs.
    #[arg(long)]
    reindex: bool,
    /// Internal: serve ringway's hello backend on 127.0.0.1:PORT (the backend without nginx).
    #[arg(long, hide = true, value_name = "PORT")]
    serve_hello: Option<u16>,
}

fn main() -> ExitCode {
    if let Err(e) = procs::stop_all_on_signal() {
        eprintln!("compare: {e}");
        return ExitCode::FAILURE;
    }
    let args = Args::parse();
    if let Some(port) = args.serve_hello {
        let served = std::net::TcpListener::bind(("127.0.0.1", port))
            .and_then(|l| ringway_hello::run(l, ringway_tuning::runtime::IoDriver::Auto));
        if let Err(e) = served {
            eprintln!("compare --serve-hello {port}: {e}");
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    }
    if args.reindex {
        let readme = args.out_dir.join("README.md");
        return match index::update(&readme, &args.out_dir) {
            Ok(()) => {
                eprintln!("== rebuilt the index in {}", readme.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("compare: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let Some(scenario) = args.scenario else {
        eprintln!("compare: --scenario is required");
        return ExitCode::from(2);
    };
    let command = std::iter::once("compare".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let options = Options {
        scenario,
        quick: args.quick,
        rounds: args.rounds,
        duration: args.duration,
        warmup: args.warmup,
        rate: args.rate,
        connections: args.connections,
        idle_conns: args.idle_conns,
        systems: args.systems,
        install_peers: args.install_peers,
        no_peers: args.no_peers,
        out_dir: args.out_dir,
        bin_dir: args.bin_dir,
        no_build: args.no_build,
        base_port: args.base_port,
        command,
    };
    match run(&options) {
        Ok(dir) => {
            let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap_or_default();
            print!("{summary}");
            eprintln!("== wrote {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::FAILURE
        }
    }
}
