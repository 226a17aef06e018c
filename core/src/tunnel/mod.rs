//! The tunnel protocol between agent and balancer (specified in docs/PROTOCOL.md).
//!
//! - [`frame`]: the 9-byte header, [`Frame`] and its parts, [`ResetCode`].
//! - [`codec`]: [`encode`] into a caller's `BytesMut`, incremental [`FrameDecoder`].
//! - [`Connection`]: the sans-IO state machine of either side — handshake and version
//!   negotiation, stream-id rules, flow control, heartbeat, GOAWAY drain — with [`Event`]s out.
//! - [`pair`]: an in-memory balancer/agent pair for tests and fuzzing.

mod codec;
mod config;
mod connection;
mod error;
mod event;
mod flow;
pub mod frame;
mod heartbeat;
mod hello;
mod inbound;
#[doc(hidden)]
pub mod pair;
mod stream;

pub use codec::{encode, encoded_len, FrameDecoder};
pub use config::{Config, MIN_FRAME_PAYLOAD};
pub use connection::Connection;
pub use error::{ProtocolError, StreamError};
pub use event::Event;
pub use flow::{INITIAL_CONNECTION_WINDOW, INITIAL_STREAM_WINDOW, MAX_WINDOW};
pub use frame::{
    Frame, Hello, HelloAck, ResetCode, StreamId, END_STREAM, HEADER_LEN, PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
};
