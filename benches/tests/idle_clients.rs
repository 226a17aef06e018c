//! `idle-clients` against a server that answers a few connections and then stops answering (as a
//! proxy at its connection limit does): it holds the answered ones, gives up at the first that
//! waits out its patience instead of waiting once per connection left, and says so.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Answers the first `answered` connections with one keep-alive 200 each, holds every later one
/// without a byte of answer.
fn server(answered: usize) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { continue };
            if i < answered {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match conn.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
            held.push(conn);
        }
    });
    addr
}

#[test]
fn stops_at_the_first_connection_left_unanswered() {
    let addr = server(3);
    let mut child = Command::new(env!("CARGO_BIN_EXE_idle-clients"))
        .args([&addr.to_string(), "--conns", "50", "--patience-ms", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let started = Instant::now();
    // 47 connections waiting out 300 ms each would take 14 s; giving up at the first takes 0.3 s.
    let line = rx.recv_timeout(Duration::from_secs(8));
    let elapsed = started.elapsed();
    let _ = child.kill();
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    let _ = child.wait();
    let line =
        line.unwrap_or_else(|_| panic!("no `ready` line after {elapsed:?}; stderr: {stderr}"));
    assert_eq!(line.trim(), "ready 3 47", "stderr: {stderr}");
    assert!(
        stderr.contains("connection 3: no answer within 300 ms; not opening the 47 left"),
        "stderr: {stderr}"
    );
}
