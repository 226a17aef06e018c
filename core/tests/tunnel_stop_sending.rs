//! A RESET from a side whose own direction already ended: what it queued (a complete response)
//! still goes out, the RESET follows and only stops the peer's direction ("stop sending").
//! The case of a backend answering 413 before reading the request body.
#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use ringway_core::tunnel::{Config, Event, Frame, ResetCode, StreamError, StreamId};
use support::{body_of, ok, open_pair, pending_frames};

fn upload_head() -> Bytes {
    Bytes::from_static(b"POST /up HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1000000\r\n\r\n")
}

fn too_large() -> Bytes {
    Bytes::from_static(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 5\r\n\r\n")
}

#[test]
fn reset_after_a_complete_response_keeps_the_response_queued_before_it() {
    let mut pair = open_pair(&Config::default());
    let id = pair.balancer.open_stream(upload_head(), false).unwrap();
    pair.drive();
    pair.take_agent_events();
    pair.agent
        .send_response_head(id, too_large(), false)
        .unwrap();
    pair.agent
        .send_data(id, &mut Bytes::from_static(b"large"), true)
        .unwrap();
    // Same turn as the response (nothing transmitted in between), as the agent does it.
    pair.agent.reset(id, ResetCode::NoError);
    assert_eq!(
        pending_frames(&mut pair.agent),
        vec![
            Frame::ResponseHead {
                id,
                head: too_large(),
                end: false
            },
            Frame::Data {
                id,
                data: Bytes::from_static(b"large"),
                end: true
            },
            Frame::Reset {
                id,
                code: ResetCode::NoError
            },
        ]
    );
    assert_eq!(pair.agent.stream_count(), 0, "the agent forgot the stream");
}

#[test]
fn the_balancer_gets_the_whole_response_then_the_reset() {
    let mut pair = open_pair(&Config::default());
    let id = pair.balancer.open_stream(upload_head(), false).unwrap();
    pair.balancer
        .send_data(id, &mut Bytes::from(vec![b'u'; 8192]), false)
        .unwrap();
    pair.drive();
    pair.take_agent_events();
    pair.agent.release(id, 8192);
    pair.agent
        .send_response_head(id, too_large(), false)
        .unwrap();
    pair.agent
        .send_data(id, &mut Bytes::from_static(b"large"), true)
        .unwrap();
    pair.agent.reset(id, ResetCode::NoError);
    // The balancer keeps uploading while the response and the RESET are in flight.
    pair.balancer
        .send_data(id, &mut Bytes::from(vec![b'v'; 4096]), false)
        .unwrap();
    pair.transmit_balancer();
    pair.transmit_agent();
    pair.drive();
    let events = pair.take_balancer_events();
    assert_eq!(
        events.first(),
        Some(&Event::ResponseHead {
            id,
            head: too_large(),
            end: false
        })
    );
    assert_eq!(body_of(&events, id), (b"large".to_vec(), true));
    assert_eq!(
        events.last(),
        Some(&Event::Reset {
            id,
            code: ResetCode::NoError
        }),
        "{events:?}"
    );
    assert!(
        pair.balancer_error.is_none() && pair.agent_error.is_none(),
        "the upload DATA that crossed the RESET is dropped quietly"
    );
    assert_eq!(
        pair.balancer
            .send_data(id, &mut Bytes::from_static(b"x"), false),
        Err(StreamError::UnknownStream(id)),
        "the balancer stops sending"
    );
    assert_eq!(
        (pair.balancer.stream_count(), pair.agent.stream_count()),
        (0, 0)
    );
}

#[test]
fn reset_while_still_sending_drops_the_queued_frames() {
    let mut pair = open_pair(&Config::default());
    let id = pair.balancer.open_stream(upload_head(), false).unwrap();
    pair.drive();
    pair.take_agent_events();
    pair.agent.send_response_head(id, ok(10), false).unwrap();
    pair.agent
        .send_data(id, &mut Bytes::from_static(b"01234"), false)
        .unwrap();
    pair.agent.reset(id, ResetCode::BackendReset);
    assert_eq!(
        pending_frames(&mut pair.agent),
        vec![Frame::Reset {
            id,
            code: ResetCode::BackendReset
        }],
        "a half-sent response is aborted, not delivered"
    );
}

#[test]
fn kept_data_still_counts_against_and_returns_to_the_connection_window() {
    let config = Config {
        stream_window: 64 * 1024,
        connection_window: 64 * 1024,
        ..Config::default()
    };
    let mut pair = open_pair(&config);
    let id = pair.balancer.open_stream(upload_head(), false).unwrap();
    pair.drive();
    pair.take_agent_events();
    pair.agent
        .send_response_head(id, ok(40_000), false)
        .unwrap();
    let mut body = Bytes::from(vec![b'r'; 40_000]);
    pair.agent.send_data(id, &mut body, true).unwrap();
    assert!(body.is_empty());
    pair.agent.reset(id, ResetCode::NoError);
    pair.drive();
    let events = pair.take_balancer_events();
    assert_eq!(body_of(&events, id).0.len(), 40_000);
    pair.balancer.release(id, 40_000);
    pair.drive();
    // The agent's connection credit is whole again: a new stream may send a full window.
    let next = pair.balancer.open_stream(upload_head(), false).unwrap();
    pair.drive();
    assert_eq!(next, StreamId(3));
    pair.agent
        .send_response_head(next, ok(64 * 1024), false)
        .unwrap();
    assert_eq!(pair.agent.send_credit(next), 64 * 1024);
}
