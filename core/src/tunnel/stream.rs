//! Per-stream state: which directions are still open, whether the heads went, and credit.

use super::flow::{RecvCredit, SendCredit, INITIAL_STREAM_WINDOW};

/// One multiplexed request/response exchange on the tunnel.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    /// Credit to send DATA to the peer.
    pub(crate) send: SendCredit,
    /// Credit the peer has to send DATA to us, and what we owe back.
    pub(crate) recv: RecvCredit,
    /// This side sent its head (the balancer's request head goes with the open).
    pub(crate) head_sent: bool,
    /// This side received the peer's head (the agent receives the request head with the open).
    pub(crate) head_received: bool,
    /// END_STREAM (or the last DATA) was queued by this side.
    pub(crate) send_closed: bool,
    /// END_STREAM was received from the peer.
    pub(crate) recv_closed: bool,
    /// Data is waiting for credit: an `Event::Writable` is due when credit comes.
    pub(crate) blocked: bool,
}

impl Stream {
    /// A new stream whose receive window wants to be `window` bytes; returns the increment
    /// to announce right away (see [`RecvCredit::new`]).
    pub(crate) fn new(window: u32) -> (Self, Option<u32>) {
        let (recv, bump) = RecvCredit::new(INITIAL_STREAM_WINDOW, window);
        let stream = Self {
            send: SendCredit::new(INITIAL_STREAM_WINDOW),
            recv,
            head_sent: false,
            head_received: false,
            send_closed: false,
            recv_closed: false,
            blocked: false,
        };
        (stream, bump)
    }

    /// Both directions finished: the stream can be forgotten.
    pub(crate) const fn is_closed(&self) -> bool {
        self.send_closed && self.recv_closed
    }

    /// Bytes received and delivered to the application but not released yet.
    pub(crate) fn unreleased(&self) -> usize {
        self.recv.unreleased()
    }
}
