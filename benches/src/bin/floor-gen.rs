//! `floor-gen`: the least a closed-loop HTTP/1.1 load generator can do, as a yardstick for the
//! CPU per request of real ones (wrk, oha, ringway-loadgen) against the same server.
//!
//! It learns the length of the server's response from one request, then keeps N keep-alive
//! connections busy from one thread on one level-triggered epoll: when a socket is readable it
//! reads once, counts a response whenever the bytes since its request reach that length, and
//! writes the next request at once. No parsing, no clock per request, no histogram, no
//! `epoll_ctl` per request: three system calls a request (`write`, `read`, a share of one
//! `epoll_wait`), which is what the kernel's TCP work costs plus nearly nothing. A generator
//! that measures anything costs more; how much more is its overhead. A connection the server
//! closes (nginx after `keepalive_requests`) is opened again and counted.
//!
//! It checks nothing beyond lengths, so it is only for a server that answers every request with
//! the same bytes (a fixed `return 200`), which is what the benchmark scripts run.
//!
//! ```text
//! floor-gen ADDR [--conns N] [--duration SECONDS] [--host HOST] [--path PATH]
//! ```
//! prints `requests N`, `seconds S`, `req/s R` and `reconnects K` on stdout.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use ringway_benches::one_response::read_response;
use rustix::event::epoll;

/// How long the first request (the one that learns the response length) may take.
const PATIENCE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(out) => {
            let secs = out.elapsed.as_secs_f64();
            println!("requests {}", out.requests);
            println!("seconds {secs:.3}");
            println!("req/s {:.1}", out.requests as f64 / secs);
            println!("reconnects {}", out.reconnects);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("floor-gen: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Outcome {
    requests: u64,
    elapsed: Duration,
    reconnects: u64,
}

/// One connection: its socket and the bytes of the response in progress.
struct Conn {
    stream: TcpStream,
    got: usize,
}

fn run(args: &Args) -> io::Result<Outcome> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: floor-gen\r\n\r\n",
        args.path,
        args.host.clone().unwrap_or_else(|| args.addr.to_string())
    );
    let request = request.as_bytes();
    let len = response_len(args.addr, request)
        .map_err(|e| io::Error::new(e.kind(), format!("first request to {}: {e}", args.addr)))?;
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    let mut conns = Vec::new();
    for i in 0..args.conns {
        let c = open(args.addr, &ep, i)
            .map_err(|e| io::Error::new(e.kind(), format!("connection {i}: {e}")))?;
        conns.push(c);
    }
    let started = Instant::now();
    for c in &mut conns {
        c.stream.write_all(request)?;
    }
    let mut requests = 0u64;
    let mut reconnects = 0u64;
    let mut events = Vec::with_capacity(64);
    let mut buf = [0u8; 16 * 1024];
    let tick = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    while started.elapsed() < args.duration {
        events.clear();
        epoll::wait(
            &ep,
            rustix::buffer::spare_capacity(&mut events),
            Some(&tick),
        )?;
        for ev in &events {
            let i = ev.data.u64() as usize;
            let Some(c) = conns.get_mut(i) else { continue };
            let n = match c.stream.read(&mut buf) {
                Ok(0) | Err(_) => 0,
                Ok(n) => n,
            };
            if n == 0 {
                // Closed by the server: a new connection takes its place and its request.
                *c = open(args.addr, &ep, i as u64)?;
                c.stream.write_all(request)?;
                reconnects += 1;
                continue;
            }
            c.got += n;
            if c.got >= len {
                // A response that closes the connection is longer (its `Connection: close`);
                // whatever is left over belongs to none and the close follows.
                c.got = 0;
                requests += 1;
                c.stream.write_all(request)?;
            }
        }
    }
    Ok(Outcome {
        requests,
        elapsed: started.elapsed(),
        reconnects,
    })
}

/// A nonblocking keep-alive connection registered for readability under `key`.
fn open(addr: SocketAddr, ep: &impl AsFd, key: u64) -> io::Result<Conn> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    epoll::add(
        ep,
        &stream,
        epoll::EventData::new_u64(key),
        epoll::EventFlags::IN,
    )?;
    Ok(Conn { stream, got: 0 })
}

/// Sends `request` once (blocking) and returns the length of the whole response, head and body.
fn response_len(addr: SocketAddr, request: &[u8]) -> io::Result<usize> {
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.write_all(request)?;
    let resp = read_response(&mut stream)?;
    if !resp.keep_alive {
        return Err(io::Error::other(
            "the response closes the connection (no keep-alive)",
        ));
    }
    if resp.extra > 0 {
        return Err(io::Error::other("bytes after the response"));
    }
    Ok(resp.bytes)
}

/// The least a closed-loop HTTP/1.1 load generator can do (see the module documentation).
#[derive(Debug, Parser)]
#[command(name = "floor-gen", version, about, long_about = None)]
struct Args {
    /// The server, IP:PORT.
    addr: SocketAddr,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    conns: u64,
    /// How long to run, in seconds.
    #[arg(long, default_value = "5", value_parser = seconds)]
    duration: Duration,
    /// The Host header (default: ADDR).
    #[arg(long)]
    host: Option<String>,
    /// The request path.
    #[arg(long, default_value = "/")]
    path: String,
}

fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}
