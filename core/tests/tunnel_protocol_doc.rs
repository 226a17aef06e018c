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
