//! Full duplex through the real binaries: a request body streaming up *while* its response streams
//! down (the hello backend's `/echo` writes the body back as it reads it), early answers that
//! reach the user while the upload is still arriving, and WebSocket (Upgrade) both ways.
//!
//! Every test runs twice: through an agent's tunnel, and in classic mode (the route's static
//! backend is the same server, reached by the balancer itself): one request path serves both.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};
use support::{hello_backend, AgentProc, Balancer, Client, ScriptedBackend};

const HOST: &str = "app.test";
const MIB: usize = 1024 * 1024;
/// Peak RSS allowed for the balancer while 64 MiB stream through it both ways: the body never
/// sits whole in memory, only a few windows of it.
const ECHO_RSS_LIMIT_KIB: u64 = 40 * 1024;

/// How the balancer reaches the backend.
#[derive(Clone, Copy)]
enum Mode {
    /// Through an agent's tunnel.
    Tunnel,
    /// Classic mode: the route's static backend.
    Classic,
}

/// The balancer (and agent) of one test.
struct Setup {
    balancer: Balancer,
    _agent: Option<AgentProc>,
}

/// A one-worker balancer whose route `HOST` reaches `backend` as `mode` says; `config` is more
/// of its configuration file.
fn setup(mode: Mode, config: &str, backend: std::net::SocketAddr) -> Setup {
    let text = match mode {
        Mode::Tunnel => config.to_owned(),
        Mode::Classic => {
            format!("{config}\n[[route]]\npattern = \"{HOST}\"\nbackends = [\"{backend}\"]\n")
        }
    };
    let name = format!("duplex-{}", NEXT_CONFIG.fetch_add(1, Ordering::Relaxed));
    let path = support::config_file(&name, &text);
    let balancer = Balancer::start(&["--workers", "1", "--config", path.to_str().unwrap()]);
    let agent = match mode {
        Mode::Tunnel => {
            let agent = AgentProc::start(balancer.agents, "a1", &[HOST], backend);
            balancer.wait_registered("a1", 1);
            Some(agent)
        }
        Mode::Classic => None,
    };
    Setup {
        balancer,
        _agent: agent,
    }
}

static NEXT_CONFIG: AtomicUsize = AtomicUsize::new(0);

/// A test in both modes: `NAME_tunnel` and `NAME_classic` run `NAME(mode)`.
macro_rules! both_modes {
    ($($name:ident),* $(,)?) => {
        mod tunnel {
            $(#[test] fn $name() { super::$name(super::Mode::Tunnel) })*
        }
        mod classic {
            $(#[test] fn $name() { super::$name(super::Mode::Classic) })*
        }
    };
}

both_modes!(
    a_64_mib_echo_streams_both_ways_at_once_with_bounded_memory,
    a_chunked_upload_is_echoed_while_it_streams,
    a_413_from_the_balancer_reaches_a_user_still_uploading,
    a_413_a_backend_sends_before_reading_reaches_a_user_still_uploading,
    websocket_messages_go_both_ways_then_close_cleanly,
    an_upgrade_the_backend_declines_is_an_ordinary_response,
);

/// Deterministic body bytes.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2])
        .collect()
}

/// Sends `head` then `body` (in chunk framing when `chunked`) from a thread, while this thread
/// reads the response: the echo only completes if both directions move at once.
fn echo(balancer: &Balancer, body: &[u8], chunked: bool) -> (u16, Vec<u8>) {
    let mut c = Client::connect(balancer.users);
    c.set_read_timeout(Duration::from_secs(30));
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {}", body.len())
    };
    c.send(format!("POST /echo HTTP/1.1\r\nHost: {HOST}\r\n{framing}\r\n\r\n").as_bytes())
        .unwrap();
    let mut up = c.stream.try_clone().unwrap();
    let body = body.to_vec();
    let sender = thread::spawn(move || {
        for piece in body.chunks(256 * 1024) {
            if chunked {
                up.write_all(format!("{:x}\r\n", piece.len()).as_bytes())?;
                up.write_all(piece)?;
                up.write_all(b"\r\n")?;
            } else {
                up.write_all(piece)?;
            }
        }
        if chunked {
            up.write_all(b"0\r\n\r\n")?;
        }
        std::io::Result::Ok(())
    });
    let r = c.response("POST").unwrap();
    sender.join().unwrap().unwrap();
    (r.status, r.body)
}

fn a_64_mib_echo_streams_both_ways_at_once_with_bounded_memory(mode: Mode) {
    let backend = hello_backend();
    let running = setup(mode, "", backend.addr);
    let balancer = &running.balancer;
    let body = pattern(64 * MIB);
    let (status, echoed) = echo(balancer, &body, false);
    assert_eq!(status, 200);
    assert_eq!(echoed.len(), body.len());
    assert_eq!(Sha256::digest(&echoed), Sha256::digest(&body));
    let peak = balancer.peak_rss_kib();
    assert!(
        peak < ECHO_RSS_LIMIT_KIB,
        "balancer peak RSS {peak} KiB while echoing 64 MiB"
    );
}

fn a_chunked_upload_is_echoed_while_it_streams(mode: Mode) {
    let backend = hello_backend();
    let running = setup(mode, "", backend.addr);
    let balancer = &running.balancer;
    let body = pattern(16 * MIB + 12_345);
    let (status, echoed) = echo(balancer, &body, true);
    assert_eq!(status, 200);
    assert_eq!(Sha256::digest(&echoed), Sha256::digest(&body));
}

/// Sends a 10 MiB body and reads the answer without waiting for the upload to finish: the answer
/// must arrive (not a reset) although the body is still being sent.
fn early_answer(balancer: &Balancer, path: &str) -> support::Response {
    let mut c = Client::connect(balancer.users);
    c.set_read_timeout(Duration::from_secs(20));
    let len = 10 * MIB;
    c.send(
        format!("POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let _sender = support::send_body(&c.stream, len);
    c.response("POST").unwrap()
}

fn a_413_from_the_balancer_reaches_a_user_still_uploading(mode: Mode) {
    let backend = hello_backend();
    let running = setup(mode, "[limits]\nmax_body_bytes = 1048576\n", backend.addr);
    let balancer = &running.balancer;
    let r = early_answer(balancer, "/upload");
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.header("x-request-id").is_some());
}

fn a_413_a_backend_sends_before_reading_reaches_a_user_still_uploading(mode: Mode) {
    // The backend answers at once without reading the body, then closes.
    let backend = ScriptedBackend::spawn(|conn, _req| {
        let _ = conn.write_all(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large",
        );
        let _ = conn.shutdown(std::net::Shutdown::Write);
        // Drain a little so the close is not an immediate reset towards the agent.
        let mut sink = [0u8; 64 * 1024];
        let deadline = std::time::Instant::now() + Duration::from_millis(200);
        conn.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        while std::time::Instant::now() < deadline {
            if matches!(conn.read(&mut sink), Ok(0)) {
                break;
            }
        }
    });
    let running = setup(mode, "", backend.addr);
    let balancer = &running.balancer;
    let r = early_answer(balancer, "/upload");
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.text(), "too large");
    assert_eq!(r.header("connection"), Some("close"));
}

/// A WebSocket echo server on a thread: every message comes back, then the close handshake.
fn websocket_echo_backend() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(conn) else {
                    return;
                };
                while let Ok(msg) = ws.read() {
                    if msg.is_close() {
                        break;
                    }
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).is_err() {
                        break;
                    }
                }
                // Flush the close reply.
                let _ = ws.flush();
            });
        }
    });
    addr
}

fn websocket_messages_go_both_ways_then_close_cleanly(mode: Mode) {
    let backend = websocket_echo_backend();
    let running = setup(mode, "", backend);
    let balancer = &running.balancer;
    let tcp = TcpStream::connect(balancer.users).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let url = format!("ws://{HOST}/chat");
    let (mut ws, response) = tungstenite::client(url.as_str(), tcp).unwrap();
    assert_eq!(response.status().as_u16(), 101);
    const MESSAGES: usize = 10_000;
    // Several messages in flight at once, so both directions carry bytes at the same time.
    const WINDOW: usize = 64;
    let mut received = 0;
    for i in 0..MESSAGES {
        ws.send(tungstenite::Message::text(format!("message {i}")))
            .unwrap();
        if i >= WINDOW {
            let msg = ws.read().unwrap();
            assert_eq!(msg.into_text().unwrap(), format!("message {received}"));
            received += 1;
        }
    }
    while received < MESSAGES {
        let msg = ws.read().unwrap();
        assert_eq!(msg.into_text().unwrap(), format!("message {received}"));
        received += 1;
    }
    ws.close(None).unwrap();
    // The close handshake completes: the server's close frame comes back, then the stream ends.
    loop {
        match ws.read() {
            Ok(msg) => assert!(msg.is_close(), "unexpected message after close: {msg:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("close handshake failed: {e}"),
        }
    }
    // The connection ends after the upgraded stream ended (not left hanging).
    let tcp = ws.get_mut();
    let mut rest = [0u8; 16];
    assert!(matches!(tcp.read(&mut rest), Ok(0)), "connection left open");
}

fn an_upgrade_the_backend_declines_is_an_ordinary_response(mode: Mode) {
    let backend = hello_backend();
    let running = setup(mode, "", backend.addr);
    let balancer = &running.balancer;
    let mut c = Client::connect(balancer.users);
    c.send(
        format!(
            "GET /hi HTTP/1.1\r\nHost: {HOST}\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let r = c.response("GET").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("GET /hi"), "{}", r.text());
}
