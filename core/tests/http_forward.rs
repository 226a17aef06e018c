//! Forwarding rewrites: hop-by-hop removal before trusted fields, framing rebuilt from the parsed
//! framing, X-Forwarded-*, Forwarded, X-Request-Id, and the error responses the proxy writes.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use bytes::BytesMut;
use ringway_core::http::forward::{self, ForwardInfo, Persistence};
use ringway_core::http::{
    closes_connection, write_error_response, BodyFraming, ErrorResponse, Limits, RequestHead,
    RequestParser, ResponseHead, ResponseParser, Version,
};

fn request(raw: &[u8]) -> RequestHead {
    RequestParser::new(Limits::default())
        .parse(&mut BytesMut::from(raw))
        .unwrap()
        .unwrap()
}

fn info(addr: &str) -> ForwardInfo<'static> {
    ForwardInfo {
        client_addr: addr.parse::<IpAddr>().unwrap(),
        proto: "https",
        request_id: "rid-1",
        trusted_peer: true,
    }
}

/// Rewrites `raw` and parses the result back.
fn forwarded(raw: &[u8], addr: &str) -> RequestHead {
    let head = request(raw);
    let mut out = BytesMut::new();
    forward::write_request(&head, &info(addr), head.framing(), &mut out);
    request(&out)
}

fn names(head: &RequestHead) -> Vec<String> {
    head.headers()
        .map(|(n, _)| String::from_utf8_lossy(n).to_ascii_lowercase())
        .collect()
}

#[test]
fn request_line_is_origin_form_http11() {
    let mut out = BytesMut::new();
    let head = request(b"GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n");
    forward::write_request(&head, &info("192.0.2.1"), head.framing(), &mut out);
    assert!(
        out.starts_with(b"GET /a?b HTTP/1.1\r\nHost: example.com\r\n"),
        "{out:?}"
    );
}

#[test]
fn hop_by_hop_fields_are_removed() {
    let out = forwarded(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\nTE: trailers\r\nTrailer: X-Sum\r\nUpgrade: h2c\r\nX-Secret: 1\r\nX-Kept: 2\r\n\r\n",
        "192.0.2.1",
    );
    let names = names(&out);
    for gone in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "x-secret",
    ] {
        assert!(
            !names.iter().any(|n| n == gone),
            "{gone} must be removed: {names:?}"
        );
    }
    assert_eq!(out.header("x-kept"), Some(&b"2"[..]));
}

#[test]
fn hop_by_hop_removal_happens_before_trusted_fields_are_added() {
    // A client naming X-Forwarded-For / X-Request-Id in Connection must not strip the proxy's own.
    let out = forwarded(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Forwarded-For, X-Request-Id, Forwarded, X-Forwarded-Proto\r\n\r\n",
        "192.0.2.7",
    );
    assert_eq!(out.header("x-forwarded-for"), Some(&b"192.0.2.7"[..]));
    assert_eq!(out.header("x-request-id"), Some(&b"rid-1"[..]));
    assert_eq!(out.header("x-forwarded-proto"), Some(&b"https"[..]));
    assert!(out.header("forwarded").is_some());
}

#[test]
fn client_fields_named_in_connection_do_not_count_as_existing() {
    let out = forwarded(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Request-Id, X-Forwarded-For, Forwarded\r\nX-Request-Id: spoof\r\nX-Forwarded-For: 10.9.9.9\r\nForwarded: for=10.9.9.9\r\n\r\n",
        "192.0.2.7",
    );
    assert_eq!(
        out.header_all("x-request-id").collect::<Vec<_>>(),
        vec![&b"rid-1"[..]]
    );
    assert_eq!(out.header("x-forwarded-for"), Some(&b"192.0.2.7"[..]));
    assert_eq!(
        out.header("forwarded"),
        Some(&b"for=192.0.2.7;proto=https;host=a"[..])
    );
}

#[test]
fn upgrade_is_kept_when_upgrading() {
    let out = forwarded(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n",
        "192.0.2.1",
    );
    assert_eq!(out.header("upgrade"), Some(&b"websocket"[..]));
    assert_eq!(out.header("connection"), Some(&b"upgrade"[..]));
    assert!(out.wants_upgrade());
    assert_eq!(out.header("sec-websocket-key"), Some(&b"k"[..]));
}

#[test]
fn framing_is_rebuilt_not_copied() {
    let head = request(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (framing, expect_cl, expect_te) in [
        (BodyFraming::Length(10), Some(&b"10"[..]), None),
        (BodyFraming::Chunked, None, Some(&b"chunked"[..])),
        (BodyFraming::Empty, None, None),
    ] {
        let mut out = BytesMut::new();
        forward::write_request(&head, &info("192.0.2.1"), framing, &mut out);
        let out = request(&out);
        assert_eq!(out.header("content-length"), expect_cl, "{framing:?}");
        assert_eq!(out.header("transfer-encoding"), expect_te, "{framing:?}");
        assert_eq!(
            out.header_all("content-length").count() + out.header_all("transfer-encoding").count(),
            usize::from(framing != BodyFraming::Empty)
        );
    }
}

#[test]
fn x_forwarded_for_is_appended_to_the_existing_list() {
    let out = forwarded(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.5, 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n\r\n",
        "192.0.2.9",
    );
    assert_eq!(out.header_all("x-forwarded-for").count(), 1);
    assert_eq!(
        out.header("x-forwarded-for"),
        Some(&b"203.0.113.5, 10.0.0.1, 10.0.0.2, 192.0.2.9"[..])
    );
}

#[test]
fn an_untrusted_peer_cannot_pass_a_forwarding_chain_on() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.5\r\nForwarded: for=203.0.113.5\r\n\r\n";
    let head = RequestParser::new(Limits::default())
        .parse(&mut BytesMut::from(&raw[..]))
        .unwrap()
        .unwrap();
    let untrusted = ForwardInfo {
        trusted_peer: false,
        ..info("192.0.2.9")
    };
    let mut out = BytesMut::new();
    forward::write_request(&head, &untrusted, head.framing(), &mut out);
    let out = RequestParser::new(Limits::default())
        .parse(&mut out)
        .unwrap()
        .unwrap();
    assert_eq!(
        out.header("x-forwarded-for"),
        Some(&b"192.0.2.9"[..]),
        "a fresh list"
    );
    assert_eq!(out.header_all("forwarded").count(), 1);
    let fwd = String::from_utf8_lossy(out.header("forwarded").unwrap()).into_owned();
    assert!(
        !fwd.contains("203.0.113.5"),
        "the claimed hop is gone: {fwd}"
    );
    assert!(fwd.contains("for=192.0.2.9"), "{fwd}");
}

#[test]
fn client_supplied_proto_and_host_are_replaced() {
    let out = forwarded(
        b"GET / HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: evil\r\n\r\n",
        "192.0.2.1",
    );
    assert_eq!(
        out.header_all("x-forwarded-proto").collect::<Vec<_>>(),
        vec![&b"https"[..]]
    );
    assert_eq!(
        out.header_all("x-forwarded-host").collect::<Vec<_>>(),
        vec![&b"shop.example"[..]]
    );
}

#[test]
fn forwarded_has_for_proto_host_with_ipv6_bracketed_and_quoted() {
    let out = forwarded(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "192.0.2.60");
    assert_eq!(
        out.header("forwarded"),
        Some(&b"for=192.0.2.60;proto=https;host=example.com"[..])
    );
    let out = forwarded(
        b"GET / HTTP/1.1\r\nHost: example.com:8443\r\n\r\n",
        "2001:db8::17",
    );
    assert_eq!(
        out.header("forwarded"),
        Some(&b"for=\"[2001:db8::17]\";proto=https;host=\"example.com:8443\""[..])
    );
    let out = forwarded(
        b"GET / HTTP/1.1\r\nHost: a\r\nForwarded: for=198.51.100.1\r\n\r\n",
        "192.0.2.60",
    );
    assert_eq!(
        out.header("forwarded"),
        Some(&b"for=198.51.100.1, for=192.0.2.60;proto=https;host=a"[..])
    );
}

#[test]
fn request_id_is_added_only_when_absent() {
    let out = forwarded(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "192.0.2.1");
    assert_eq!(
        out.header_all("x-request-id").collect::<Vec<_>>(),
        vec![&b"rid-1"[..]]
    );
    let out = forwarded(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: client-42\r\n\r\n",
        "192.0.2.1",
    );
    assert_eq!(
        out.header_all("x-request-id").collect::<Vec<_>>(),
        vec![&b"client-42"[..]]
    );
    assert_eq!(
        forward::request_id(&request(
            b"GET / HTTP/1.1\r\nHost: a\r\nx-request-id: z\r\n\r\n"
        )),
        Some(&b"z"[..])
    );
}

#[test]
fn unusable_client_request_ids_are_replaced() {
    let long = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: {}\r\n\r\n",
        "x".repeat(129)
    );
    for raw in [
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: has space\r\n\r\n".as_slice(),
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id:\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: caf\xc3\xa9\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Request-Id\r\nX-Request-Id: ok\r\n\r\n",
        long.as_bytes(),
    ] {
        assert_eq!(
            forward::request_id(&request(raw)),
            None,
            "{}",
            String::from_utf8_lossy(raw)
        );
        let out = forwarded(raw, "192.0.2.1");
        assert_eq!(
            out.header_all("x-request-id").collect::<Vec<_>>(),
            vec![&b"rid-1"[..]]
        );
    }
    // Of two, the first is the one kept, and only once.
    let out = forwarded(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: one\r\nX-Request-Id: two\r\n\r\n",
        "192.0.2.1",
    );
    assert_eq!(
        out.header_all("x-request-id").collect::<Vec<_>>(),
        vec![&b"one"[..]]
    );
    let exact = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: {}\r\n\r\n",
        "x".repeat(128)
    );
    assert_eq!(
        forward::request_id(&request(exact.as_bytes())).map(<[u8]>::len),
        Some(128)
    );
}

#[test]
fn host_appears_once() {
    let out = forwarded(
        b"GET http://b.example/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "192.0.2.1",
    );
    assert_eq!(
        out.header_all("host").collect::<Vec<_>>(),
        vec![&b"b.example"[..]]
    );
    assert_eq!(out.header("x-forwarded-host"), Some(&b"b.example"[..]));
}

fn response(raw: &[u8]) -> ResponseHead {
    ResponseParser::new(Limits::default())
        .parse(&mut BytesMut::from(raw))
        .unwrap()
        .unwrap()
}

fn rewritten_response(raw: &[u8], framing: BodyFraming, persistence: Persistence) -> ResponseHead {
    let mut out = BytesMut::new();
    forward::write_response(&response(raw), framing, persistence, &mut out);
    response(&out)
}

#[test]
fn response_hop_by_hop_removed_and_framing_rebuilt() {
    let out = rewritten_response(
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\nKeep-Alive: timeout=5\r\nX-Internal: 1\r\nTransfer-Encoding: chunked\r\nServer: s\r\n\r\n",
        BodyFraming::Length(5),
        Persistence::Persistent,
    );
    assert_eq!(out.status(), 200);
    assert_eq!(out.reason(), b"OK");
    assert_eq!(out.header("x-internal"), None);
    assert_eq!(out.header("keep-alive"), None);
    assert_eq!(out.header("connection"), None);
    assert_eq!(out.header("transfer-encoding"), None);
    assert_eq!(out.header("content-length"), Some(&b"5"[..]));
    assert_eq!(out.header("server"), Some(&b"s"[..]));
}

#[test]
fn response_close_adds_connection_close() {
    let out = rewritten_response(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        BodyFraming::Chunked,
        Persistence::Close,
    );
    assert_eq!(out.header("connection"), Some(&b"close"[..]));
    assert_eq!(out.header("transfer-encoding"), Some(&b"chunked"[..]));
    assert!(!out.keep_alive());
}

#[test]
fn response_to_http10_keep_alive_client_says_keep_alive() {
    let raw = b"HTTP/1.1 200 OK\r\nConnection: close, X-Internal\r\nX-Internal: 1\r\nContent-Length: 2\r\n\r\n";
    let persistence = Persistence::for_peer(Version::Http10, true);
    assert_eq!(persistence, Persistence::KeepAlive);
    assert!(!persistence.closes());
    let mut out = BytesMut::new();
    forward::write_response(
        &response(raw),
        BodyFraming::Length(2),
        persistence,
        &mut out,
    );
    // Exactly one Connection field: the backend's own is dropped, ours says keep-alive.
    let text = String::from_utf8(out.to_vec()).unwrap();
    assert_eq!(text.matches("Connection:").count(), 1, "{text}");
    let out = response(&out);
    assert_eq!(out.header("connection"), Some(&b"keep-alive"[..]));
    assert_eq!(out.header("x-internal"), None);
    assert_eq!(out.header("content-length"), Some(&b"2"[..]));
}

#[test]
fn persistence_follows_client_version_and_keep() {
    assert_eq!(
        Persistence::for_peer(Version::Http11, true),
        Persistence::Persistent
    );
    assert_eq!(
        Persistence::for_peer(Version::Http10, true),
        Persistence::KeepAlive
    );
    assert_eq!(
        Persistence::for_peer(Version::Http10, false),
        Persistence::Close
    );
    assert_eq!(
        Persistence::for_peer(Version::Http11, false),
        Persistence::Close
    );
    assert!(Persistence::Close.closes());
    assert!(!Persistence::Persistent.closes());
    let out = rewritten_response(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        BodyFraming::Length(0),
        Persistence::Persistent,
    );
    assert_eq!(out.header("connection"), None);
    assert!(out.keep_alive());
}

#[test]
fn head_response_keeps_content_length_but_204_drops_it() {
    let out = rewritten_response(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
        BodyFraming::Empty,
        Persistence::Persistent,
    );
    assert_eq!(out.header("content-length"), Some(&b"1234"[..]));
    let out = rewritten_response(
        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
        BodyFraming::Empty,
        Persistence::Persistent,
    );
    assert_eq!(out.header("content-length"), None);
}

#[test]
fn switching_protocols_keeps_upgrade() {
    let out = rewritten_response(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: x\r\n\r\n",
        BodyFraming::Upgrade,
        Persistence::Persistent,
    );
    assert_eq!(out.header("upgrade"), Some(&b"websocket"[..]));
    assert_eq!(out.header("connection"), Some(&b"upgrade"[..]));
    assert_eq!(out.framing(b"GET"), BodyFraming::Upgrade);
}

#[test]
fn error_responses_are_short_plain_text_with_request_id() {
    let mut out = BytesMut::new();
    write_error_response(503, "rid-9", "no backend for this route", Some(2), &mut out);
    let mut buf = out.clone();
    let head = ResponseParser::new(Limits::default())
        .parse(&mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(head.status(), 503);
    assert_eq!(head.reason(), b"Service Unavailable");
    assert_eq!(head.header("x-request-id"), Some(&b"rid-9"[..]));
    assert_eq!(head.header("retry-after"), Some(&b"2"[..]));
    assert_eq!(
        head.header("content-type"),
        Some(&b"text/plain; charset=utf-8"[..])
    );
    assert_eq!(head.header("connection"), None);
    assert_eq!(&buf[..], b"no backend for this route\n");
    assert_eq!(head.framing(b"GET"), BodyFraming::Length(buf.len() as u64));
}

#[test]
fn error_responses_close_after_framing_errors_and_cannot_be_injected() {
    let mut out = BytesMut::new();
    write_error_response(
        400,
        "a\r\nSet-Cookie: x=1",
        "bad\r\nrequest",
        None,
        &mut out,
    );
    let mut buf = out.clone();
    let head = ResponseParser::new(Limits::default())
        .parse(&mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(head.header("connection"), Some(&b"close"[..]));
    assert_eq!(head.header("set-cookie"), None);
    assert_eq!(
        head.header("x-request-id"),
        Some(&b"a__Set-Cookie: x=1"[..])
    );
    assert_eq!(&buf[..], b"bad__request\n");
    for status in [400, 413, 414, 431, 501, 505] {
        assert!(closes_connection(status), "{status}");
    }
    for status in [404, 502, 503, 504] {
        assert!(!closes_connection(status), "{status}");
    }
}

#[test]
fn error_response_can_close_after_any_status() {
    let response = ErrorResponse {
        status: 502,
        request_id: "r",
        message: "backend reset",
        retry_after: None,
        persistence: Persistence::Close,
    };
    assert!(response.closes());
    let mut out = BytesMut::new();
    response.write(&mut out);
    let head = ResponseParser::new(Limits::default())
        .parse(&mut out)
        .unwrap()
        .unwrap();
    assert_eq!(head.status(), 502);
    assert_eq!(head.header("connection"), Some(&b"close"[..]));
    assert_eq!(&out[..], b"backend reset\n");
    assert!(ErrorResponse {
        persistence: Persistence::Persistent,
        status: 431,
        ..response
    }
    .closes());
    assert!(!ErrorResponse {
        persistence: Persistence::Persistent,
        ..response
    }
    .closes());
}

#[test]
fn error_response_tells_an_http10_keep_alive_client_its_connection_stays() {
    let response = ErrorResponse {
        status: 404,
        request_id: "r",
        message: "no route",
        retry_after: None,
        persistence: Persistence::KeepAlive,
    };
    assert!(!response.closes());
    let mut out = BytesMut::new();
    response.write(&mut out);
    let head = ResponseParser::new(Limits::default())
        .parse(&mut out)
        .unwrap()
        .unwrap();
    assert_eq!(head.header("connection"), Some(&b"keep-alive"[..]));
    assert_eq!(&out[..], b"no route\n");
    // A status that must close still closes, and says so once.
    let mut out = BytesMut::new();
    ErrorResponse {
        status: 400,
        ..response
    }
    .write(&mut out);
    let text = String::from_utf8(out.to_vec()).unwrap();
    assert_eq!(text.matches("Connection:").count(), 1, "{text}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
}

#[test]
fn end_to_end_fields_are_copied_byte_for_byte_in_order() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Tight:v\r\nX-Wide: \t spaced  value \t \r\nX-Empty:\r\nX-Empty-Spaces:   \r\nX-Obs: caf\xc3\xa9\r\n\r\n";
    let head = request(raw);
    let mut out = BytesMut::new();
    forward::write_request(&head, &info("192.0.2.1"), head.framing(), &mut out);
    let text = out.to_vec();
    let find = |needle: &[u8]| text.windows(needle.len()).position(|w| w == needle);
    let tight = find(b"\r\nX-Tight:v\r\n").unwrap();
    let wide = find(b"\r\nX-Wide: \t spaced  value\r\n").unwrap();
    let obs = find(b"\r\nX-Obs: caf\xc3\xa9\r\n").unwrap();
    assert!(tight < wide && wide < obs, "order kept");
    let back = request(&out);
    assert_eq!(back.header("x-wide"), Some(&b"spaced  value"[..]));
    assert_eq!(back.header("x-empty"), Some(&b""[..]));
    assert_eq!(back.header("x-empty-spaces"), Some(&b""[..]));
    let names: Vec<_> = back.headers().map(|(n, _)| n.to_vec()).collect();
    let pos = |n: &[u8]| names.iter().position(|x| x == n).unwrap();
    assert!(pos(b"X-Tight") < pos(b"X-Empty") && pos(b"X-Empty") < pos(b"X-Obs"));
}

#[test]
fn a_head_at_every_limit_still_parses_after_forwarding_under_forwarded_limits() {
    let limits = Limits::default();
    let host = "h".repeat(limits.max_head_bytes / 4);
    let mut raw = format!("GET / HTTP/1.1\r\nHost: {host}\r\n").into_bytes();
    for i in 0..limits.max_headers - 3 {
        raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"X-Forwarded-For: 10.0.0.1\r\n");
    let pad = limits.max_head_bytes - raw.len() - 2 - "X-Pad: \r\n".len();
    raw.extend_from_slice(format!("X-Pad: {}\r\n\r\n", "p".repeat(pad)).as_bytes());
    // One more field would be too many; the head is exactly at the byte limit.
    assert_eq!(raw.len(), limits.max_head_bytes);
    let head = RequestParser::new(limits)
        .parse(&mut BytesMut::from(&raw[..]))
        .unwrap()
        .unwrap();
    assert_eq!(head.headers().count(), limits.max_headers);

    let ipv6 = ForwardInfo {
        client_addr: "2001:db8::1234:5678:9abc".parse().unwrap(),
        proto: "https",
        request_id: &"r".repeat(128),
        trusted_peer: true,
    };
    let mut out = BytesMut::new();
    forward::write_request(&head, &ipv6, BodyFraming::Chunked, &mut out);
    assert!(
        RequestParser::new(limits).parse(&mut out.clone()).is_err(),
        "the plain limits are too tight"
    );
    let again = RequestParser::new(limits.forwarded())
        .parse(&mut out)
        .unwrap()
        .unwrap();
    assert_eq!(again.header("x-pad").map(<[u8]>::len), Some(pad));
}

#[test]
fn expect_is_dropped_because_the_proxy_answers_it() {
    let out = forwarded(
        b"PUT /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\nX-Kept: 1\r\n\r\n",
        "192.0.2.1",
    );
    assert_eq!(out.header("expect"), None);
    assert!(!out.expects_continue());
    assert_eq!(out.header("x-kept"), Some(&b"1"[..]));
    assert_eq!(out.header("content-length"), Some(&b"5"[..]));
}

#[test]
fn absolute_form_without_a_path_keeps_its_query() {
    for (raw, line) in [
        (
            &b"GET http://h?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"[..],
            &b"GET /?x=1 HTTP/1.1\r\n"[..],
        ),
        (
            b"GET http://h:8080?a=b&c HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /?a=b&c HTTP/1.1\r\n",
        ),
        (
            b"GET http://h HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\n",
        ),
        (
            b"GET http://h/?q HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /?q HTTP/1.1\r\n",
        ),
        (
            b"GET /p?q HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /p?q HTTP/1.1\r\n",
        ),
    ] {
        let head = request(raw);
        let mut out = BytesMut::new();
        forward::write_request(&head, &info("192.0.2.1"), head.framing(), &mut out);
        assert!(
            out.starts_with(line),
            "{:?} became {out:?}",
            String::from_utf8_lossy(raw)
        );
    }
}
