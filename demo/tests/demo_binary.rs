//! The real `ringway-demo` binary on free loopback ports: a plain HTTP request through it gets the
//! hello page, and `/echo` sends an upload back; `ringway-demo hello` serves the backend alone.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A child process killed when dropped, with the addresses it printed.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringway-demo"))
            .args(args)
            .env("RINGWAY_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The address on the printed line containing `what`, waiting up to 20 s for it.
    fn addr(&self, what: &str) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("ringway-demo did not print {what:?}"));
            if line.contains(what) {
                return line.rsplit(' ').next().unwrap().parse().unwrap();
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What curl would show: the status line and the body of one request on a fresh connection.
fn curl(addr: SocketAddr, host: &str, method: &str, path: &str, body: &str) -> (String, String) {
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    sock.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

#[test]
fn a_request_through_the_demo_gets_the_hello_page() {
    let demo = Running::start(&[
        "--listen",
        "127.0.0.1:0",
        "--agent-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--no-pin",
    ]);
    let users = demo.addr("users listening on");
    let backend = demo.addr("hello backend listening on");
    // The route is known from the start; until the agent registers, a request parks (2 s) and may
    // answer 503 if the agent is slower than that, so try again until the deadline.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, body) = loop {
        let (status, body) = curl(users, ringway_demo::DEMO_ROUTE, "GET", "/", "");
        if status.contains(" 200 ") || Instant::now() > deadline {
            break (status, body);
        }
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        body,
        format!("hello from ringway hello backend {backend}: GET /\n")
    );
    let (status, body) = curl(users, ringway_demo::DEMO_ROUTE, "POST", "/echo", "echo me");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, "echo me");
    // Classic mode: the same backend as the balancer's static backend, no agent in between.
    let (status, body) = curl(users, ringway_demo::CLASSIC_ROUTE, "GET", "/", "");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        body,
        format!("hello from ringway hello backend {backend}: GET /\n")
    );
    let (status, _) = curl(users, "unknown.localhost", "GET", "/", "");
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
}

#[test]
fn the_hello_subcommand_serves_the_backend_alone() {
    let hello = Running::start(&["hello", "--listen", "127.0.0.1:0"]);
    let addr = hello.addr("hello backend listening on");
    let (status, body) = curl(addr, "anything", "GET", "/x", "");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        body,
        format!("hello from ringway hello backend {addr}: GET /x\n")
    );
}
