//! End to end through the tunnel: user → ringway-balancer → ringway-agent → hello backend, all real
//! processes (the backend in-process) on loopback.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::thread;
use std::time::Duration;

use support::{hello_backend, AgentProc, Balancer, Client};

const HOST: &str = "app.test";

/// A balancer, a hello backend and one agent for `app.test`, registered on every worker.
fn setup(extra: &[&str]) -> (Balancer, ringway_hello::HelloHandle, AgentProc) {
    let balancer = Balancer::start(extra);
    let backend = hello_backend();
    let agent = AgentProc::start(balancer.agents, "a1", &[HOST], backend.addr);
    let workers = if extra.contains(&"1") { 1 } else { 2 };
    balancer.wait_registered("a1", workers);
    (balancer, backend, agent)
}

#[test]
fn get_and_post_through_the_tunnel() {
    let (balancer, backend, _agent) = setup(&[]);
    let mut c = Client::connect(balancer.users);
    let r = c.get(HOST, "/hi?x=1").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.text().contains("GET /hi?x=1"), "{}", r.text());
    assert!(r.header("x-served-by").is_some());

    // Same connection (keep-alive): a POST with a Content-Length body is echoed.
    let body = "name=ringway&n=42";
    let req = format!(
        "POST /echo HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.send(req.as_bytes()).unwrap();
    let r = c.response("POST").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), body);
    assert_eq!(backend.requests(), 2);

    // Backend statuses pass through untouched.
    let r = c.get(HOST, "/status/503").unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "status 503\n");
    let r = c.get(HOST, "/status/404").unwrap();
    assert_eq!(r.status, 404);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (balancer, _backend, _agent) = setup(&[]);
    let mut c = Client::connect(balancer.users);
    let mut batch = String::new();
    for i in 0..5 {
        batch.push_str(&format!(
            "GET /slow/{} HTTP/1.1\r\nHost: {HOST}\r\n\r\n",
            50 - i * 10
        ));
        batch.push_str(&format!("GET /p{i} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"));
    }
    c.send(batch.as_bytes()).unwrap();
    for i in 0..5 {
        let r = c.response("GET").unwrap();
        assert_eq!(r.text(), format!("slow {}\n", 50 - i * 10));
        let r = c.response("GET").unwrap();
        assert!(r.text().contains(&format!("GET /p{i}")), "{}", r.text());
    }
}

#[test]
fn http10_keep_alive_client_keeps_its_connection() {
    let (balancer, backend, _agent) = setup(&[]);
    let mut c = Client::connect(balancer.users);
    for path in ["/ka1", "/ka2"] {
        let req = format!("GET {path} HTTP/1.0\r\nHost: {HOST}\r\nConnection: keep-alive\r\n\r\n");
        c.send(req.as_bytes()).unwrap();
        let r = c.response("GET").unwrap();
        assert_eq!(r.status, 200);
        assert!(r.text().contains(&format!("GET {path}")), "{}", r.text());
        // Without this field an HTTP/1.0 client closes after the response.
        assert_eq!(
            r.header("connection"),
            Some("keep-alive"),
            "{:?}",
            r.headers
        );
        assert!(
            !r.chunked,
            "an HTTP/1.0 client cannot read chunked: {:?}",
            r.headers
        );
    }
    assert_eq!(backend.requests(), 2);

    // Without keep-alive, HTTP/1.0 means one response, `Connection: close`, then EOF.
    let mut c = Client::connect(balancer.users);
    c.send(format!("GET /once HTTP/1.0\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .unwrap();
    let r = c.response("GET").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    c.set_read_timeout(Duration::from_secs(5));
    assert!(c.is_closed_by_server());
}

#[test]
fn an_error_answer_closes_when_the_client_asked_to_close() {
    let (balancer, _backend, _agent) = setup(&[]);
    for req in [
        "GET / HTTP/1.1\r\nHost: nobody.test\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: nobody.test\r\n\r\n",
    ] {
        let mut c = Client::connect(balancer.users);
        c.send(req.as_bytes()).unwrap();
        let r = c.response("GET").unwrap();
        assert_eq!(r.status, 404, "{req:?}");
        assert_eq!(r.header("connection"), Some("close"), "{req:?}");
        c.set_read_timeout(Duration::from_secs(5));
        assert!(c.is_closed_by_server(), "{req:?}");
    }
    // A client that keeps its connection keeps it after an error answer too; an HTTP/1.0 one is
    // told so.
    let mut c = Client::connect(balancer.users);
    let r = c.get("nobody.test", "/").unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.header("connection"), None);
    assert_eq!(c.get(HOST, "/after").unwrap().status, 200);
    let mut c = Client::connect(balancer.users);
    c.send(b"GET / HTTP/1.0\r\nHost: nobody.test\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let r = c.response("GET").unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.header("connection"), Some("keep-alive"));
    assert_eq!(c.get(HOST, "/after").unwrap().status, 200);
}

#[test]
fn chunked_both_ways() {
    let (balancer, _backend, _agent) = setup(&[]);
    let mut c = Client::connect(balancer.users);
    // A chunked upload to /echo comes back chunked, byte for byte.
    let mut expected = Vec::new();
    c.send(
        format!("POST /echo HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    for i in 0..64u32 {
        let chunk: Vec<u8> = (0..(1000 + i * 37))
            .map(|j| b'a' + ((i + j) % 26) as u8)
            .collect();
        c.send(format!("{:x};ext=1\r\n", chunk.len()).as_bytes())
            .unwrap();
        c.send(&chunk).unwrap();
        c.send(b"\r\n").unwrap();
        expected.extend_from_slice(&chunk);
    }
    c.send(b"0\r\n\r\n").unwrap();
    let r = c.response("POST").unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.chunked,
        "a chunked upload is echoed chunked: {:?}",
        r.headers
    );
    assert_eq!(r.body, expected);

    // A chunked download arrives chunked and complete.
    let r = c.get(HOST, "/bytes/300000?chunked").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.chunked);
    assert_eq!(r.body.len(), 300_000);
    assert!(r
        .body
        .iter()
        .enumerate()
        .all(|(i, b)| *b == ringway_hello::pattern(i as u64)));

    // An HTTP/1.0 client gets a close-delimited body instead of chunks.
    let mut c10 = Client::connect(balancer.users);
    c10.send(format!("GET /bytes/5000?chunked HTTP/1.0\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .unwrap();
    let r = c10.response("GET").unwrap();
    assert_eq!(r.status, 200);
    assert!(!r.chunked);
    assert_eq!(r.body.len(), 5000);
}

const GIB: u64 = 1 << 30;
/// Peak RSS allowed for the balancer and the agent while 1 GiB streams through them.
const RSS_LIMIT_KIB: u64 = 64 * 1024;

#[test]
fn one_gib_download_streams_with_bounded_memory() {
    let (balancer, _backend, agent) = setup(&["--workers", "1"]);
    let mut c = Client::connect(balancer.users);
    c.send(format!("GET /bytes/{GIB} HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .unwrap();
    let mut total = 0u64;
    let mut wrong = 0u64;
    let r = c
        .response_with("GET", |d| {
            // Spot-check the pattern at the start of every piece.
            if d[0] != ringway_hello::pattern(total) {
                wrong += 1;
            }
            total += d.len() as u64;
        })
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(total, GIB);
    assert_eq!(wrong, 0);
    let (b, a) = (balancer.peak_rss_kib(), agent.peak_rss_kib());
    eprintln!("peak RSS: balancer {b} KiB, agent {a} KiB");
    assert!(b < RSS_LIMIT_KIB, "balancer peak RSS {b} KiB");
    assert!(a < RSS_LIMIT_KIB, "agent peak RSS {a} KiB");
}

#[test]
fn one_gib_upload_streams_with_bounded_memory() {
    let (balancer, backend, agent) = setup(&["--workers", "1"]);
    let mut c = Client::connect(balancer.users);
    // The hello backend reads and discards the body of any path but /echo, then answers.
    c.send(
        format!("PUT /sink HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {GIB}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut writer = c.stream.try_clone().unwrap();
    let upload = thread::spawn(move || {
        let block = vec![b'u'; 256 * 1024];
        let mut sent = 0u64;
        while sent < GIB {
            writer.write_all(&block).unwrap();
            sent += block.len() as u64;
        }
        sent
    });
    let r = c.response("PUT").unwrap();
    assert_eq!(upload.join().unwrap(), GIB);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("PUT /sink"), "{}", r.text());
    assert_eq!(backend.requests(), 1);
    let (b, a) = (balancer.peak_rss_kib(), agent.peak_rss_kib());
    eprintln!("peak RSS: balancer {b} KiB, agent {a} KiB");
    assert!(b < RSS_LIMIT_KIB, "balancer peak RSS {b} KiB");
    assert!(a < RSS_LIMIT_KIB, "agent peak RSS {a} KiB");
}

#[test]
fn slow_download_does_not_stall_other_streams_on_the_same_agent_connection() {
    // One worker → one agent connection carries every stream.
    let (balancer, _backend, _agent) = setup(&["--workers", "1"]);
    let mut slow = Client::connect(balancer.users);
    // 64 MiB that this client never reads: its stream's window fills and stays full.
    slow.send(format!("GET /bytes/{} HTTP/1.1\r\nHost: {HOST}\r\n\r\n", 64 << 20).as_bytes())
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    let mut fast = Client::connect(balancer.users);
    fast.set_read_timeout(Duration::from_secs(10));
    for _ in 0..20 {
        let r = fast.get(HOST, "/bytes/100000").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), 100_000);
    }
    drop(slow);
}

#[test]
fn two_agents_on_one_route_both_receive_traffic() {
    let balancer = Balancer::start(&[]);
    let (b1, b2) = (hello_backend(), hello_backend());
    let _a1 = AgentProc::start(balancer.agents, "a1", &[HOST], b1.addr);
    let _a2 = AgentProc::start(balancer.agents, "a2", &[HOST], b2.addr);
    balancer.wait_registered("a1", 2);
    balancer.wait_registered("a2", 2);
    let users = balancer.users;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            thread::spawn(move || {
                let mut c = Client::connect(users);
                for _ in 0..10 {
                    assert_eq!(c.get(HOST, "/slow/20").unwrap().status, 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(b1.requests() + b2.requests(), 80);
    assert!(
        b1.requests() > 0 && b2.requests() > 0,
        "{} / {}",
        b1.requests(),
        b2.requests()
    );
}

#[test]
fn agent_started_before_the_balancer() {
    let agent_port = support::fixed_port();
    let backend = hello_backend();
    let agent = AgentProc::start(agent_port, "early", &[HOST], backend.addr);
    thread::sleep(Duration::from_millis(500));
    let balancer = Balancer::start(&["--agent-listen", &agent_port.to_string()]);
    balancer.wait_registered("early", 2);
    let r = support::get(balancer.users, HOST, "/").unwrap();
    assert_eq!(r.status, 200);
    drop(agent);
}

#[test]
fn wrong_token_is_rejected_and_logged() {
    let balancer = Balancer::start(&["--route", HOST, "--park-time", "200ms"]);
    let backend = hello_backend();
    let agent = AgentProc::start_with(
        balancer.agents,
        "intruder",
        &[HOST],
        backend.addr,
        "wrong",
        &[],
    );
    assert!(
        balancer
            .log
            .wait_for("agent rejected", 1, Duration::from_secs(10)),
        "{}",
        balancer.log.text()
    );
    assert!(balancer.log.text().contains("intruder"));
    let r = support::get(balancer.users, HOST, "/").unwrap();
    assert_eq!(r.status, 503);
    drop(agent);
}

#[test]
fn requests_beyond_max_streams_wait_for_a_free_stream() {
    let dir = std::env::temp_dir().join(format!("ringway-maxstreams-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("balancer.toml");
    std::fs::write(&config, "[tunnel]\nmax_streams = 2\n").unwrap();
    let (balancer, backend, _agent) =
        setup(&["--workers", "1", "--config", config.to_str().unwrap()]);
    let users = balancer.users;
    let clients: Vec<_> = (0..6)
        .map(|_| thread::spawn(move || support::get(users, HOST, "/slow/200").unwrap().status))
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
    assert_eq!(backend.requests(), 6);
    let _ = std::fs::remove_dir_all(&dir);
}
