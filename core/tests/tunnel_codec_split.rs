//! Property: any split of a valid frame stream decodes to the same frames.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use ringway_core::tunnel::{encode, Frame, FrameDecoder, Hello, HelloAck, ResetCode, StreamId};

fn stream_id() -> impl Strategy<Value = StreamId> {
    (1u32..0x7FFF_FFFF).prop_map(StreamId)
}

fn frame() -> impl Strategy<Value = Frame> {
    let bytes = prop::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from);
    prop_oneof![
        (stream_id(), bytes.clone(), any::<bool>()).prop_map(|(id, data, end)| Frame::Data {
            id,
            data,
            end
        }),
        (stream_id(), bytes.clone(), any::<bool>())
            .prop_map(|(id, head, end)| Frame::RequestHead { id, head, end }),
        (stream_id(), bytes, any::<bool>()).prop_map(|(id, head, end)| Frame::ResponseHead {
            id,
            head,
            end
        }),
        (stream_id(), any::<u32>()).prop_map(|(id, c)| Frame::Reset {
            id,
            code: ResetCode::from_wire(c)
        }),
        (0u32..0x7FFF_FFFF, 1u32..0x7FFF_FFFF).prop_map(|(id, increment)| Frame::WindowUpdate {
            id: StreamId(id),
            increment
        }),
        any::<u64>().prop_map(Frame::Ping),
        any::<u64>().prop_map(Frame::Pong),
        (0u32..0x7FFF_FFFF, any::<u32>()).prop_map(|(id, c)| Frame::GoAway {
            last_stream_id: StreamId(id),
            code: ResetCode::from_wire(c)
        }),
        (any::<u16>(), any::<u16>(), any::<u16>()).prop_map(
            |(version, worker_count, worker_index)| Frame::HelloAck(HelloAck {
                version,
                worker_count,
                worker_index
            })
        ),
        (
            any::<u16>(),
            ".{0,20}",
            ".{0,20}",
            prop::collection::vec(".{0,30}", 0..5),
            prop::option::of(0u16..u16::MAX)
        )
            .prop_map(
                |(version, agent_id, token, routes, worker)| Frame::Hello(Hello {
                    version,
                    agent_id,
                    token,
                    routes,
                    worker
                })
            ),
    ]
}

proptest! {
    #[test]
    fn any_split_decodes_to_the_same_frames(
        frames in prop::collection::vec(frame(), 1..20),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut wire = BytesMut::new();
        for f in &frames {
            encode(f, &mut wire);
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.push(wire.len());
        cuts.sort_unstable();

        let mut decoder = FrameDecoder::new(1 << 16);
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut from = 0;
        for cut in cuts {
            buf.extend_from_slice(&wire[from..cut]);
            from = cut;
            while let Some(f) = decoder.decode(&mut buf).unwrap() {
                decoded.push(f);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut buf = BytesMut::from(&bytes[..]);
        let mut decoder = FrameDecoder::new(1024);
        while let Ok(Some(_)) = decoder.decode(&mut buf) {}
    }
}

/// Runs a fixed exchange with reads of at most `max` bytes and returns both sides' events.
fn exchange(
    max: Option<usize>,
) -> (
    Vec<ringway_core::tunnel::Event>,
    Vec<ringway_core::tunnel::Event>,
) {
    use ringway_core::tunnel::pair::Pair;
    use ringway_core::tunnel::Config;
    let mut pair = Pair::new(&Config::default());
    pair.max_delivery = max;
    assert!(pair.handshake(3, 2));
    let ids: Vec<_> = (0..5)
        .map(|i| {
            pair.balancer
                .open_stream(Bytes::from(format!("POST /{i} HTTP/1.1\r\n\r\n")), false)
                .unwrap()
        })
        .collect();
    for (i, &id) in ids.iter().enumerate() {
        pair.balancer
            .send_data(id, &mut Bytes::from(vec![i as u8; 1000 * i]), true)
            .unwrap();
    }
    pair.drive();
    for &id in &ids {
        pair.agent
            .send_response_head(id, Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n"), false)
            .unwrap();
        pair.agent
            .send_data(id, &mut Bytes::from(vec![9u8; 3000]), true)
            .unwrap();
    }
    pair.drive();
    assert!(pair.balancer_error.is_none() && pair.agent_error.is_none());
    (pair.take_balancer_events(), pair.take_agent_events())
}

/// Concatenated DATA per stream, so events are compared independently of how reads split them.
fn normalise(events: Vec<ringway_core::tunnel::Event>) -> Vec<String> {
    use ringway_core::tunnel::Event;
    let mut out = Vec::new();
    let mut bodies: std::collections::BTreeMap<u32, (usize, bool)> = Default::default();
    for event in events {
        match event {
            Event::Data { id, data, end } => {
                let body = bodies.entry(id.0).or_default();
                body.0 += data.len();
                body.1 |= end;
            }
            other => out.push(format!("{other:?}")),
        }
    }
    out.extend(
        bodies
            .into_iter()
            .map(|(id, (len, end))| format!("{id}: {len} {end}")),
    );
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn any_read_size_gives_the_same_events(max in prop_oneof![1usize..4, 4usize..3000]) {
        let (b1, a1) = exchange(None);
        let (b2, a2) = exchange(Some(max));
        prop_assert_eq!(normalise(b1), normalise(b2));
        prop_assert_eq!(normalise(a1), normalise(a2));
    }
}
