//! `floor-gen` against a keep-alive server that closes every connection after a few responses
//! (as nginx does after `keepalive_requests`): it counts exactly the responses the server sent,
//! less at most one in flight per connection at the end, and opens new connections for the
//! closed ones.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

/// Responses per connection before the server closes it.
const PER_CONN: usize = 7;

/// Answers every request (`GET`, no body) with a 200 of 12 bytes; the last of each connection says
/// `Connection: close` and closes. Counts the responses it wrote.
fn server() -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let answered = Arc::new(AtomicU64::new(0));
    let count = answered.clone();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let count = count.clone();
            thread::spawn(move || serve(conn, &count));
        }
    });
    (addr, answered)
}

fn serve(mut conn: TcpStream, count: &AtomicU64) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    let mut served = 0;
    loop {
        let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
            continue;
        };
        pending.drain(..end + 4);
        served += 1;
        let last = served == PER_CONN;
        let resp: &[u8] = if last {
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello world\n"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello world\n"
        };
        if conn.write_all(resp).is_err() {
            return;
        }
        count.fetch_add(1, Ordering::SeqCst);
        if last {
            return;
        }
    }
}

fn field(out: &str, name: &str) -> f64 {
    out.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` in:\n{out}"))
}

#[test]
fn counts_what_the_server_answered_and_reopens_closed_connections() {
    let (addr, answered) = server();
    let conns = 4;
    let out = Command::new(env!("CARGO_BIN_EXE_floor-gen"))
        .args([
            &addr.to_string(),
            "--conns",
            &conns.to_string(),
            "--duration",
            "0.5",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let requests = field(&stdout, "requests ") as u64;
    let reconnects = field(&stdout, "reconnects ") as u64;
    let seconds = field(&stdout, "seconds ");
    let rate = field(&stdout, "req/s ");
    // The first response (the one that learns the length) is on a connection of its own.
    let server_saw = answered.load(Ordering::SeqCst) - 1;
    assert!(requests > 0, "{stdout}");
    assert!(
        requests <= server_saw && server_saw <= requests + conns,
        "floor-gen counted {requests}, the server answered {server_saw}:\n{stdout}"
    );
    // Every connection is closed after PER_CONN responses and opened again.
    assert!(
        reconnects >= (requests / PER_CONN as u64).saturating_sub(conns),
        "{reconnects} reconnects for {requests} requests:\n{stdout}"
    );
    assert!((0.5..2.0).contains(&seconds), "{stdout}");
    // `seconds` is printed to the ms: the rate agrees with it to well within 1 %.
    let expected = requests as f64 / seconds;
    assert!((rate - expected).abs() < 0.01 * expected, "{stdout}");
}

#[test]
fn a_bad_address_or_flag_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_floor-gen"))
        .args(["nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere"));
    let out = Command::new(env!("CARGO_BIN_EXE_floor-gen"))
        .args(["127.0.0.1:1", "--conns", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--conns"));
}
