//! How a stream ends when the backend or the balancer misbehaves: an early response to an upload,
//! a backend connection cut after the response started, a request the backend may have processed
//! on a connection that closed, and a balancer that stops returning credit. A fake balancer built
//! on core's `tunnel::Connection` over loopback, with a hand-written backend behind the agent.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::setup::{config, start, stop};
use common::{FakeBalancer, FakeConn, Reply};
use ringway_agent::Agent;
use ringway_core::tunnel::{Event, ResetCode, StreamId};
use ringway_hello as hello;

/// Requests seen per path.
type Seen = Arc<Mutex<HashMap<String, usize>>>;

/// A backend whose behaviour depends on the path:
/// - `/ok`: reads the body, answers `200 ok`, keeps the connection;
/// - `/early`: answers `413` at once without reading the body, then closes;
/// - `/vanish`: reads the request; closes without an answer when it is not the first request on
///   its connection (the close crossed the request), else answers `200 ok`;
/// - `/hints`: answers `103`, `100` and `200 ok` in one write;
/// - `/cut`: without reading the body, sends a head promising 100 bytes and 10 of them, then
///   closes with the body unread (the kernel answers with a RST).
fn backend() -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let counts = seen.clone();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let counts = counts.clone();
            std::thread::spawn(move || serve(sock.unwrap(), &counts));
        }
    });
    (addr, seen)
}

fn serve(mut sock: TcpStream, seen: &Seen) {
    let mut buf = Vec::new();
    for nth in 0.. {
        let Some(head_end) = read_head(&mut sock, &mut buf) else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let path = head.split(' ').nth(1).unwrap_or("").to_owned();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        *seen.lock().unwrap().entry(path.clone()).or_default() += 1;
        match path.as_str() {
            "/early" => {
                let _ = sock.write_all(
                    b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 5\r\nConnection: close\r\n\r\nlarge",
                );
                std::thread::sleep(Duration::from_millis(300));
                return;
            }
            "/cut" => {
                let _ = sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
                std::thread::sleep(Duration::from_millis(150));
                return;
            }
            _ => {}
        }
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 16 * 1024];
            match sock.read(&mut chunk) {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        }
        buf.drain(..head_end + len);
        if path == "/vanish" && nth > 0 {
            return;
        }
        if path == "/hints" {
            // Two interim heads and the final one in a single write.
            let _ = sock.write_all(
                b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            );
            continue;
        }
        if sock
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

/// Reads until `buf` holds a whole head; its length, or `None` at EOF.
fn read_head(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(i + 4);
        }
        let mut chunk = [0u8; 1024];
        match sock.read(&mut chunk) {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

fn count(seen: &Seen, path: &str) -> usize {
    seen.lock().unwrap().get(path).copied().unwrap_or(0)
}

/// Every event of stream `id` until its end or reset, releasing DATA as it comes.
fn events_of(conn: &mut FakeConn, id: StreamId) -> Vec<Event> {
    let deadline = Instant::now() + common::PATIENCE;
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = conn
            .next_event(left)
            .unwrap_or_else(|| panic!("stream {id} did not finish: {events:?}"));
        let last = match &event {
            Event::ResponseHead { id: sid, end, .. } if *sid == id => *end,
            Event::Data { id: sid, data, end } if *sid == id => {
                conn.conn.release(id, data.len());
                *end
            }
            Event::Reset { id: sid, .. } if *sid == id => true,
            _ => continue,
        };
        events.push(event);
        if last {
            return events;
        }
    }
}

#[test]
fn an_early_response_to_an_upload_arrives_whole_before_the_stop_sending_reset() {
    let (addr, seen) = backend();
    let lb = FakeBalancer::bind();
    let agent = start(lb.addr(), addr);
    let mut conn = lb.accept(1, |_| 0);
    // A 1 MB upload of which only the first 16 KiB are sent: the backend answers 413 first.
    let id = conn
        .conn
        .open_stream(
            Bytes::from_static(
                b"POST /early HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1000000\r\n\r\n",
            ),
            false,
        )
        .unwrap();
    conn.conn
        .send_data(id, &mut Bytes::from(vec![b'u'; 16 * 1024]), false)
        .unwrap();
    conn.flush();
    let mut events = events_of(&mut conn, id);
    // The response's END_STREAM ends the collection; the RESET follows it.
    if !matches!(events.last(), Some(Event::Reset { .. })) {
        events.extend(events_of(&mut conn, id));
    }
    let heads: Vec<&Bytes> = events
        .iter()
        .filter_map(|e| match e {
            Event::ResponseHead { head, .. } => Some(head),
            _ => None,
        })
        .collect();
    assert_eq!(heads.len(), 1, "{events:?}");
    assert!(heads[0].starts_with(b"HTTP/1.1 413"), "{events:?}");
    let body: Vec<u8> = events
        .iter()
        .filter_map(|e| match e {
            Event::Data { data, .. } => Some(data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(body, b"large");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Data { end: true, .. })),
        "the response ended cleanly: {events:?}"
    );
    assert_eq!(
        events.last(),
        Some(&Event::Reset {
            id,
            code: ResetCode::NoError
        }),
        "then the balancer is told to stop sending"
    );
    assert_eq!(count(&seen, "/early"), 1);
    // The tunnel connection is fine.
    let reply = conn.request("GET /ok HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!((reply.status(), reply.body.as_slice()), (200, &b"ok"[..]));
    stop(agent);
}

#[test]
fn a_backend_cut_after_the_response_started_is_reset_not_retried() {
    let (addr, seen) = backend();
    let lb = FakeBalancer::bind();
    let agent = start(lb.addr(), addr);
    let mut conn = lb.accept(1, |_| 0);
    // A pooled connection, so that the failing exchange is on a reused one.
    let reply = conn.request("GET /ok HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.status(), 200);
    // PUT is idempotent and its 32 KiB body replayable: only the started response forbids a retry.
    let body = vec![b'p'; 32 * 1024];
    let reply = conn.request(
        "PUT /cut HTTP/1.1\r\nHost: example.com\r\nContent-Length: 32768\r\n\r\n",
        &[&body],
    );
    assert_eq!(reply.heads.len(), 1, "one response head: {reply:?}");
    assert_eq!(reply.reset, Some(ResetCode::BackendReset), "{reply:?}");
    assert_eq!(count(&seen, "/cut"), 1, "the backend got the request once");
    stop(agent);
}

#[test]
fn a_request_that_reached_a_closing_connection_is_replayed_only_when_idempotent() {
    let (addr, seen) = backend();
    let lb = FakeBalancer::bind();
    let agent = start(lb.addr(), addr);
    let mut conn = lb.accept(1, |_| 0);
    let ok = |reply: &Reply| (reply.status(), reply.body.clone());
    let reply = conn.request("GET /ok HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(ok(&reply), (200, b"ok".to_vec()));
    // The backend read the POST on the pooled connection and closed it without an answer: it may
    // have processed it, so it is not sent again.
    let reply = conn.request(
        "POST /vanish HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n",
        &[b"order"],
    );
    assert_eq!(reply.reset, Some(ResetCode::BackendReset), "{reply:?}");
    assert!(reply.heads.is_empty());
    assert_eq!(count(&seen, "/vanish"), 1, "the POST was not replayed");
    // A GET in the same situation is retried on a fresh connection.
    let reply = conn.request("GET /ok HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(ok(&reply), (200, b"ok".to_vec()));
    let reply = conn.request("GET /vanish HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.reset, None, "{reply:?}");
    assert_eq!(ok(&reply), (200, b"ok".to_vec()));
    assert_eq!(count(&seen, "/vanish"), 3);
    stop(agent);
}

#[test]
fn a_balancer_that_returns_no_credit_does_not_hold_the_backend_connection() {
    let backend = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let lb = FakeBalancer::bind();
    let mut config = config(lb.addr(), backend.addr);
    config.response_timeout = Duration::from_millis(300);
    config.max_backend_conns = 1;
    let agent = Agent::start(config).unwrap();
    let mut conn = lb.accept(1, |_| 0);
    // Several stream windows of response, none of it released.
    let id = conn.open(
        "GET /bytes/4194304 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        &[],
    );
    let started = Instant::now();
    let reset = loop {
        match conn.next_event(Duration::from_secs(5)) {
            Some(Event::Reset { id: sid, code }) if sid == id => break code,
            Some(_) => {}
            None => panic!("the stalled stream was never reset"),
        }
    };
    assert_eq!(reset, ResetCode::Cancel);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The only backend connection was given up: the next request gets one.
    let reply = conn.request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.status(), 200);
    stop(agent);
}

#[test]
fn interim_heads_written_together_with_the_final_one_all_arrive() {
    let (addr, _seen) = backend();
    let lb = FakeBalancer::bind();
    let agent = start(lb.addr(), addr);
    let mut conn = lb.accept(1, |_| 0);
    let reply = conn.request("GET /hints HTTP/1.1\r\nHost: example.com\r\n\r\n", &[]);
    assert_eq!(reply.reset, None, "{reply:?}");
    assert_eq!(
        reply.heads.len(),
        3,
        "103, 100 and the final head: {reply:?}"
    );
    assert!(reply.heads[0].starts_with(b"HTTP/1.1 103"), "{reply:?}");
    assert!(reply.heads[1].starts_with(b"HTTP/1.1 100"), "{reply:?}");
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.body, b"ok");
    stop(agent);
}
