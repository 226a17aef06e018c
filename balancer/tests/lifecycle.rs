//! Agents and balancers coming and going under load: SIGKILL and SIGTERM of an agent, a balancer
//! restart. Users must not notice.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::{hello_backend, AgentProc, Balancer, Client};

const HOST: &str = "app.test";

/// Counts of a load run.
#[derive(Debug, Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
}

/// `threads` keep-alive clients sending idempotent GETs until `stop`.
fn load(
    users: SocketAddr,
    threads: usize,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
) -> Vec<thread::JoinHandle<()>> {
    (0..threads)
        .map(|_| {
            let (stop, tally) = (stop.clone(), tally.clone());
            thread::spawn(move || {
                let mut c = Client::connect(users);
                c.set_read_timeout(Duration::from_secs(10));
                while !stop.load(Ordering::Relaxed) {
                    match c.get(HOST, "/slow/20") {
                        Ok(r) if r.status == 200 => {
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => {
                            eprintln!("failed: {} {}", r.status, r.text());
                            tally.failed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            eprintln!("failed: {e}");
                            tally.failed.fetch_add(1, Ordering::Relaxed);
                            c = Client::connect(users);
                        }
                    }
                }
            })
        })
        .collect()
}

/// Two agents behind one route, load running, then `disrupt` one agent; nothing may fail.
fn survive(disrupt: impl FnOnce(&mut AgentProc)) {
    let balancer = Balancer::start(&[]);
    let (b1, b2) = (hello_backend(), hello_backend());
    let mut a1 = AgentProc::start(balancer.agents, "victim", &[HOST], b1.addr);
    let _a2 = AgentProc::start(balancer.agents, "survivor", &[HOST], b2.addr);
    balancer.wait_registered("victim", 2);
    balancer.wait_registered("survivor", 2);
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients = load(balancer.users, 6, &stop, &tally);
    // Load flows through both agents, and answers reach the users, before the disruption.
    let deadline = Instant::now() + Duration::from_secs(10);
    while b1.requests() == 0 || b2.requests() == 0 || tally.ok.load(Ordering::Relaxed) == 0 {
        assert!(
            Instant::now() < deadline,
            "load did not flow through both agents: {} and {} requests, {} answered",
            b1.requests(),
            b2.requests(),
            tally.ok.load(Ordering::Relaxed)
        );
        thread::sleep(Duration::from_millis(5));
    }
    let before = tally.ok.load(Ordering::Relaxed);
    disrupt(&mut a1);
    thread::sleep(Duration::from_millis(1200));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let (ok, failed) = (
        tally.ok.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    assert_eq!(failed, 0, "{failed} requests failed ({ok} ok)");
    assert!(
        before > 0 && ok > before,
        "load did not flow: {before} then {ok}"
    );
    assert!(b2.requests() > 0);
}

#[test]
fn agent_sigkill_during_load_loses_no_request() {
    survive(|agent| agent.kill());
}

#[test]
fn agent_sigterm_during_load_fails_no_request() {
    survive(|agent| {
        agent.terminate();
        let status = agent.wait_exit(Duration::from_secs(15));
        assert!(
            status.is_some_and(|s| s.success()),
            "agent exit: {status:?}"
        );
    });
}

#[test]
fn agents_reconnect_after_a_balancer_restart_within_two_seconds() {
    let (users, args) = support::restartable_args(HOST);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut balancer = Balancer::start(&args);
    let backend = hello_backend();
    let _agent = AgentProc::start(balancer.agents, "sticky", &[HOST], backend.addr);
    balancer.wait_registered("sticky", 2);
    assert_eq!(support::get(users, HOST, "/").unwrap().status, 200);

    balancer.kill();
    let restarted = Balancer::start(&args);
    // Connection errors are retried: with io_uring the killed process's listening sockets can
    // outlive it by a few milliseconds (its ring is torn down asynchronously) and, still members
    // of the port's SO_REUSEPORT group, reset the connections the kernel gave them. A request
    // that does reach the new balancer parks until the agent is back.
    let took = support::wait_for_200(restarted.users, HOST, "/", Duration::from_secs(5));
    let took =
        took.unwrap_or_else(|| panic!("no 200 after the restart; log:\n{}", restarted.log.text()));
    assert!(
        took < Duration::from_secs(2),
        "traffic flowed again only after {took:?}"
    );
}

#[test]
fn a_frozen_agent_is_declared_dead_by_the_heartbeat_and_traffic_moves_on() {
    let balancer = Balancer::start(&["--ping-interval", "200ms", "--workers", "1"]);
    let (b1, b2) = (hello_backend(), hello_backend());
    let frozen = AgentProc::start(balancer.agents, "frozen", &[HOST, "upload.test"], b1.addr);
    let _alive = AgentProc::start(balancer.agents, "alive", &[HOST], b2.addr);
    balancer.wait_registered("frozen", 1);
    balancer.wait_registered("alive", 1);
    // An upload in flight through the agent that is about to freeze: its stream must fail (the
    // user gets its answer or a closed connection) rather than hang with the dead connection.
    let users = balancer.users;
    let upload = thread::spawn(move || {
        let mut c = Client::connect(users);
        let head = format!(
            "PUT /sink HTTP/1.1\r\nHost: upload.test\r\nContent-Length: {}\r\n\r\n",
            1u64 << 30
        );
        c.send(head.as_bytes()).unwrap();
        let block = vec![b'x'; 64 * 1024];
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(8) && c.send(&block).is_ok() {}
    });
    // Freeze the agent once the upload is at its backend.
    let deadline = Instant::now() + Duration::from_secs(10);
    while b1.requests() < 1 {
        assert!(
            Instant::now() < deadline,
            "the upload never reached the backend"
        );
        thread::sleep(Duration::from_millis(5));
    }
    frozen.signal("STOP");
    // Three silent ping intervals (600 ms) and the connection is dead.
    let dead = balancer
        .log
        .wait_for("reason=\"heartbeat missed\"", 1, Duration::from_secs(5));
    assert!(dead, "no heartbeat death; log:\n{}", balancer.log.text());
    // The frozen agent is out of the endpoint table: every request goes to the live one.
    let (before, frozen_before) = (b2.requests(), b1.requests());
    for _ in 0..5 {
        assert_eq!(support::get(balancer.users, HOST, "/").unwrap().status, 200);
    }
    assert_eq!(b2.requests(), before + 5);
    assert_eq!(b1.requests(), frozen_before);
    frozen.signal("CONT");
    upload.join().unwrap();
}
