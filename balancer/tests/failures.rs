//! What users see when something goes wrong: every error has its status, a short body and an
//! `X-Request-Id` that is also in the balancer's log; timeouts cut off slow clients and backends.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{ErrorKind, Read};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::{free_port, hello_backend, AgentProc, Balancer, Client};

const HOST: &str = "app.test";

#[test]
fn unknown_host_is_404_with_request_id_in_header_body_and_log() {
    let balancer = Balancer::start(&[]);
    let mut c = Client::connect(balancer.users);
    let r = c.get("nowhere.test", "/").unwrap();
    assert_eq!(r.status, 404);
    let id = r.header("x-request-id").unwrap().to_owned();
    assert!(!id.is_empty());
    assert!(r.text().contains(&id), "body {:?} lacks {id}", r.text());
    assert!(
        balancer.log.wait_for(&id, 1, Duration::from_secs(5)),
        "log lacks {id}"
    );
    // The connection stays usable, and a client-supplied id is kept.
    c.send(b"GET / HTTP/1.1\r\nHost: nowhere.test\r\nX-Request-Id: my-id-42\r\n\r\n")
        .unwrap();
    let r = c.response("GET").unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-request-id"), Some("my-id-42"));
}

#[test]
fn known_route_without_agent_is_503_after_the_park_time() {
    let balancer = Balancer::start(&["--route", HOST, "--park-time", "300ms"]);
    let start = Instant::now();
    let r = support::get(balancer.users, HOST, "/").unwrap();
    let waited = start.elapsed();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.header("x-request-id").is_some());
    assert!(
        waited >= Duration::from_millis(300),
        "answered after {waited:?}"
    );
    assert!(waited < Duration::from_secs(2), "answered after {waited:?}");
}

#[test]
fn default_park_time_is_two_seconds() {
    let balancer = Balancer::start(&["--route", HOST]);
    let start = Instant::now();
    let r = support::get(balancer.users, HOST, "/").unwrap();
    let waited = start.elapsed();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert!(
        waited >= Duration::from_secs(2),
        "answered after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
}

#[test]
fn parked_request_is_served_when_an_agent_arrives() {
    let balancer = Balancer::start(&["--route", HOST, "--park-time", "5s"]);
    let backend = hello_backend();
    // The request is sent before any agent exists, and not answered (parked, not refused).
    let mut c = Client::connect(balancer.users);
    c.send(format!("GET /parked HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .unwrap();
    c.set_read_timeout(Duration::from_millis(200));
    let early = c.response("GET").map(|r| r.status);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "answered before any agent came: {early:?}"
    );
    c.set_read_timeout(Duration::from_secs(30));
    let _agent = AgentProc::start(balancer.agents, "late", &[HOST], backend.addr);
    let r = c.response("GET").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.text().contains("GET /parked"));
}

#[test]
fn route_stays_known_after_its_last_agent_leaves() {
    let balancer = Balancer::start(&["--park-time", "300ms"]);
    let backend = hello_backend();
    let mut agent = AgentProc::start(balancer.agents, "only", &["agent-route.test"], backend.addr);
    balancer.wait_registered("only", 2);
    assert_eq!(
        support::get(balancer.users, "agent-route.test", "/")
            .unwrap()
            .status,
        200
    );
    agent.kill();
    assert!(balancer.log.wait_for(
        "agent connection closed agent=only",
        2,
        Duration::from_secs(5)
    ));
    let r = support::get(balancer.users, "agent-route.test", "/").unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
}

#[test]
fn backend_down_is_502() {
    let balancer = Balancer::start(&[]);
    let _agent = AgentProc::start(balancer.agents, "nobackend", &[HOST], free_port());
    balancer.wait_registered("nobackend", 2);
    let start = Instant::now();
    let r = support::get(balancer.users, HOST, "/").unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.header("x-request-id").is_some());
    // No other agent: answered at once, without parking for one.
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn slow_backend_is_504_after_the_response_timeout() {
    let balancer = Balancer::start(&["--response-timeout", "300ms"]);
    let backend = hello_backend();
    let _agent = AgentProc::start(balancer.agents, "slowpoke", &[HOST], backend.addr);
    balancer.wait_registered("slowpoke", 2);
    let mut c = Client::connect(balancer.users);
    let start = Instant::now();
    let r = c.get(HOST, "/slow/3000").unwrap();
    assert_eq!(r.status, 504);
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    // The connection is still good for the next request.
    assert_eq!(c.get(HOST, "/").unwrap().status, 200);
}

#[test]
fn slowloris_is_cut_off_at_the_head_deadline_while_others_are_served() {
    let balancer = Balancer::start(&["--head-timeout", "600ms"]);
    let backend = hello_backend();
    let _agent = AgentProc::start(balancer.agents, "a", &[HOST], backend.addr);
    balancer.wait_registered("a", 2);
    let users = balancer.users;
    let slow = thread::spawn(move || {
        let mut c = Client::connect(users);
        let start = Instant::now();
        let head = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: ");
        for b in head.bytes().chain(std::iter::repeat(b'z')) {
            if c.send(&[b]).is_err() || start.elapsed() > Duration::from_secs(5) {
                break;
            }
            thread::sleep(Duration::from_millis(50));
            if start.elapsed() > Duration::from_millis(800) {
                break;
            }
        }
        let r = c.response("GET");
        (
            r.map(|r| r.status).ok(),
            c.is_closed_by_server(),
            start.elapsed(),
        )
    });
    for _ in 0..10 {
        assert_eq!(support::get(users, HOST, "/").unwrap().status, 200);
    }
    let (status, closed, elapsed) = slow.join().unwrap();
    assert_eq!(status, Some(408));
    assert!(closed, "slowloris connection left open");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[test]
fn malformed_requests_get_400_431_414_and_close() {
    let balancer = Balancer::start(&[]);
    let cases: [(&[u8], u16); 3] = [
        (
            b"GET / HTTP/1.1\r\nHost: app.test\r\nbad header line\r\n\r\n",
            400,
        ),
        (
            &[
                b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: ".as_slice(),
                &[b'a'; 20_000],
                b"\r\n\r\n",
            ]
            .concat(),
            431,
        ),
        (
            &[
                b"GET /".as_slice(),
                &[b'a'; 9000],
                b" HTTP/1.1\r\nHost: app.test\r\n\r\n",
            ]
            .concat(),
            414,
        ),
    ];
    for (raw, status) in cases {
        let mut c = Client::connect(balancer.users);
        c.send(raw).unwrap();
        let r = c.response("GET").unwrap();
        assert_eq!(r.status, status);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.is_closed_by_server());
    }
}

#[test]
fn config_check_names_the_bad_key() {
    let dir = std::env::temp_dir().join(format!("ringway-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "[timeouts]\npark = \"500ms\"\n[[route]]\npattern = \"a.test/api\"\n",
    )
    .unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[timeouts]\npark = \"soon\"\n").unwrap();
    let bin = env!("CARGO_BIN_EXE_ringway-balancer");
    let ok = Command::new(bin)
        .args(["--check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = Command::new(bin)
        .args(["--check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("park"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn agent_lost_during_a_post_is_502_without_retry() {
    // A long park time: a retry would wait for another agent; a POST must not be retried.
    let balancer = Balancer::start(&["--park-time", "10s", "--workers", "1"]);
    let backend = hello_backend();
    let mut agent = AgentProc::start(balancer.agents, "doomed", &[HOST], backend.addr);
    balancer.wait_registered("doomed", 1);
    let users = balancer.users;
    let post = thread::spawn(move || {
        let mut c = Client::connect(users);
        let start = Instant::now();
        c.send(
            format!("POST /slow/3000 HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 4\r\n\r\ndata")
                .as_bytes(),
        )
        .unwrap();
        (c.response("POST").unwrap(), start.elapsed())
    });
    // Kill the agent once the POST is at the backend.
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.requests() < 1 {
        assert!(
            Instant::now() < deadline,
            "the POST never reached the backend"
        );
        thread::sleep(Duration::from_millis(5));
    }
    agent.kill();
    let (r, took) = post.join().unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.header("x-request-id").is_some());
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
}

#[test]
fn a_silent_connection_is_closed_quietly_at_the_head_deadline() {
    let balancer = Balancer::start(&["--head-timeout", "300ms"]);
    let mut c = Client::connect(balancer.users);
    let start = Instant::now();
    let mut chunk = [0u8; 1024];
    let got = loop {
        match c.stream.read(&mut chunk) {
            // EINTR (seen under load; a read with SO_RCVTIMEO can return it after a stop and
            // continue, without any handler) is not an answer from the server.
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            got => break got,
        }
    };
    let took = start.elapsed();
    assert!(
        matches!(&got, Ok(0)) || matches!(&got, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "no bytes, just a close; got {:?} after {took:?}",
        got.map(|n| String::from_utf8_lossy(&chunk[..n]).into_owned())
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
}
