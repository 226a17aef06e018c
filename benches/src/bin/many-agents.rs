//! `many-agents`: N ringway agents in one process (one runtime thread each), each serving M
//! routes from the same backend — the far side of the `many-agents` scenario of `compare`.
//!
//! Agent `i` registers `a{i}-r{j}.bench.test` for `j` in `0..M`; agent 0 registers the measured
//! host (`--host`) in place of its first route, so the run has N agents and N × M routes and the
//! load reaches one of them. Prints `ready N` on stdout once every agent has a live tunnel
//! connection, then runs until killed.
//!
//! ```text
//! many-agents --balancer ADDR --backend ADDR [--agents N] [--routes-per-agent M] [--host HOST]
//!             [--token T] [--io-driver DRIVER]
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use ringway_agent::{Agent, AgentConfig, Transport};
use ringway_io::runtime::IoDriver;

/// N agents in one process, each with M routes.
#[derive(Debug, Parser)]
#[command(name = "many-agents")]
struct Args {
    /// The balancer's agent listener.
    #[arg(long)]
    balancer: String,
    /// The backend every agent forwards to.
    #[arg(long)]
    backend: SocketAddr,
    /// Agents.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Routes each agent registers.
    #[arg(long, default_value_t = 10)]
    routes_per_agent: usize,
    /// The host the load uses, served by agent 0.
    #[arg(long, default_value = "bench.test")]
    host: String,
    /// The balancer's agent token.
    #[arg(long, default_value = "bench")]
    token: String,
    /// IO driver of every agent's thread.
    #[arg(long, value_enum, default_value_t = IoDriver::Epoll)]
    io_driver: IoDriver,
    /// How long all agents may take to connect.
    #[arg(long, default_value_t = 120)]
    ready_timeout_s: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut handles = Vec::with_capacity(args.agents);
    for i in 0..args.agents {
        let routes: Vec<String> = (0..args.routes_per_agent.max(1))
            .map(|j| {
                if i == 0 && j == 0 {
                    args.host.clone()
                } else {
                    format!("a{i}-r{j}.bench.test")
                }
            })
            .collect();
        let mut config = AgentConfig::new(
            vec![args.balancer.clone()],
            args.token.clone(),
            routes,
            args.backend,
        );
        config.agent_id = format!("many-agents-{i}");
        config.workers = 1;
        config.io_driver = args.io_driver;
        // A plaintext tunnel on loopback (the balancer runs with --insecure-plaintext).
        config.transport = Transport::InsecurePlaintext;
        // Few pooled backend connections: only agent 0 gets requests.
        config.pool_size = if i == 0 { 64 } else { 1 };
        match Agent::start(config) {
            Ok(h) => handles.push(h),
            Err(e) => {
                eprintln!("many-agents: starting agent {i}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(args.ready_timeout_s);
    loop {
        let live = handles.iter().filter(|h| h.live_connections() > 0).count();
        if live == handles.len() {
            break;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "many-agents: only {live} of {} agents connected in {} s",
                handles.len(),
                args.ready_timeout_s
            );
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("ready {}", handles.len());
    let _ = std::io::stdout().flush();
    for h in handles {
        h.join();
    }
    ExitCode::SUCCESS
}
