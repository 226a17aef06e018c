//! Encoding frames into a caller's `BytesMut` and decoding them, incrementally, from one.
//!
//! Payload bytes of heads and DATA frames are `Bytes`: encoding copies them once into the output
//! buffer, decoding hands out zero-copy slices of the input buffer.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::ProtocolError;
use super::frame::{
    kind, Frame, HelloAck, ResetCode, StreamId, END_STREAM, HEADER_LEN, MAX_STREAM_ID,
};
use super::hello::{encode_hello, hello_payload_len, parse_hello};

/// Appends `frame`, header and payload, to `out`.
///
/// Payloads must fit the 24-bit length field (the [`super::Connection`] never builds larger
/// ones); hello strings longer than 65535 bytes are cut to that length.
pub fn encode(frame: &Frame, out: &mut BytesMut) {
    match frame {
        Frame::Data { id, data, end }
        | Frame::RequestHead {
            id,
            head: data,
            end,
        }
        | Frame::ResponseHead {
            id,
            head: data,
            end,
        } => {
            let flags = if *end { END_STREAM } else { 0 };
            put_header(out, data.len(), frame.kind(), flags, *id);
            out.extend_from_slice(data);
        }
        Frame::Reset { id, code } => {
            put_header(out, 4, kind::RESET, 0, *id);
            out.put_u32(code.to_wire());
        }
        Frame::WindowUpdate { id, increment } => {
            put_header(out, 4, kind::WINDOW_UPDATE, 0, *id);
            out.put_u32(*increment & MAX_STREAM_ID);
        }
        Frame::Ping(opaque) | Frame::Pong(opaque) => {
            put_header(out, 8, frame.kind(), 0, StreamId::CONNECTION);
            out.put_u64(*opaque);
        }
        Frame::GoAway {
            last_stream_id,
            code,
        } => {
            put_header(out, 8, kind::GOAWAY, 0, StreamId::CONNECTION);
            out.put_u32(last_stream_id.0 & MAX_STREAM_ID);
            out.put_u32(code.to_wire());
        }
        Frame::HelloAck(ack) => {
            put_header(out, 6, kind::HELLO_ACK, 0, StreamId::CONNECTION);
            out.put_u16(ack.version);
            out.put_u16(ack.worker_count);
            out.put_u16(ack.worker_index);
        }
        Frame::Hello(hello) => encode_hello(hello, out),
    }
}

/// The encoded length of `frame` in bytes, header included.
pub fn encoded_len(frame: &Frame) -> usize {
    HEADER_LEN
        + match frame {
            Frame::Data { data, .. } => data.len(),
            Frame::RequestHead { head, .. } | Frame::ResponseHead { head, .. } => head.len(),
            Frame::Reset { .. } | Frame::WindowUpdate { .. } => 4,
            Frame::Ping(_) | Frame::Pong(_) | Frame::GoAway { .. } => 8,
            Frame::HelloAck(_) => 6,
            Frame::Hello(hello) => hello_payload_len(hello),
        }
}

/// Incremental frame decoder with a payload limit and a limit on the routes of a HELLO.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_payload: u32,
    max_hello_routes: u16,
}

impl FrameDecoder {
    /// A decoder that rejects payloads longer than `max_payload` bytes (and accepts HELLOs with
    /// any number of routes).
    pub const fn new(max_payload: u32) -> Self {
        Self {
            max_payload,
            max_hello_routes: u16::MAX,
        }
    }

    /// The same decoder, rejecting a HELLO that announces more than `max` routes with
    /// [`ProtocolError::TooManyRoutes`] before any route is read.
    #[must_use]
    pub const fn with_max_hello_routes(mut self, max: u16) -> Self {
        self.max_hello_routes = max;
        self
    }

    /// The payload limit.
    pub const fn max_payload(&self) -> u32 {
        self.max_payload
    }

    /// Takes one complete frame off the front of `buf`; `Ok(None)` when `buf` does not hold a
    /// whole frame yet (nothing is consumed then). Unknown frame types and oversize lengths are
    /// reported as soon as the header is in, before the payload arrives.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]);
        let frame_kind = buf[3];
        let flags = buf[4];
        let id = StreamId(u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & MAX_STREAM_ID);
        let name = Frame::kind_name(frame_kind);
        if frame_kind > kind::HELLO_ACK {
            return Err(ProtocolError::UnknownFrameType(frame_kind));
        }
        if len > self.max_payload {
            return Err(ProtocolError::FrameTooLarge {
                kind: name,
                len,
                max: self.max_payload,
            });
        }
        let total = HEADER_LEN + len as usize;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        let len = len as usize;
        if matches!(
            frame_kind,
            kind::DATA | kind::REQUEST_HEAD | kind::RESPONSE_HEAD
        ) {
            // Zero-copy: the frame keeps a slice of the input buffer.
            let payload = buf.split_to(len).freeze();
            return parse_payload(frame_kind, flags, id, payload).map(Some);
        }
        // Control frames are read in place: no reference-counted slice per frame.
        let frame = parse_control(frame_kind, id, &buf[..len], self.max_hello_routes);
        buf.advance(len);
        frame.map(Some)
    }
}

fn parse_payload(
    frame_kind: u8,
    flags: u8,
    id: StreamId,
    payload: Bytes,
) -> Result<Frame, ProtocolError> {
    let end = flags & END_STREAM != 0;
    if id.is_connection() {
        return Err(ProtocolError::WrongStreamId {
            kind: Frame::kind_name(frame_kind),
            id,
        });
    }
    Ok(match frame_kind {
        kind::DATA => Frame::Data {
            id,
            data: payload,
            end,
        },
        kind::REQUEST_HEAD => Frame::RequestHead {
            id,
            head: payload,
            end,
        },
        _ => Frame::ResponseHead {
            id,
            head: payload,
            end,
        },
    })
}

fn parse_control(
    frame_kind: u8,
    id: StreamId,
    mut payload: &[u8],
    max_hello_routes: u16,
) -> Result<Frame, ProtocolError> {
    let name = Frame::kind_name(frame_kind);
    let on_stream = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(ProtocolError::WrongStreamId { kind: name, id })
        }
    };
    let exact = |payload: &[u8], n: usize| {
        if payload.len() == n {
            Ok(())
        } else {
            Err(ProtocolError::Malformed {
                kind: name,
                reason: "wrong payload length",
            })
        }
    };
    Ok(match frame_kind {
        kind::RESET => {
            on_stream(!id.is_connection())?;
            exact(payload, 4)?;
            Frame::Reset {
                id,
                code: ResetCode::from_wire(payload.get_u32()),
            }
        }
        kind::WINDOW_UPDATE => {
            exact(payload, 4)?;
            let increment = payload.get_u32() & MAX_STREAM_ID;
            if increment == 0 {
                return Err(ProtocolError::BadWindowUpdate { id, increment });
            }
            Frame::WindowUpdate { id, increment }
        }
        kind::PING | kind::PONG => {
            on_stream(id.is_connection())?;
            exact(payload, 8)?;
            let opaque = payload.get_u64();
            if frame_kind == kind::PING {
                Frame::Ping(opaque)
            } else {
                Frame::Pong(opaque)
            }
        }
        kind::GOAWAY => {
            on_stream(id.is_connection())?;
            exact(payload, 8)?;
            let last_stream_id = StreamId(payload.get_u32() & MAX_STREAM_ID);
            Frame::GoAway {
                last_stream_id,
                code: ResetCode::from_wire(payload.get_u32()),
            }
        }
        kind::HELLO_ACK => {
            on_stream(id.is_connection())?;
            exact(payload, 6)?;
            Frame::HelloAck(HelloAck {
                version: payload.get_u16(),
                worker_count: payload.get_u16(),
                worker_index: payload.get_u16(),
            })
        }
        kind::HELLO => {
            on_stream(id.is_connection())?;
            Frame::Hello(parse_hello(payload, max_hello_routes)?)
        }
        other => return Err(ProtocolError::UnknownFrameType(other)),
    })
}

pub(crate) fn put_header(out: &mut BytesMut, len: usize, frame_kind: u8, flags: u8, id: StreamId) {
    debug_assert!(
        len <= super::frame::MAX_PAYLOAD_FIELD as usize,
        "payload too long"
    );
    let len = (len as u32).to_be_bytes();
    out.reserve(HEADER_LEN);
    out.put_slice(&len[1..]);
    out.put_u8(frame_kind);
    out.put_u8(flags);
    out.put_u32(id.0 & MAX_STREAM_ID);
}

#[cfg(test)]
mod tests {
    use super::super::frame::Hello;
    use super::*;

    fn round_trip(frame: &Frame) -> Frame {
        let mut out = BytesMut::new();
        encode(frame, &mut out);
        assert_eq!(out.len(), encoded_len(frame), "{frame:?}");
        let mut decoder = FrameDecoder::new(1 << 20);
        let decoded = decoder.decode(&mut out).unwrap().unwrap();
        assert!(out.is_empty(), "{frame:?} left bytes");
        decoded
    }

    fn sample_frames() -> Vec<Frame> {
        vec![
            Frame::Hello(Hello {
                version: 1,
                agent_id: "agent-ä".into(),
                token: "secret".into(),
                routes: vec!["example.com/api".into(), "*.example.org/".into()],
                worker: Some(3),
            }),
            Frame::Hello(Hello {
                version: 7,
                agent_id: String::new(),
                token: String::new(),
                routes: vec![],
                worker: None,
            }),
            Frame::HelloAck(HelloAck {
                version: 1,
                worker_count: 4,
                worker_index: 2,
            }),
            Frame::RequestHead {
                id: StreamId(1),
                head: Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"),
                end: true,
            },
            Frame::ResponseHead {
                id: StreamId(3),
                head: Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n"),
                end: false,
            },
            Frame::Data {
                id: StreamId(5),
                data: Bytes::from(vec![7u8; 1000]),
                end: false,
            },
            Frame::Data {
                id: StreamId(5),
                data: Bytes::new(),
                end: true,
            },
            Frame::Reset {
                id: StreamId(9),
                code: ResetCode::BackendTimeout,
            },
            Frame::Reset {
                id: StreamId(9),
                code: ResetCode::Other(0xdead),
            },
            Frame::WindowUpdate {
                id: StreamId(0),
                increment: 65536,
            },
            Frame::WindowUpdate {
                id: StreamId(11),
                increment: MAX_STREAM_ID,
            },
            Frame::Ping(0x0102_0304_0506_0708),
            Frame::Pong(u64::MAX),
            Frame::GoAway {
                last_stream_id: StreamId(41),
                code: ResetCode::UnsupportedVersion,
            },
        ]
    }

    #[test]
    fn every_frame_round_trips() {
        for frame in sample_frames() {
            assert_eq!(round_trip(&frame), frame);
        }
    }

    #[test]
    fn header_layout_is_length_type_flags_id() {
        let mut out = BytesMut::new();
        let frame = Frame::Data {
            id: StreamId(0x0102_0304),
            data: Bytes::from_static(b"hi"),
            end: true,
        };
        encode(&frame, &mut out);
        assert_eq!(
            &out[..],
            &[0, 0, 2, kind::DATA, END_STREAM, 1, 2, 3, 4, b'h', b'i']
        );
    }

    #[test]
    fn every_code_round_trips_on_the_wire() {
        for code in 0..0x20 {
            assert_eq!(ResetCode::from_wire(code).to_wire(), code);
        }
    }

    #[test]
    fn partial_input_consumes_nothing() {
        let mut whole = BytesMut::new();
        encode(&sample_frames()[0], &mut whole);
        let mut decoder = FrameDecoder::new(1024);
        for cut in 0..whole.len() {
            let mut part = BytesMut::from(&whole[..cut]);
            assert_eq!(decoder.decode(&mut part), Ok(None));
            assert_eq!(part.len(), cut);
        }
    }

    #[test]
    fn unknown_type_is_rejected_from_the_header_alone() {
        let mut buf = BytesMut::from(&[0, 0, 9, 0x42, 0, 0, 0, 0, 1][..]);
        assert_eq!(
            FrameDecoder::new(64).decode(&mut buf),
            Err(ProtocolError::UnknownFrameType(0x42))
        );
    }

    #[test]
    fn oversize_frame_is_rejected_from_the_header_alone() {
        let mut buf = BytesMut::from(&[0, 1, 0, kind::DATA, 0, 0, 0, 0, 1][..]);
        let err = FrameDecoder::new(255).decode(&mut buf).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::FrameTooLarge {
                kind: "DATA",
                len: 256,
                max: 255
            }
        );
        assert_eq!(err.code(), ResetCode::FrameSize);
    }

    #[test]
    fn reserved_stream_id_bit_is_ignored() {
        let mut buf = BytesMut::from(&[0, 0, 0, kind::DATA, 0, 0x80, 0, 0, 5][..]);
        let frame = FrameDecoder::new(64).decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            frame,
            Frame::Data {
                id: StreamId(5),
                data: Bytes::new(),
                end: false
            }
        );
    }

    #[test]
    fn stream_frames_on_stream_zero_are_rejected() {
        for k in [kind::DATA, kind::REQUEST_HEAD, kind::RESPONSE_HEAD] {
            let mut buf = BytesMut::from(&[0, 0, 0, k, 0, 0, 0, 0, 0][..]);
            let err = FrameDecoder::new(64).decode(&mut buf).unwrap_err();
            assert!(matches!(err, ProtocolError::WrongStreamId { .. }), "{err}");
        }
        let mut buf = BytesMut::from(&[0, 0, 4, kind::RESET, 0, 0, 0, 0, 0, 0, 0, 0, 1][..]);
        assert!(matches!(
            FrameDecoder::new(64).decode(&mut buf),
            Err(ProtocolError::WrongStreamId { .. })
        ));
    }

    #[test]
    fn control_frames_on_a_stream_are_rejected() {
        for (k, len) in [
            (kind::PING, 8u8),
            (kind::PONG, 8),
            (kind::GOAWAY, 8),
            (kind::HELLO_ACK, 6),
        ] {
            let mut buf = BytesMut::from(&[0, 0, len, k, 0, 0, 0, 0, 1][..]);
            buf.extend_from_slice(&vec![0; usize::from(len)]);
            let err = FrameDecoder::new(64).decode(&mut buf).unwrap_err();
            assert!(
                matches!(err, ProtocolError::WrongStreamId { .. }),
                "{k}: {err}"
            );
        }
    }

    #[test]
    fn fixed_size_payloads_must_have_their_size() {
        for (k, len) in [
            (kind::RESET, 3u8),
            (kind::WINDOW_UPDATE, 5),
            (kind::PING, 7),
            (kind::GOAWAY, 9),
            (kind::HELLO_ACK, 4),
        ] {
            let id = if k == kind::RESET { 1 } else { 0 };
            let mut buf = BytesMut::from(&[0, 0, len, k, 0, 0, 0, 0, id][..]);
            buf.extend_from_slice(&vec![0; usize::from(len)]);
            let err = FrameDecoder::new(64).decode(&mut buf).unwrap_err();
            assert!(matches!(err, ProtocolError::Malformed { .. }), "{k}: {err}");
        }
    }

    #[test]
    fn zero_window_update_is_rejected() {
        let mut buf =
            BytesMut::from(&[0, 0, 4, kind::WINDOW_UPDATE, 0, 0, 0, 0, 1, 0, 0, 0, 0][..]);
        let err = FrameDecoder::new(64).decode(&mut buf).unwrap_err();
        assert_eq!(err.code(), ResetCode::FlowControl);
    }

    #[test]
    fn malformed_hellos_are_rejected() {
        let good = {
            let mut out = BytesMut::new();
            encode(&sample_frames()[0], &mut out);
            out
        };
        // Truncate the payload but fix up the length field: every cut is malformed.
        for cut in HEADER_LEN..good.len() {
            let mut buf = BytesMut::from(&good[..cut]);
            let len = (cut - HEADER_LEN) as u32;
            buf[..3].copy_from_slice(&len.to_be_bytes()[1..]);
            let err = FrameDecoder::new(1024).decode(&mut buf).unwrap_err();
            assert!(
                matches!(err, ProtocolError::Malformed { kind: "HELLO", .. }),
                "{cut}: {err}"
            );
        }
        // Trailing bytes.
        let mut buf = good.clone();
        buf.extend_from_slice(b"x");
        let len = (buf.len() - HEADER_LEN) as u32;
        buf[..3].copy_from_slice(&len.to_be_bytes()[1..]);
        assert!(FrameDecoder::new(1024).decode(&mut buf).is_err());
        // Invalid UTF-8 in the agent id (first byte of "agent-ä").
        let mut buf = good;
        buf[HEADER_LEN + 6] = 0xFF;
        assert!(FrameDecoder::new(1024).decode(&mut buf).is_err());
    }

    #[test]
    fn decoding_is_zero_copy_for_data() {
        let mut out = BytesMut::new();
        encode(
            &Frame::Data {
                id: StreamId(1),
                data: Bytes::from(vec![1u8; 64]),
                end: false,
            },
            &mut out,
        );
        let start = out.as_ptr() as usize + HEADER_LEN;
        let Some(Frame::Data { data, .. }) = FrameDecoder::new(64).decode(&mut out).unwrap() else {
            panic!("not data");
        };
        assert_eq!(data.as_ptr() as usize, start);
    }
}
