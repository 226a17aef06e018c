//! Response-head rules: status line, framing per RFC 9112 §6.3 (HEAD/1xx/204/304 without body,
//! 101 upgrade, chunked, Content-Length, close-delimited), interim responses and keep-alive.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use ringway_core::http::{BodyFraming, HttpError, Limits, ResponseHead, ResponseParser, Version};

fn parse(raw: &[u8]) -> Result<Option<ResponseHead>, HttpError> {
    ResponseParser::new(Limits::default()).parse(&mut BytesMut::from(raw))
}

fn head(raw: &[u8]) -> ResponseHead {
    parse(raw).unwrap().unwrap()
}

#[test]
fn status_line_and_fields() {
    let h = head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nServer: x\r\n\r\n");
    assert_eq!(h.status(), 200);
    assert_eq!(h.reason(), b"OK");
    assert_eq!(h.version(), Version::Http11);
    assert_eq!(h.header("server"), Some(&b"x"[..]));
    assert_eq!(h.headers().count(), 2);
    assert_eq!(h.as_bytes().len(), 50);
    assert!(h.keep_alive());
    assert!(!h.is_interim());
}

#[test]
fn missing_reason_phrase_is_empty() {
    assert_eq!(head(b"HTTP/1.1 204 \r\n\r\n").reason(), b"");
}

#[test]
fn framing_follows_rfc9112_section_6_3() {
    let cl = head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n");
    assert_eq!(cl.framing(b"GET"), BodyFraming::Length(12));
    assert_eq!(
        cl.framing(b"HEAD"),
        BodyFraming::Empty,
        "HEAD responses have no body"
    );
    let chunked = head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(chunked.framing(b"GET"), BodyFraming::Chunked);
    let close = head(b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(close.framing(b"GET"), BodyFraming::UntilClose);
    for status in [204, 304] {
        let h = head(format!("HTTP/1.1 {status} X\r\nContent-Length: 5\r\n\r\n").as_bytes());
        assert_eq!(h.framing(b"GET"), BodyFraming::Empty, "{status}");
    }
    let switching = head(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    );
    assert_eq!(switching.framing(b"GET"), BodyFraming::Upgrade);
    assert!(!switching.is_interim());
}

#[test]
fn successful_connect_turns_into_a_tunnel() {
    let ok = head(b"HTTP/1.1 200 Connection Established\r\n\r\n");
    assert_eq!(ok.framing(b"CONNECT"), BodyFraming::Upgrade);
    let refused = head(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(refused.framing(b"CONNECT"), BodyFraming::Length(0));
}

#[test]
fn interim_responses_come_before_the_final_head() {
    let mut parser = ResponseParser::new(Limits::default());
    let mut buf = BytesMut::from(
        &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"[..],
    );
    let first = parser.parse(&mut buf).unwrap().unwrap();
    assert!(first.is_interim());
    assert_eq!(first.framing(b"POST"), BodyFraming::Empty);
    let second = parser.parse(&mut buf).unwrap().unwrap();
    assert!(second.is_interim());
    assert_eq!(second.status(), 103);
    let last = parser.parse(&mut buf).unwrap().unwrap();
    assert!(!last.is_interim());
    assert_eq!(last.framing(b"POST"), BodyFraming::Length(2));
    assert_eq!(&buf[..], b"ok");
}

#[test]
fn keep_alive_rules() {
    assert!(
        !head(b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n").keep_alive()
    );
    assert!(!head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive());
    assert!(
        head(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
            .keep_alive()
    );
}

#[test]
fn ambiguous_or_malformed_framing_is_refused() {
    let e = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap_err();
    assert_eq!(
        (e, e.response_status()),
        (HttpError::ContentLengthWithTransferEncoding, 502)
    );
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").unwrap_err(),
        HttpError::ConflictingContentLength
    );
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").unwrap_err(),
        HttpError::InvalidContentLength
    );
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").unwrap_err(),
        HttpError::UnsupportedTransferCoding
    );
    assert_eq!(
        parse(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap_err(),
        HttpError::TransferEncodingInHttp10
    );
}

#[test]
fn malformed_status_lines_and_bytes_are_refused() {
    assert_eq!(
        parse(b"HTTP/1.1 2000 OK\r\n\r\n").unwrap_err(),
        HttpError::InvalidStatusLine
    );
    assert_eq!(
        parse(b"HTTP/1.1 OK\r\n\r\n").unwrap_err(),
        HttpError::InvalidStatusLine
    );
    assert_eq!(
        parse(b"HTTP/3.0 200 OK\r\n\r\n").unwrap_err(),
        HttpError::UnsupportedVersion
    );
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\nX: y\r\n\r\n").unwrap_err(),
        HttpError::BareLf
    );
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n").unwrap_err(),
        HttpError::ObsFold
    );
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n").unwrap_err(),
        HttpError::ControlChar { byte: 0 }
    );
}

#[test]
fn head_limits_apply_to_responses() {
    let limits = Limits {
        max_head_bytes: 40,
        max_headers: 1,
        ..Limits::default()
    };
    let run = |raw: &[u8]| ResponseParser::new(limits).parse(&mut BytesMut::from(raw));
    assert_eq!(
        run(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n").unwrap_err(),
        HttpError::TooManyHeaders { limit: 1 }
    );
    assert_eq!(
        run(b"HTTP/1.1 200 OK\r\nA: 11111111111111111111111111111\r\n\r\n").unwrap_err(),
        HttpError::HeadTooLarge { limit: 40 }
    );
    assert_eq!(
        run(&[b'H'; 41]).unwrap_err(),
        HttpError::HeadTooLarge { limit: 40 }
    );
}

#[test]
fn bodies_are_reframed_for_the_client_version() {
    use BodyFraming::{Chunked, Empty, Length, UntilClose, Upgrade};
    for (from, v11, v10) in [
        (Empty, Empty, Empty),
        (Length(7), Length(7), Length(7)),
        (Chunked, Chunked, UntilClose),
        (UntilClose, Chunked, UntilClose),
        (Upgrade, Upgrade, Upgrade),
    ] {
        assert_eq!(from.reframe_for(Version::Http11), v11, "{from:?} for 1.1");
        assert_eq!(from.reframe_for(Version::Http10), v10, "{from:?} for 1.0");
    }
    assert!(UntilClose.ends_connection() && Upgrade.ends_connection());
    assert!(!Chunked.ends_connection() && !Length(0).ends_connection() && !Empty.ends_connection());
}
