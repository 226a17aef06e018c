//! SIGTERM on the real balancer: requests in flight finish (and say `Connection: close`), idle
//! keep-alive connections close, new connections are refused at once (the listeners closed
//! first), agents get a GOAWAY, the process exits 0; and a balancer restarted on the same ports
//! resets no connection of a client that retries refused connects.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::{hello_backend, AgentProc, Balancer, Client};

const HOST: &str = "app.test";

#[test]
fn sigterm_finishes_requests_in_flight_closes_idle_ones_and_exits_zero() {
    let mut balancer = Balancer::start(&["--route", HOST, "--shutdown-grace", "20s"]);
    let backend = hello_backend();
    let agent = AgentProc::start(balancer.agents, "a1", &[HOST], backend.addr);
    balancer.wait_registered("a1", 2);

    // An idle keep-alive connection (one request done).
    let mut idle = Client::connect(balancer.users);
    assert_eq!(idle.get(HOST, "/").unwrap().status, 200);
    let seen_before = backend.requests();

    // Ten slow requests in flight, each on its own connection.
    let slow: Vec<_> = (0..10)
        .map(|_| {
            let users = balancer.users;
            thread::spawn(move || Client::connect(users).get(HOST, "/slow/1500"))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.requests() < seen_before + 10 {
        assert!(
            Instant::now() < deadline,
            "the slow requests did not reach the backend"
        );
        thread::sleep(Duration::from_millis(5));
    }

    balancer.terminate();

    // The idle connection is closed by the balancer (EOF, no reset), well before the slow
    // requests end.
    let mut byte = [0u8; 1];
    let closed = idle.stream.read(&mut byte);
    assert!(matches!(closed, Ok(0)), "idle connection: {closed:?}");
    // The listeners are closed: a new connection is refused while requests are still in flight.
    let refused = (0..100).any(|_| {
        let r = TcpStream::connect_timeout(&balancer.users, Duration::from_secs(1));
        if matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionRefused) {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
        false
    });
    assert!(refused, "new connections are refused once draining");

    for t in slow {
        let r = t.join().unwrap().unwrap();
        assert_eq!(r.status, 200, "a request in flight finishes: {}", r.text());
        assert_eq!(
            r.header("connection")
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("close"),
            "and tells its client the connection closes"
        );
    }
    let status = balancer.wait_exit(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
    let log = balancer.log.text();
    assert!(log.contains("drained"), "{log}");
    drop(agent);
}

#[test]
fn a_restart_on_the_same_ports_resets_no_connection_of_a_retrying_client() {
    let (users, args) = support::restartable_args(HOST);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut first = Balancer::start(&args);
    let backend = hello_backend();
    let _agent = AgentProc::start(first.agents, "a1", &[HOST], backend.addr);
    first.wait_registered("a1", 2);

    // A client that sends GETs, one connection each; a refused connect is retried (the port is
    // closed between the two balancers), anything else that is not a 200 is a failure.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let client = {
        let (stop, ok) = (stop.clone(), ok.clone());
        thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let conn = match TcpStream::connect_timeout(&users, Duration::from_secs(2)) {
                    Ok(c) => c,
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(e) => {
                        failures.push(format!("connect: {e}"));
                        continue;
                    }
                };
                match Client::from_stream(conn).get(HOST, "/") {
                    Ok(r) if r.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures.push(format!("status {}: {}", r.status, r.text())),
                    Err(e) => failures.push(format!("request: {e}")),
                }
            }
            failures
        })
    };
    let wait_ok = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let target = ok.load(Ordering::Relaxed) + n;
        while ok.load(Ordering::Relaxed) < target {
            assert!(Instant::now() < deadline, "the client got no 200s");
            thread::sleep(Duration::from_millis(5));
        }
    };
    wait_ok(50);
    first.terminate();
    let status = first.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit: {status:?}; log:\n{}",
        first.log.text()
    );
    let second = Balancer::start(&args);
    second.wait_registered("a1", 2);
    wait_ok(50);
    stop.store(true, Ordering::Relaxed);
    let failures = client.join().unwrap();
    assert!(
        failures.is_empty(),
        "failed requests: {failures:?}; first balancer's log:\n{}",
        first.log.text()
    );
}
