//! `listen.proxy_protocol` on the real binary, behind a pretend L4 front: the PROXY header's
//! source (v1 or v2, IPv4 or IPv6) is the client the backend hears of (X-Forwarded-For,
//! Forwarded), the one the `[proxy] trusted` check and the access log see, for every request of
//! the connection; LOCAL keeps the real peer; a header split over writes works; a connection
//! without one is closed unanswered and counted.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringway_core::proxy_protocol::{write_v1, write_v2, Command, ProxyHeader};
use support::{AgentProc, Balancer, Client, ScriptedBackend};

const HOST: &str = "app.test";

/// A backend that answers every request with the X-Forwarded-For and Forwarded values it got,
/// as `xff|forwarded`.
fn forwarding_echo() -> ScriptedBackend {
    ScriptedBackend::spawn(|conn, req| {
        let field = |name: &str| {
            req.head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                })
                .unwrap_or_default()
        };
        let body = format!("{}|{}", field("x-forwarded-for"), field("forwarded"));
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        let _ = conn.write_all(format!("{head}{body}").as_bytes());
    })
}

/// A balancer that wants PROXY headers (plus `extra` flags), an agent, and the echo backend.
fn setup(extra: &[&str]) -> (Balancer, AgentProc, ScriptedBackend) {
    let mut args = vec!["--route", HOST, "--proxy-protocol"];
    args.extend_from_slice(extra);
    let balancer = Balancer::start(&args);
    let backend = forwarding_echo();
    let agent = AgentProc::start(balancer.agents, "a1", &[HOST], backend.addr);
    balancer.wait_registered("a1", 2);
    (balancer, agent, backend)
}

fn proxied(source: &str, destination: &str) -> ProxyHeader {
    ProxyHeader {
        command: Command::Proxy,
        source: Some(source.parse().unwrap()),
        destination: Some(destination.parse().unwrap()),
    }
}

fn v1(header: &ProxyHeader) -> Vec<u8> {
    let mut out = BytesMut::new();
    write_v1(header, &mut out);
    out.to_vec()
}

fn v2(header: &ProxyHeader) -> Vec<u8> {
    let mut out = BytesMut::new();
    write_v2(header, &mut out);
    out.to_vec()
}

/// A connection that sent `header` and then GETs `/`: the backend's `xff|forwarded`.
fn forwarded_for(users: SocketAddr, header: &[u8]) -> String {
    let mut c = Client::connect(users);
    c.send(header).unwrap();
    let r = c.get(HOST, "/").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

/// The value of an unlabelled counter in `/metrics`.
fn counter(balancer: &Balancer, name: &str) -> f64 {
    let r = support::get(balancer.admin.unwrap(), "localhost", "/metrics").unwrap();
    let text = r.text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Waits (bounded) until `name` reaches `want`; returns the last value seen.
fn wait_counter(balancer: &Balancer, name: &str, want: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = counter(balancer, name);
        if value >= want || Instant::now() > deadline {
            return value;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The file's first line once there is one (within 10 s).
fn first_line(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text.lines().next() {
            return line.to_owned();
        }
        assert!(Instant::now() < deadline, "no access log line");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_v2_source_is_the_client_of_every_request_on_the_connection_and_in_the_access_log() {
    let dir = std::env::temp_dir().join(format!("ringway-pp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("access.log");
    let (balancer, _agent, _backend) = setup(&["--access-log", log.to_str().unwrap()]);

    let mut c = Client::connect(balancer.users);
    c.send(&v2(&proxied("203.0.113.7:56324", "192.0.2.1:443")))
        .unwrap();
    for _ in 0..2 {
        let r = c.get(HOST, "/").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.text(),
            "203.0.113.7|for=203.0.113.7;proto=http;host=app.test"
        );
    }
    let line = first_line(&log);
    assert!(line.starts_with("203.0.113.7 - - ["), "{line}");
    assert_eq!(
        counter(&balancer, "ringway_proxy_protocol_errors_total"),
        0.0
    );
}

#[test]
fn v1_ipv4_and_ipv6_and_local_and_a_split_header() {
    let (balancer, _agent, _backend) = setup(&[]);
    let users = balancer.users;

    let text = forwarded_for(users, &v1(&proxied("203.0.113.7:1000", "192.0.2.1:80")));
    assert!(text.starts_with("203.0.113.7|for=203.0.113.7;"), "{text}");
    let text = forwarded_for(
        users,
        &v1(&proxied("[2001:db8::7]:1000", "[2001:db8::1]:80")),
    );
    assert!(
        text.starts_with("2001:db8::7|for=\"[2001:db8::7]\";"),
        "{text}"
    );
    let text = forwarded_for(
        users,
        &v2(&proxied("[2001:db8::9]:1000", "[2001:db8::1]:80")),
    );
    assert!(text.starts_with("2001:db8::9|"), "{text}");

    // LOCAL (the front's health check) and v1 UNKNOWN keep the real peer.
    let local = ProxyHeader {
        command: Command::Local,
        source: None,
        destination: None,
    };
    let text = forwarded_for(users, &v2(&local));
    assert!(text.starts_with("127.0.0.1|for=127.0.0.1;"), "{text}");
    let text = forwarded_for(users, b"PROXY UNKNOWN\r\n");
    assert!(text.starts_with("127.0.0.1|"), "{text}");

    // The header split over two writes, its rest arriving with the request in one segment.
    for header in [
        v2(&proxied("198.51.100.4:9", "192.0.2.1:80")),
        v1(&proxied("198.51.100.4:9", "192.0.2.1:80")),
    ] {
        let mut c = Client::connect(users);
        c.send(&header[..7]).unwrap();
        // Not a wait for a condition: a pause so that the two writes are two segments, and the
        // balancer reads the first part alone.
        thread::sleep(Duration::from_millis(50));
        let request = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
        c.send(&[&header[7..], request.as_bytes()].concat())
            .unwrap();
        let r = c.response("GET").unwrap();
        assert!(r.text().starts_with("198.51.100.4|"), "{}", r.text());
    }
    assert_eq!(
        counter(&balancer, "ringway_proxy_protocol_errors_total"),
        0.0
    );
}

#[test]
fn a_connection_without_a_valid_header_is_closed_unanswered_and_counted() {
    let (balancer, _agent, backend) = setup(&[]);
    let plain = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    let bad: [&[u8]; 3] = [
        plain.as_bytes(),
        // Wrong family: an IPv6 destination in a TCP4 line.
        b"PROXY TCP4 203.0.113.7 ::1 1 2\r\nGET / HTTP/1.1\r\nHost: app.test\r\n\r\n",
        // The v2 signature, then version 1.
        b"\r\n\r\n\0\r\nQUIT\n\x11\x11\0\x0c",
    ];
    for bytes in bad {
        let mut c = Client::connect(balancer.users);
        c.set_read_timeout(Duration::from_secs(10));
        c.send(bytes).unwrap();
        assert!(c.is_closed_by_server(), "closed, with no response byte");
    }
    let errors = wait_counter(&balancer, "ringway_proxy_protocol_errors_total", 3.0);
    assert_eq!(errors, 3.0);
    assert!(
        backend.heads.lock().unwrap().is_empty(),
        "nothing reached the backend"
    );
    assert!(
        balancer
            .log
            .wait_for("no valid PROXY protocol header", 1, Duration::from_secs(10)),
        "{}",
        balancer.log.text()
    );
    // A connection with a header is still served.
    let text = forwarded_for(
        balancer.users,
        &v2(&proxied("203.0.113.7:1", "192.0.2.1:80")),
    );
    assert!(text.starts_with("203.0.113.7|"), "{text}");
}

#[test]
fn the_trusted_check_is_of_the_header_source() {
    let config = support::config_file("pp-trusted", "[proxy]\ntrusted = [\"203.0.113.0/24\"]\n");
    let (balancer, _agent, _backend) = setup(&["--config", config.to_str().unwrap()]);
    let request =
        format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n");
    let send = |source: &str| {
        let mut c = Client::connect(balancer.users);
        c.send(&v2(&proxied(source, "192.0.2.1:80"))).unwrap();
        c.send(request.as_bytes()).unwrap();
        c.response("GET").unwrap().text()
    };
    // A trusted front's list is kept and appended to; anyone else's is replaced.
    let text = send("203.0.113.7:1");
    assert!(text.starts_with("198.51.100.1, 203.0.113.7|"), "{text}");
    let text = send("192.0.2.99:1");
    assert!(text.starts_with("192.0.2.99|"), "{text}");
}

#[test]
fn a_header_must_arrive_within_the_head_timeout() {
    let (balancer, _agent, _backend) = setup(&["--head-timeout", "300ms"]);
    let started = Instant::now();
    let mut stalled = Client::connect(balancer.users);
    stalled.set_read_timeout(Duration::from_secs(10));
    stalled
        .send(&v2(&proxied("203.0.113.7:1", "192.0.2.1:80"))[..10])
        .unwrap();
    let mut silent = Client::connect(balancer.users);
    silent.set_read_timeout(Duration::from_secs(10));
    assert!(stalled.is_closed_by_server(), "a stalled header is cut");
    assert!(
        silent.is_closed_by_server(),
        "a silent connection is closed"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Only the stalled header counts: a connection that sent nothing closes quietly, as it
    // does without the PROXY protocol.
    assert_eq!(
        wait_counter(&balancer, "ringway_proxy_protocol_errors_total", 1.0),
        1.0
    );
    assert!(
        balancer.log.wait_for(
            "head timeout passed within the header",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        balancer.log.text()
    );
}
