//! Request bodies against backends that do not simply read them: interim heads during an upload,
//! early answers, backends that never read, users that stall or stop reading, and retries after a
//! refused stream.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use ringway_hello::HelloHandle;
use support::{free_port, hello_backend, send_body, AgentProc, Balancer, Client, ScriptedBackend};

const HOST: &str = "up.test";
const MIB: usize = 1024 * 1024;

/// A balancer with one worker and one agent in front of `backend`.
fn one_agent(backend: std::net::SocketAddr, args: &[&str]) -> (Balancer, AgentProc) {
    let mut all = vec!["--workers", "1"];
    all.extend_from_slice(args);
    let balancer = Balancer::start(&all);
    let agent = AgentProc::start(balancer.agents, "a", &[HOST], backend);
    balancer.wait_registered("a", 1);
    (balancer, agent)
}

#[test]
fn interim_heads_during_a_large_upload_do_not_stop_it() {
    // The backend answers its own 100 (`/100`) or a 103 (`/103`) before reading a body far
    // larger than the stream window; the upload must go on and the final answer come through.
    let backend = ScriptedBackend::spawn(|conn, request| {
        let interim: &[u8] = if request.head.starts_with("PUT /100 ") {
            b"HTTP/1.1 100 Continue\r\n\r\n"
        } else {
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
        };
        conn.write_all(interim).unwrap();
        let got = request.read_body(conn).to_string();
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{got}",
            got.len()
        );
        let _ = conn.write_all(answer.as_bytes());
    });
    let (balancer, _agent) = one_agent(backend.addr, &["--response-timeout", "5s"]);
    let len = 4 * MIB;
    // Both on one user connection: it stays usable after each.
    let mut c = Client::connect(balancer.users);
    for path in ["/100", "/103"] {
        c.send(
            format!(
                "PUT {path} HTTP/1.1\r\nHost: {HOST}\r\nExpect: 100-continue\r\nContent-Length: {len}\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let sender = send_body(&c.stream, len);
        let r = c.response("PUT").unwrap();
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.text(), len.to_string(), "{path}");
        assert_eq!(sender.join().unwrap(), len);
    }
    // The balancer answered Expect itself: the backend never sees it.
    for head in backend.heads.lock().unwrap().iter() {
        assert!(!head.to_ascii_lowercase().contains("expect:"), "{head}");
    }
}

#[test]
fn an_early_answer_before_the_body_is_read_reaches_the_user() {
    // The backend refuses the body at once (413) and never reads it.
    let backend = ScriptedBackend::spawn(|conn, _request| {
        let _ = conn.write_all(
            b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!",
        );
        thread::sleep(Duration::from_secs(3));
    });
    let (balancer, _agent) = one_agent(backend.addr, &["--response-timeout", "5s"]);
    let len = 32 * MIB;
    let mut c = Client::connect(balancer.users);
    c.send(
        format!("POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let _sender = send_body(&c.stream, len);
    let r = c.response("POST").unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.text(), "too big!");
}

#[test]
fn a_backend_that_never_reads_the_body_is_504_at_the_body_timeout() {
    let backend = ScriptedBackend::spawn(|_conn, _request| {
        thread::sleep(Duration::from_secs(20));
    });
    let (balancer, _agent) = one_agent(
        backend.addr,
        &["--body-timeout", "500ms", "--response-timeout", "60s"],
    );
    let len = 64 * MIB;
    let mut c = Client::connect(balancer.users);
    c.set_read_timeout(Duration::from_secs(15));
    let start = Instant::now();
    c.send(
        format!("POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let _sender = send_body(&c.stream, len);
    let r = c.response("POST").unwrap();
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_stalled_request_body_is_408() {
    let backend = hello_backend();
    let (balancer, _agent) = one_agent(backend.addr, &["--body-timeout", "300ms"]);
    let mut c = Client::connect(balancer.users);
    let start = Instant::now();
    c.send(
        format!("POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 100\r\n\r\n0123456789")
            .as_bytes(),
    )
    .unwrap();
    let r = c.response("POST").unwrap();
    assert_eq!(r.status, 408, "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed_by_server());
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_user_that_stops_reading_is_cut_off_at_the_body_timeout() {
    let backend = hello_backend();
    let (balancer, _agent) = one_agent(backend.addr, &["--body-timeout", "500ms"]);
    let len = 256 * MIB;
    let mut c = Client::connect(balancer.users);
    c.send(format!("GET /bytes/{len} HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .unwrap();
    assert!(
        balancer
            .log
            .wait_for("user stopped reading", 1, Duration::from_secs(10)),
        "{}",
        balancer.log.text()
    );
    // What the kernel buffered still arrives, then the connection ends before the body does.
    let mut got = 0;
    let r = c.response_with("GET", |d| got += d.len());
    assert!(r.is_err(), "the whole body arrived");
    assert!(got < len, "{got}");
}

/// Two agents on one worker, taken in turn: one in front of a backend that is down, one in front
/// of a working one.
fn one_down_one_up(args: &[&str]) -> (Balancer, AgentProc, AgentProc, HelloHandle) {
    let mut all = vec!["--workers", "1", "--picker", "round-robin"];
    all.extend_from_slice(args);
    let balancer = Balancer::start(&all);
    let backend = hello_backend();
    let down = AgentProc::start(balancer.agents, "down", &[HOST], free_port());
    balancer.wait_registered("down", 1);
    let up = AgentProc::start(balancer.agents, "up", &[HOST], backend.addr);
    balancer.wait_registered("up", 1);
    (balancer, down, up, backend)
}

#[test]
fn a_request_whose_backend_refused_goes_to_another_agent_whatever_its_method() {
    // Refused means not processed: a POST may go elsewhere too.
    let (balancer, _down, _up, _backend) = one_down_one_up(&[]);
    for i in 0..4 {
        let mut c = Client::connect(balancer.users);
        c.send(
            format!("POST /p{i} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let r = c.response("POST").unwrap();
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
}

#[test]
fn an_empty_chunked_body_is_ended_on_the_retry() {
    let (balancer, _down, _up, _backend) = one_down_one_up(&["--response-timeout", "3s"]);
    for i in 0..4 {
        let mut c = Client::connect(balancer.users);
        c.send(
            format!(
                "GET /g{i} HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let r = c.response("GET").unwrap();
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
}

#[test]
fn a_response_head_with_more_than_100_fields_is_forwarded() {
    let backend = ScriptedBackend::spawn(|conn, _request| {
        let mut head = String::from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
        for i in 0..104 {
            head.push_str(&format!("X-Field-{i}: {i}\r\n"));
        }
        head.push_str("\r\nok");
        let _ = conn.write_all(head.as_bytes());
        thread::sleep(Duration::from_millis(500));
    });
    let (balancer, _agent) = one_agent(backend.addr, &[]);
    let r = support::get(balancer.users, HOST, "/many").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-field-103"), Some("103"));
    assert_eq!(r.text(), "ok");
}

#[test]
fn a_dead_agent_that_stopped_reading_does_not_keep_its_socket() {
    // The agent grants a large window, then stops reading: the balancer's tunnel writer blocks on
    // a full socket. When the heartbeat declares the agent dead, that write must be cancelled and
    // the socket closed.
    // The route is known, so the request parks until the agent below registers.
    // The freezing agent speaks the tunnel protocol in plaintext.
    let balancer = Balancer::start(&[
        "--workers",
        "1",
        "--insecure-plaintext",
        "--ping-interval",
        "200ms",
        "--route",
        HOST,
        "--park-time",
        "10s",
    ]);
    let users = balancer.users;
    let len = 256 * MIB;
    let upload = thread::spawn(move || {
        let mut c = Client::connect(users);
        c.send(
            format!("PUT /sink HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len}\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
        let _ = send_body(&c.stream, len);
        c.set_read_timeout(Duration::from_secs(10));
        c.response("PUT").map(|r| r.status)
    });
    let agent = support::FreezingAgent::start(balancer.agents, "freezer", HOST, 1 << 30);
    assert!(support::holds_socket_to(balancer.pid(), agent.local));
    assert!(
        balancer
            .log
            .wait_for("reason=\"heartbeat missed\"", 1, Duration::from_secs(5)),
        "{}",
        balancer.log.text()
    );
    let start = Instant::now();
    while support::holds_socket_to(balancer.pid(), agent.local) {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the balancer still holds the dead agent's socket"
        );
        thread::sleep(Duration::from_millis(50));
    }
    // The user learns the agent is gone.
    assert_eq!(upload.join().unwrap().unwrap(), 502);
}
