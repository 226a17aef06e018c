//! Forwarding through the agent (in-process, `Agent::start`) against a fake balancer built on
//! core's `tunnel::Connection` over loopback, with the hello backend (or a hand-written one)
//! behind it: bodies both ways, flow control, rewrites, pool reuse and the error resets.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::setup::{config, drivers, start, start_on, stop};
use common::{closed_port, FakeBalancer, PATIENCE};
use ringway_agent::Agent;
use ringway_core::tunnel::{Event, ResetCode};
use ringway_hello as hello;
use ringway_tuning::runtime::IoDriver;

#[test]
fn get_and_post_are_forwarded_intact() {
    for driver in drivers() {
        get_and_post_are_forwarded_intact_on(driver);
    }
}

fn get_and_post_are_forwarded_intact_on(driver: IoDriver) {
    let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let lb = FakeBalancer::bind();
    let agent = start_on(driver, lb.addr(), backend.addr);
    let mut conn = lb.accept(1, |_| 0);

    let reply = conn.request("GET /hi HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.status(), 200);
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    assert!(body.contains("GET /hi"), "{body}");
    assert!(body.contains(&backend.addr.to_string()), "{body}");

    let reply = conn.request(
        "POST /echo HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\n\r\n",
        &[b"0123456789"],
    );
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.body, b"0123456789");
    assert_eq!(reply.head().content_length(), Some(10));

    let reply = conn.request(
        "HEAD /bytes/1234 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        &[],
    );
    assert_eq!(reply.status(), 200);
    assert!(reply.body.is_empty());
    assert_eq!(
        reply.head().content_length(),
        Some(1234),
        "HEAD keeps its Content-Length"
    );

    let reply = conn.request("GET /status/503 HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.status(), 503, "backend errors pass through");
    // The pool kept the backend connection: three requests, at most a couple of connections.
    assert_eq!(backend.requests(), 4);
    stop(agent);
}

#[test]
fn chunked_upload_is_reframed_and_echoed() {
    for driver in drivers() {
        chunked_upload_is_reframed_and_echoed_on(driver);
    }
}

fn chunked_upload_is_reframed_and_echoed_on(driver: IoDriver) {
    let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let lb = FakeBalancer::bind();
    let agent = start_on(driver, lb.addr(), backend.addr);
    let mut conn = lb.accept(1, |_| 0);
    let reply = conn.request(
        "POST /echo HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n",
        &[b"alpha ", b"beta ", b"gamma"],
    );
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.body, b"alpha beta gamma");
    let head = reply.head();
    assert_eq!(head.header("transfer-encoding").unwrap(), b"chunked");
    stop(agent);
}

#[test]
fn large_download_respects_flow_control() {
    for driver in drivers() {
        large_download_respects_flow_control_on(driver);
    }
}

fn large_download_respects_flow_control_on(driver: IoDriver) {
    let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let lb = FakeBalancer::bind();
    let agent = start_on(driver, lb.addr(), backend.addr);
    let mut conn = lb.accept(1, |_| 0);
    // Several times the stream window (256 KiB): only flows if credit is returned.
    let n = 3 * 1024 * 1024u64;
    for variant in ["", "?chunked"] {
        let reply = conn.request(
            &format!("GET /bytes/{n}{variant} HTTP/1.1\r\nHost: example.com\r\n\r\n"),
            &[],
        );
        assert_eq!(reply.status(), 200);
        assert_eq!(reply.body.len() as u64, n, "variant {variant:?}");
        assert!(reply
            .body
            .iter()
            .enumerate()
            .all(|(i, b)| *b == hello::pattern(i as u64)));
    }
    stop(agent);
}

#[test]
fn large_upload_is_released_as_it_reaches_the_backend() {
    for driver in drivers() {
        let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
        let lb = FakeBalancer::bind();
        let agent = start_on(driver, lb.addr(), backend.addr);
        let mut conn = lb.accept(1, |_| 0);
        // Several stream windows in both framings: the upload only completes if the agent returns
        // credit as it writes to the backend.
        let piece = vec![b'u'; 128 * 1024];
        let pieces: Vec<&[u8]> = std::iter::repeat_n(piece.as_slice(), 24).collect();
        let total = piece.len() * pieces.len();
        let reply = conn.request(
            &format!(
                "POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: {total}\r\n\r\n"
            ),
            &pieces,
        );
        assert_eq!(reply.status(), 200);
        assert!(String::from_utf8_lossy(&reply.body).contains("POST /upload"));
        let reply = conn.request(
            "POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n",
            &pieces,
        );
        assert_eq!(reply.status(), 200);
        stop(agent);
    }
}

#[test]
fn refused_backend_resets_the_stream_with_refused() {
    let lb = FakeBalancer::bind();
    let agent = start(lb.addr(), closed_port());
    let mut conn = lb.accept(1, |_| 0);
    let reply = conn.request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert!(reply.heads.is_empty());
    assert_eq!(reply.reset, Some(ResetCode::Refused));
    stop(agent);
}

#[test]
fn stale_pooled_connection_is_retried_on_a_fresh_one() {
    for driver in drivers() {
        stale_pooled_connection_is_retried_on_a_fresh_one_on(driver);
    }
}

fn stale_pooled_connection_is_retried_on_a_fresh_one_on(driver: IoDriver) {
    // A backend that keeps connections "alive" but closes them 50 ms after each response; it
    // echoes the request body (Content-Length only).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let (closed_tx, closed) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let mut sock = sock.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let closed_tx = closed_tx.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    let n = sock.read(&mut chunk).unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                while buf.len() < head_end + len {
                    let n = sock.read(&mut chunk).unwrap();
                    assert!(n > 0, "body cut short");
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = if len == 0 {
                    b"ok".to_vec()
                } else {
                    buf[head_end..head_end + len].to_vec()
                };
                let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                    .into_bytes();
                out.extend_from_slice(&body);
                sock.write_all(&out).unwrap();
                std::thread::sleep(Duration::from_millis(50));
                drop(sock);
                let _ = closed_tx.send(());
            });
        }
    });
    let lb = FakeBalancer::bind();
    let agent = start_on(driver, lb.addr(), backend);
    let mut conn = lb.accept(1, |_| 0);
    let reply = conn.request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!((reply.status(), reply.body.as_slice()), (200, &b"ok"[..]));
    closed
        .recv_timeout(PATIENCE)
        .expect("the backend closes the first connection");
    // The pooled connection is dead now; the request still succeeds, on a new connection.
    let reply = conn.request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.reset, None);
    assert_eq!((reply.status(), reply.body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    closed
        .recv_timeout(PATIENCE)
        .expect("the backend closes the second connection");
    // With a body: what was sent on the stale connection is replayed on the fresh one.
    let reply = conn.request(
        "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 12\r\n\r\n",
        &[b"replay", b" me!!!"],
    );
    assert_eq!(reply.reset, None);
    assert_eq!(
        (reply.status(), reply.body.as_slice()),
        (200, &b"replay me!!!"[..])
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    stop(agent);
}

#[test]
fn balancer_reset_cancels_a_slow_request() {
    let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let lb = FakeBalancer::bind();
    let agent = start(lb.addr(), backend.addr);
    let mut conn = lb.accept(1, |_| 0);
    let id = conn.open("GET /slow/5000 HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    // Reset once the request is at the backend.
    let deadline = Instant::now() + PATIENCE;
    while backend.requests() < 1 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the backend"
        );
        conn.turn();
    }
    conn.conn.reset(id, ResetCode::Cancel);
    conn.flush();
    // The connection keeps serving other streams at once.
    let started = Instant::now();
    let reply = conn.request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    // Nothing more arrives for the reset stream.
    let mut others = Vec::new();
    while let Some(event) = conn.next_event(Duration::from_millis(200)) {
        others.push(event);
    }
    assert!(
        others
            .iter()
            .all(|e| !matches!(e, Event::ResponseHead { id: sid, .. } if *sid == id)),
        "{others:?}"
    );
    stop(agent);
}

#[test]
fn slow_backend_is_reset_with_backend_timeout() {
    let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let lb = FakeBalancer::bind();
    let mut config = config(lb.addr(), backend.addr);
    config.response_timeout = Duration::from_millis(200);
    let agent = Agent::start(config).unwrap();
    let mut conn = lb.accept(1, |_| 0);
    let started = Instant::now();
    let reply = conn.request("GET /slow/3000 HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.reset, Some(ResetCode::BackendTimeout));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // A fast one still works.
    let reply = conn.request("GET /slow/10 HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.status(), 200);
    stop(agent);
}

#[test]
fn backend_dying_mid_response_resets_with_backend_reset() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let mut sock = sock.unwrap();
            let mut chunk = [0u8; 4096];
            let _ = sock.read(&mut chunk).unwrap();
            // Promise 100 bytes, deliver 10, vanish.
            sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
                .unwrap();
        }
    });
    let lb = FakeBalancer::bind();
    let agent = start(lb.addr(), backend);
    let mut conn = lb.accept(1, |_| 0);
    let reply = conn.request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    // The head may or may not have left before the reset (a reset drops the stream's queued
    // frames); either way the stream ends in BackendReset, never in a clean end.
    assert_eq!(reply.reset, Some(ResetCode::BackendReset), "{reply:?}");
    stop(agent);
}

#[test]
fn response_head_is_rewritten_hop_by_hop_removed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let mut sock = sock.unwrap();
            let mut chunk = [0u8; 4096];
            let _ = sock.read(&mut chunk).unwrap();
            // Body until close, plus hop-by-hop headers that must not cross the tunnel.
            sock.write_all(b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nX-Kept: yes\r\n\r\nuntil close")
                .unwrap();
        }
    });
    let lb = FakeBalancer::bind();
    let agent = start(lb.addr(), backend);
    let mut conn = lb.accept(1, |_| 0);
    let reply = conn.request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.reset, None);
    assert_eq!(reply.body, b"until close");
    let head = reply.head();
    assert_eq!(head.header("x-kept").unwrap(), b"yes");
    for gone in ["keep-alive", "connection", "x-hop"] {
        assert!(head.header(gone).is_none(), "{gone} crossed the tunnel");
    }
    assert_eq!(
        head.header("transfer-encoding").unwrap(),
        b"chunked",
        "framing rebuilt"
    );
    stop(agent);
}

#[test]
fn many_streams_share_one_connection() {
    let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let lb = FakeBalancer::bind();
    let agent = start(lb.addr(), backend.addr);
    let mut conn = lb.accept(1, |_| 0);
    let mut expected = std::collections::HashMap::new();
    for i in 0..48u64 {
        let (head, body): (String, Vec<u8>) = match i % 3 {
            0 => (
                format!(
                    "GET /bytes/{} HTTP/1.1\r\nHost: example.com\r\n\r\n",
                    20_000 + i * 1000
                ),
                Vec::new(),
            ),
            1 => (
                format!("GET /slow/{} HTTP/1.1\r\nHost: example.com\r\n\r\n", 20 + i),
                Vec::new(),
            ),
            _ => {
                let body = format!("echo number {i}").into_bytes();
                (
                    format!(
                        "POST /echo HTTP/1.1\r\nHost: example.com\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    ),
                    body,
                )
            }
        };
        let pieces: Vec<&[u8]> = if body.is_empty() {
            Vec::new()
        } else {
            vec![body.as_slice()]
        };
        let id = conn.open(&head, &pieces);
        let want: Vec<u8> = match i % 3 {
            0 => (0..20_000 + i * 1000).map(hello::pattern).collect(),
            1 => format!("slow {}\n", 20 + i).into_bytes(),
            _ => body.clone(),
        };
        expected.insert(id, want);
    }
    let replies = conn.replies(expected.keys().copied().collect());
    for (id, want) in expected {
        let reply = &replies[&id];
        assert_eq!(reply.reset, None, "stream {id}");
        assert_eq!(reply.status(), 200, "stream {id}");
        assert_eq!(reply.body, want, "stream {id}");
    }
    stop(agent);
}

#[test]
fn large_heads_cross_both_ways() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap();
    let cookie = "c".repeat(30_000);
    let set_cookie = cookie.clone();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let mut sock = sock.unwrap();
            let mut got = Vec::new();
            let mut chunk = [0u8; 8192];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = sock.read(&mut chunk).unwrap();
                assert!(n > 0);
                got.extend_from_slice(&chunk[..n]);
            }
            let seen = got.len();
            let head = format!(
                "HTTP/1.1 200 OK\r\nSet-Cookie: {set_cookie}\r\nContent-Length: {}\r\n\r\n{seen}",
                seen.to_string().len()
            );
            sock.write_all(head.as_bytes()).unwrap();
        }
    });
    let lb = FakeBalancer::bind();
    let agent = start(lb.addr(), backend);
    let mut conn = lb.accept(1, |_| 0);
    let request = format!("GET / HTTP/1.1\r\nHost: example.com\r\nCookie: {cookie}\r\n\r\n");
    let reply = conn.request(&request, &[]);
    assert_eq!(reply.reset, None);
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.head().header("set-cookie").unwrap().len(), 30_000);
    let seen: usize = String::from_utf8(reply.body).unwrap().parse().unwrap();
    assert_eq!(
        seen,
        request.len(),
        "the request head reached the backend whole"
    );
    stop(agent);
}

#[test]
fn response_head_too_large_for_a_frame_is_reset() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let mut sock = sock.unwrap();
            let mut chunk = [0u8; 8192];
            let n = sock.read(&mut chunk).unwrap();
            // `/huge` gets a head no frame can carry; anything else a small response.
            let head = if chunk[..n].starts_with(b"GET /huge ") {
                let huge = "h".repeat(70_000);
                format!("HTTP/1.1 200 OK\r\nX-Huge: {huge}\r\nContent-Length: 0\r\n\r\n")
            } else {
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nsmall".to_owned()
            };
            let _ = sock.write_all(head.as_bytes());
        }
    });
    let lb = FakeBalancer::bind();
    let agent = start(lb.addr(), backend);
    let mut conn = lb.accept(1, |_| 0);
    let reply = conn.request("GET /huge HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert!(reply.heads.is_empty());
    assert_eq!(reply.reset, Some(ResetCode::BackendReset));
    // The tunnel connection still serves the next request.
    let reply = conn.request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.reset, None, "{reply:?}");
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.body, b"small");
    stop(agent);
}

#[test]
fn backend_connections_are_bounded_and_streams_wait_for_one() {
    let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let lb = FakeBalancer::bind();
    let mut config = config(lb.addr(), backend.addr);
    config.max_backend_conns = 2;
    let agent = Agent::start(config).unwrap();
    let mut conn = lb.accept(1, |_| 0);
    let started = Instant::now();
    let ids: Vec<_> = (0..6)
        .map(|_| conn.open("GET /slow/100 HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]))
        .collect();
    let replies = conn.replies(ids);
    let took = started.elapsed();
    assert!(replies
        .values()
        .all(|r| r.reset.is_none() && r.status() == 200));
    // Two connections, six 100 ms requests: three rounds.
    assert!(took >= Duration::from_millis(290), "not bounded: {took:?}");
    assert_eq!(backend.requests(), 6);
    stop(agent);
}
