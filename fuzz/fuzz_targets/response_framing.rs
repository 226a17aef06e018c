//! Fuzz response parsing and framing: parse a head, pick its framing for a request method and a
//! `Persistence` chosen by the first byte, decode the body, re-emit the head with
//! `forward::write_response`. Nothing may panic, and the rewritten head must parse again with the
//! same status and framing and say what `Persistence` asked for about the connection.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringway_core::http::forward::{self, Persistence};
use ringway_core::http::{BodyDecoder, BodyEvent, BodyFraming, Limits, ResponseParser};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let method: &[u8] = match selector % 4 {
        0 => b"GET",
        1 => b"HEAD",
        2 => b"POST",
        _ => b"CONNECT",
    };
    let persistence = match (selector >> 2) % 3 {
        0 => Persistence::Persistent,
        1 => Persistence::KeepAlive,
        _ => Persistence::Close,
    };
    let mut buf = BytesMut::from(rest);
    let mut parser = ResponseParser::new(Limits::default());
    while let Ok(Some(head)) = parser.parse(&mut buf) {
        let framing = head.framing(method);
        let mut out = BytesMut::new();
        forward::write_response(&head, framing, persistence, &mut out);
        let reparsed = ResponseParser::new(Limits {
            max_head_bytes: 1 << 20,
            max_headers: 1000,
            ..Limits::default()
        })
        .parse(&mut out)
        .expect("a rewritten head parses")
        .expect("a rewritten head is complete");
        assert_eq!(reparsed.status(), head.status());
        assert_eq!(reparsed.framing(method), framing);
        let upgrading = framing == BodyFraming::Upgrade && head.status() == 101;
        if !upgrading {
            assert_eq!(reparsed.keep_alive(), !persistence.closes());
        }
        if head.is_interim() {
            continue;
        }
        let mut decoder = BodyDecoder::new(framing, None);
        loop {
            match decoder.decode(&mut buf) {
                Ok(BodyEvent::Data(_)) => {}
                Ok(BodyEvent::End) => break,
                Ok(BodyEvent::NeedMore) => {
                    let _ = decoder.finish_on_eof();
                    return;
                }
                Err(_) => return,
            }
        }
    }
});
