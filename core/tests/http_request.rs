//! Request-head rules of `ringway_core::http`, one test per rule: zero-copy, incremental
//! parsing, limits, framing, Host, keep-alive, pipelining and the accessors.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use ringway_core::http::{
    BodyDecoder, BodyEvent, BodyFraming, HttpError, Limits, RequestHead, RequestParser, Version,
};

fn parse(raw: &[u8]) -> Result<Option<RequestHead>, HttpError> {
    RequestParser::new(Limits::default()).parse(&mut BytesMut::from(raw))
}

fn head(raw: &[u8]) -> RequestHead {
    parse(raw).unwrap().unwrap()
}

fn err(raw: &[u8]) -> HttpError {
    parse(raw).unwrap_err()
}

#[test]
fn small_get_parses_with_every_accessor() {
    let h = head(b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
    assert_eq!(h.method(), b"GET");
    assert_eq!(h.target(), b"/a/b?x=1");
    assert_eq!(h.path(), b"/a/b");
    assert_eq!(h.version(), Version::Http11);
    assert_eq!(h.host(), Some(&b"example.com"[..]));
    assert_eq!(h.header("ACCEPT"), Some(&b"*/*"[..]));
    assert_eq!(h.header("missing"), None);
    let all: Vec<_> = h.headers().collect();
    assert_eq!(
        all,
        vec![
            (&b"Host"[..], &b"example.com"[..]),
            (&b"Accept"[..], &b"*/*"[..])
        ]
    );
    assert_eq!(h.framing(), BodyFraming::Empty);
    assert!(h.keep_alive());
    assert!(h.is_idempotent());
    assert!(!h.expects_continue());
    assert!(!h.wants_upgrade());
}

#[test]
fn head_is_split_off_without_copying_and_fields_point_into_it() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: value\r\n\r\nREST";
    let mut buf = BytesMut::with_capacity(256);
    buf.extend_from_slice(raw);
    let start = buf.as_ptr() as usize;
    let h = RequestParser::new(Limits::default())
        .parse(&mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(
        h.as_bytes().as_ptr() as usize,
        start,
        "head bytes are the buffer's own memory"
    );
    assert_eq!(&buf[..], b"REST");
    let bytes = h.as_bytes();
    let range = bytes.as_ptr() as usize..bytes.as_ptr() as usize + bytes.len();
    for (name, value) in h.headers() {
        assert!(range.contains(&(name.as_ptr() as usize)));
        assert!(range.contains(&(value.as_ptr() as usize)));
    }
    assert!(range.contains(&(h.target().as_ptr() as usize)));
}

#[test]
fn partial_head_returns_none_and_keeps_the_bytes() {
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\n"[..]);
    assert!(parser.parse(&mut buf).unwrap().is_none());
    assert_eq!(buf.len(), 25);
    buf.extend_from_slice(b"\r\n");
    let h = parser.parse(&mut buf).unwrap().unwrap();
    assert_eq!(h.host(), Some(&b"a"[..]));
    assert!(buf.is_empty());
}

#[test]
fn incremental_parse_does_not_rescan_bytes_already_checked() {
    // After a partial parse, flip an already-scanned byte to NUL. A parser that rescans from
    // the start reports the NUL; one that resumes where it stopped only sees the new bytes.
    // (httparse then still refuses the head as a whole, with a different error.)
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b"[..]);
    assert!(parser.parse(&mut buf).unwrap().is_none());
    let at = buf.len() - 1;
    buf[at] = 0;
    buf.extend_from_slice(b"\r\n\r\n");
    assert_eq!(
        parser.parse(&mut buf).unwrap_err(),
        HttpError::InvalidHeaderValue
    );
    // The same bytes in one piece are caught by the scanner itself.
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \0\r\n\r\n"),
        HttpError::ControlChar { byte: 0 }
    );
}

#[test]
fn terminator_split_across_reads_is_found() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    for cut in 1..raw.len() {
        let mut parser = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(&raw[..cut]);
        assert!(parser.parse(&mut buf).unwrap().is_none(), "cut {cut}");
        buf.extend_from_slice(&raw[cut..]);
        assert!(parser.parse(&mut buf).unwrap().is_some(), "cut {cut}");
    }
}

#[test]
fn leading_empty_lines_are_ignored() {
    let h = head(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.method(), b"GET");
}

#[test]
fn pipelined_requests_parse_in_order_with_their_bodies() {
    let mut buf = BytesMut::from(
        &b"POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\
GET /two HTTP/1.1\r\nHost: a\r\n\r\n\
POST /three HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n\
GET /four HTTP/1.1\r\nHost: a\r\n\r\n"[..],
    );
    let mut parser = RequestParser::new(Limits::default());
    let mut seen = Vec::new();
    while let Some(h) = parser.parse(&mut buf).unwrap() {
        let mut body = Vec::new();
        let mut decoder = BodyDecoder::new(h.framing(), None);
        loop {
            match decoder.decode(&mut buf).unwrap() {
                BodyEvent::Data(d) => body.extend_from_slice(&d),
                BodyEvent::End => break,
                BodyEvent::NeedMore => panic!("whole stream is in the buffer"),
            }
        }
        seen.push((String::from_utf8(h.path().to_vec()).unwrap(), body));
    }
    assert!(buf.is_empty());
    let expected = vec![
        ("/one".to_string(), b"abc".to_vec()),
        ("/two".to_string(), vec![]),
        ("/three".to_string(), b"xy".to_vec()),
        ("/four".to_string(), vec![]),
    ];
    assert_eq!(seen, expected);
}

#[test]
fn content_length_sets_length_framing_and_repeats_that_agree_are_accepted() {
    let h = head(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n");
    assert_eq!(h.framing(), BodyFraming::Length(42));
    let h = head(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n");
    assert_eq!(h.framing(), BodyFraming::Length(7));
    let h = head(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\n\r\n");
    assert_eq!(h.framing(), BodyFraming::Length(7));
}

#[test]
fn differing_content_lengths_are_refused() {
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n"),
        HttpError::ConflictingContentLength
    );
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 8\r\n\r\n"),
        HttpError::ConflictingContentLength
    );
}

#[test]
fn non_digit_content_length_is_refused() {
    for value in [
        "+5",
        "-1",
        "0x10",
        "5 5",
        "",
        "1e3",
        "99999999999999999999999",
    ] {
        let raw = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {value}\r\n\r\n");
        assert_eq!(
            err(raw.as_bytes()),
            HttpError::InvalidContentLength,
            "{value:?}"
        );
    }
}

#[test]
fn chunked_transfer_encoding_sets_chunked_framing() {
    let h = head(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD\r\n\r\n");
    assert_eq!(h.framing(), BodyFraming::Chunked);
}

#[test]
fn content_length_with_transfer_encoding_is_refused() {
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
        HttpError::ContentLengthWithTransferEncoding
    );
}

#[test]
fn transfer_encoding_not_ending_in_chunked_is_refused() {
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
        HttpError::TransferEncodingNotChunked
    );
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
        HttpError::TransferEncodingNotChunked
    );
    // A second header line counts as a continuation of the list.
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"),
        HttpError::TransferEncodingNotChunked
    );
}

#[test]
fn codings_before_chunked_are_unsupported() {
    let e = err(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    assert_eq!(e, HttpError::UnsupportedTransferCoding);
    assert_eq!(e.status(), 501);
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
        HttpError::UnsupportedTransferCoding
    );
}

#[test]
fn transfer_encoding_in_http10_is_refused() {
    assert_eq!(
        err(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        HttpError::TransferEncodingInHttp10
    );
}

#[test]
fn http11_requires_exactly_one_host() {
    assert_eq!(err(b"GET / HTTP/1.1\r\n\r\n"), HttpError::MissingHost);
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"),
        HttpError::DuplicateHost
    );
    assert_eq!(
        err(b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"),
        HttpError::DuplicateHost
    );
    // HTTP/1.0 may omit it.
    assert_eq!(head(b"GET / HTTP/1.0\r\n\r\n").host(), None);
}

#[test]
fn obs_fold_is_refused() {
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"),
        HttpError::ObsFold
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n"),
        HttpError::ObsFold
    );
}

#[test]
fn bare_lf_and_bare_cr_are_refused() {
    assert_eq!(err(b"GET / HTTP/1.1\nHost: a\r\n\r\n"), HttpError::BareLf);
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost: a\n\n"), HttpError::BareLf);
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"),
        HttpError::BareCr
    );
}

#[test]
fn control_characters_and_nul_are_refused() {
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n"),
        HttpError::ControlChar { byte: 0 }
    );
    assert_eq!(
        err(b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n"),
        HttpError::ControlChar { byte: 1 }
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n"),
        HttpError::ControlChar { byte: 0x7f }
    );
    // HTAB is allowed inside a field value.
    assert_eq!(
        head(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\tc\r\n\r\n").header("x-a"),
        Some(&b"b\tc"[..])
    );
}

#[test]
fn limits_map_to_their_statuses() {
    let limits = Limits {
        max_head_bytes: 64,
        max_headers: 2,
        max_target_len: 10,
        max_body_bytes: Some(100),
    };
    let run = |raw: &[u8]| RequestParser::new(limits).parse(&mut BytesMut::from(raw));

    let e = run(b"GET / HTTP/1.1\r\nHost: a\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n").unwrap_err();
    assert_eq!(
        (e, e.status()),
        (HttpError::HeadTooLarge { limit: 64 }, 431)
    );
    // A head that has not ended yet but already passed the limit.
    let e =
        run(&[b"GET / HTTP/1.1\r\nHost: a\r\nX: ".as_slice(), &[b'a'; 80]].concat()).unwrap_err();
    assert_eq!(e, HttpError::HeadTooLarge { limit: 64 });

    let e = run(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n").unwrap_err();
    assert_eq!(
        (e, e.status()),
        (HttpError::TooManyHeaders { limit: 2 }, 431)
    );

    let e = run(b"GET /0123456789ab HTTP/1.1\r\nHost: a\r\n\r\n").unwrap_err();
    assert_eq!((e, e.status()), (HttpError::UriTooLong { limit: 10 }, 414));
    // Detected while the request line is still arriving.
    let e = run(b"GET /0123456789abcdef").unwrap_err();
    assert_eq!(e, HttpError::UriTooLong { limit: 10 });

    // A complete request line whose target pushed the head over its limit: the target is
    // what is too long, so 414 rather than 431.
    let long_line = [
        b"GET /".as_slice(),
        &[b'a'; 70],
        b" HTTP/1.1\r\nHost: a\r\n",
    ]
    .concat();
    assert_eq!(
        run(&long_line).unwrap_err(),
        HttpError::UriTooLong { limit: 10 }
    );

    let e = run(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n").unwrap_err();
    assert_eq!(
        (e, e.status()),
        (HttpError::BodyTooLarge { limit: 100 }, 413)
    );
    assert!(
        run(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
            .unwrap()
            .is_some()
    );
}

#[test]
fn an_endless_request_line_is_refused_early_without_rescanning() {
    let limits = Limits {
        max_target_len: 100,
        ..Limits::default()
    };
    // Target complete, then no line end: refused once the line cannot be valid any more.
    let mut parser = RequestParser::new(limits);
    let mut buf = BytesMut::from(&b"GET /x "[..]);
    let mut result = parser.parse(&mut buf);
    let mut fed = buf.len();
    while matches!(result, Ok(None)) && fed < 10_000 {
        buf.extend_from_slice(b"a");
        fed += 1;
        result = parser.parse(&mut buf);
    }
    assert_eq!(result.unwrap_err(), HttpError::InvalidRequestLine);
    assert_eq!(fed, 100 + ringway_core::http::REQUEST_LINE_SLACK + 1);
    // A method and no space at all: the "target" is empty, the line still cannot be valid.
    let long = [b'G'; 200];
    assert_eq!(
        RequestParser::new(limits)
            .parse(&mut BytesMut::from(&long[..]))
            .unwrap_err(),
        HttpError::InvalidRequestLine
    );
}

#[test]
fn header_limit_above_the_stack_array_still_works() {
    let limits = Limits {
        max_headers: 300,
        max_head_bytes: 1 << 16,
        ..Limits::default()
    };
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..250 {
        raw.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    let h = RequestParser::new(limits)
        .parse(&mut BytesMut::from(&raw[..]))
        .unwrap()
        .unwrap();
    assert_eq!(h.headers().count(), 251);
    assert_eq!(h.header("x-249"), Some(&b"249"[..]));
}

#[test]
fn unsupported_versions_get_505() {
    let e = err(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n");
    assert_eq!((e, e.status()), (HttpError::UnsupportedVersion, 505));
}

#[test]
fn keep_alive_follows_version_and_connection_tokens() {
    assert!(head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").keep_alive());
    assert!(!head(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive());
    assert!(!head(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n").keep_alive());
    assert!(
        !head(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nConnection: Close\r\n\r\n")
            .keep_alive()
    );
    assert!(head(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n").keep_alive());
    assert!(!head(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
    assert!(head(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
    assert!(head(b"GET / HTTP/1.0\r\nConnection: x, keep-alive\r\n\r\n").keep_alive());
    assert!(!head(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive());
}

#[test]
fn expect_continue_needs_http11_and_a_body() {
    assert!(head(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-Continue\r\n\r\n"
    )
    .expects_continue());
    assert!(!head(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n").expects_continue());
    assert!(
        !head(b"POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            .expects_continue()
    );
}

#[test]
fn upgrade_needs_the_upgrade_header_and_the_connection_token() {
    assert!(head(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    .wants_upgrade());
    assert!(!head(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n").wants_upgrade());
    assert!(!head(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n").wants_upgrade());
}

#[test]
fn idempotent_methods() {
    for m in ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"] {
        assert!(
            head(format!("{m} / HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes()).is_idempotent(),
            "{m}"
        );
    }
    for m in ["POST", "PATCH", "CONNECT"] {
        assert!(
            !head(format!("{m} / HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes()).is_idempotent(),
            "{m}"
        );
    }
}

#[test]
fn absolute_form_target_gives_path_and_host() {
    let h = head(b"GET http://Example.com:8080/p/q?x HTTP/1.1\r\nHost: other\r\n\r\n");
    assert_eq!(h.path(), b"/p/q");
    assert_eq!(h.origin_form(), b"/p/q?x");
    assert_eq!(h.host(), Some(&b"Example.com:8080"[..]));
    let h = head(b"GET http://example.com?x HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(h.path(), b"/");
    assert_eq!(h.origin_form(), b"/");
}
