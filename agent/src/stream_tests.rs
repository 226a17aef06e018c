//! The upload half of an exchange against a backend connection that fails under it: the
//! request-body credit taken for a failed write still goes back to the balancer.

use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncWriteRentExt, Splitable};
use monoio::net::TcpStream;
use ringway_core::http::{Limits, RequestParser};
use ringway_core::tunnel::pair::Pair;
use ringway_core::tunnel::{Config, Connection, Event, Frame, FrameDecoder, StreamId};

use super::{upload, Attempt, AttemptError};
use crate::request_body::RequestBody;
use crate::test_runtime::block_on;
use crate::tunnel::{StreamSlot, Tunnel};

const HEAD: &[u8] = b"PUT /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 32768\r\n\r\n";
const PIECE: usize = 16 * 1024;

/// An agent state machine, handshaken with an in-memory balancer that opened one stream and sent
/// `PIECE` body bytes on it (not the end).
fn agent_with_an_upload() -> (Connection, StreamId, Bytes) {
    let config = Config {
        stream_window: 16 * 1024,
        connection_window: 64 * 1024,
        ..Config::default()
    };
    let mut pair = Pair::new(&config);
    assert!(pair.handshake(1, 0));
    let id = pair
        .balancer
        .open_stream(Bytes::from_static(HEAD), false)
        .unwrap();
    pair.balancer
        .send_data(id, &mut Bytes::from(vec![b'b'; PIECE]), false)
        .unwrap();
    pair.drive();
    let data = pair
        .take_agent_events()
        .into_iter()
        .find_map(|e| match e {
            Event::Data { data, .. } => Some(data),
            _ => None,
        })
        .unwrap();
    let agent = std::mem::replace(
        &mut pair.agent,
        Connection::agent(config, ringway_core::tunnel::pair::test_hello(), pair.clock),
    );
    (agent, id, data)
}

/// A backend connection whose peer reset it: every write fails.
async fn reset_connection() -> TcpStream {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut stream = TcpStream::connect_addr(addr).await.unwrap();
    let (peer, _) = listener.accept().unwrap();
    // Bytes the peer never reads when it closes: the kernel answers with a RST.
    let (res, _) = stream.write_all(&b"unread"[..]).await;
    res.unwrap();
    monoio::time::sleep(Duration::from_millis(20)).await;
    drop(peer);
    monoio::time::sleep(Duration::from_millis(50)).await;
    stream
}

fn window_updates(mut out: BytesMut) -> Vec<(StreamId, u32)> {
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut updates = Vec::new();
    while let Some(frame) = decoder.decode(&mut out).unwrap() {
        if let Frame::WindowUpdate { id, increment } = frame {
            updates.push((id, increment));
        }
    }
    updates
}

#[test]
fn credit_of_a_failed_write_is_released() {
    let (agent, id, data) = agent_with_an_upload();
    block_on(async move {
        let tunnel = Tunnel::new("127.0.0.1:1".parse().unwrap(), agent);
        let slot = Rc::new(StreamSlot::new(id, false));
        slot.deliver(data, false);
        let request = RequestParser::new(Limits::default())
            .parse(&mut BytesMut::from(HEAD))
            .unwrap()
            .unwrap();
        let mut body = RequestBody::new(request.framing());
        body.replayable = true;
        let backend = reset_connection().await;
        let (_rd, mut wr) = backend.into_split();
        let attempt = Attempt::default();
        tunnel.take_transmit();
        let result = upload(&tunnel, &slot, &request, &mut body, &mut wr, &attempt).await;
        assert!(
            matches!(result, Err(AttemptError::NoResponse(_))),
            "the write to a reset connection fails: {result:?}"
        );
        assert!(!attempt.sent.get());
        // The bytes taken for the failed write went back: a stream WINDOW_UPDATE is due (half of
        // the 16 KiB window owed). A retry replays them from the log without releasing again.
        assert_eq!(
            window_updates(tunnel.take_transmit()),
            vec![(id, PIECE as u32)]
        );
    });
}
