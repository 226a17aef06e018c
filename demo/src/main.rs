//! The `ringway-demo` binary.

use std::process::ExitCode;

use clap::Parser;
use ringway_demo::cli::{Cli, Command, DemoArgs};
use ringway_demo::{demo_config, Demo};
use ringway_tuning::runtime::IoDriver;

/// mimalloc: cheaper per-request allocations than glibc's on the request path, and freed
/// memory goes back (glibc kept the buffers of a burst after it ended); see Cargo.toml.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = ringway_log::init(&cli.log) {
        eprintln!("ringway-demo: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Some(Command::Hello { listen, io_driver }) => hello(listen, io_driver),
        None => demo(&cli.demo),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringway-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The whole demo, until interrupted. Tests and scripts read the "listening on" lines to learn the
/// ports (port 0 picks free ones).
fn demo(args: &DemoArgs) -> Result<(), String> {
    let mut config = demo_config();
    args.apply(&mut config)?;
    let demo = Demo::start(config)?;
    println!(
        "ringway-demo: users listening on {}",
        demo.balancer.user_addr()
    );
    println!(
        "ringway-demo: agents listening on {}",
        demo.balancer.agent_addr()
    );
    println!(
        "ringway-demo: hello backend listening on {}",
        demo.backend.addr
    );
    println!(
        "ringway-demo: agent tunnel over TLS (throwaway CA and certificate in {})",
        demo.pki.dir().display()
    );
    if let Some(admin) = demo.balancer.admin_addr() {
        println!("ringway-demo: admin listening on {admin}");
    }
    println!();
    println!("try:");
    for command in demo.try_commands() {
        println!("  {command}");
    }
    println!();
    println!("Ctrl-C to stop.");
    demo.join();
    Ok(())
}

/// The hello backend alone, on this thread, until the process is killed.
fn hello(listen: std::net::SocketAddr, driver: IoDriver) -> Result<(), String> {
    let listener =
        std::net::TcpListener::bind(listen).map_err(|e| format!("binding {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("ringway-demo: hello backend listening on {addr}");
    ringway_hello::run(listener, driver).map_err(|e| format!("hello backend: {e}"))
}
