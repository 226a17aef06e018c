//! Property tests: parsing a head that came whole in its own `Bytes` (`parse_bytes`, the tunnel's
//! zero-copy path) gives exactly what parsing the same bytes out of a read buffer (`parse`)
//! gives: the same head, the same "incomplete", or the same error.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use ringway_core::http::{Limits, RequestParser, ResponseParser};

fn limits() -> Limits {
    Limits {
        max_head_bytes: 256,
        max_headers: 8,
        max_target_len: 64,
        max_body_bytes: Some(1 << 20),
    }
}

/// Head-like bytes: optional empty lines, a start line, fields (some framing ones), an end
/// that may be missing, and bytes after it.
fn head_like(start: &'static str) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec!["", "\r\n", "\r\n\r\n"]),
        prop::string::string_regex(start).unwrap(),
        prop::collection::vec(
            prop::string::string_regex(
                "(Host: [a-z.]{0,12}|Content-Length: [0-9]{1,3}|Transfer-Encoding: (chunked|gzip)|Connection: (close|keep-alive)|X-[a-z]{1,8}: [ -~]{0,20}|[ -~]{0,30})",
            )
            .unwrap(),
            0..10,
        ),
        prop::sample::select(vec!["\r\n", "", "\n"]),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(lead, line, fields, end, tail)| {
            let mut v = lead.as_bytes().to_vec();
            v.extend_from_slice(line.as_bytes());
            v.extend_from_slice(b"\r\n");
            for f in fields {
                v.extend_from_slice(f.as_bytes());
                v.extend_from_slice(b"\r\n");
            }
            v.extend_from_slice(end.as_bytes());
            v.extend_from_slice(&tail);
            v
        })
}

proptest! {
    #[test]
    fn request_parse_bytes_agrees_with_parse(
        data in prop_oneof![
            head_like("(GET|POST|HEAD|G T) (/[a-z?=/]{0,80}|http://[a-z]{1,8}/[a-z]{0,4}|\\*) HTTP/1\\.[019]"),
            prop::collection::vec(any::<u8>(), 0..300),
        ]
    ) {
        let a = RequestParser::new(limits()).parse(&mut BytesMut::from(&data[..]));
        let b = RequestParser::new(limits()).parse_bytes(&Bytes::from(data));
        match (a, b) {
            (Ok(Some(x)), Ok(Some(y))) => {
                prop_assert_eq!(x.as_bytes(), y.as_bytes());
                prop_assert_eq!(x.method(), y.method());
                prop_assert_eq!(x.target(), y.target());
                prop_assert_eq!(x.host(), y.host());
                prop_assert_eq!(x.framing(), y.framing());
                prop_assert_eq!(x.keep_alive(), y.keep_alive());
                prop_assert!(x.headers().eq(y.headers()));
            }
            (Ok(None), Ok(None)) => {}
            (Err(x), Err(y)) => prop_assert_eq!(x, y),
            (x, y) => prop_assert!(false, "parse and parse_bytes disagree: {:?} vs {:?}", x, y),
        }
    }

    #[test]
    fn response_parse_bytes_agrees_with_parse(
        data in prop_oneof![
            head_like("HTTP/1\\.[019] [0-9]{2,4}( [A-Za-z ]{0,12})?"),
            prop::collection::vec(any::<u8>(), 0..300),
        ]
    ) {
        let a = ResponseParser::new(limits()).parse(&mut BytesMut::from(&data[..]));
        let b = ResponseParser::new(limits()).parse_bytes(&Bytes::from(data));
        match (a, b) {
            (Ok(Some(x)), Ok(Some(y))) => {
                prop_assert_eq!(x.as_bytes(), y.as_bytes());
                prop_assert_eq!(x.status(), y.status());
                prop_assert_eq!(x.reason(), y.reason());
                prop_assert_eq!(x.content_length(), y.content_length());
                prop_assert!(x.headers().eq(y.headers()));
            }
            (Ok(None), Ok(None)) => {}
            (Err(x), Err(y)) => prop_assert_eq!(x, y),
            (x, y) => prop_assert!(false, "parse and parse_bytes disagree: {:?} vs {:?}", x, y),
        }
    }
}
