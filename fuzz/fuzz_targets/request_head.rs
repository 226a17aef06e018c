//! Fuzz the request head parser: arbitrary bytes, fed whole and then in two pieces, must never
//! panic, and both ways must agree on the parsed head or the error; so must parsing the bytes
//! whole from their own `Bytes` (`parse_bytes`, the tunnel's zero-copy path).
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use ringway_core::http::{Limits, RequestParser};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_head_bytes: 4096,
        max_headers: 32,
        max_target_len: 1024,
        max_body_bytes: Some(1 << 20),
    };
    let mut whole = BytesMut::from(data);
    let a = RequestParser::new(limits).parse(&mut whole);
    let c = RequestParser::new(limits).parse_bytes(&Bytes::copy_from_slice(data));
    match (&a, &c) {
        (Ok(Some(x)), Ok(Some(y))) => assert_eq!(x.as_bytes(), y.as_bytes()),
        (Ok(None), Ok(None)) => {}
        (Err(x), Err(y)) => assert_eq!(x, y),
        (x, y) => panic!("parse and parse_bytes disagree: {x:?} vs {y:?}"),
    }

    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let mut parser = RequestParser::new(limits);
    let mut buf = BytesMut::from(&data[..cut]);
    let mut b = parser.parse(&mut buf);
    if matches!(b, Ok(None)) {
        buf.extend_from_slice(&data[cut..]);
        b = parser.parse(&mut buf);
    }
    match (a, b) {
        (Ok(Some(x)), Ok(Some(y))) => {
            assert_eq!(x.as_bytes(), y.as_bytes());
            let _ = (
                x.path(),
                x.host(),
                x.framing(),
                x.keep_alive(),
                x.headers().count(),
            );
        }
        (Ok(None), Ok(None)) => {}
        (Err(x), Err(y)) => assert_eq!(x, y),
        (x, y) => panic!("whole and split disagree: {x:?} vs {y:?}"),
    }
});
