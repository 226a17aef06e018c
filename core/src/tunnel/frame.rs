//! Frame types of the tunnel protocol: the 9-byte header, the frame enum and the error codes.
//!
//! The byte layout of every frame is specified in docs/PROTOCOL.md; [`super::encode`] and
//! [`super::FrameDecoder`] turn these types into bytes and back.

use std::fmt;

use bytes::Bytes;

/// Size of the fixed frame header: payload length (u24), type (u8), flags (u8), stream id (u32).
pub const HEADER_LEN: usize = 9;

/// Largest payload length the 24-bit length field can express.
pub const MAX_PAYLOAD_FIELD: u32 = (1 << 24) - 1;

/// The END_STREAM flag: the last frame the sender sends on this stream.
pub const END_STREAM: u8 = 0x1;

/// The protocol version this implementation speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Every version this implementation can speak, most preferred first.
pub const SUPPORTED_VERSIONS: &[u16] = &[PROTOCOL_VERSION];

/// Largest stream id (the high bit of the 32-bit field is reserved).
pub const MAX_STREAM_ID: u32 = 0x7FFF_FFFF;

/// Frame type codes on the wire.
pub mod kind {
    /// DATA: body bytes of a stream.
    pub const DATA: u8 = 0x0;
    /// REQUEST_HEAD: opens a stream (balancer → agent).
    pub const REQUEST_HEAD: u8 = 0x1;
    /// RESPONSE_HEAD: a response head on a stream (agent → balancer).
    pub const RESPONSE_HEAD: u8 = 0x2;
    /// RESET: abort a stream with a code.
    pub const RESET: u8 = 0x3;
    /// WINDOW_UPDATE: grant send credit (stream id 0 = the connection).
    pub const WINDOW_UPDATE: u8 = 0x4;
    /// PING: liveness probe with 8 opaque bytes.
    pub const PING: u8 = 0x5;
    /// PONG: answer to a PING, echoing its 8 bytes.
    pub const PONG: u8 = 0x6;
    /// GOAWAY: no new streams above `last_stream_id`; also carries connection errors.
    pub const GOAWAY: u8 = 0x7;
    /// HELLO: the agent's first frame.
    pub const HELLO: u8 = 0x8;
    /// HELLO_ACK: the balancer's answer to an accepted HELLO.
    pub const HELLO_ACK: u8 = 0x9;
}

/// A stream id. Only the balancer opens streams, with odd ids 1, 3, 5, … increasing; 0 names the
/// connection itself (window updates, control frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u32);

impl StreamId {
    /// The connection-level id used by control frames and connection window updates.
    pub const CONNECTION: Self = Self(0);

    /// The raw id.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// True for id 0 (the connection).
    pub const fn is_connection(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Error codes carried by RESET and GOAWAY frames (one code space, u32 on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetCode {
    /// Graceful: no error (GOAWAY of a drain, RESET of a stream that is no longer wanted).
    NoError,
    /// The peer broke the protocol.
    Protocol,
    /// The agent's backend refused the connection, or the stream was refused before any
    /// processing (safe to retry elsewhere).
    Refused,
    /// The backend reset or closed its connection mid-response.
    BackendReset,
    /// The backend did not answer in time.
    BackendTimeout,
    /// The stream is no longer needed (e.g. the user went away).
    Cancel,
    /// The peer sent more than its credit allowed.
    FlowControl,
    /// An internal error in the sender.
    Internal,
    /// A frame was larger than the receiver's limit.
    FrameSize,
    /// A frame arrived on a stream that was already closed.
    StreamClosed,
    /// The hello asked for a protocol version the balancer does not speak.
    UnsupportedVersion,
    /// The hello's token was not accepted.
    Unauthorized,
    /// The hello asked for a route the agent may not register, or a malformed one.
    BadRoute,
    /// The sender is shutting down.
    Shutdown,
    /// The peer sends more than the receiver will hold for it: control frames (PINGs) faster
    /// than it reads the answers (`max_queued_pongs`).
    EnhanceYourCalm,
    /// The hello registers more routes than the balancer accepts (`max_routes_per_hello`, or the
    /// agent's total over its connections).
    TooManyRoutes,
    /// More response heads on one stream than the receiver accepts (`max_response_heads`).
    TooManyHeads,
    /// The hello's token is valid but does not allow one of its routes (a scoped token; or,
    /// after a reload narrowed the token's scope, a route the connection holds). An agent that
    /// predates the code sees it as [`ResetCode::Other`]`(0x11)`, still a rejection.
    OutOfScope,
    /// A code this implementation does not know, kept as it came.
    Other(u32),
}

impl ResetCode {
    /// The code's value on the wire.
    pub const fn to_wire(self) -> u32 {
        match self {
            Self::NoError => 0x0,
            Self::Protocol => 0x1,
            Self::Refused => 0x2,
            Self::BackendReset => 0x3,
            Self::BackendTimeout => 0x4,
            Self::Cancel => 0x5,
            Self::FlowControl => 0x6,
            Self::Internal => 0x7,
            Self::FrameSize => 0x8,
            Self::StreamClosed => 0x9,
            Self::UnsupportedVersion => 0xA,
            Self::Unauthorized => 0xB,
            Self::BadRoute => 0xC,
            Self::Shutdown => 0xD,
            Self::EnhanceYourCalm => 0xE,
            Self::TooManyRoutes => 0xF,
            Self::TooManyHeads => 0x10,
            Self::OutOfScope => 0x11,
            Self::Other(code) => code,
        }
    }

    /// The code for a wire value; unknown values are kept as [`ResetCode::Other`].
    pub const fn from_wire(code: u32) -> Self {
        match code {
            0x0 => Self::NoError,
            0x1 => Self::Protocol,
            0x2 => Self::Refused,
            0x3 => Self::BackendReset,
            0x4 => Self::BackendTimeout,
            0x5 => Self::Cancel,
            0x6 => Self::FlowControl,
            0x7 => Self::Internal,
            0x8 => Self::FrameSize,
            0x9 => Self::StreamClosed,
            0xA => Self::UnsupportedVersion,
            0xB => Self::Unauthorized,
            0xC => Self::BadRoute,
            0xD => Self::Shutdown,
            0xE => Self::EnhanceYourCalm,
            0xF => Self::TooManyRoutes,
            0x10 => Self::TooManyHeads,
            0x11 => Self::OutOfScope,
            other => Self::Other(other),
        }
    }
}

impl fmt::Display for ResetCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::NoError => "no error",
            Self::Protocol => "protocol error",
            Self::Refused => "refused",
            Self::BackendReset => "backend reset",
            Self::BackendTimeout => "backend timeout",
            Self::Cancel => "cancelled",
            Self::FlowControl => "flow-control error",
            Self::Internal => "internal error",
            Self::FrameSize => "frame too large",
            Self::StreamClosed => "stream closed",
            Self::UnsupportedVersion => "unsupported version",
            Self::Unauthorized => "unauthorized",
            Self::BadRoute => "bad route",
            Self::Shutdown => "shutting down",
            Self::EnhanceYourCalm => "enhance your calm (flood)",
            Self::TooManyRoutes => "too many routes",
            Self::TooManyHeads => "too many response heads",
            Self::OutOfScope => "route outside the token's scope",
            Self::Other(code) => return write!(f, "unknown code {code:#x}"),
        };
        f.write_str(name)
    }
}

/// The agent's first frame: who it is, what it may serve, which protocol version it speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The protocol version the agent speaks.
    pub version: u16,
    /// A stable name of the agent (for logs and metrics).
    pub agent_id: String,
    /// The shared secret the balancer checks.
    pub token: String,
    /// Routes the agent serves, each `"host/prefix"` (e.g. `"example.com/api"`).
    pub routes: Vec<String>,
    /// The balancer worker this connection wants to be pinned to; `None` = any (first connection).
    pub worker: Option<u16>,
}

/// The balancer's answer to an accepted hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloAck {
    /// The protocol version chosen for this connection.
    pub version: u16,
    /// How many workers the balancer runs (the agent opens one connection per worker).
    pub worker_count: u16,
    /// The worker this connection is pinned to.
    pub worker_index: u16,
}

/// One frame of the tunnel protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// HELLO (agent → balancer, first frame).
    Hello(Hello),
    /// HELLO_ACK (balancer → agent, first frame).
    HelloAck(HelloAck),
    /// REQUEST_HEAD: opens stream `id` with the normalised HTTP/1.1 request head.
    RequestHead {
        /// The new stream.
        id: StreamId,
        /// The request head bytes, through the final CRLF CRLF.
        head: Bytes,
        /// No body follows.
        end: bool,
    },
    /// RESPONSE_HEAD: a response head (1xx interim heads come before the final one).
    ResponseHead {
        /// The stream.
        id: StreamId,
        /// The response head bytes.
        head: Bytes,
        /// No body follows.
        end: bool,
    },
    /// DATA: decoded body bytes.
    Data {
        /// The stream.
        id: StreamId,
        /// The bytes.
        data: Bytes,
        /// The last frame of this direction of the stream.
        end: bool,
    },
    /// RESET: abort a stream.
    Reset {
        /// The stream.
        id: StreamId,
        /// Why.
        code: ResetCode,
    },
    /// WINDOW_UPDATE: grant `increment` more bytes of send credit.
    WindowUpdate {
        /// The stream, or [`StreamId::CONNECTION`] for the connection window.
        id: StreamId,
        /// Bytes of credit added (1 ..= 2^31 - 1).
        increment: u32,
    },
    /// PING with 8 opaque bytes.
    Ping(u64),
    /// PONG echoing a PING's bytes.
    Pong(u64),
    /// GOAWAY: no stream above `last_stream_id` will be processed.
    GoAway {
        /// The highest stream id the sender processed or will process.
        last_stream_id: StreamId,
        /// Why the connection goes away.
        code: ResetCode,
    },
}

impl Frame {
    /// The frame's type code on the wire.
    pub const fn kind(&self) -> u8 {
        match self {
            Self::Hello(_) => kind::HELLO,
            Self::HelloAck(_) => kind::HELLO_ACK,
            Self::RequestHead { .. } => kind::REQUEST_HEAD,
            Self::ResponseHead { .. } => kind::RESPONSE_HEAD,
            Self::Data { .. } => kind::DATA,
            Self::Reset { .. } => kind::RESET,
            Self::WindowUpdate { .. } => kind::WINDOW_UPDATE,
            Self::Ping(_) => kind::PING,
            Self::Pong(_) => kind::PONG,
            Self::GoAway { .. } => kind::GOAWAY,
        }
    }

    /// The stream the frame belongs to ([`StreamId::CONNECTION`] for control frames).
    pub const fn stream_id(&self) -> StreamId {
        match self {
            Self::RequestHead { id, .. }
            | Self::ResponseHead { id, .. }
            | Self::Data { id, .. }
            | Self::Reset { id, .. }
            | Self::WindowUpdate { id, .. } => *id,
            Self::Hello(_)
            | Self::HelloAck(_)
            | Self::Ping(_)
            | Self::Pong(_)
            | Self::GoAway { .. } => StreamId::CONNECTION,
        }
    }

    /// The name of a frame type code, for errors and logs.
    pub const fn kind_name(kind: u8) -> &'static str {
        match kind {
            kind::DATA => "DATA",
            kind::REQUEST_HEAD => "REQUEST_HEAD",
            kind::RESPONSE_HEAD => "RESPONSE_HEAD",
            kind::RESET => "RESET",
            kind::WINDOW_UPDATE => "WINDOW_UPDATE",
            kind::PING => "PING",
            kind::PONG => "PONG",
            kind::GOAWAY => "GOAWAY",
            kind::HELLO => "HELLO",
            kind::HELLO_ACK => "HELLO_ACK",
            _ => "unknown",
        }
    }
}
