//! Replays an arbitrary byte string as a sequence of events against one [`Exchange`], checking
//! its invariants: no panic; the body bytes sent upstream are always a prefix of the body the
//! user sent (however the user's bytes were split, whatever the upstream did); once the response
//! started nothing is retryable; a complete exchange stays complete. The fuzz target
//! `exchange` and a property test in `core/tests/exchange_replay.rs` drive it.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::{Exchange, ExchangeConfig, ProxyError, UploadStep};
use crate::http::{Limits, RequestParser, ResponseParser};
use crate::tunnel::ResetCode;

/// Request templates: (head, body as the user frames it, body as decoded).
const REQUESTS: [(&str, &str, &str); 5] = [
    ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "", ""),
    (
        "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n",
        "hello world",
        "hello world",
    ),
    (
        "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        "hello world",
    ),
    (
        "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        "opaque bytes",
        "opaque bytes",
    ),
    (
        "PUT /x HTTP/1.0\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
        "abc",
        "abc",
    ),
];

/// Response heads the upstream may send.
const RESPONSES: [&str; 6] = [
    "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 103 Early Hints\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 204 No Content\r\n\r\n",
];

const RESETS: [ResetCode; 4] = [
    ResetCode::NoError,
    ResetCode::Refused,
    ResetCode::BackendReset,
    ResetCode::Cancel,
];

/// Runs `input` as described in the module documentation.
pub fn run(input: &[u8]) {
    let mut bytes = input.iter().copied();
    let Some(pick) = bytes.next() else {
        return;
    };
    let (head, framed, decoded) = REQUESTS[usize::from(pick) % REQUESTS.len()];
    let mut head_buf = BytesMut::from(head.as_bytes());
    let Ok(Some(request)) = RequestParser::new(Limits::default()).parse(&mut head_buf) else {
        return;
    };
    let mut now = Instant::now();
    let config = ExchangeConfig {
        body_timeout: Duration::from_secs(5),
        response_head_timeout: Duration::from_secs(5),
        upgrade_idle_timeout: Duration::from_secs(5),
        max_interim_heads: 2,
        ..ExchangeConfig::default()
    };
    let mut ex = Exchange::new(&request, config, now);
    let mut out = BytesMut::new();
    ex.begin(&mut out, now);
    let mut user = BytesMut::new();
    let mut fed = 0;
    let mut upstream = Vec::new();
    let mut failed = false;
    while let (Some(op), Some(arg)) = (bytes.next(), bytes.next()) {
        let was_complete = ex.is_complete();
        match op % 8 {
            // The user sends the next `arg % 8` bytes of its framed body.
            0 => {
                let n = (usize::from(arg) % 8).min(framed.len() - fed);
                user.extend_from_slice(&framed.as_bytes()[fed..fed + n]);
                fed += n;
            }
            // The request side runs; the upstream has credit for `arg % 6` bytes.
            1 => match ex.poll_upload(&mut user, now) {
                Ok(UploadStep::Send { mut data, end }) => {
                    let n = (usize::from(arg) % 6).min(data.len());
                    upstream.extend_from_slice(&data.split_to(n));
                    ex.upload_sent(data, end, now);
                }
                Ok(_) => {}
                Err(_) => failed = true,
            },
            2 => {
                let raw = RESPONSES[usize::from(arg) % RESPONSES.len()];
                let mut buf = BytesMut::from(raw.as_bytes());
                if let Ok(Some(head)) = ResponseParser::new(Limits::default()).parse(&mut buf) {
                    failed |= ex
                        .handle_response_head(&head, arg & 0x80 != 0, &mut out, now)
                        .is_err();
                }
            }
            3 => {
                let body = &b"dataDATA"[..usize::from(arg) % 8];
                failed |= ex
                    .handle_response_data(body, arg & 0x80 != 0, &mut out, now)
                    .is_err();
            }
            4 => {
                let code = RESETS[usize::from(arg) % RESETS.len()];
                failed |= ex.handle_upstream_reset(code, arg & 0x80 != 0).is_err();
            }
            5 => failed |= ex.handle_client_eof().is_err(),
            6 => {
                now += Duration::from_millis(u64::from(arg) * 50);
                failed |= ex.handle_timeout(now).is_err();
            }
            _ => {
                let e = ProxyError::new(super::ErrorKind::AgentLost);
                if ex.response_started() {
                    assert!(
                        !ex.may_retry(&e),
                        "retry allowed after the response started"
                    );
                }
                if failed && ex.may_retry(&e) {
                    ex.prepare_retry(now);
                    upstream.clear();
                    failed = false;
                }
            }
        }
        if was_complete && !failed {
            assert!(ex.is_complete(), "a complete exchange became incomplete");
        }
        let _ = ex.outcome();
        let _ = ex.poll_timeout();
        assert!(
            decoded.as_bytes().starts_with(&upstream) || ex.is_upgraded(),
            "upstream got {upstream:?}, not a prefix of {decoded:?}"
        );
    }
}
