//! docs/PROTOCOL.md's example byte dump matches what the state machines put on the wire.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use ringway_core::tunnel::pair::{Direction, Pair};
use ringway_core::tunnel::{encode, Config, Frame, FrameDecoder, Hello, HEADER_LEN};

const DOC: &str = include_str!("../../docs/PROTOCOL.md");

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn example_dump_matches_the_wire() {
    let hello = Hello {
        version: 1,
        agent_id: "a1".into(),
        token: "t".into(),
        routes: vec!["example.com/api".into()],
        worker: None,
    };
    let config = Config::default();
    let mut pair = Pair::with_hello(&config, &config, hello);
    let wire: Rc<RefCell<Vec<(Direction, BytesMut)>>> = Rc::default();
    let log = Rc::clone(&wire);
    pair.set_hook(move |direction, bytes| log.borrow_mut().push((direction, bytes.clone())));
    assert!(pair.handshake(2, 1));
    let id = pair
        .balancer
        .open_stream(
            Bytes::from_static(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
            true,
        )
        .unwrap();
    pair.drive();
    pair.agent
        .send_response_head(
            id,
            Bytes::from_static(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            false,
        )
        .unwrap();
    pair.agent
        .send_data(id, &mut Bytes::from_static(b"hello"), true)
        .unwrap();
    pair.drive();

    let mut frames = 0;
    for (_, batch) in wire.borrow().iter() {
        let mut batch = batch.clone();
        let mut decoder = FrameDecoder::new(1 << 16);
        while let Some(frame) = decoder.decode(&mut batch).unwrap() {
            let mut bytes = BytesMut::new();
            encode(&frame, &mut bytes);
            let header = hex(&bytes[..HEADER_LEN]);
            assert!(
                DOC.contains(&format!("\n{header}\n")),
                "header of {frame:?} not in the doc: {header}"
            );
            match &frame {
                Frame::RequestHead { head, .. } | Frame::ResponseHead { head, .. } => {
                    let text = String::from_utf8(head.to_vec())
                        .unwrap()
                        .replace("\r\n", "\\r\\n");
                    assert!(DOC.contains(&format!("\"{text}\"")), "{text}");
                }
                _ => {
                    let payload = hex(&bytes[HEADER_LEN..]);
                    assert!(
                        DOC.contains(&format!("\n{payload}\n")),
                        "payload of {frame:?} not in the doc: {payload}"
                    );
                }
            }
            frames += 1;
        }
    }
    assert_eq!(frames, 8, "the doc shows eight frames");
}

/// `EnhanceYourCalm` → `ENHANCE_YOUR_CALM`.
fn screaming_snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[test]
fn code_table_matches_the_reset_codes() {
    use ringway_core::tunnel::ResetCode;
    let section = DOC
        .split("## 8. Error codes")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap();
    let mut documented = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| 0x")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let code = u32::from_str_radix(cells[1].trim_start_matches("0x"), 16).unwrap();
        let known = ResetCode::from_wire(code);
        assert!(
            !matches!(known, ResetCode::Other(_)),
            "{code:#x} is in the doc but not in ResetCode"
        );
        assert_eq!(screaming_snake(&format!("{known:?}")), cells[2], "{line}");
        documented.push(code);
    }
    for code in 0..0x100 {
        if !matches!(ResetCode::from_wire(code), ResetCode::Other(_)) {
            assert!(
                documented.contains(&code),
                "{code:#x} is missing from the doc's code table"
            );
        }
    }
}
