//! Bounds on what an agent can make the balancer hold, end to end against the real binary: a
//! PING flood from an agent that never reads, hellos with too many routes, and agent-only
//! routes that are forgotten once their agents have been gone for `agents.route_linger`.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{self, Write};
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringway_core::tunnel::{encode, Frame, ResetCode};
use support::{config_file, get, hello_backend, AgentProc, Balancer, HelloOutcome, RawAgent};

fn routes(n: usize, host: &str) -> Vec<String> {
    (0..n).map(|i| format!("r{i}.{host}")).collect()
}

#[test]
fn a_ping_flood_from_an_agent_that_never_reads_is_cut_off_with_bounded_memory() {
    // The raw agent speaks the tunnel protocol in plaintext.
    let balancer = Balancer::start(&["--workers", "1", "--insecure-plaintext"]);
    // A small receive buffer: once this agent stops reading, the balancer's writes block soon.
    let hello = RawAgent::hello("flooder", &["flood.test".to_owned()]);
    let mut agent = RawAgent::connect(balancer.agents, hello, Some(4096));
    assert_eq!(agent.handshake(), HelloOutcome::Accepted);
    let before = balancer.peak_rss_kib();

    let mut batch = BytesMut::new();
    for n in 0..1000 {
        encode(&Frame::Ping(n), &mut batch);
    }
    // Up to 3,000,000 PINGs (51 MB) without ever reading a PONG. Without a bound, the
    // balancer queues a PONG for each; with one, it closes the connection, and our writes fail.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent = 0usize;
    let cut_off = loop {
        if sent >= 3_000_000 || Instant::now() > deadline {
            break None;
        }
        match agent.stream.write_all(&batch) {
            Ok(()) => sent += 1000,
            Err(e) => break Some(e),
        }
    };
    let err = cut_off.unwrap_or_else(|| {
        panic!(
            "the balancer took {sent} PINGs without closing; log:\n{}",
            balancer.log.text()
        )
    });
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
        ),
        "closed by the balancer, not timed out: {err}"
    );
    let grown = balancer.peak_rss_kib().saturating_sub(before);
    assert!(
        grown < 4 * 1024,
        "the balancer grew by {grown} KiB for {sent} PINGs"
    );
    assert!(
        balancer
            .log
            .wait_for("PING flood", 1, Duration::from_secs(10)),
        "the balancer logs why; log:\n{}",
        balancer.log.text()
    );
    // What is left to read ends with the connection; a GOAWAY, if it got out, names the flood.
    let (frames, closed) = agent.read_until_closed(Duration::from_secs(10));
    assert!(closed, "the connection is closed");
    for frame in frames {
        if let Frame::GoAway { code, .. } = frame {
            assert_eq!(code, ResetCode::EnhanceYourCalm);
        }
    }
    // The balancer itself is fine.
    let r = get(balancer.users, "flood.test", "/").unwrap();
    assert_eq!(r.status, 503, "the route is known, its agent is gone");
}

#[test]
fn a_hello_with_more_routes_than_allowed_is_refused_with_too_many_routes() {
    let balancer = Balancer::start(&["--workers", "1", "--insecure-plaintext"]);
    // Default limit: 256 routes per hello.
    let hello = RawAgent::hello("many", &routes(257, "many.test"));
    let mut agent = RawAgent::connect(balancer.agents, hello, None);
    assert_eq!(
        agent.handshake(),
        HelloOutcome::Rejected(ResetCode::TooManyRoutes)
    );
    let hello = RawAgent::hello("enough", &routes(256, "enough.test"));
    let mut agent = RawAgent::connect(balancer.agents, hello, None);
    assert_eq!(agent.handshake(), HelloOutcome::Accepted);
    // This agent never answers a request: let it go before asking for its routes.
    drop(agent);
    // The refused routes never became known; the accepted ones did (503: known, no agent).
    assert_eq!(
        get(balancer.users, "r0.many.test", "/").unwrap().status,
        404
    );
    let r = get(balancer.users, "r255.enough.test", "/").unwrap();
    assert_ne!(r.status, 404, "a registered route is known");
}

#[test]
fn an_agent_over_its_route_limit_across_connections_is_refused() {
    let config = config_file("per-agent", "[agents]\nmax_routes_per_agent = 3\n");
    let balancer = Balancer::start(&[
        "--workers",
        "1",
        "--insecure-plaintext",
        "--config",
        config.to_str().unwrap(),
    ]);
    let mut first = RawAgent::connect(
        balancer.agents,
        RawAgent::hello("greedy", &routes(2, "greedy.test")),
        None,
    );
    assert_eq!(first.handshake(), HelloOutcome::Accepted);
    // Two more routes under the same agent id, on a second connection: four in all.
    let mut second = RawAgent::connect(
        balancer.agents,
        RawAgent::hello("greedy", &routes(4, "greedy.test")[2..]),
        None,
    );
    assert_eq!(
        second.handshake(),
        HelloOutcome::Rejected(ResetCode::TooManyRoutes)
    );
    // The same routes again (its connection to another worker) are fine; so is another agent.
    let mut again = RawAgent::connect(
        balancer.agents,
        RawAgent::hello("greedy", &routes(2, "greedy.test")),
        None,
    );
    assert_eq!(again.handshake(), HelloOutcome::Accepted);
    let mut other = RawAgent::connect(
        balancer.agents,
        RawAgent::hello("modest", &routes(3, "modest.test")),
        None,
    );
    assert_eq!(other.handshake(), HelloOutcome::Accepted);

    // The real agent sees the rejection and says why.
    let backend = hello_backend();
    let four = routes(4, "real.test");
    let four: Vec<&str> = four.iter().map(String::as_str).collect();
    let real = AgentProc::start_with(
        balancer.agents,
        "real",
        &four,
        backend.addr,
        support::TOKEN,
        &["--insecure-plaintext"],
    );
    assert!(
        real.log
            .wait_for("too many routes", 1, Duration::from_secs(10)),
        "agent log:\n{}",
        real.log.text()
    );
    fs_remove(&config);
}

#[test]
fn an_agent_only_route_answers_503_while_its_agent_is_gone_then_404_after_the_linger() {
    let linger = Duration::from_millis(1500);
    let config = config_file(
        "linger",
        "[agents]\nroute_linger = \"1500ms\"\n[timeouts]\npark = \"100ms\"\n",
    );
    let balancer = Balancer::start(&["--config", config.to_str().unwrap(), "--route", "cfg.test"]);
    let backend = hello_backend();
    let mut agent = AgentProc::start(
        balancer.agents,
        "a1",
        &["gone.test", "cfg.test"],
        backend.addr,
    );
    balancer.wait_registered("a1", 2);
    assert_eq!(get(balancer.users, "gone.test", "/").unwrap().status, 200);

    let gone_at = Instant::now();
    agent.kill();
    // While the agent is gone (and the linger has not passed), the route is still known: 503.
    let deadline = gone_at + Duration::from_secs(20);
    let mut saw_503 = false;
    let forgotten_after = loop {
        assert!(
            Instant::now() < deadline,
            "the route was never forgotten; log:\n{}",
            balancer.log.text()
        );
        let status = get(balancer.users, "gone.test", "/").unwrap().status;
        match status {
            503 => saw_503 = true,
            404 => break gone_at.elapsed(),
            // The balancer may not have seen the agent's connections close yet.
            200 | 502 if !saw_503 => {}
            other => panic!("unexpected status {other} for an agent-only route"),
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert!(saw_503, "503 while the agent was gone");
    assert!(
        forgotten_after >= linger,
        "forgotten after {forgotten_after:?}, before the linger of {linger:?}"
    );
    // A config route is never forgotten.
    assert_eq!(get(balancer.users, "cfg.test", "/").unwrap().status, 503);
    // An agent registering the route again brings it back.
    let _agent = AgentProc::start(balancer.agents, "a2", &["gone.test"], backend.addr);
    assert!(
        support::wait_for_200(balancer.users, "gone.test", "/", Duration::from_secs(20)).is_some(),
        "the route is served again"
    );
    fs_remove(&config);
}

fn fs_remove(path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
}
