//! Handshake and version negotiation, driven through the in-memory `Pair`.
#![allow(clippy::unwrap_used)]

mod support;

use ringway_core::tunnel::pair::{test_hello, Pair};
use ringway_core::tunnel::{
    Config, Connection, Event, Frame, Hello, HelloAck, ProtocolError, ResetCode, StreamError,
    StreamId, INITIAL_CONNECTION_WINDOW, INITIAL_STREAM_WINDOW, PROTOCOL_VERSION,
};
use support::{get, inject, pending_frames};

#[test]
fn hello_reaches_the_balancer_and_the_ack_carries_the_workers() {
    let config = Config::default();
    let hello = Hello {
        worker: Some(1),
        ..test_hello()
    };
    let mut pair = Pair::with_hello(&config, &config, hello.clone());
    pair.drive();
    assert_eq!(pair.take_balancer_events(), vec![Event::Hello(hello)]);
    assert!(
        !pair.balancer.is_open(),
        "open only after the application accepts"
    );
    assert_eq!(
        pair.balancer.open_stream(get("/"), true),
        Err(StreamError::NotReady)
    );

    pair.balancer.accept_hello(4, 1);
    pair.drive();
    let ack = HelloAck {
        version: PROTOCOL_VERSION,
        worker_count: 4,
        worker_index: 1,
    };
    assert_eq!(pair.take_agent_events(), vec![Event::HelloAck(ack)]);
    assert!(pair.balancer.is_open() && pair.agent.is_open());
    assert!(pair.balancer_error.is_none() && pair.agent_error.is_none());
}

#[test]
fn unsupported_version_is_rejected_with_goaway() {
    let config = Config::default();
    let hello = Hello {
        version: PROTOCOL_VERSION + 1,
        ..test_hello()
    };
    let mut pair = Pair::with_hello(&config, &config, hello);
    pair.drive();
    let err = pair.balancer_error.clone().unwrap();
    assert_eq!(err, ProtocolError::UnsupportedVersion(PROTOCOL_VERSION + 1));
    assert_eq!(err.code(), ResetCode::UnsupportedVersion);
    assert_eq!(
        pair.take_agent_events(),
        vec![Event::GoAway {
            last_stream_id: StreamId(0),
            code: ResetCode::UnsupportedVersion
        }]
    );
    assert!(pair.agent.is_closed() && pair.balancer.is_closed());
}

#[test]
fn ack_with_a_version_the_agent_does_not_speak_is_an_error() {
    let mut agent = Connection::agent(Config::default(), test_hello(), std::time::Instant::now());
    let ack = HelloAck {
        version: 99,
        worker_count: 1,
        worker_index: 0,
    };
    let err = inject(
        &mut agent,
        &[Frame::HelloAck(ack)],
        std::time::Instant::now(),
    )
    .unwrap_err();
    assert_eq!(err, ProtocolError::UnsupportedVersion(99));
}

#[test]
fn rejected_hello_reaches_the_agent_as_goaway() {
    let mut pair = Pair::new(&Config::default());
    pair.drive();
    pair.balancer.reject_hello(ResetCode::Unauthorized);
    pair.drive();
    assert_eq!(
        pair.take_agent_events(),
        vec![Event::GoAway {
            last_stream_id: StreamId(0),
            code: ResetCode::Unauthorized
        }]
    );
    assert!(pair.balancer.is_closed() && pair.agent.is_closed());
    assert_eq!(
        pair.balancer.open_stream(get("/"), true),
        Err(StreamError::ConnectionClosed)
    );
}

#[test]
fn frames_before_the_hello_are_protocol_errors() {
    let now = std::time::Instant::now();
    for frame in [
        Frame::Ping(1),
        Frame::WindowUpdate {
            id: StreamId(0),
            increment: 5,
        },
    ] {
        let mut balancer = Connection::balancer(Config::default(), now);
        let err = inject(&mut balancer, &[frame], now).unwrap_err();
        assert!(
            matches!(err, ProtocolError::BeforeHandshake { .. }),
            "{err}"
        );
        assert_eq!(err.code(), ResetCode::Protocol);
        // The connection is closed and says why with a GOAWAY.
        assert_eq!(
            pending_frames(&mut balancer),
            vec![Frame::GoAway {
                last_stream_id: StreamId(0),
                code: ResetCode::Protocol
            }]
        );
        assert!(balancer.is_closed());
    }
}

#[test]
fn frames_before_the_ack_are_protocol_errors_for_the_agent() {
    let now = std::time::Instant::now();
    let mut agent = Connection::agent(Config::default(), test_hello(), now);
    let frame = Frame::RequestHead {
        id: StreamId(1),
        head: get("/"),
        end: true,
    };
    let err = inject(&mut agent, &[frame], now).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::BeforeHandshake {
            kind: "REQUEST_HEAD"
        }
    );
}

#[test]
fn agent_must_wait_for_the_ack_before_sending_more() {
    let now = std::time::Instant::now();
    let mut balancer = Connection::balancer(Config::default(), now);
    let err = inject(
        &mut balancer,
        &[Frame::Hello(test_hello()), Frame::Ping(3)],
        now,
    )
    .unwrap_err();
    assert_eq!(err, ProtocolError::BeforeHandshake { kind: "PING" });
}

#[test]
fn second_hello_and_misdirected_ack_are_protocol_errors() {
    let mut pair = Pair::new(&Config::default());
    assert!(pair.handshake(1, 0));
    let now = pair.clock;
    let err = inject(&mut pair.balancer, &[Frame::Hello(test_hello())], now).unwrap_err();
    assert_eq!(err, ProtocolError::UnexpectedHandshake { kind: "HELLO" });

    let mut balancer = Connection::balancer(Config::default(), now);
    let ack = HelloAck {
        version: 1,
        worker_count: 1,
        worker_index: 0,
    };
    let err = inject(&mut balancer, &[Frame::HelloAck(ack)], now).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::UnexpectedHandshake { kind: "HELLO_ACK" }
    );
}

#[test]
fn agents_cannot_open_streams_and_balancers_cannot_answer() {
    let mut pair = Pair::new(&Config::default());
    assert!(pair.handshake(1, 0));
    assert!(matches!(
        pair.agent.open_stream(get("/"), true),
        Err(StreamError::WrongSide(_))
    ));
    let err = pair
        .balancer
        .send_response_head(StreamId(1), get("/"), true)
        .unwrap_err();
    assert!(matches!(err, StreamError::WrongSide(_)));
}

#[test]
fn connection_window_is_announced_after_the_handshake() {
    let config = Config::default();
    let mut pair = Pair::new(&config);
    assert!(pair.handshake(1, 0));
    // A new stream starts with the protocol's initial window; the agent raises it to its
    // configured window as soon as it sees the stream.
    let id = pair.balancer.open_stream(get("/"), false).unwrap();
    assert_eq!(
        pair.balancer.send_credit(id),
        INITIAL_STREAM_WINDOW as usize
    );
    pair.drive();
    assert_eq!(pair.balancer.send_credit(id), config.stream_window as usize);
    // The connection window was raised past the initial one right after the handshake.
    let mut body = bytes::Bytes::from(vec![0u8; 2 * config.stream_window as usize]);
    pair.balancer.send_data(id, &mut body, false).unwrap();
    assert_eq!(body.len(), config.stream_window as usize);
    let second = pair.balancer.open_stream(get("/"), false).unwrap();
    pair.drive();
    assert_eq!(
        pair.balancer.send_credit(second),
        config.stream_window as usize
    );
    assert!(config.stream_window * 2 > INITIAL_CONNECTION_WINDOW);
}
