//! Bounds on what a peer can make a tunnel connection hold (docs/PROTOCOL.md §10): queued PONGs,
//! response heads per stream, routes per HELLO. Each bound is a `Config` value and exceeding it
//! has its own code.
#![allow(clippy::unwrap_used)]

mod support;

use bytes::{Bytes, BytesMut};
use ringway_core::tunnel::pair::{test_hello, Pair};
use ringway_core::tunnel::{
    encode, Config, Event, Frame, FrameDecoder, Hello, ProtocolError, ResetCode, StreamError,
    StreamId, HEADER_LEN,
};
use support::{get, inject, ok, open_pair, pending_frames};

/// Bytes of one PING or PONG on the wire.
const PING_LEN: usize = HEADER_LEN + 8;

fn pings(range: std::ops::Range<u64>) -> Vec<Frame> {
    range.map(Frame::Ping).collect()
}

#[test]
fn pongs_queued_while_the_driver_does_not_write_are_bounded_then_a_flood_fails() {
    let config = Config::default();
    let max = config.max_queued_pongs;
    let mut pair = open_pair(&config);
    let now = pair.clock;

    // Up to the cap, every PING is answered; the answers wait for `poll_transmit`.
    inject(&mut pair.balancer, &pings(0..u64::from(max)), now).unwrap();
    // One more while none was written is a flood.
    let err = inject(&mut pair.balancer, &pings(99..100), now).unwrap_err();
    assert_eq!(err, ProtocolError::PingFlood { max });
    assert_eq!(err.code(), ResetCode::EnhanceYourCalm);
    // What the connection holds is its GOAWAY, not the answers (nor anything per PING).
    let mut out = BytesMut::new();
    pair.balancer.poll_transmit(&mut out);
    assert_eq!(out.len(), HEADER_LEN + 8, "only the GOAWAY is left to send");
    let mut decoder = FrameDecoder::new(1 << 16);
    assert_eq!(
        decoder.decode(&mut out).unwrap(),
        Some(Frame::GoAway {
            last_stream_id: StreamId(0),
            code: ResetCode::EnhanceYourCalm
        })
    );
    assert!(pair.balancer.is_closed());
}

#[test]
fn a_huge_ping_flood_in_one_read_holds_no_more_than_the_cap() {
    let config = Config {
        max_queued_pongs: 4,
        ..Config::default()
    };
    let mut pair = open_pair(&config);
    let mut wire = BytesMut::new();
    for n in 0..200_000 {
        encode(&Frame::Ping(n), &mut wire);
    }
    let err = pair
        .balancer
        .handle_input(&mut wire, pair.clock)
        .unwrap_err();
    assert_eq!(err.code(), ResetCode::EnhanceYourCalm);
    assert!(
        wire.len() > 199_000 * PING_LEN,
        "the decoder stopped at the flood"
    );
    // The agent learns why.
    pair.transmit_balancer();
    pair.deliver_to_agent();
    let events = pair.take_agent_events();
    assert!(
        events.contains(&Event::GoAway {
            last_stream_id: StreamId(0),
            code: ResetCode::EnhanceYourCalm
        }),
        "{events:?}"
    );
}

#[test]
fn a_peer_that_reads_its_pongs_may_ping_without_limit() {
    let config = Config {
        max_queued_pongs: 2,
        ..Config::default()
    };
    let mut pair = open_pair(&config);
    let now = pair.clock;
    for round in 0..100u64 {
        inject(&mut pair.balancer, &pings(round * 2..round * 2 + 2), now).unwrap();
        let mut out = BytesMut::new();
        pair.balancer.poll_transmit(&mut out);
        assert_eq!(out.len(), 2 * PING_LEN, "round {round}: both answered");
    }
    assert!(pair.balancer.is_open());
}

#[test]
fn interim_head_flood_resets_the_stream_with_too_many_heads() {
    let config = Config::default();
    let max = config.max_response_heads as usize;
    let mut pair = open_pair(&config);
    let id = pair.balancer.open_stream(get("/"), true).unwrap();
    pair.drive();
    pair.take_agent_events();
    // The agent sends more interim heads than allowed, all before the balancer answers.
    for _ in 0..max + 4 {
        pair.agent
            .send_response_head(
                id,
                Bytes::from_static(b"HTTP/1.1 103 Early Hints\r\n\r\n"),
                false,
            )
            .unwrap();
    }
    pair.drive();

    let events = pair.take_balancer_events();
    let heads = events
        .iter()
        .filter(|e| matches!(e, Event::ResponseHead { .. }))
        .count();
    assert_eq!(
        heads, max,
        "heads up to the limit are delivered: {events:?}"
    );
    assert_eq!(
        events.last(),
        Some(&Event::Reset {
            id,
            code: ResetCode::TooManyHeads
        }),
        "the balancer's application learns the stream is gone"
    );
    assert_eq!(pair.balancer.stream_count(), 0);
    assert_eq!(
        pair.take_agent_events(),
        vec![Event::Reset {
            id,
            code: ResetCode::TooManyHeads
        }]
    );
    // Heads that crossed the RESET were dropped quietly; the connection lives on.
    assert!(pair.balancer_error.is_none() && pair.agent_error.is_none());
    assert!(pair.balancer.is_open() && pair.agent.is_open());
    assert_eq!(
        pair.agent.send_response_head(id, ok(0), true).unwrap_err(),
        StreamError::UnknownStream(id)
    );
    let next = pair.balancer.open_stream(get("/next"), true).unwrap();
    pair.drive();
    pair.agent.send_response_head(next, ok(0), true).unwrap();
    pair.drive();
    assert!(pair.take_balancer_events().contains(&Event::ResponseHead {
        id: next,
        head: ok(0),
        end: true
    }));
}

#[test]
fn interim_heads_up_to_the_limit_and_a_final_head_are_accepted() {
    let config = Config {
        max_response_heads: 3,
        ..Config::default()
    };
    let mut pair = open_pair(&config);
    let id = pair.balancer.open_stream(get("/"), true).unwrap();
    pair.drive();
    for head in [
        &b"HTTP/1.1 100 Continue\r\n\r\n"[..],
        b"HTTP/1.1 103 Early Hints\r\n\r\n",
    ] {
        pair.agent
            .send_response_head(id, Bytes::copy_from_slice(head), false)
            .unwrap();
    }
    pair.agent.send_response_head(id, ok(0), true).unwrap();
    pair.drive();
    let events = pair.take_balancer_events();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events
        .iter()
        .all(|e| matches!(e, Event::ResponseHead { .. })));
    assert_eq!(pair.balancer.stream_count(), 0, "finished normally");
}

fn hello_with_routes(n: usize) -> Hello {
    Hello {
        routes: (0..n).map(|i| format!("r{i}.example.com/")).collect(),
        ..test_hello()
    }
}

#[test]
fn hello_with_too_many_routes_is_rejected_with_too_many_routes() {
    let config = Config::default();
    let max = config.max_routes_per_hello;
    let mut pair = Pair::with_hello(&config, &config, hello_with_routes(usize::from(max) + 1));
    pair.drive();
    let err = pair.balancer_error.clone().unwrap();
    assert_eq!(
        err,
        ProtocolError::TooManyRoutes {
            count: max + 1,
            max
        }
    );
    assert_eq!(err.code(), ResetCode::TooManyRoutes);
    assert!(
        pair.take_balancer_events().is_empty(),
        "the application never sees the hello"
    );
    assert_eq!(
        pair.take_agent_events(),
        vec![Event::GoAway {
            last_stream_id: StreamId(0),
            code: ResetCode::TooManyRoutes
        }],
        "the agent sees a rejected hello"
    );
    assert!(pair.agent.is_closed() && pair.balancer.is_closed());
}

#[test]
fn hello_with_exactly_the_route_limit_is_handed_to_the_application() {
    let config = Config {
        max_routes_per_hello: 3,
        ..Config::default()
    };
    let mut pair = Pair::with_hello(&config, &config, hello_with_routes(3));
    assert!(pair.handshake(1, 0));
    let mut pair = Pair::with_hello(&config, &config, hello_with_routes(4));
    pair.drive();
    assert_eq!(
        pair.balancer_error.map(|e| e.code()),
        Some(ResetCode::TooManyRoutes)
    );
}

#[test]
fn the_route_limit_is_checked_before_routes_are_read() {
    // A HELLO whose count says 65535 but carries no routes at all: refused for its count, not
    // as truncated (nothing was allocated for the routes it announced).
    let mut payload = BytesMut::new();
    encode(&Frame::Hello(hello_with_routes(0)), &mut payload);
    let len = payload.len();
    payload[len - 2..].copy_from_slice(&u16::MAX.to_be_bytes());
    let mut limited = FrameDecoder::new(1 << 16).with_max_hello_routes(10);
    assert_eq!(
        limited.decode(&mut payload.clone()).unwrap_err(),
        ProtocolError::TooManyRoutes {
            count: u16::MAX,
            max: 10
        }
    );
    // A plain decoder has no route limit (only the payload layout is checked).
    assert!(matches!(
        FrameDecoder::new(1 << 16).decode(&mut payload).unwrap_err(),
        ProtocolError::Malformed { .. }
    ));
    let mut many = BytesMut::new();
    encode(&Frame::Hello(hello_with_routes(1000)), &mut many);
    let decoded = FrameDecoder::new(1 << 20).decode(&mut many).unwrap();
    assert!(matches!(decoded, Some(Frame::Hello(h)) if h.routes.len() == 1000));
}

#[test]
fn zero_caps_are_raised_to_one() {
    let config = Config {
        max_queued_pongs: 0,
        max_response_heads: 0,
        ..Config::default()
    };
    let mut pair = open_pair(&config);
    let now = pair.clock;
    inject(&mut pair.balancer, &pings(0..1), now).unwrap();
    assert_eq!(pending_frames(&mut pair.balancer), vec![Frame::Pong(0)]);
    let id = pair.balancer.open_stream(get("/"), true).unwrap();
    pair.drive();
    pair.agent.send_response_head(id, ok(0), true).unwrap();
    pair.drive();
    assert!(pair
        .take_balancer_events()
        .iter()
        .any(|e| matches!(e, Event::ResponseHead { .. })));
}
