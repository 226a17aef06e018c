//! Settings of one side of a tunnel connection.

use std::time::Duration;

/// Every receiver accepts frame payloads of at least this size, and DATA frames are never
/// larger, so two ends with different `max_frame_payload` settings still interoperate.
pub const MIN_FRAME_PAYLOAD: u32 = 16 * 1024;

/// Tunnel settings of one side. Windows are receive windows: how much this side lets the peer
/// send before it consumes the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest frame payload accepted (never below [`MIN_FRAME_PAYLOAD`]); also the largest head
    /// this side sends.
    pub max_frame_payload: u32,
    /// Receive window of each stream.
    pub stream_window: u32,
    /// Receive window of the whole connection.
    pub connection_window: u32,
    /// Most streams open at once (the balancer does not open more; the agent refuses more).
    pub max_streams: u32,
    /// A PING goes out after this long without any inbound frame.
    pub ping_interval: Duration,
    /// The connection is dead after this many ping intervals without any inbound frame.
    pub dead_after_missed_pings: u32,
    /// Most PONGs waiting to be transmitted (answers to the peer's PINGs that the driver has not
    /// taken with `poll_transmit` yet, e.g. while its write is blocked on a peer that does not
    /// read). One PING more is a flood: the connection fails with `ENHANCE_YOUR_CALM`. At least 1.
    pub max_queued_pongs: u32,
    /// Balancer: most RESPONSE_HEAD frames (interim 1xx heads and the final head) accepted on
    /// one stream; one more resets the stream with `TOO_MANY_HEADS`. At least 1.
    pub max_response_heads: u32,
    /// Balancer: most routes one HELLO may register; a HELLO with more fails the connection
    /// with `TOO_MANY_ROUTES` before its routes are even read.
    pub max_routes_per_hello: u16,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_payload: 64 * 1024,
            stream_window: 256 * 1024,
            connection_window: 8 * 1024 * 1024,
            max_streams: 1024,
            ping_interval: Duration::from_secs(5),
            dead_after_missed_pings: 3,
            max_queued_pongs: 16,
            max_response_heads: 8,
            max_routes_per_hello: 256,
        }
    }
}
