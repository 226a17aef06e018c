//! Corrupted bytes between the two ends: protocol errors with a code, never a panic.
#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use proptest::prelude::*;
use ringway_core::tunnel::pair::Direction;
use ringway_core::tunnel::{Config, Event, ProtocolError, ResetCode, StreamId};
use support::{get, open_pair};

#[test]
fn an_unknown_frame_type_kills_the_connection_with_a_protocol_goaway() {
    let mut pair = open_pair(&Config::default());
    let id = pair.balancer.open_stream(get("/"), true).unwrap();
    pair.drive();
    pair.set_hook(|direction, bytes| {
        if direction == Direction::ToBalancer && bytes.len() > 3 {
            bytes[3] = 0x7F; // the type byte of the first frame
        }
    });
    pair.agent
        .send_response_head(id, Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n"), true)
        .unwrap();
    pair.drive();
    assert_eq!(
        pair.balancer_error,
        Some(ProtocolError::UnknownFrameType(0x7F))
    );
    assert!(pair.balancer.is_closed());
    // The GOAWAY with the code made it to the agent (the hook only alters the other way).
    let events = pair.take_agent_events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::GoAway {
                code: ResetCode::Protocol,
                ..
            }
        )),
        "{events:?}"
    );
}

#[test]
fn an_oversize_length_kills_the_connection_with_frame_size() {
    let mut pair = open_pair(&Config::default());
    pair.balancer.open_stream(get("/"), true).unwrap();
    pair.set_hook(|direction, bytes| {
        if direction == Direction::ToAgent {
            bytes[0] = 0xFF;
        }
    });
    pair.drive();
    let err = pair.agent_error.clone().unwrap();
    assert!(matches!(err, ProtocolError::FrameTooLarge { .. }), "{err}");
    let events = pair.take_balancer_events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::GoAway {
            code: ResetCode::FrameSize,
            ..
        }
    )));
}

#[test]
fn a_stream_id_rewritten_to_an_even_one_is_a_protocol_error() {
    let mut pair = open_pair(&Config::default());
    pair.balancer.open_stream(get("/"), true).unwrap();
    pair.set_hook(|direction, bytes| {
        if direction == Direction::ToAgent {
            bytes[8] = 2;
        }
    });
    pair.drive();
    let err = pair.agent_error.clone().unwrap();
    assert_eq!(
        err,
        ProtocolError::StreamIdNotIncreasing {
            id: StreamId(2),
            last: StreamId(0)
        }
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any single corrupted byte ends in a protocol error on one side or is harmless; neither
    /// side panics and no error goes without a GOAWAY.
    #[test]
    fn any_corrupted_byte_is_an_error_or_harmless(pos in 0usize..4096, value in any::<u8>(), to_agent in any::<bool>()) {
        let mut pair = open_pair(&Config::default());
        let mut seen = 0usize;
        let target = if to_agent { Direction::ToAgent } else { Direction::ToBalancer };
        pair.set_hook(move |direction, bytes| {
            if direction == target {
                if let Some(i) = pos.checked_sub(seen).filter(|&i| i < bytes.len()) {
                    bytes[i] = value;
                }
                seen += bytes.len();
            }
        });
        let ids: Vec<_> = (0..8).map(|i| pair.balancer.open_stream(get(&format!("/{i}")), false).unwrap()).collect();
        for &id in &ids {
            pair.balancer.send_data(id, &mut Bytes::from(vec![1u8; 300]), true).unwrap();
        }
        pair.drive();
        for id in ids {
            if pair.agent.send_response_head(id, Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n"), false).is_ok() {
                let _ = pair.agent.send_data(id, &mut Bytes::from(vec![2u8; 200]), true);
            }
        }
        pair.drive();
        if pair.balancer_error.is_some() {
            prop_assert!(pair.balancer.is_closed());
        }
        if pair.agent_error.is_some() {
            prop_assert!(pair.agent.is_closed());
        }
    }
}
