//! The real `ringway-agent` binary: SIGTERM → GOAWAY, the in-flight request finishes, exit 0.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{FakeBalancer, PATIENCE};
use ringway_core::tunnel::Event;
use ringway_hello as hello;

fn spawn_agent(balancers: &[String], backend: std::net::SocketAddr, extra: &[&str]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringway-agent"));
    for b in balancers {
        cmd.args(["--balancer", b]);
    }
    // The fake balancer speaks the tunnel protocol in plaintext.
    cmd.args([
        "--insecure-plaintext",
        "--token",
        "t",
        "--route",
        "example.com",
        "--backend",
        &backend.to_string(),
    ])
    .args(extra)
    .env("RINGWAY_LOG", "warn")
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    cmd.spawn().unwrap()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            child.kill().unwrap();
            panic!("agent did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_sends_goaway_finishes_in_flight_and_exits_zero() {
    let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let lb = FakeBalancer::bind();
    let mut child = spawn_agent(&[lb.addr().to_string()], backend.addr, &[]);
    let mut conn = lb.accept(1, |_| 0);
    // Make sure the agent is fully up (a request round trip) before the slow one.
    assert_eq!(
        conn.request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[])
            .status(),
        200
    );
    let id = conn.open("GET /slow/400 HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    // Let the request reach the backend, then ask the agent to stop.
    let deadline = Instant::now() + PATIENCE;
    while backend.requests() < 2 {
        assert!(
            Instant::now() < deadline,
            "slow request never reached the backend"
        );
        conn.turn();
    }
    signal(&child, "TERM");
    let mut others = Vec::new();
    let reply = conn.reply(id, &mut others);
    assert_eq!(reply.reset, None, "in-flight request was cut");
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.body, b"slow 400\n");
    let goaway_seen = |events: &[Event]| events.iter().any(|e| matches!(e, Event::GoAway { .. }));
    let mut rest = Vec::new();
    while let Some(event) = conn.next_event(Duration::from_secs(5)) {
        rest.push(event);
    }
    assert!(
        goaway_seen(&others) || goaway_seen(&rest),
        "no goaway: {others:?} {rest:?}"
    );
    assert!(conn.eof, "agent kept the tunnel open after draining");
    let status = wait_exit(&mut child, PATIENCE);
    assert!(status.success(), "exit status {status:?}");
    // A drained agent does not reconnect.
    assert!(lb.accept_socket(Duration::from_millis(200)).is_none());
}

#[test]
fn connects_to_every_balancer_with_two_runtime_threads() {
    let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let (lb_a, lb_b) = (FakeBalancer::bind(), FakeBalancer::bind());
    let mut child = spawn_agent(
        &[lb_a.addr().to_string(), lb_b.addr().to_string()],
        backend.addr,
        &["--workers", "2"],
    );
    for lb in [&lb_a, &lb_b] {
        let mut first = lb.accept(2, |_| 0);
        let mut second = lb.accept(2, |h| h.worker.unwrap());
        assert_eq!(second.hello.as_ref().unwrap().worker, Some(1));
        for conn in [&mut first, &mut second] {
            let reply = conn.request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
            assert_eq!(reply.status(), 200);
        }
    }
    signal(&child, "TERM");
    let status = wait_exit(&mut child, PATIENCE);
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn bad_arguments_exit_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_ringway-agent"))
        .args(["--route", "example.com", "--backend", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--balancer"));
}
