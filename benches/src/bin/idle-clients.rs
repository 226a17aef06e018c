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

use ringway_benches::one_response::read_response;

/// How long one connect or one read may take before the connection counts as failed
/// (`--patience-ms`).
const PATIENCE: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("idle-clients: {e}\nusage: idle-clients ADDR [--conns N] [--host HOST] [--path PATH] [--patience-ms MS]");
            return ExitCode::from(2);
        }
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: idle-clients\r\n\r\n",
        args.path, args.host
    );
    let started = Instant::now();
    let mut open = Vec::with_capacity(args.conns);
    let mut failed = 0usize;
    for i in 0..args.conns {
        match one_request(args.addr, request.as_bytes(), args.patience) {
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
                    args.patience.as_millis()
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

/// The command line.
struct Args {
    addr: SocketAddr,
    conns: usize,
    host: String,
    path: String,
    patience: Duration,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut addr = None;
        let mut conns = 5000;
        let mut host = None;
        let mut path = "/".to_owned();
        let mut patience = PATIENCE;
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--conns" => {
                    conns = value()?.parse().map_err(|e| format!("--conns: {e}"))?;
                }
                "--host" => host = Some(value()?),
                "--path" => path = value()?,
                "--patience-ms" => {
                    let ms: u64 = value()?
                        .parse()
                        .map_err(|e| format!("--patience-ms: {e}"))?;
                    if ms == 0 {
                        return Err("--patience-ms must be at least 1".to_owned());
                    }
                    patience = Duration::from_millis(ms);
                }
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
            host: host.unwrap_or_else(|| addr.to_string()),
            path,
            patience,
        })
    }
}
