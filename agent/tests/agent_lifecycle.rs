//! The agent's connections (in-process, `Agent::start`) against a fake balancer built on core's
//! `tunnel::Connection` over loopback: hello and worker fan-out, reconnects, DNS, drain.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::setup::{config, start, stop};
use common::{closed_port, FakeBalancer, PATIENCE};
use ringway_agent::Agent;
use ringway_core::tunnel::{Event, Frame, ResetCode};
use ringway_hello as hello;

#[test]
fn hello_carries_identity_and_one_connection_per_balancer_worker() {
    let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let lb = FakeBalancer::bind();
    let agent = start(lb.addr(), backend.addr);
    let first = lb.accept(2, |_| 0);
    let hello = first.hello.unwrap();
    assert_eq!(hello.token, "s3cret");
    assert_eq!(hello.agent_id, "test-agent");
    assert_eq!(hello.routes, ["example.com", "api.example.com/v1"]);
    assert_eq!(
        hello.worker, None,
        "the first connection asks for any worker"
    );
    let second = lb.accept(2, |h| h.worker.unwrap());
    assert_eq!(second.hello.as_ref().unwrap().worker, Some(1));
    let workers: BTreeSet<u16> = [0, second.hello.as_ref().unwrap().worker.unwrap()].into();
    assert_eq!(workers, [0, 1].into());
    // No third connection.
    assert!(lb.accept_socket(Duration::from_millis(300)).is_none());
    let deadline = Instant::now() + PATIENCE;
    while agent.live_connections() < 2 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    stop(agent);
}

#[test]
fn reconnects_fast_after_the_balancer_closes_and_keeps_its_worker() {
    let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let lb = FakeBalancer::bind();
    let agent = start(lb.addr(), backend.addr);
    let conn = lb.accept(1, |_| 0);
    conn.close();
    let closed = Instant::now();
    let mut again = lb.accept(1, |_| 0);
    let first_retry = closed.elapsed();
    assert!(
        first_retry < Duration::from_millis(500),
        "first retry took {first_retry:?}"
    );
    assert_eq!(
        again.hello.as_ref().unwrap().worker,
        Some(0),
        "asks for the worker it had"
    );
    let reply = again.request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.status(), 200);

    // Refused connects while the "balancer" is down back off, then connect once it is back.
    let addr = lb.addr();
    again.close();
    drop(lb);
    std::thread::sleep(Duration::from_millis(400));
    let lb = FakeBalancer::bind_at(addr);
    let mut back = lb.accept(1, |_| 0);
    let reply = back.request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.status(), 200);
    stop(agent);
}

#[test]
fn balancer_named_by_dns_is_resolved_and_re_resolved() {
    let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let lb = FakeBalancer::bind();
    let mut config = config(lb.addr(), backend.addr);
    config.balancers = vec![format!("localhost:{}", lb.addr().port())];
    config.resolve_interval = Duration::from_millis(100);
    let agent = Agent::start(config).unwrap();
    assert!(
        agent.balancers().contains(&lb.addr()),
        "{:?}",
        agent.balancers()
    );
    let mut conn = lb.accept(1, |_| 0);
    // Several re-resolutions later the connection is still the only one and still serves.
    let deadline = Instant::now() + PATIENCE;
    while agent.resolutions() < 3 {
        assert!(
            Instant::now() < deadline,
            "the name was re-resolved {} times, not 3",
            agent.resolutions()
        );
        conn.turn();
    }
    let reply = conn.request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.status(), 200);
    assert!(lb.accept_socket(Duration::from_millis(100)).is_none());
    let started = Instant::now();
    stop(agent);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "resolver thread held up the stop"
    );
}

#[test]
fn name_without_port_is_rejected() {
    let mut config = config(closed_port(), closed_port());
    config.balancers = vec!["lb.example".into()];
    let err = Agent::start(config).unwrap_err();
    assert!(err.to_string().contains("lb.example"), "{err}");
}

#[test]
fn drain_refuses_streams_that_cross_the_goaway() {
    let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let lb = FakeBalancer::bind();
    let agent = start(lb.addr(), backend.addr);
    let mut conn = lb.accept(1, |_| 0);
    assert_eq!(
        conn.request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[])
            .status(),
        200
    );
    agent.drain();
    // Once the GOAWAY has arrived but is not read yet, this stream crosses it (and reaches the
    // agent within its linger after the GOAWAY).
    assert!(
        conn.wait_unread(PATIENCE, |f| matches!(f, Frame::GoAway { .. })),
        "no GOAWAY after the drain"
    );
    let id = conn.open("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    // The agent itself refuses it, on the wire: reading the GOAWAY would make our side refuse
    // the stream too, so look before reading.
    assert!(
        conn.wait_unread(PATIENCE, |f| matches!(
            f,
            Frame::Reset { id: sid, code: ResetCode::Refused } if *sid == id
        )),
        "the agent did not refuse stream {id}"
    );
    let mut others = Vec::new();
    let reply = conn.reply(id, &mut others);
    assert_eq!(reply.reset, Some(ResetCode::Refused), "{reply:?}");
    assert!(
        others.iter().any(|e| matches!(e, Event::GoAway { .. })),
        "{others:?}"
    );
    let started = Instant::now();
    agent.join();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        backend.requests(),
        1,
        "the refused request never reached the backend"
    );
}

#[test]
fn kill_stops_at_once_with_requests_in_flight() {
    for driver in common::setup::drivers() {
        let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
        let lb = FakeBalancer::bind();
        let agent = common::setup::start_on(driver, lb.addr(), backend.addr);
        let mut conn = lb.accept(1, |_| 0);
        let _slow = conn.open("GET /slow/5000 HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
        let deadline = Instant::now() + PATIENCE;
        while backend.requests() < 1 {
            assert!(Instant::now() < deadline);
            conn.turn();
        }
        let started = Instant::now();
        agent.kill();
        agent.join();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{driver:?}: {:?}",
            started.elapsed()
        );
        // The tunnel connection is gone.
        while conn.next_event(Duration::from_millis(100)).is_some() {}
        assert!(conn.eof, "{driver:?}: tunnel still open after kill");
    }
}

#[test]
fn silent_balancer_is_declared_dead_and_replaced() {
    let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let lb = FakeBalancer::bind();
    let mut config = config(lb.addr(), backend.addr);
    config.tunnel.ping_interval = Duration::from_millis(100);
    config.tunnel.dead_after_missed_pings = 3;
    let agent = Agent::start(config).unwrap();
    // Acked, then never read from nor answered again (the socket stays open).
    let silent = lb.accept(1, |_| 0);
    let started = Instant::now();
    let mut again = lb.accept(1, |_| 0);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "declared dead too early: {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "dead connection kept: {took:?}"
    );
    // The new connection answers pings and serves.
    let reply = again.request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.status(), 200);
    drop(silent);
    stop(agent);
}
