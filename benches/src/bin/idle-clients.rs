//! `idle-clients`: opens N keep-alive HTTP/1.1 connections to one address, sends one GET on each,
//! reads the whole response, and then holds every connection open and idle until killed. Used by
//! `benches/scripts/idle_conns.sh` to measure what an idle keep-alive connection costs a proxy.
//!
//! One thread, blocking sockets, one connection after the other: a socket costs this process a file
//! descriptor and a few dozen bytes, so 5000 of them are cheap. When every connection has been
//! answered it prints `ready OK FAILED` on stdout (and the first few errors on stderr), then sleeps.
//! A connection that times out (the system takes or answers no more) ends the opening: the ones
//! after it would each wait out the same timeout, so they count as failed without being tried.
//!
//! ```text
//! idle-clients ADDR [--conns N] [--host HOST] [--path PATH] [--patience-ms MS]
//! ```

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use ringway_benches::one_response::read_response;

/// How long one connect or one read may take before the connection counts as failed
/// (`--patience-ms`), in ms.
const PATIENCE_MS: u64 = 10_000;

fn main() -> ExitCode {
    let args = Args::parse();
    let patience = Duration::from_millis(args.patience_ms);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: idle-clients\r\n\r\n",
        args.path,
        args.host.clone().unwrap_or_else(|| args.addr.to_string())
    );
    let started = Instant::now();
    let mut open = Vec::with_capacity(args.conns);
    let mut failed = 0usize;
    for i in 0..args.conns {
        match one_request(args.addr, request.as_bytes(), patience) {
            Ok((stream, 200)) => open.push(stream),
            Ok((stream, status)) => {
                failed += 1;
                if failed <= 5 {
                    eprintln!("idle-clients: connection {i}: status {status}");
                }
                drop(stream);
            }
            Err(e) if timed_out(&e) => {
                let untried = args.conns - i;
                failed += untried;
                eprintln!(
                    "idle-clients: connection {i}: no answer within {} ms; not opening the {untried} left",
                    patience.as_millis()
                );
                break;
            }
            Err(e) => {
                failed += 1;
                if failed <= 5 {
                    eprintln!("idle-clients: connection {i}: {e}");
                }
            }
        }
    }
    eprintln!(
        "idle-clients: {} connections answered 200 in {:.1} s, {failed} failed",
        open.len(),
        started.elapsed().as_secs_f64()
    );
    println!("ready {} {failed}", open.len());
    let _ = io::stdout().flush();
    // Hold every connection, idle, until the process is killed.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Connects, sends `request` and reads one whole response; returns the open stream and the status.
fn one_request(
    addr: SocketAddr,
    request: &[u8],
    patience: Duration,
) -> io::Result<(TcpStream, u16)> {
    let mut stream = TcpStream::connect_timeout(&addr, patience)?;
    stream.set_read_timeout(Some(patience))?;
    stream.set_nodelay(true)?;
    stream.write_all(request)?;
    let resp = read_response(&mut stream)?;
    if !resp.keep_alive {
        return Err(io::Error::other(
            "the response closes the connection (no keep-alive)",
        ));
    }
    Ok((stream, resp.status))
}

/// A connect or read that ran out of patience (a read timeout reads as `WouldBlock`).
fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// Opens N keep-alive connections, one GET on each, and holds them idle until killed.
#[derive(Debug, Parser)]
#[command(name = "idle-clients", version, about, long_about = None)]
struct Args {
    /// The server, IP:PORT.
    addr: SocketAddr,
    /// Connections to open.
    #[arg(long, default_value_t = 5000)]
    conns: usize,
    /// The Host header (default: ADDR).
    #[arg(long)]
    host: Option<String>,
    /// The request path.
    #[arg(long, default_value = "/")]
    path: String,
    /// How long one connect or one read may take, in ms.
    #[arg(long, default_value_t = PATIENCE_MS, value_parser = clap::value_parser!(u64).range(1..))]
    patience_ms: u64,
}
