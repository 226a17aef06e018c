//! Errors of the tunnel protocol: what the peer did wrong ([`ProtocolError`], fatal for the
//! connection) and what the local application asked for that cannot be done ([`StreamError`]).

use super::frame::{ResetCode, StreamId};

/// The peer broke the protocol. The connection is dead: the state machine has queued a GOAWAY
/// carrying [`ProtocolError::code`]; the driver flushes `poll_transmit` once and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame type this version does not define.
    #[error("tunnel: unknown frame type {0:#04x}")]
    UnknownFrameType(u8),
    /// A frame's payload is longer than the receiver's limit.
    #[error("tunnel: {kind} frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The frame type's name.
        kind: &'static str,
        /// The payload length the header announced.
        len: u32,
        /// The receiver's limit.
        max: u32,
    },
    /// A frame's payload does not match its type's layout.
    #[error("tunnel: malformed {kind} frame: {reason}")]
    Malformed {
        /// The frame type's name.
        kind: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A stream frame on stream 0, or a connection frame on a stream.
    #[error("tunnel: {kind} frame on the wrong stream id {id}")]
    WrongStreamId {
        /// The frame type's name.
        kind: &'static str,
        /// The id it came with.
        id: StreamId,
    },
    /// A frame other than the hello (or hello-ack) before the handshake completed.
    #[error("tunnel: {kind} frame before the handshake completed")]
    BeforeHandshake {
        /// The frame type's name.
        kind: &'static str,
    },
    /// A second HELLO or HELLO_ACK, or one sent to the wrong side.
    #[error("tunnel: unexpected {kind} frame")]
    UnexpectedHandshake {
        /// The frame type's name.
        kind: &'static str,
    },
    /// The hello asked for a version this side does not speak.
    #[error("tunnel: unsupported protocol version {0}")]
    UnsupportedVersion(u16),
    /// The agent tried to open a stream (only the balancer opens streams), or the balancer sent a
    /// frame only agents send.
    #[error("tunnel: {kind} frame in the wrong direction on stream {id}")]
    WrongDirection {
        /// The frame type's name.
        kind: &'static str,
        /// The stream.
        id: StreamId,
    },
    /// A new stream's id is even, or not above every id used before.
    #[error("tunnel: stream id {id} is not a new odd id above {last}")]
    StreamIdNotIncreasing {
        /// The id received.
        id: StreamId,
        /// The highest id seen before.
        last: StreamId,
    },
    /// A frame on a stream that was never opened.
    #[error("tunnel: {kind} frame on stream {id}, which was never opened")]
    UnknownStream {
        /// The frame type's name.
        kind: &'static str,
        /// The stream.
        id: StreamId,
    },
    /// A DATA or head frame on a stream that is closed (beyond the grace for recently reset ids).
    #[error("tunnel: {kind} frame on closed stream {id}")]
    StreamClosed {
        /// The frame type's name.
        kind: &'static str,
        /// The stream.
        id: StreamId,
    },
    /// DATA before the response head on a stream.
    #[error("tunnel: DATA before the response head on stream {0}")]
    DataBeforeHead(StreamId),
    /// The peer sent more DATA than the stream's or the connection's credit allowed.
    #[error("tunnel: {len} bytes on stream {id} overrun the credit of {credit}")]
    CreditOverrun {
        /// The stream.
        id: StreamId,
        /// The DATA frame's length.
        len: usize,
        /// The credit left (the smaller of stream and connection).
        credit: usize,
    },
    /// A window update that is zero or pushes a window past 2^31 - 1.
    #[error("tunnel: window update of {increment} on stream {id} is invalid")]
    BadWindowUpdate {
        /// The stream (0 = connection).
        id: StreamId,
        /// The increment.
        increment: u32,
    },
    /// The peer sent PINGs faster than their PONGs could be written: more than
    /// `max_queued_pongs` answers were waiting.
    #[error("tunnel: PING flood: {max} PONGs already waiting to be sent")]
    PingFlood {
        /// The configured cap (`max_queued_pongs`).
        max: u32,
    },
    /// A HELLO registering more routes than `max_routes_per_hello`.
    #[error("tunnel: HELLO registers {count} routes, more than the limit of {max}")]
    TooManyRoutes {
        /// The route count the HELLO announced.
        count: u16,
        /// The receiver's limit.
        max: u16,
    },
    /// A call after the connection failed or died.
    #[error("tunnel: the connection is closed")]
    Closed,
}

impl ProtocolError {
    /// The code this error is reported with in the GOAWAY sent to the peer.
    pub const fn code(&self) -> ResetCode {
        match self {
            Self::FrameTooLarge { .. } => ResetCode::FrameSize,
            Self::CreditOverrun { .. } | Self::BadWindowUpdate { .. } => ResetCode::FlowControl,
            Self::StreamClosed { .. } => ResetCode::StreamClosed,
            Self::UnsupportedVersion(_) => ResetCode::UnsupportedVersion,
            Self::PingFlood { .. } => ResetCode::EnhanceYourCalm,
            Self::TooManyRoutes { .. } => ResetCode::TooManyRoutes,
            Self::Closed => ResetCode::NoError,
            Self::UnknownFrameType(_)
            | Self::Malformed { .. }
            | Self::WrongStreamId { .. }
            | Self::BeforeHandshake { .. }
            | Self::UnexpectedHandshake { .. }
            | Self::WrongDirection { .. }
            | Self::StreamIdNotIncreasing { .. }
            | Self::UnknownStream { .. }
            | Self::DataBeforeHead(_) => ResetCode::Protocol,
        }
    }
}

/// A local call that cannot be done on the stream or connection as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The handshake has not completed (or the hello was rejected).
    #[error("tunnel: the handshake has not completed")]
    NotReady,
    /// This side may not do that (agents do not open streams; balancers send no response heads).
    #[error("tunnel: {0} is not allowed on this side of the tunnel")]
    WrongSide(&'static str),
    /// The connection is draining (GOAWAY sent or received): no new streams.
    #[error("tunnel: the connection is draining")]
    Draining,
    /// The connection failed, died or was closed.
    #[error("tunnel: the connection is closed")]
    ConnectionClosed,
    /// As many streams are open as the configuration allows.
    #[error("tunnel: {0} streams are open, the maximum")]
    TooManyStreams(u32),
    /// Every stream id has been used; open a new connection.
    #[error("tunnel: stream ids are exhausted")]
    IdsExhausted,
    /// The stream is not open (never opened, finished, or reset).
    #[error("tunnel: stream {0} is not open")]
    UnknownStream(StreamId),
    /// END_STREAM was already sent on this stream.
    #[error("tunnel: stream {0} already finished sending")]
    AlreadyFinished(StreamId),
    /// Body data before the response head.
    #[error("tunnel: data on stream {0} before its response head")]
    HeadNotSent(StreamId),
    /// A head longer than the largest frame payload.
    #[error("tunnel: a head of {len} bytes exceeds the frame limit of {max}")]
    HeadTooLarge {
        /// The head's length.
        len: usize,
        /// The frame payload limit.
        max: u32,
    },
}
