//! One request over one backend connection (`ringway_core::upstream`), driven in memory: what
//! the backend receives, what the next hop gets, whether the connection goes back to the pool,
//! and whether a failure may be retried on a fresh connection.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringway_core::http::{Limits, RequestParser};
use ringway_core::tunnel::ResetCode;
use ringway_core::upstream::{
    Outcome, RequestStep, ResponseStep, UpstreamConfig, UpstreamErrorKind, UpstreamExchange,
};

fn exchange(head: &str, reused: bool) -> UpstreamExchange {
    let request = RequestParser::new(Limits::default())
        .parse(&mut BytesMut::from(head.as_bytes()))
        .unwrap()
        .unwrap();
    let config = UpstreamConfig {
        response_timeout: Duration::from_secs(10),
        replay_limit: 16,
        ..UpstreamConfig::default()
    };
    UpstreamExchange::new(request, reused, config)
}

/// Runs the request side until it needs something or is done; returns what the backend got.
fn write_all(ex: &mut UpstreamExchange, now: Instant) -> (Vec<u8>, usize, RequestStep) {
    let mut written = Vec::new();
    let mut released = 0;
    let mut out = BytesMut::new();
    loop {
        match ex.poll_request(&mut out) {
            RequestStep::WriteHead(bytes) => {
                written.extend_from_slice(&bytes);
                released += ex.handle_written(now);
            }
            RequestStep::Write => {
                written.extend_from_slice(&out.split());
                released += ex.handle_written(now);
            }
            other => return (written, released, other),
        }
    }
}

/// What the next hop receives from the response side, until it must read or is done.
#[derive(Debug, Default, PartialEq, Eq)]
struct Passed {
    interim: Vec<String>,
    head: Option<(String, bool)>,
    body: Vec<u8>,
    end: bool,
}

fn respond(ex: &mut UpstreamExchange, buf: &mut BytesMut, bytes: &str, now: Instant) -> Passed {
    buf.extend_from_slice(bytes.as_bytes());
    ex.handle_read(bytes.len()).unwrap();
    let mut passed = Passed::default();
    loop {
        match ex.poll_response(buf, now).unwrap() {
            ResponseStep::Interim(head) => passed.interim.push(text(&head)),
            ResponseStep::Head { head, end } => {
                passed.head = Some((text(&head), end));
                passed.end |= end;
            }
            ResponseStep::Data { data, end } => {
                passed.body.extend_from_slice(&data);
                passed.end |= end;
                ex.response_forwarded();
            }
            ResponseStep::Read | ResponseStep::Done => return passed,
        }
    }
}

fn text(bytes: &Bytes) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const GET: &str = "GET /a HTTP/1.1\r\nHost: b\r\n\r\n";
const POST: &str = "POST /u HTTP/1.1\r\nHost: b\r\nContent-Length: 10\r\n\r\n";
const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

/// The backend closes: a close-delimited body ends there, and the connection is not reused.
fn ends_at_backend_eof_and_closes(ex: &mut UpstreamExchange, buf: &mut BytesMut, now: Instant) {
    ex.handle_read(0).unwrap();
    assert_eq!(
        ex.poll_response(buf, now).unwrap(),
        ResponseStep::Data {
            data: Bytes::new(),
            end: true
        }
    );
    assert_eq!(ex.poll_response(buf, now).unwrap(), ResponseStep::Done);
    assert_eq!(ex.outcome(), Some(Outcome::Close));
}

#[test]
fn a_complete_keep_alive_response_returns_the_connection_to_the_pool() {
    let now = Instant::now();
    let mut ex = exchange(GET, false);
    let (written, _, step) = write_all(&mut ex, now);
    assert_eq!(
        written,
        GET.as_bytes(),
        "the head goes out as the entrance framed it"
    );
    assert_eq!(step, RequestStep::Done { shutdown: false });
    let passed = respond(&mut ex, &mut BytesMut::new(), OK, now);
    assert_eq!(passed.body, b"hello");
    assert!(passed.end);
    assert_eq!(ex.outcome(), Some(Outcome::Reuse));
}

#[test]
fn connection_close_from_the_backend_or_the_request_is_not_reused() {
    let now = Instant::now();
    let mut ex = exchange(GET, false);
    write_all(&mut ex, now);
    let passed = respond(
        &mut ex,
        &mut BytesMut::new(),
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        now,
    );
    assert_eq!(passed.body, b"ok");
    let (head, _) = passed.head.unwrap();
    assert!(
        !head.to_ascii_lowercase().contains("connection: close"),
        "hop-by-hop fields stay on the backend's hop: {head}"
    );
    assert_eq!(ex.outcome(), Some(Outcome::Close));

    let mut ex = exchange(
        "GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
        false,
    );
    write_all(&mut ex, now);
    respond(&mut ex, &mut BytesMut::new(), OK, now);
    assert_eq!(ex.outcome(), Some(Outcome::Close));
}

#[test]
fn a_close_delimited_body_is_rechunked_and_the_connection_closes() {
    let now = Instant::now();
    let mut ex = exchange(GET, false);
    write_all(&mut ex, now);
    let mut buf = BytesMut::new();
    let passed = respond(&mut ex, &mut buf, "HTTP/1.1 200 OK\r\n\r\nuntil ", now);
    let (head, end) = passed.head.unwrap();
    assert!(!end);
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "the next hop gets a framed body: {head}"
    );
    assert_eq!(passed.body, b"until ");
    assert_eq!(ex.outcome(), None);
    let more = respond(&mut ex, &mut buf, "close", now);
    assert_eq!(more.body, b"close");
    ends_at_backend_eof_and_closes(&mut ex, &mut buf, now);
}

#[test]
fn an_early_response_with_unsent_body_stops_the_request_and_closes() {
    let now = Instant::now();
    let mut ex = exchange(POST, true);
    ex.push_body(Bytes::from_static(b"01234"), false);
    let (written, released, step) = write_all(&mut ex, now);
    assert_eq!(step, RequestStep::NeedBody);
    assert_eq!(released, 5, "credit returns once the bytes were written");
    assert!(written.ends_with(b"\r\n\r\n01234"));
    let passed = respond(
        &mut ex,
        &mut BytesMut::new(),
        "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n",
        now,
    );
    assert!(passed.head.unwrap().0.starts_with("HTTP/1.1 413"));
    assert!(passed.end);
    assert_eq!(ex.outcome(), Some(Outcome::CloseAndStopRequest));
}

#[test]
fn the_body_is_framed_as_the_head_says() {
    let now = Instant::now();
    let mut ex = exchange(
        "PUT /c HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n",
        false,
    );
    ex.push_body(Bytes::from_static(b"abc"), false);
    let (written, _, _) = write_all(&mut ex, now);
    ex.push_body(Bytes::from_static(b"de"), true);
    let (more, _, step) = write_all(&mut ex, now);
    assert_eq!(step, RequestStep::Done { shutdown: false });
    let all = [written, more].concat();
    assert!(String::from_utf8_lossy(&all).ends_with("\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
    assert!(ex.request_done());
}

#[test]
fn an_idempotent_request_on_a_stale_pooled_connection_is_retried_and_replayed() {
    let now = Instant::now();
    let mut ex = exchange(GET, true);
    write_all(&mut ex, now);
    let e = ex.handle_read(0).unwrap_err();
    assert_eq!(e.kind, UpstreamErrorKind::ClosedBeforeResponse);
    assert!(ex.may_retry(&e), "{e}");
    ex.retry();
    let (written, _, _) = write_all(&mut ex, now);
    assert_eq!(
        written,
        GET.as_bytes(),
        "the fresh connection gets the request again"
    );
    let e = ex.handle_read(0).unwrap_err();
    assert!(!ex.may_retry(&e), "one retry, on a fresh connection only");
}

#[test]
fn a_body_sent_on_a_stale_connection_is_replayed_without_credit() {
    let now = Instant::now();
    let mut ex = exchange(
        "PUT /u HTTP/1.1\r\nHost: b\r\nContent-Length: 10\r\n\r\n",
        true,
    );
    ex.push_body(Bytes::from_static(b"01234"), false);
    let (_, released, _) = write_all(&mut ex, now);
    assert_eq!(released, 5);
    let e = ex.handle_read_failed("connection reset by peer");
    assert!(ex.may_retry(&e));
    assert_eq!(ex.retry(), 0);
    ex.push_body(Bytes::from_static(b"56789"), true);
    let (written, released, _) = write_all(&mut ex, now);
    assert!(written.ends_with(b"\r\n\r\n0123456789"));
    assert_eq!(released, 5, "the replayed bytes were released already");
}

#[test]
fn no_retry_once_a_response_byte_came_back() {
    let now = Instant::now();
    let mut ex = exchange(GET, true);
    write_all(&mut ex, now);
    let mut buf = BytesMut::new();
    respond(&mut ex, &mut buf, "HTTP/1.1 200", now);
    let e = ex.handle_read(0).unwrap_err();
    assert_eq!(e.kind, UpstreamErrorKind::ClosedInHead);
    assert!(!ex.may_retry(&e));
    assert_eq!(e.reset_code(), ResetCode::BackendReset);
}

#[test]
fn no_retry_when_the_body_was_too_big_to_replay() {
    let now = Instant::now();
    let mut ex = exchange(
        "PUT /u HTTP/1.1\r\nHost: b\r\nContent-Length: 20\r\n\r\n",
        true,
    );
    ex.push_body(Bytes::from(vec![b'x'; 17]), false);
    write_all(&mut ex, now);
    let e = ex.handle_read(0).unwrap_err();
    assert!(e.before_response);
    assert!(
        !ex.may_retry(&e),
        "17 bytes are past the 16-byte replay limit"
    );
}

#[test]
fn a_sent_non_idempotent_request_is_not_retried_but_an_unsent_one_is() {
    let now = Instant::now();
    let mut ex = exchange(POST, true);
    ex.push_body(Bytes::from_static(b"01234"), false);
    write_all(&mut ex, now);
    let e = ex.handle_read(0).unwrap_err();
    assert!(!ex.may_retry(&e), "the backend may have processed the POST");

    let mut ex = exchange(POST, true);
    let mut out = BytesMut::new();
    assert_eq!(ex.poll_request(&mut out), RequestStep::Write);
    let (_, e) = ex.handle_write_failed("broken pipe", now);
    assert!(e.to_string().contains("broken pipe"));
    assert!(
        ex.may_retry(&e),
        "its first write failed: it never reached the backend"
    );
}

#[test]
fn a_fresh_connection_is_never_retried() {
    let now = Instant::now();
    let mut ex = exchange(GET, false);
    write_all(&mut ex, now);
    let e = ex.handle_read(0).unwrap_err();
    assert!(!ex.may_retry(&e));
}

#[test]
fn interim_heads_pass_on_before_the_final_one() {
    let now = Instant::now();
    let mut ex = exchange(GET, false);
    write_all(&mut ex, now);
    let passed = respond(
        &mut ex,
        &mut BytesMut::new(),
        "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        now,
    );
    assert_eq!(
        passed.interim,
        vec!["HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n".to_string()]
    );
    assert!(passed.head.unwrap().0.starts_with("HTTP/1.1 200 OK"));
    assert_eq!(passed.body, b"hello");
    assert_eq!(ex.outcome(), Some(Outcome::Reuse));
}

#[test]
fn a_101_turns_the_connection_into_opaque_bytes_both_ways() {
    let now = Instant::now();
    let mut ex = exchange(
        "GET /ws HTTP/1.1\r\nHost: b\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        false,
    );
    let (_, _, step) = write_all(&mut ex, now);
    assert_eq!(step, RequestStep::NeedBody, "the client's side stays open");
    let mut buf = BytesMut::new();
    let passed = respond(
        &mut ex,
        &mut buf,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x01\x02hi",
        now,
    );
    let (head, end) = passed.head.unwrap();
    assert!(head.starts_with("HTTP/1.1 101") && !end);
    assert!(head.to_ascii_lowercase().contains("connection: upgrade"));
    assert_eq!(passed.body, b"\x01\x02hi", "frames pass as they came");
    assert!(ex.is_upgraded());
    ex.push_body(Bytes::from_static(b"\x81\x02yo"), false);
    let (written, _, _) = write_all(&mut ex, now);
    assert_eq!(
        written, b"\x81\x02yo",
        "no chunk framing on an upgraded connection"
    );
    ex.push_body(Bytes::new(), true);
    assert_eq!(
        write_all(&mut ex, now).2,
        RequestStep::Done { shutdown: true }
    );
    ends_at_backend_eof_and_closes(&mut ex, &mut buf, now);
}

#[test]
fn a_101_nobody_asked_for_is_refused() {
    let now = Instant::now();
    let mut ex = exchange(GET, false);
    write_all(&mut ex, now);
    let mut buf = BytesMut::from(&b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"[..]);
    ex.handle_read(buf.len()).unwrap();
    let e = ex.poll_response(&mut buf, now).unwrap_err();
    assert_eq!(e.kind, UpstreamErrorKind::UnrequestedUpgrade);
}

#[test]
fn the_response_head_timer_runs_from_the_end_of_the_upload() {
    let start = Instant::now();
    let mut ex = exchange(POST, false);
    let mut out = BytesMut::new();
    assert_eq!(ex.poll_request(&mut out), RequestStep::Write);
    ex.handle_written(start);
    assert_eq!(
        ex.poll_timeout(),
        None,
        "a long upload is not a slow backend"
    );
    let later = start + Duration::from_secs(30);
    ex.push_body(Bytes::from_static(b"0123456789"), true);
    write_all(&mut ex, later);
    assert_eq!(ex.poll_timeout(), Some(later + Duration::from_secs(10)));
    assert!(ex.handle_timeout(later + Duration::from_secs(9)).is_ok());
    let e = ex
        .handle_timeout(later + Duration::from_secs(10))
        .unwrap_err();
    assert_eq!(
        e.kind,
        UpstreamErrorKind::ResponseTimeout(Duration::from_secs(10))
    );
    assert_eq!(e.reset_code(), ResetCode::BackendTimeout);
    assert!(!ex.may_retry(&e));
}

#[test]
fn a_next_hop_that_takes_no_response_bytes_times_out() {
    let now = Instant::now();
    let mut ex = exchange(GET, false);
    write_all(&mut ex, now);
    let mut buf = BytesMut::from(OK.as_bytes());
    ex.handle_read(buf.len()).unwrap();
    assert!(matches!(
        ex.poll_response(&mut buf, now).unwrap(),
        ResponseStep::Head { .. }
    ));
    assert!(matches!(
        ex.poll_response(&mut buf, now).unwrap(),
        ResponseStep::Data { .. }
    ));
    let due = ex.poll_timeout().unwrap();
    assert_eq!(due, now + Duration::from_secs(10));
    let e = ex.handle_timeout(due).unwrap_err();
    assert_eq!(e.reset_code(), ResetCode::Cancel);
}

#[test]
fn bytes_after_the_response_keep_the_connection_out_of_the_pool() {
    let now = Instant::now();
    let mut ex = exchange(GET, false);
    write_all(&mut ex, now);
    respond(
        &mut ex,
        &mut BytesMut::new(),
        "HTTP/1.1 204 No Content\r\n\r\nstray",
        now,
    );
    assert_eq!(ex.outcome(), Some(Outcome::Close));
}
