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

use ringway_benches::one_response::read_response;
use rustix::event::epoll;

/// How long the first request (the one that learns the response length) may take.
const PATIENCE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("floor-gen: {e}\nusage: floor-gen ADDR [--conns N] [--duration SECONDS] [--host HOST] [--path PATH]");
            return ExitCode::from(2);
        }
    };
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
        args.path, args.host
    );
    let request = request.as_bytes();
    let len = response_len(args.addr, request)
        .map_err(|e| io::Error::new(e.kind(), format!("first request to {}: {e}", args.addr)))?;
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    let mut conns = Vec::with_capacity(args.conns);
    for i in 0..args.conns {
        let c = open(args.addr, &ep, i as u64)
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

/// The command line.
struct Args {
    addr: SocketAddr,
    conns: usize,
    duration: Duration,
    host: String,
    path: String,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut addr = None;
        let mut conns = 50;
        let mut duration = Duration::from_secs(5);
        let mut host = None;
        let mut path = "/".to_owned();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--conns" => {
                    conns = value()?.parse().map_err(|e| format!("--conns: {e}"))?;
                    if conns == 0 {
                        return Err("--conns must be at least 1".to_owned());
                    }
                }
                "--duration" => {
                    let secs: f64 = value()?.parse().map_err(|e| format!("--duration: {e}"))?;
                    duration = Duration::try_from_secs_f64(secs)
                        .map_err(|e| format!("--duration: {e}"))?;
                }
                "--host" => host = Some(value()?),
                "--path" => path = value()?,
                _ if addr.is_none() && !arg.starts_with('-') => {
                    addr = Some(
                        arg.parse::<SocketAddr>()
                            .map_err(|e| format!("{arg}: {e}"))?,
                    );
                }
                _ => return Err(format!("unexpected argument {arg}")),
            }
        }
        let addr = addr.ok_or("ADDR is required")?;
        Ok(Self {
            addr,
            conns,
            duration,
            host: host.unwrap_or_else(|| addr.to_string()),
            path,
        })
    }
}
