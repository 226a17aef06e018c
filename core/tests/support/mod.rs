//! Helpers shared by the tunnel integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ringway_core::tunnel::pair::Pair;
use ringway_core::tunnel::{encode, Config, Connection, Event, Frame, ProtocolError, StreamId};

/// A pair whose handshake completed (2 workers, pinned to worker 1), events cleared.
pub fn open_pair(config: &Config) -> Pair {
    let mut pair = Pair::new(config);
    assert!(pair.handshake(2, 1), "handshake failed");
    pair.take_balancer_events();
    pair.take_agent_events();
    pair
}

/// A small config: windows at the protocol's initial sizes.
pub fn small_windows() -> Config {
    Config {
        stream_window: 16 * 1024,
        connection_window: 64 * 1024,
        ..Config::default()
    }
}

/// Encodes `frames` and feeds them to `conn` in one buffer.
pub fn inject(conn: &mut Connection, frames: &[Frame], now: Instant) -> Result<(), ProtocolError> {
    let mut buf = BytesMut::new();
    for frame in frames {
        encode(frame, &mut buf);
    }
    conn.handle_input(&mut buf, now)
}

/// Every frame `conn` has pending, decoded.
pub fn pending_frames(conn: &mut Connection) -> Vec<Frame> {
    let mut out = BytesMut::new();
    conn.poll_transmit(&mut out);
    let mut decoder = ringway_core::tunnel::FrameDecoder::new((1 << 24) - 1);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(&mut out).expect("own output decodes") {
        frames.push(frame);
    }
    frames
}

/// All DATA bytes and whether END_STREAM came, per stream, from a list of events.
pub fn body_of(events: &[Event], id: StreamId) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    let mut ended = false;
    for event in events {
        if let Event::Data { id: got, data, end } = event {
            if *got == id {
                body.extend_from_slice(data);
                ended |= *end;
            }
        }
    }
    (body, ended)
}

/// A GET request head.
pub fn get(path: &str) -> Bytes {
    Bytes::from(format!("GET {path} HTTP/1.1\r\nHost: example.com\r\n\r\n"))
}

/// A 200 response head with a Content-Length.
pub fn ok(len: usize) -> Bytes {
    Bytes::from(format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n"))
}

/// The ids of the `StreamOpened` events.
pub fn opened(events: &[Event]) -> Vec<StreamId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StreamOpened { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}
