//! What a [`super::Connection`] tells its application.

use bytes::Bytes;

use super::frame::{Hello, HelloAck, ResetCode, StreamId};

/// Something the application must know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Balancer: the agent's hello; answer with [`super::Connection::accept_hello`] or
    /// [`super::Connection::reject_hello`].
    Hello(Hello),
    /// Agent: the balancer accepted the hello.
    HelloAck(HelloAck),
    /// Agent: the balancer opened a stream with this request head.
    StreamOpened {
        /// The new stream.
        id: StreamId,
        /// The request head bytes, ready to write to the backend.
        head: Bytes,
        /// The request has no body.
        end: bool,
    },
    /// Balancer: a response head (interim 1xx heads come before the final one).
    ResponseHead {
        /// The stream.
        id: StreamId,
        /// The response head bytes.
        head: Bytes,
        /// The response has no body.
        end: bool,
    },
    /// Body bytes; call [`super::Connection::release`] once they are consumed.
    Data {
        /// The stream.
        id: StreamId,
        /// The bytes (a zero-copy slice of the input buffer).
        data: Bytes,
        /// The last bytes of this direction.
        end: bool,
    },
    /// The peer reset the stream (or, after its GOAWAY, will never process it: `Refused`), or
    /// this side reset it because the peer exceeded a bound on it (`TooManyHeads`).
    Reset {
        /// The stream.
        id: StreamId,
        /// Why.
        code: ResetCode,
    },
    /// Send credit became available on a stream that had data waiting.
    Writable {
        /// The stream.
        id: StreamId,
    },
    /// The peer is going away: no new streams above `last_stream_id`; existing ones finish.
    /// Before the handshake completes this is the balancer's rejection of the hello.
    GoAway {
        /// The highest stream the peer processes.
        last_stream_id: StreamId,
        /// Why.
        code: ResetCode,
    },
    /// No inbound frame for `dead_after_missed_pings` ping intervals: close the connection.
    Dead,
}
