//! Replays an arbitrary byte string as a sequence of events against one [`UpstreamExchange`],
//! checking its invariants: no panic; what reached the backend on each attempt parses as the
//! request head followed by a prefix of the request body (however the body was split, whatever
//! the backend did); the body credit released never exceeds what was received; the response body
//! passed on is a prefix of the backend's; nothing is retried once a response byte came back;
//! a connection goes back to the pool only after a whole request and a whole response. The fuzz
//! target `upstream` and a property test in `core/tests/upstream_replay.rs` drive it.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{Outcome, RequestStep, ResponseStep, UpstreamConfig, UpstreamExchange};
use crate::http::{BodyDecoder, BodyEvent, Limits, RequestParser};

/// Request templates: (head, decoded body).
const REQUESTS: [(&str, &str); 5] = [
    ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", ""),
    (
        "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n",
        "hello world",
    ),
    (
        "PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        "hello world",
    ),
    (
        "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        "opaque bytes",
    ),
    ("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", ""),
];

/// What the backend may send: (bytes, response body as decoded).
const RESPONSES: [(&str, &str); 7] = [
    ("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndata", "data"),
    (
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndata\r\n0\r\n\r\n",
        "data",
    ),
    (
        "HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndata",
        "data",
    ),
    (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nopaque",
        "opaque",
    ),
    (
        "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "",
    ),
    ("HTTP/1.1 200 OK\r\n\r\nuntil close", "until close"),
    ("HTTP/1.1 2x0 Nope\r\n\r\n", ""),
];

/// Runs `input` as described in the module documentation.
pub fn run(input: &[u8]) {
    let mut bytes = input.iter().copied();
    let (Some(pick), Some(script)) = (bytes.next(), bytes.next()) else {
        return;
    };
    let (head, body) = REQUESTS[usize::from(pick) % REQUESTS.len()];
    let (response, response_body) = RESPONSES[usize::from(script) % RESPONSES.len()];
    let Ok(Some(request)) =
        RequestParser::new(Limits::default()).parse(&mut BytesMut::from(head.as_bytes()))
    else {
        return;
    };
    let config = UpstreamConfig {
        response_timeout: Duration::from_secs(5),
        replay_limit: 6,
        write_batch: 4,
        ..UpstreamConfig::default()
    };
    let mut ex = UpstreamExchange::new(request, pick & 0x80 != 0, config);
    let mut now = Instant::now();
    let mut state = Replay::default();
    while let (Some(op), Some(arg)) = (bytes.next(), bytes.next()) {
        let n = usize::from(arg);
        match op % 10 {
            // The next `n % 5` body bytes arrive (the end with the last of them).
            0 => {
                if ex.wants_body() {
                    let take = (n % 5).min(body.len() - state.fed);
                    let piece = &body.as_bytes()[state.fed..state.fed + take];
                    state.fed += take;
                    state.received += take;
                    ex.push_body(Bytes::copy_from_slice(piece), state.fed == body.len());
                }
            }
            1 => {
                if state.inflight.is_none() {
                    match ex.poll_request(&mut state.out) {
                        RequestStep::WriteHead(bytes) => state.inflight = Some(bytes),
                        RequestStep::Write => state.inflight = Some(state.out.split().freeze()),
                        RequestStep::NeedBody | RequestStep::Wait | RequestStep::Done { .. } => {}
                    }
                }
            }
            2 => {
                if let Some(bytes) = state.inflight.take() {
                    state.written.extend_from_slice(&bytes);
                    state.released += ex.handle_written(now);
                }
            }
            3 => {
                if state.inflight.take().is_some() {
                    let (credit, e) = ex.handle_write_failed("reset by peer", now);
                    state.released += credit;
                    state.error = Some(e);
                }
            }
            // The backend sends its next `n % 9` bytes.
            4 => {
                let take = (n % 9).min(response.len() - state.answered);
                state
                    .read_buf
                    .extend_from_slice(&response.as_bytes()[state.answered..state.answered + take]);
                state.answered += take;
                if let Err(e) = ex.handle_read(take) {
                    state.error = Some(e);
                }
            }
            5 => {
                if let Err(e) = ex.handle_read(0) {
                    state.error = Some(e);
                }
            }
            6 => match ex.poll_response(&mut state.read_buf, now) {
                Ok(ResponseStep::Data { data, .. }) => {
                    state.passed_on.extend_from_slice(&data);
                    if arg & 1 == 0 {
                        ex.response_forwarded();
                    }
                }
                Ok(ResponseStep::Done) => {
                    if ex.outcome() == Some(Outcome::Reuse) {
                        assert!(ex.request_done(), "reused before the request was written");
                    }
                }
                Ok(_) => {}
                Err(e) => state.error = Some(e),
            },
            7 => {
                now += Duration::from_millis(u64::from(arg) * 50);
                if let Err(e) = ex.handle_timeout(now) {
                    state.error = Some(e);
                }
            }
            8 => state.error = Some(ex.handle_read_failed("connection reset")),
            _ => {
                if let Some(e) = state.error.take() {
                    if ex.responded() {
                        assert!(!ex.may_retry(&e), "retry allowed after a response byte");
                    }
                    if ex.may_retry(&e) {
                        state.released += ex.retry();
                        state.fresh_attempt();
                    }
                }
            }
        }
        assert!(
            state.released <= state.received,
            "released {} of {} received",
            state.released,
            state.received
        );
        let _ = ex.poll_timeout();
        check_written(&state.written, body);
        if !ex.is_upgraded() {
            assert!(
                response_body.as_bytes().starts_with(&state.passed_on),
                "passed on {:?}, not a prefix of {response_body:?}",
                state.passed_on
            );
        }
    }
}

/// What the replay holds besides the exchange.
#[derive(Default)]
struct Replay {
    fed: usize,
    received: usize,
    released: usize,
    out: BytesMut,
    inflight: Option<Bytes>,
    /// What the backend received on this attempt.
    written: BytesMut,
    read_buf: BytesMut,
    answered: usize,
    passed_on: BytesMut,
    error: Option<super::UpstreamError>,
}

impl Replay {
    fn fresh_attempt(&mut self) {
        self.out.clear();
        self.inflight = None;
        self.written.clear();
        self.read_buf.clear();
        self.answered = 0;
        self.passed_on.clear();
    }
}

/// The backend's bytes parse as a request head and a body that is a prefix of `body`.
fn check_written(written: &[u8], body: &str) {
    let mut buf = BytesMut::from(written);
    let head = match RequestParser::new(Limits::default()).parse(&mut buf) {
        Ok(Some(head)) => head,
        Ok(None) => return,
        Err(e) => panic!("the backend got a malformed head: {e}"),
    };
    if head.wants_upgrade() {
        // What follows an Upgrade request's head is the client's opaque bytes, as they came.
        assert!(
            body.as_bytes().starts_with(&buf),
            "the backend got {buf:?} after the head, not a prefix of {body:?}"
        );
        return;
    }
    let mut decoder = BodyDecoder::new(head.framing(), None);
    let mut got = Vec::new();
    loop {
        match decoder.decode(&mut buf) {
            Ok(BodyEvent::Data(data)) => got.extend_from_slice(&data),
            Ok(BodyEvent::End | BodyEvent::NeedMore) => break,
            Err(e) => panic!("the backend got a malformed body: {e}"),
        }
    }
    assert!(
        body.as_bytes().starts_with(&got),
        "the backend got {got:?}, not a prefix of {body:?}"
    );
}
