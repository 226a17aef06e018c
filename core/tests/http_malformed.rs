//! The table of malformed requests: each maps to exactly one error kind and one status, fed
//! both whole and byte by byte (the kind must not depend on how the bytes arrive).
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use ringway_core::http::{HttpError, Limits, RequestParser};

const TABLE: &[(&str, &[u8], HttpError, u16)] = &[
    ("CL and TE", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", HttpError::ContentLengthWithTransferEncoding, 400),
    ("TE and CL", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", HttpError::ContentLengthWithTransferEncoding, 400),
    ("differing CL", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", HttpError::ConflictingContentLength, 400),
    ("differing CL list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", HttpError::ConflictingContentLength, 400),
    ("signed CL", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", HttpError::InvalidContentLength, 400),
    ("hex CL", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", HttpError::InvalidContentLength, 400),
    ("empty CL", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", HttpError::InvalidContentLength, 400),
    ("overflowing CL", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", HttpError::InvalidContentLength, 400),
    ("TE gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", HttpError::TransferEncodingNotChunked, 400),
    ("TE chunked then identity", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", HttpError::TransferEncodingNotChunked, 400),
    ("TE empty", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", HttpError::TransferEncodingNotChunked, 400),
    ("TE xchunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", HttpError::TransferEncodingNotChunked, 400),
    ("TE gzip, chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HttpError::UnsupportedTransferCoding, 501),
    ("TE in 1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HttpError::TransferEncodingInHttp10, 400),
    ("obs-fold SP", b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", HttpError::ObsFold, 400),
    ("obs-fold HTAB", b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n", HttpError::ObsFold, 400),
    ("space before first header", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", HttpError::ObsFold, 400),
    ("bare LF after request line", b"GET / HTTP/1.1\nHost: a\r\n\r\n", HttpError::BareLf, 400),
    ("bare LF terminator", b"GET / HTTP/1.1\r\nHost: a\r\n\n", HttpError::BareLf, 400),
    ("bare CR", b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", HttpError::BareCr, 400),
    ("NUL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", HttpError::ControlChar { byte: 0 }, 400),
    ("NUL in name", b"GET / HTTP/1.1\r\nHost: a\r\nX\0: b\r\n\r\n", HttpError::ControlChar { byte: 0 }, 400),
    ("CTL in target", b"GET /\x1b HTTP/1.1\r\nHost: a\r\n\r\n", HttpError::ControlChar { byte: 0x1b }, 400),
    ("DEL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n", HttpError::ControlChar { byte: 0x7f }, 400),
    ("HTAB in request line", b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", HttpError::InvalidRequestLine, 400),
    ("missing Host", b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", HttpError::MissingHost, 400),
    ("repeated Host", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", HttpError::DuplicateHost, 400),
    ("Host with a space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", HttpError::InvalidHost, 400),
    ("Host with a path", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", HttpError::InvalidHost, 400),
    ("Host with userinfo", b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", HttpError::InvalidHost, 400),
    ("Host with a bad port", b"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", HttpError::InvalidHost, 400),
    ("Host with two ports", b"GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", HttpError::InvalidHost, 400),
    ("Host with an unclosed literal", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", HttpError::InvalidHost, 400),
    ("authority with a fragment", b"GET http://a#b/ HTTP/1.1\r\nHost: a\r\n\r\n", HttpError::InvalidHost, 400),
    ("space before colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", HttpError::InvalidHeaderName, 400),
    ("empty header name", b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", HttpError::InvalidHeaderName, 400),
    ("bad method", b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", HttpError::InvalidRequestLine, 400),
    ("no target", b"GET HTTP/1.1\r\nHost: a\r\n\r\n", HttpError::InvalidRequestLine, 400),
    ("double space", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", HttpError::InvalidRequestLine, 400),
    ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", HttpError::UnsupportedVersion, 505),
    ("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", HttpError::UnsupportedVersion, 505),
    ("too many headers", b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", HttpError::TooManyHeaders { limit: 3 }, 431),
    ("head too large", b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: 0123456789012345678901234567890123456789012345678901234567890123456789\r\n\r\n", HttpError::HeadTooLarge { limit: 96 }, 431),
    ("target too long", b"GET /0123456789012345678901234567890123 HTTP/1.1\r\nHost: a\r\n\r\n", HttpError::UriTooLong { limit: 32 }, 414),
    ("body too large", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1025\r\n\r\n", HttpError::BodyTooLarge { limit: 1024 }, 413),
];

const LIMITS: Limits = Limits {
    max_head_bytes: 96,
    max_headers: 3,
    max_target_len: 32,
    max_body_bytes: Some(1024),
};

#[test]
fn every_malformed_request_maps_to_its_kind_and_status() {
    for &(name, raw, kind, status) in TABLE {
        let got = RequestParser::new(LIMITS).parse(&mut BytesMut::from(raw));
        assert_eq!(got.as_ref().map(Option::is_some), Err(&kind), "{name}");
        assert_eq!(kind.status(), status, "{name}");
    }
}

#[test]
fn kinds_do_not_depend_on_how_the_bytes_arrive() {
    for &(name, raw, kind, _) in TABLE {
        let mut parser = RequestParser::new(LIMITS);
        let mut buf = BytesMut::new();
        let mut result = Ok(None);
        for &b in raw {
            buf.extend_from_slice(&[b]);
            result = parser.parse(&mut buf);
            if !matches!(result, Ok(None)) {
                break;
            }
        }
        assert_eq!(result.map(|h| h.is_some()), Err(kind), "{name}");
    }
}

#[test]
fn the_same_requests_without_the_defect_parse() {
    // Guards the table against entries that fail for a reason other than the one named.
    let fine: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: 1 2\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: Sub_1.example-2.com:443\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: caf%C3%A9.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        b"GET http://[::1]:80/x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n",
        b"GET /0123456789012345678901234567890 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1024\r\n\r\n",
    ];
    for raw in fine {
        assert!(
            RequestParser::new(LIMITS)
                .parse(&mut BytesMut::from(*raw))
                .unwrap()
                .is_some(),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
}
