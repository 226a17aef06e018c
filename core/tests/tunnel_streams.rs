//! Streams over the in-memory `Pair`: exchanges, many at once, resets, id rules, GOAWAY drain.
#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use ringway_core::tunnel::{Config, Event, Frame, ProtocolError, ResetCode, StreamError, StreamId};
use support::{body_of, get, inject, ok, open_pair, opened, pending_frames};

#[test]
fn one_request_and_response_with_bodies() {
    let mut pair = open_pair(&Config::default());
    let id = pair
        .balancer
        .open_stream(Bytes::from_static(b"POST /x HTTP/1.1\r\n\r\n"), false)
        .unwrap();
    assert_eq!(id, StreamId(1));
    pair.balancer
        .send_data(id, &mut Bytes::from_static(b"hello"), true)
        .unwrap();
    pair.drive();
    let events = pair.take_agent_events();
    assert_eq!(
        events[0],
        Event::StreamOpened {
            id,
            head: Bytes::from_static(b"POST /x HTTP/1.1\r\n\r\n"),
            end: false
        }
    );
    assert_eq!(body_of(&events, id), (b"hello".to_vec(), true));
    pair.agent.release(id, 5);

    assert_eq!(
        pair.agent
            .send_data(id, &mut Bytes::from_static(b"x"), false),
        Err(StreamError::HeadNotSent(id))
    );
    pair.agent.send_response_head(id, ok(3), false).unwrap();
    pair.agent
        .send_data(id, &mut Bytes::from_static(b"abc"), true)
        .unwrap();
    pair.drive();
    let events = pair.take_balancer_events();
    assert_eq!(
        events[0],
        Event::ResponseHead {
            id,
            head: ok(3),
            end: false
        }
    );
    assert_eq!(body_of(&events, id), (b"abc".to_vec(), true));
    assert_eq!(pair.balancer.stream_count(), 0, "finished both ways");
    assert_eq!(pair.agent.stream_count(), 0);
    assert!(pair.balancer_error.is_none() && pair.agent_error.is_none());
}

#[test]
fn interim_heads_come_before_the_final_one() {
    let mut pair = open_pair(&Config::default());
    let id = pair.balancer.open_stream(get("/"), true).unwrap();
    pair.drive();
    let cont = Bytes::from_static(b"HTTP/1.1 100 Continue\r\n\r\n");
    pair.agent
        .send_response_head(id, cont.clone(), false)
        .unwrap();
    pair.agent.send_response_head(id, ok(0), true).unwrap();
    pair.drive();
    assert_eq!(
        pair.take_balancer_events(),
        vec![
            Event::ResponseHead {
                id,
                head: cont,
                end: false
            },
            Event::ResponseHead {
                id,
                head: ok(0),
                end: true
            },
        ]
    );
    assert_eq!(
        pair.agent.send_response_head(id, ok(0), true),
        Err(StreamError::UnknownStream(id))
    );
}

#[test]
fn many_concurrent_streams_interleave_and_complete() {
    let mut pair = open_pair(&Config::default());
    pair.max_delivery = Some(1000); // reads split frames at odd places
    let ids: Vec<StreamId> = (0..200)
        .map(|i| {
            pair.balancer
                .open_stream(get(&format!("/{i}")), true)
                .unwrap()
        })
        .collect();
    assert!(
        ids.windows(2).all(|w| w[1].0 == w[0].0 + 2),
        "odd, increasing ids"
    );
    pair.drive();
    assert_eq!(opened(&pair.take_agent_events()), ids);
    // Answer in reverse order, each body a different size, sent in two halves.
    for (i, &id) in ids.iter().enumerate().rev() {
        let body = Bytes::from(vec![i as u8; i * 37]);
        pair.agent
            .send_response_head(id, ok(body.len()), false)
            .unwrap();
        let mut first = body.slice(..body.len() / 2);
        pair.agent.send_data(id, &mut first, false).unwrap();
        assert!(first.is_empty());
    }
    for (i, &id) in ids.iter().enumerate() {
        let mut rest = Bytes::from(vec![i as u8; i * 37 - i * 37 / 2]);
        pair.agent.send_data(id, &mut rest, true).unwrap();
    }
    pair.drive();
    let events = pair.take_balancer_events();
    for (i, &id) in ids.iter().enumerate() {
        assert_eq!(
            body_of(&events, id),
            (vec![i as u8; i * 37], true),
            "stream {id}"
        );
    }
    assert_eq!(pair.balancer.stream_count(), 0);
    assert!(pair.balancer_error.is_none() && pair.agent_error.is_none());
}

#[test]
fn max_streams_limits_the_balancer_and_the_agent_refuses_more() {
    let config = Config {
        max_streams: 2,
        ..Config::default()
    };
    let mut pair = open_pair(&config);
    pair.balancer.open_stream(get("/"), true).unwrap();
    pair.balancer.open_stream(get("/"), true).unwrap();
    assert_eq!(
        pair.balancer.open_stream(get("/"), true),
        Err(StreamError::TooManyStreams(2))
    );

    // An agent with a smaller limit than the balancer refuses the surplus (retryable).
    let mut pair = ringway_core::tunnel::pair::Pair::with_hello(
        &Config::default(),
        &config,
        ringway_core::tunnel::pair::test_hello(),
    );
    assert!(pair.handshake(1, 0));
    let ids: Vec<_> = (0..3)
        .map(|_| pair.balancer.open_stream(get("/"), true).unwrap())
        .collect();
    pair.drive();
    assert_eq!(opened(&pair.take_agent_events()), ids[..2]);
    assert!(pair.take_balancer_events().contains(&Event::Reset {
        id: ids[2],
        code: ResetCode::Refused
    }));
}

#[test]
fn reset_by_the_balancer_drops_late_agent_frames() {
    let mut pair = open_pair(&Config::default());
    let id = pair.balancer.open_stream(get("/"), true).unwrap();
    pair.drive();
    // The agent answers while the balancer's RESET is in flight.
    pair.balancer.reset(id, ResetCode::Cancel);
    pair.agent.send_response_head(id, ok(10), false).unwrap();
    pair.agent
        .send_data(id, &mut Bytes::from_static(b"0123456789"), false)
        .unwrap();
    pair.transmit_balancer();
    pair.transmit_agent();
    pair.drive();
    assert!(
        pair.balancer_error.is_none(),
        "late frames on a reset stream are not errors"
    );
    assert!(
        pair.take_balancer_events().is_empty(),
        "and are not delivered"
    );
    assert!(pair.take_agent_events().contains(&Event::Reset {
        id,
        code: ResetCode::Cancel
    }));
    assert_eq!(pair.agent.stream_count(), 0);
    assert_eq!(
        pair.agent
            .send_data(id, &mut Bytes::from_static(b"x"), true),
        Err(StreamError::UnknownStream(id))
    );
}

#[test]
fn reset_by_the_agent_reaches_the_balancer_and_drops_queued_frames() {
    let mut pair = open_pair(&Config::default());
    let id = pair.balancer.open_stream(get("/"), false).unwrap();
    pair.drive();
    pair.take_agent_events();
    pair.agent.send_response_head(id, ok(5), false).unwrap();
    pair.agent.reset(id, ResetCode::BackendReset);
    assert_eq!(
        pending_frames(&mut pair.agent),
        vec![Frame::Reset {
            id,
            code: ResetCode::BackendReset
        }]
    );
    pair.agent.reset(id, ResetCode::Internal); // a second reset is a no-op
    assert!(pending_frames(&mut pair.agent).is_empty());
}

#[test]
fn reset_reaches_the_peer_as_an_event() {
    let mut pair = open_pair(&Config::default());
    let id = pair.balancer.open_stream(get("/"), false).unwrap();
    pair.drive();
    pair.agent.reset(id, ResetCode::BackendTimeout);
    pair.drive();
    assert_eq!(
        pair.take_balancer_events(),
        vec![Event::Reset {
            id,
            code: ResetCode::BackendTimeout
        }]
    );
    assert_eq!(pair.balancer.stream_count(), 0);
    // Data the balancer still had to send is refused locally.
    assert_eq!(
        pair.balancer
            .send_data(id, &mut Bytes::from_static(b"x"), true),
        Err(StreamError::UnknownStream(id))
    );
    assert!(pair.balancer_error.is_none() && pair.agent_error.is_none());
}

#[test]
fn agent_opening_a_stream_is_a_protocol_error() {
    let mut pair = open_pair(&Config::default());
    let now = pair.clock;
    let err = inject(
        &mut pair.balancer,
        &[Frame::RequestHead {
            id: StreamId(2),
            head: get("/"),
            end: true,
        }],
        now,
    )
    .unwrap_err();
    assert_eq!(
        err,
        ProtocolError::WrongDirection {
            kind: "REQUEST_HEAD",
            id: StreamId(2)
        }
    );
    assert_eq!(err.code(), ResetCode::Protocol);
}

#[test]
fn balancer_sending_a_response_head_is_a_protocol_error() {
    let mut pair = open_pair(&Config::default());
    let now = pair.clock;
    let err = inject(
        &mut pair.agent,
        &[Frame::ResponseHead {
            id: StreamId(1),
            head: ok(0),
            end: true,
        }],
        now,
    )
    .unwrap_err();
    assert!(matches!(err, ProtocolError::WrongDirection { .. }), "{err}");
}

#[test]
fn stream_ids_must_be_odd_and_increasing() {
    for (first, second) in [(3, 1), (3, 3), (1, 4)] {
        let mut pair = open_pair(&Config::default());
        let now = pair.clock;
        let head = |id| Frame::RequestHead {
            id: StreamId(id),
            head: get("/"),
            end: true,
        };
        let result = inject(&mut pair.agent, &[head(first), head(second)], now);
        assert!(
            matches!(result, Err(ProtocolError::StreamIdNotIncreasing { .. })),
            "{first} then {second}: {result:?}"
        );
    }
    let mut pair = open_pair(&Config::default());
    let now = pair.clock;
    let result = inject(
        &mut pair.agent,
        &[Frame::RequestHead {
            id: StreamId(2),
            head: get("/"),
            end: true,
        }],
        now,
    );
    assert!(matches!(
        result,
        Err(ProtocolError::StreamIdNotIncreasing { .. })
    ));
}

#[test]
fn data_on_a_never_opened_stream_is_a_protocol_error() {
    let mut pair = open_pair(&Config::default());
    let now = pair.clock;
    let data = Frame::Data {
        id: StreamId(7),
        data: Bytes::from_static(b"x"),
        end: false,
    };
    let err = inject(&mut pair.agent, std::slice::from_ref(&data), now).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::UnknownStream {
            kind: "DATA",
            id: StreamId(7)
        }
    );
    let err = inject(&mut pair.balancer, &[data], now);
    assert!(err.is_err());
    let mut pair = open_pair(&Config::default());
    let err = inject(
        &mut pair.agent,
        &[Frame::Reset {
            id: StreamId(9),
            code: ResetCode::Cancel,
        }],
        now,
    )
    .unwrap_err();
    assert_eq!(
        err,
        ProtocolError::UnknownStream {
            kind: "RESET",
            id: StreamId(9)
        }
    );
    let mut pair = open_pair(&Config::default());
    let update = Frame::WindowUpdate {
        id: StreamId(9),
        increment: 1,
    };
    assert!(matches!(
        inject(&mut pair.agent, &[update], now),
        Err(ProtocolError::UnknownStream { .. })
    ));
}

#[test]
fn data_on_a_finished_stream_is_a_protocol_error() {
    let mut pair = open_pair(&Config::default());
    let id = pair.balancer.open_stream(get("/"), true).unwrap();
    pair.drive();
    pair.agent.send_response_head(id, ok(0), true).unwrap();
    pair.drive();
    assert_eq!(pair.agent.stream_count(), 0);
    let now = pair.clock;
    let late = Frame::Data {
        id,
        data: Bytes::from_static(b"x"),
        end: false,
    };
    let err = inject(&mut pair.agent, std::slice::from_ref(&late), now).unwrap_err();
    assert_eq!(err, ProtocolError::StreamClosed { kind: "DATA", id });
    assert_eq!(err.code(), ResetCode::StreamClosed);
    assert_eq!(
        inject(&mut pair.balancer, &[late], now).unwrap_err(),
        ProtocolError::StreamClosed { kind: "DATA", id }
    );
}

#[test]
fn data_after_end_stream_is_a_protocol_error() {
    let mut pair = open_pair(&Config::default());
    let id = pair.balancer.open_stream(get("/"), true).unwrap();
    pair.drive();
    let now = pair.clock;
    let late = Frame::Data {
        id,
        data: Bytes::from_static(b"x"),
        end: false,
    };
    let err = inject(&mut pair.agent, &[late], now).unwrap_err();
    assert_eq!(err, ProtocolError::StreamClosed { kind: "DATA", id });
}

#[test]
fn response_data_before_the_head_is_a_protocol_error() {
    let mut pair = open_pair(&Config::default());
    let id = pair.balancer.open_stream(get("/"), true).unwrap();
    pair.drive();
    let now = pair.clock;
    let early = Frame::Data {
        id,
        data: Bytes::from_static(b"x"),
        end: false,
    };
    assert_eq!(
        inject(&mut pair.balancer, &[early], now).unwrap_err(),
        ProtocolError::DataBeforeHead(id)
    );
}

#[test]
fn late_frames_beyond_the_reset_grace_are_errors() {
    let config = Config {
        max_streams: 4,
        ..Config::default()
    };
    let mut pair = open_pair(&config);
    // Reset more streams than the grace remembers (at least 256).
    let mut first = None;
    for _ in 0..300 {
        let id = pair.balancer.open_stream(get("/"), true).unwrap();
        first.get_or_insert(id);
        pair.balancer.reset(id, ResetCode::Cancel);
    }
    let now = pair.clock;
    let first = first.unwrap();
    let recent = StreamId(first.0 + 2 * 299);
    let head = |id| Frame::ResponseHead {
        id,
        head: ok(0),
        end: true,
    };
    assert_eq!(inject(&mut pair.balancer, &[head(recent)], now), Ok(()));
    let err = inject(&mut pair.balancer, &[head(first)], now).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::StreamClosed {
            kind: "RESPONSE_HEAD",
            id: first
        }
    );
}

#[test]
fn goaway_from_the_balancer_drains_existing_streams() {
    let mut pair = open_pair(&Config::default());
    let id = pair.balancer.open_stream(get("/"), true).unwrap();
    pair.drive();
    pair.take_agent_events();
    pair.balancer.go_away(ResetCode::Shutdown);
    assert!(pair.balancer.is_draining() && !pair.balancer.is_closed());
    assert_eq!(
        pair.balancer.open_stream(get("/"), true),
        Err(StreamError::Draining)
    );
    pair.drive();
    assert_eq!(
        pair.take_agent_events(),
        vec![Event::GoAway {
            last_stream_id: id,
            code: ResetCode::Shutdown
        }]
    );
    assert!(pair.agent.is_draining());
    // The existing stream still finishes.
    pair.agent.send_response_head(id, ok(2), false).unwrap();
    pair.agent
        .send_data(id, &mut Bytes::from_static(b"ok"), true)
        .unwrap();
    pair.drive();
    assert_eq!(
        body_of(&pair.take_balancer_events(), id),
        (b"ok".to_vec(), true)
    );
    assert!(
        pair.balancer.is_closed() && pair.agent.is_closed(),
        "drained"
    );
}

#[test]
fn goaway_from_the_agent_refuses_streams_above_its_last_id() {
    let mut pair = open_pair(&Config::default());
    let first = pair.balancer.open_stream(get("/a"), true).unwrap();
    pair.drive();
    pair.take_agent_events();
    // The agent goes away while a second stream is in flight towards it.
    pair.agent.go_away(ResetCode::NoError);
    let second = pair.balancer.open_stream(get("/b"), true).unwrap();
    pair.transmit_balancer();
    pair.drive();
    let events = pair.take_balancer_events();
    assert_eq!(
        events[0],
        Event::GoAway {
            last_stream_id: first,
            code: ResetCode::NoError
        }
    );
    assert_eq!(
        events[1],
        Event::Reset {
            id: second,
            code: ResetCode::Refused
        }
    );
    assert_eq!(
        opened(&pair.take_agent_events()),
        vec![],
        "the second stream is not processed"
    );
    assert_eq!(pair.balancer.stream_count(), 1);
    pair.agent.send_response_head(first, ok(0), true).unwrap();
    pair.drive();
    assert!(pair.balancer.is_closed() && pair.agent.is_closed());
    assert!(pair.balancer_error.is_none() && pair.agent_error.is_none());
}

#[test]
fn heads_larger_than_a_frame_are_refused_locally() {
    let mut pair = open_pair(&Config::default());
    let head = Bytes::from(vec![b'a'; 64 * 1024 + 1]);
    assert!(matches!(
        pair.balancer.open_stream(head, true),
        Err(StreamError::HeadTooLarge { .. })
    ));
}

#[test]
fn send_after_end_is_refused() {
    let mut pair = open_pair(&Config::default());
    let id = pair.balancer.open_stream(get("/"), false).unwrap();
    pair.balancer
        .send_data(id, &mut Bytes::new(), true)
        .unwrap();
    assert_eq!(
        pair.balancer
            .send_data(id, &mut Bytes::from_static(b"x"), true),
        Err(StreamError::AlreadyFinished(id))
    );
}

#[test]
fn reset_before_the_head_left_sends_nothing() {
    let mut pair = open_pair(&Config::default());
    let id = pair.balancer.open_stream(get("/"), false).unwrap();
    pair.balancer
        .send_data(id, &mut Bytes::from_static(b"body"), true)
        .unwrap();
    pair.balancer.reset(id, ResetCode::Cancel);
    assert!(
        pending_frames(&mut pair.balancer).is_empty(),
        "the agent never hears of it"
    );
    // The next stream skips the id, which is allowed (ids only increase).
    let next = pair.balancer.open_stream(get("/"), true).unwrap();
    pair.drive();
    assert_eq!(opened(&pair.take_agent_events()), vec![next]);
    assert!(pair.agent_error.is_none());
}
