//! The exchange state machine: full duplex, early answers, interim heads, Upgrade, retry
//! permission, keep-alive and timers — driven in memory, time passed in.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringway_core::exchange::{
    ErrorKind, Exchange, ExchangeConfig, Outcome, ProxyError, UploadStep,
};
use ringway_core::http::{Limits, RequestHead, RequestParser, ResponseHead, ResponseParser};
use ringway_core::tunnel::ResetCode;

/// Parses a request head off `raw`; what follows the head stays in the returned buffer.
fn request(raw: &[u8]) -> (RequestHead, BytesMut) {
    let mut buf = BytesMut::from(raw);
    let head = RequestParser::new(Limits::default())
        .parse(&mut buf)
        .unwrap()
        .unwrap();
    (head, buf)
}

fn response(raw: &str) -> ResponseHead {
    ResponseParser::new(Limits::default())
        .parse(&mut BytesMut::from(raw.as_bytes()))
        .unwrap()
        .unwrap()
}

fn config() -> ExchangeConfig {
    ExchangeConfig {
        response_head_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_secs(10),
        upgrade_idle_timeout: Duration::from_secs(100),
        ..ExchangeConfig::default()
    }
}

/// Sends everything `step` asks for (unlimited credit).
fn send_all(ex: &mut Exchange, buf: &mut BytesMut, now: Instant) -> (Vec<u8>, bool) {
    let mut sent = Vec::new();
    loop {
        match ex.poll_upload(buf, now).unwrap() {
            UploadStep::Send { data, end } => {
                sent.extend_from_slice(&data);
                ex.upload_sent(Bytes::new(), end, now);
                if end {
                    return (sent, true);
                }
            }
            UploadStep::Read | UploadStep::Wait | UploadStep::Done => return (sent, false),
        }
    }
}

fn text(out: &BytesMut) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn a_response_streams_down_while_the_body_still_streams_up() {
    let t0 = Instant::now();
    let (head, mut buf) =
        request(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234");
    let mut ex = Exchange::new(&head, config(), t0);
    assert!(!ex.opens_ended());
    let mut out = BytesMut::new();
    ex.begin(&mut out, t0);
    assert!(out.is_empty(), "no 100 Continue unless asked");

    let (sent, ended) = send_all(&mut ex, &mut buf, t0);
    assert_eq!((sent.as_slice(), ended), (&b"01234"[..], false));
    assert_eq!(ex.poll_upload(&mut buf, t0).unwrap(), UploadStep::Read);

    // The response head and part of its body arrive before the rest of the request body.
    let r = response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
    ex.handle_response_head(&r, false, &mut out, t0).unwrap();
    assert!(text(&out).starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(!text(&out).contains("close"), "{}", text(&out));
    out.clear();
    ex.handle_response_data(b"01234", false, &mut out, t0)
        .unwrap();
    assert_eq!(&out[..], b"01234");
    assert!(!ex.is_complete());

    // The rest of the body goes up, the rest of the response comes down.
    buf.extend_from_slice(b"56789");
    let (sent, ended) = send_all(&mut ex, &mut buf, t0);
    assert_eq!((sent.as_slice(), ended), (&b"56789"[..], true));
    ex.handle_response_data(b"56789", true, &mut out, t0)
        .unwrap();
    assert!(ex.is_complete());
    assert_eq!(ex.outcome(), Outcome::KeepAlive);
}

#[test]
fn unsent_body_waits_for_credit_and_goes_first() {
    let t0 = Instant::now();
    let (head, mut buf) = request(b"PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabcdef");
    let mut ex = Exchange::new(&head, config(), t0);
    let UploadStep::Send { data, end } = ex.poll_upload(&mut buf, t0).unwrap() else {
        panic!("expected a send");
    };
    assert!(end, "the whole body is here: the end goes with it");
    // Credit for 2 bytes only: the rest is kept and offered again.
    ex.upload_sent(data.slice(2..), end, t0);
    assert_eq!(
        ex.poll_upload(&mut buf, t0).unwrap(),
        UploadStep::Send {
            data: Bytes::from_static(b"cdef"),
            end: true
        }
    );
    // Credit never returns: the upstream took no body in time → 504.
    let e = ex.handle_timeout(t0 + Duration::from_secs(11)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResponseTimeout);
    assert_eq!(e.status(), 504);
}

#[test]
fn an_early_error_answer_closes_and_the_unread_body_lingers() {
    let t0 = Instant::now();
    let (head, mut buf) =
        request(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10485760\r\n\r\nxxxx");
    let mut ex = Exchange::new(&head, config(), t0);
    let mut out = BytesMut::new();
    send_all(&mut ex, &mut buf, t0);
    let r = response("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\n\r\n");
    ex.handle_response_head(&r, false, &mut out, t0).unwrap();
    assert!(text(&out).contains("Connection: close"), "{}", text(&out));
    ex.handle_response_data(b"big", true, &mut out, t0).unwrap();
    assert!(ex.response_done());
    assert!(!ex.is_complete(), "the upload is still open");
    // The upstream stops reading: the exchange completes, the connection lingers then closes.
    ex.handle_upstream_reset(ResetCode::NoError, false).unwrap();
    assert!(ex.is_complete());
    assert_eq!(ex.poll_upload(&mut buf, t0).unwrap(), UploadStep::Done);
    assert_eq!(ex.outcome(), Outcome::LingeringClose);
}

#[test]
fn a_reset_before_any_response_is_the_attempts_error() {
    let t0 = Instant::now();
    let (head, _) = request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut ex = Exchange::new(&head, config(), t0);
    let e = ex
        .handle_upstream_reset(ResetCode::Refused, true)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AgentRefused);
    assert!(ex.may_retry(&e));
    let e = ex
        .handle_upstream_reset(ResetCode::BackendReset, false)
        .unwrap_err();
    assert_eq!(e.status(), 502);
    assert!(!ex.may_retry(&e));
}

#[test]
fn retry_permission_follows_what_was_consumed_and_shown() {
    let t0 = Instant::now();
    let lost = ProxyError::new(ErrorKind::AgentLost);
    // An idempotent request with no body: retryable until the response starts.
    let (head, _) = request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut ex = Exchange::new(&head, config(), t0);
    assert!(ex.opens_ended());
    assert!(ex.may_retry(&lost));
    let mut out = BytesMut::new();
    let r = response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    ex.handle_response_head(&r, false, &mut out, t0).unwrap();
    assert!(!ex.may_retry(&lost), "the user saw the head");

    // A POST: a lost agent is not retried; a refused stream is, until body bytes were taken.
    let (head, mut buf) = request(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n");
    let mut ex = Exchange::new(&head, config(), t0);
    assert!(!ex.may_retry(&lost));
    let refused = ProxyError::new(ErrorKind::AgentRefused);
    assert!(ex.may_retry(&refused));
    buf.extend_from_slice(b"abc");
    send_all(&mut ex, &mut buf, t0);
    assert!(!ex.may_retry(&refused), "body bytes cannot be replayed");
}

#[test]
fn interim_heads_reach_http11_users_except_100_and_are_bounded() {
    let t0 = Instant::now();
    let (head, _) = request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut ex = Exchange::new(
        &head,
        ExchangeConfig {
            max_interim_heads: 3,
            ..config()
        },
        t0,
    );
    let mut out = BytesMut::new();
    ex.handle_response_head(
        &response("HTTP/1.1 100 Continue\r\n\r\n"),
        false,
        &mut out,
        t0,
    )
    .unwrap();
    assert!(out.is_empty(), "a 100 is the proxy's own to send");
    ex.handle_response_head(
        &response("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"),
        false,
        &mut out,
        t0,
    )
    .unwrap();
    assert!(text(&out).starts_with("HTTP/1.1 103 Early Hints"));
    assert!(
        !ex.response_started(),
        "an interim head is not the response"
    );
    assert_eq!(ex.final_status(), None, "nor is its status the response's");
    ex.handle_response_head(
        &response("HTTP/1.1 103 Early Hints\r\n\r\n"),
        false,
        &mut out,
        t0,
    )
    .unwrap();
    let e = ex
        .handle_response_head(
            &response("HTTP/1.1 103 Early Hints\r\n\r\n"),
            false,
            &mut out,
            t0,
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AgentProtocol);

    // HTTP/1.0 users get no interim heads at all.
    let (head, _) = request(b"GET / HTTP/1.0\r\nHost: a\r\n\r\n");
    let mut ex = Exchange::new(&head, config(), t0);
    let mut out = BytesMut::new();
    ex.handle_response_head(
        &response("HTTP/1.1 103 Early Hints\r\n\r\n"),
        false,
        &mut out,
        t0,
    )
    .unwrap();
    assert!(out.is_empty());
    ex.handle_response_head(
        &response("HTTP/1.1 204 No Content\r\n\r\n"),
        true,
        &mut out,
        t0,
    )
    .unwrap();
    assert_eq!(ex.final_status(), Some(204), "the final head's status");
}

#[test]
fn expect_100_continue_is_answered_by_the_proxy() {
    let t0 = Instant::now();
    let (head, _) =
        request(b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    let mut ex = Exchange::new(&head, config(), t0);
    let mut out = BytesMut::new();
    ex.begin(&mut out, t0);
    assert_eq!(&out[..], b"HTTP/1.1 100 Continue\r\n\r\n");
    out.clear();
    ex.begin(&mut out, t0);
    assert!(out.is_empty(), "once");
}

#[test]
fn an_upgrade_carries_opaque_bytes_both_ways_until_both_ends_close() {
    let t0 = Instant::now();
    let (head, mut buf) = request(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly",
    );
    let mut ex = Exchange::new(&head, config(), t0);
    assert!(
        !ex.opens_ended(),
        "the request side stays open for the upgraded bytes"
    );
    assert_eq!(ex.poll_upload(&mut buf, t0).unwrap(), UploadStep::Wait);
    let mut out = BytesMut::new();
    let r = response(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n",
    );
    ex.handle_response_head(&r, false, &mut out, t0).unwrap();
    let head_text = text(&out);
    assert!(head_text.starts_with("HTTP/1.1 101 "), "{head_text}");
    assert!(head_text.contains("Upgrade: websocket\r\n"), "{head_text}");
    assert!(head_text.contains("Connection: upgrade\r\n"), "{head_text}");
    assert!(ex.is_upgraded());
    out.clear();

    // Bytes the user sent before the 101 go first, then whatever arrives.
    let (sent, _) = send_all(&mut ex, &mut buf, t0);
    assert_eq!(sent, b"early");
    assert_eq!(ex.poll_upload(&mut buf, t0).unwrap(), UploadStep::Read);
    buf.extend_from_slice(b"\x81\x02hi");
    let (sent, _) = send_all(&mut ex, &mut buf, t0);
    assert_eq!(sent, b"\x81\x02hi");
    ex.handle_response_data(b"\x81\x02yo", false, &mut out, t0)
        .unwrap();
    assert_eq!(
        &out[..],
        b"\x81\x02yo",
        "no chunk framing on upgraded bytes"
    );

    // The upstream ends, then the user: complete, and the connection closes.
    ex.handle_response_data(b"", true, &mut out, t0).unwrap();
    assert!(ex.upstream_ended());
    assert!(!ex.is_complete());
    ex.handle_client_eof().unwrap();
    let (_, ended) = send_all(&mut ex, &mut buf, t0);
    assert!(ended);
    assert!(ex.is_complete());
    assert_eq!(ex.outcome(), Outcome::Close);

    // Idle both ways past the upgraded idle timeout → closed.
    let (head, _) = request(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    let mut ex = Exchange::new(&head, config(), t0);
    ex.handle_response_head(&r, false, &mut BytesMut::new(), t0)
        .unwrap();
    assert_eq!(ex.poll_timeout(), Some(t0 + Duration::from_secs(100)));
    assert!(ex.handle_timeout(t0 + Duration::from_secs(99)).is_ok());
    assert!(ex.handle_timeout(t0 + Duration::from_secs(100)).is_err());
}

#[test]
fn a_declined_upgrade_is_an_ordinary_exchange_and_a_101_unasked_is_refused() {
    let t0 = Instant::now();
    let (head, mut buf) = request(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    let mut ex = Exchange::new(&head, config(), t0);
    let mut out = BytesMut::new();
    let r = response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
    ex.handle_response_head(&r, false, &mut out, t0).unwrap();
    ex.handle_response_data(b"ok", true, &mut out, t0).unwrap();
    let (_, ended) = send_all(&mut ex, &mut buf, t0);
    assert!(ended, "the request side ends once the upgrade was declined");
    assert!(ex.is_complete());
    assert_eq!(ex.outcome(), Outcome::KeepAlive);

    let (head, _) = request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut ex = Exchange::new(&head, config(), t0);
    let r =
        response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n");
    let e = ex
        .handle_response_head(&r, false, &mut BytesMut::new(), t0)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AgentProtocol);
}

#[test]
fn keep_alive_follows_the_user_and_the_framing() {
    let t0 = Instant::now();
    let cases: [(&[u8], &str, Outcome, Option<&str>); 4] = [
        (
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            Outcome::KeepAlive,
            None,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            Outcome::Close,
            Some("Connection: close"),
        ),
        (
            b"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            Outcome::KeepAlive,
            Some("Connection: keep-alive"),
        ),
        // An HTTP/1.0 user cannot take chunks: the body runs until close.
        (
            b"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            Outcome::Close,
            Some("Connection: close"),
        ),
    ];
    for (req, resp, outcome, field) in cases {
        let (head, _) = request(req);
        let mut ex = Exchange::new(&head, config(), t0);
        let mut out = BytesMut::new();
        ex.handle_response_head(&response(resp), false, &mut out, t0)
            .unwrap();
        if !ex.response_done() {
            ex.handle_response_data(b"", true, &mut out, t0).unwrap();
        }
        assert!(ex.is_complete());
        assert_eq!(ex.outcome(), outcome, "{}", String::from_utf8_lossy(req));
        if let Some(field) = field {
            assert!(text(&out).contains(field), "{}", text(&out));
        }
    }
}

#[test]
fn timers_name_who_was_slow() {
    let t0 = Instant::now();
    // The response head timer runs from the end of the request.
    let (head, _) = request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut ex = Exchange::new(&head, config(), t0);
    assert_eq!(ex.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    assert!(ex.handle_timeout(t0 + Duration::from_secs(29)).is_ok());
    let e = ex.handle_timeout(t0 + Duration::from_secs(30)).unwrap_err();
    assert_eq!(e.status(), 504);

    // A user that stops sending its body → 408; no head timer while the body is arriving.
    let (head, mut buf) = request(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n");
    let mut ex = Exchange::new(&head, config(), t0);
    assert_eq!(ex.poll_upload(&mut buf, t0).unwrap(), UploadStep::Read);
    assert_eq!(ex.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    let e = ex.handle_timeout(t0 + Duration::from_secs(10)).unwrap_err();
    assert_eq!((e.kind, e.status()), (ErrorKind::ClientTimeout, 408));

    // A response body that stalls.
    let (head, _) = request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut ex = Exchange::new(&head, config(), t0);
    let t1 = t0 + Duration::from_secs(1);
    let r = response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    ex.handle_response_head(&r, false, &mut BytesMut::new(), t1)
        .unwrap();
    assert_eq!(ex.poll_timeout(), Some(t1 + Duration::from_secs(10)));
    assert!(ex.handle_timeout(t1 + Duration::from_secs(10)).is_err());
}

#[test]
fn a_user_closing_mid_body_is_an_incomplete_request() {
    let t0 = Instant::now();
    let (head, mut buf) = request(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc");
    let mut ex = Exchange::new(&head, config(), t0);
    send_all(&mut ex, &mut buf, t0);
    let e = ex.handle_client_eof().unwrap_err();
    assert_eq!((e.kind, e.status()), (ErrorKind::ClientIo, 400));
}

#[test]
fn a_response_body_longer_than_its_length_is_refused() {
    let t0 = Instant::now();
    let (head, _) = request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut ex = Exchange::new(&head, config(), t0);
    let mut out = BytesMut::new();
    let r = response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
    ex.handle_response_head(&r, false, &mut out, t0).unwrap();
    let e = ex
        .handle_response_data(b"toolong", true, &mut out, t0)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AgentProtocol);
    assert!(
        ex.response_started(),
        "the connection must close, not answer again"
    );
}
