//! Flow control: per-stream and per-connection credit, batching, stalls, overruns.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;

use bytes::Bytes;
use ringway_core::tunnel::pair::Pair;
use ringway_core::tunnel::{Config, Event, Frame, ProtocolError, ResetCode, StreamId, MAX_WINDOW};
use support::{get, inject, ok, open_pair, pending_frames};

/// The agent answers each stream with `len` bytes; the balancer releases what it receives only
/// on streams in `released`. Returns bytes received per stream.
fn serve(
    pair: &mut Pair,
    ids: &[StreamId],
    len: usize,
    released: &[StreamId],
) -> HashMap<StreamId, usize> {
    let mut left: Vec<(StreamId, Bytes)> = Vec::new();
    for &id in ids {
        pair.agent.send_response_head(id, ok(len), false).unwrap();
        left.push((id, Bytes::from(vec![7u8; len])));
    }
    let mut received: HashMap<StreamId, usize> = HashMap::new();
    for _round in 0..10_000 {
        for (id, body) in &mut left {
            let id = *id;
            if !body.is_empty() {
                pair.agent.send_data(id, body, true).unwrap();
            }
        }
        pair.drive();
        let mut progress = false;
        for event in pair.take_balancer_events() {
            if let Event::Data { id, data, .. } = event {
                progress |= !data.is_empty();
                *received.entry(id).or_default() += data.len();
                if released.contains(&id) {
                    pair.balancer.release(id, data.len());
                }
            }
        }
        progress |= !pair.take_agent_events().is_empty();
        if !progress {
            break;
        }
    }
    received
}

#[test]
fn a_stream_never_released_stalls_only_itself() {
    let config = Config::default();
    let mut pair = open_pair(&config);
    let stalled = pair.balancer.open_stream(get("/stalled"), true).unwrap();
    let others: Vec<_> = (0..3)
        .map(|_| pair.balancer.open_stream(get("/"), true).unwrap())
        .collect();
    pair.drive();
    pair.take_agent_events();
    let len = 1024 * 1024;
    let all: Vec<_> = std::iter::once(stalled)
        .chain(others.iter().copied())
        .collect();
    let received = serve(&mut pair, &all, len, &others);
    for id in &others {
        assert_eq!(received[id], len, "stream {id} completes");
    }
    assert_eq!(
        received[&stalled], config.stream_window as usize,
        "exactly one window arrives"
    );
    assert_eq!(pair.agent.send_credit(stalled), 0);
    assert_eq!(
        pair.agent.stream_count(),
        1,
        "only the stalled stream is left"
    );
    assert!(pair.balancer_error.is_none() && pair.agent_error.is_none());
}

#[test]
fn the_connection_window_caps_all_streams_together() {
    let config = Config {
        stream_window: 64 * 1024,
        connection_window: 64 * 1024,
        ..Config::default()
    };
    let mut pair = open_pair(&config);
    let a = pair.balancer.open_stream(get("/a"), true).unwrap();
    let b = pair.balancer.open_stream(get("/b"), true).unwrap();
    pair.drive();
    pair.take_agent_events();
    let received = serve(&mut pair, &[a, b], 100 * 1024, &[]);
    assert_eq!(
        received.values().sum::<usize>(),
        64 * 1024,
        "one connection window in all"
    );
    assert_eq!(received[&a], 64 * 1024, "the first stream took all of it");
    assert_eq!(pair.agent.send_credit(b), 0);

    // Releasing A's bytes returns connection credit: B is told it is writable.
    pair.balancer.release(a, 64 * 1024);
    pair.drive();
    let events = pair.take_agent_events();
    assert!(events.contains(&Event::Writable { id: b }), "{events:?}");
    assert!(pair.agent.send_credit(b) > 0);
}

#[test]
fn writable_follows_a_stream_window_update() {
    let config = Config {
        stream_window: 16 * 1024,
        ..Config::default()
    };
    let mut pair = open_pair(&config);
    let id = pair.balancer.open_stream(get("/"), false).unwrap();
    pair.drive();
    let mut body = Bytes::from(vec![1u8; 40 * 1024]);
    pair.balancer.send_data(id, &mut body, true).unwrap();
    assert_eq!(body.len(), 24 * 1024, "one stream window went");
    assert_eq!(pair.balancer.send_credit(id), 0);
    pair.drive();
    pair.agent.release(id, 16 * 1024);
    pair.drive();
    assert_eq!(pair.take_balancer_events(), vec![Event::Writable { id }]);
    pair.balancer.send_data(id, &mut body, true).unwrap();
    assert_eq!(body.len(), 8 * 1024);
}

#[test]
fn data_is_split_into_frames_of_at_most_16_kib() {
    let mut pair = open_pair(&Config::default());
    let id = pair.balancer.open_stream(get("/"), false).unwrap();
    pair.drive();
    pending_frames(&mut pair.balancer);
    pair.balancer
        .send_data(id, &mut Bytes::from(vec![0u8; 40_000]), true)
        .unwrap();
    let sizes: Vec<(usize, bool)> = pending_frames(&mut pair.balancer)
        .into_iter()
        .map(|f| match f {
            Frame::Data { data, end, .. } => (data.len(), end),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(sizes, vec![(16384, false), (16384, false), (7232, true)]);
}

#[test]
fn releases_are_batched_until_half_a_window_is_owed() {
    let config = Config::default();
    let mut pair = open_pair(&config);
    let id = pair.balancer.open_stream(get("/"), false).unwrap();
    pair.drive(); // the agent raises the stream window from the initial 16 KiB
    pair.balancer
        .send_data(id, &mut Bytes::from(vec![0u8; 200 * 1024]), false)
        .unwrap();
    pair.drive();
    pending_frames(&mut pair.agent);
    pair.agent.release(id, 100 * 1024);
    assert!(
        pending_frames(&mut pair.agent).is_empty(),
        "less than half a stream window owed"
    );
    pair.agent.release(id, 28 * 1024);
    assert_eq!(
        pending_frames(&mut pair.agent),
        vec![Frame::WindowUpdate {
            id,
            increment: 128 * 1024
        }]
    );
}

#[test]
fn stream_credit_overrun_is_a_protocol_error() {
    let config = Config::default();
    let mut pair = open_pair(&config);
    let id = pair.balancer.open_stream(get("/"), false).unwrap();
    pair.drive();
    let now = pair.clock;
    let chunk = |n| Frame::Data {
        id,
        data: Bytes::from(vec![0u8; n]),
        end: false,
    };
    let window = config.stream_window as usize;
    let frames: Vec<Frame> = (0..window / 16384).map(|_| chunk(16384)).collect();
    inject(&mut pair.agent, &frames, now).unwrap();
    let err = inject(&mut pair.agent, &[chunk(1)], now).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::CreditOverrun {
            id,
            len: 1,
            credit: 0
        }
    );
    assert_eq!(err.code(), ResetCode::FlowControl);
    assert_eq!(
        pending_frames(&mut pair.agent).last(),
        Some(&Frame::GoAway {
            last_stream_id: id,
            code: ResetCode::FlowControl
        })
    );
}

#[test]
fn connection_credit_overrun_is_a_protocol_error() {
    let config = Config {
        connection_window: 64 * 1024,
        ..Config::default()
    };
    let mut pair = open_pair(&config);
    let a = pair.balancer.open_stream(get("/"), false).unwrap();
    let b = pair.balancer.open_stream(get("/"), false).unwrap();
    pair.drive();
    let now = pair.clock;
    let data = |id, n| Frame::Data {
        id,
        data: Bytes::from(vec![0u8; n]),
        end: false,
    };
    inject(
        &mut pair.agent,
        &[
            data(a, 16384),
            data(a, 16384),
            data(a, 16384),
            data(b, 16000),
        ],
        now,
    )
    .unwrap();
    let err = inject(&mut pair.agent, &[data(b, 385)], now).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::CreditOverrun {
            id: b,
            len: 385,
            credit: 384
        }
    );
}

#[test]
fn window_updates_past_the_maximum_are_protocol_errors() {
    for id in [StreamId(0), StreamId(1)] {
        let mut pair = open_pair(&Config::default());
        pair.balancer.open_stream(get("/"), false).unwrap();
        pair.drive();
        let now = pair.clock;
        let err = inject(
            &mut pair.balancer,
            &[Frame::WindowUpdate {
                id,
                increment: MAX_WINDOW,
            }],
            now,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ProtocolError::BadWindowUpdate {
                id,
                increment: MAX_WINDOW
            }
        );
        assert_eq!(err.code(), ResetCode::FlowControl);
    }
}

#[test]
fn data_on_a_reset_stream_returns_its_connection_credit() {
    let config = Config {
        stream_window: 64 * 1024,
        connection_window: 64 * 1024,
        ..Config::default()
    };
    let mut pair = open_pair(&config);
    let a = pair.balancer.open_stream(get("/a"), true).unwrap();
    pair.drive();
    pair.agent
        .send_response_head(a, ok(1 << 20), false)
        .unwrap();
    pair.agent
        .send_data(a, &mut Bytes::from(vec![0u8; 64 * 1024]), false)
        .unwrap();
    // The balancer resets the stream without releasing what it got, while the data is in flight.
    pair.balancer.reset(a, ResetCode::Cancel);
    pair.drive();
    pair.take_balancer_events();
    // The whole connection window is available again for the next stream.
    let b = pair.balancer.open_stream(get("/b"), true).unwrap();
    pair.drive();
    pair.agent
        .send_response_head(b, ok(64 * 1024), false)
        .unwrap();
    assert_eq!(pair.agent.send_credit(b), 64 * 1024);
    assert!(pair.balancer_error.is_none() && pair.agent_error.is_none());
}

#[test]
fn reset_refunds_the_connection_credit_of_unsent_data() {
    let config = Config {
        stream_window: 64 * 1024,
        connection_window: 64 * 1024,
        ..Config::default()
    };
    let mut pair = open_pair(&config);
    let a = pair.balancer.open_stream(get("/a"), false).unwrap();
    let b = pair.balancer.open_stream(get("/b"), false).unwrap();
    pair.drive();
    pair.balancer
        .send_data(a, &mut Bytes::from(vec![0u8; 64 * 1024]), false)
        .unwrap();
    assert_eq!(
        pair.balancer.send_credit(b),
        0,
        "A took the whole connection window"
    );
    let mut waiting = Bytes::from_static(b"waiting for credit");
    pair.balancer.send_data(b, &mut waiting, true).unwrap();
    assert!(!waiting.is_empty());
    // A is reset before its DATA was written: the credit it took comes back, and B hears so.
    pair.balancer.reset(a, ResetCode::Cancel);
    assert_eq!(pair.balancer.send_credit(b), 64 * 1024);
    assert_eq!(pair.take_balancer_events(), vec![Event::Writable { id: b }]);
}

#[test]
fn reset_returns_received_but_unreleased_bytes_to_the_connection() {
    let config = Config {
        stream_window: 64 * 1024,
        connection_window: 64 * 1024,
        ..Config::default()
    };
    let mut pair = open_pair(&config);
    let a = pair.balancer.open_stream(get("/a"), true).unwrap();
    pair.drive();
    pair.agent
        .send_response_head(a, ok(1 << 20), false)
        .unwrap();
    pair.agent
        .send_data(a, &mut Bytes::from(vec![0u8; 64 * 1024]), false)
        .unwrap();
    pair.drive();
    assert_eq!(
        support::body_of(&pair.take_balancer_events(), a).0.len(),
        64 * 1024
    );
    // Never released; the reset gives the connection window back (and a late release is a no-op).
    pair.balancer.reset(a, ResetCode::Cancel);
    pair.balancer.release(a, 64 * 1024);
    let b = pair.balancer.open_stream(get("/b"), true).unwrap();
    pair.drive();
    pair.agent.send_response_head(b, ok(0), false).unwrap();
    assert_eq!(pair.agent.send_credit(b), 64 * 1024);
    pair.agent
        .send_data(b, &mut Bytes::from(vec![0u8; 64 * 1024]), true)
        .unwrap();
    pair.drive();
    assert!(
        pair.balancer_error.is_none(),
        "no double credit: {:?}",
        pair.balancer_error
    );
}

#[test]
fn bytes_of_a_finished_stream_still_return_to_the_connection() {
    let config = Config {
        stream_window: 64 * 1024,
        connection_window: 64 * 1024,
        ..Config::default()
    };
    let mut pair = open_pair(&config);
    let a = pair.balancer.open_stream(get("/a"), true).unwrap();
    pair.drive();
    pair.agent
        .send_response_head(a, ok(64 * 1024), false)
        .unwrap();
    pair.agent
        .send_data(a, &mut Bytes::from(vec![0u8; 64 * 1024]), true)
        .unwrap();
    pair.drive();
    assert_eq!(pair.balancer.stream_count(), 0, "finished both ways");
    let b = pair.balancer.open_stream(get("/b"), true).unwrap();
    pair.drive();
    pair.agent.send_response_head(b, ok(0), false).unwrap();
    assert_eq!(
        pair.agent.send_credit(b),
        0,
        "the connection window is still held by A's bytes"
    );
    pair.balancer.release(a, 64 * 1024);
    pair.drive();
    assert_eq!(pair.agent.send_credit(b), 64 * 1024);
}

#[test]
fn small_frame_limits_are_raised_to_the_protocol_minimum() {
    let config = Config {
        max_frame_payload: 100,
        ..Config::default()
    };
    let mut pair = open_pair(&config);
    let id = pair
        .balancer
        .open_stream(Bytes::from(vec![b'a'; 16 * 1024]), false)
        .unwrap();
    pair.drive();
    pair.balancer
        .send_data(id, &mut Bytes::from(vec![0u8; 16 * 1024]), true)
        .unwrap();
    pair.drive();
    assert!(pair.agent_error.is_none());
}
