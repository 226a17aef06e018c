//! Per-stream state: which directions are still open, whether the heads went, and credit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use super::error::StreamError;
use super::flow::{RecvCredit, SendCredit, INITIAL_STREAM_WINDOW};
use super::frame::StreamId;

/// The stream table. Ids are small sequential integers chosen by the balancer, so a
/// multiplicative hash is enough and much cheaper than SipHash on the per-frame path; a peer
/// choosing ids cannot do worse than strictly increasing odd numbers.
pub(crate) type StreamMap = HashMap<StreamId, Stream, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing of a stream id.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

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
    /// Response heads received on this stream (interim ones and the final one).
    pub(crate) heads_received: u32,
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
            heads_received: 0,
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

/// Stream `id` of `streams`, when this side may still send on it: known, and its sending
/// direction not finished.
pub(crate) fn open_for_sending(
    streams: &mut StreamMap,
    id: StreamId,
) -> Result<&mut Stream, StreamError> {
    let stream = streams.get_mut(&id).ok_or(StreamError::UnknownStream(id))?;
    if stream.send_closed {
        return Err(StreamError::AlreadyFinished(id));
    }
    Ok(stream)
}

/// The ids this side reset recently, oldest first, with O(1) lookup: frames the peer sent on
/// them before it saw the RESET are dropped quietly (docs/PROTOCOL.md §4).
#[derive(Debug, Default)]
pub(crate) struct ResetGrace {
    order: VecDeque<StreamId>,
    members: HashSet<StreamId, BuildHasherDefault<IdHasher>>,
}

impl ResetGrace {
    /// Remembers `id`, forgetting the oldest id once `capacity` are remembered.
    pub(crate) fn insert(&mut self, id: StreamId, capacity: usize) {
        if !self.members.insert(id) {
            return;
        }
        self.order.push_back(id);
        while self.order.len() > capacity {
            if let Some(old) = self.order.pop_front() {
                self.members.remove(&old);
            }
        }
    }

    pub(crate) fn contains(&self, id: StreamId) -> bool {
        !self.members.is_empty() && self.members.contains(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_forgets_the_oldest_ids_beyond_its_capacity() {
        let mut grace = ResetGrace::default();
        for id in (1..=9).step_by(2) {
            grace.insert(StreamId(id), 3);
        }
        assert!(!grace.contains(StreamId(1)) && !grace.contains(StreamId(3)));
        assert!(
            grace.contains(StreamId(5))
                && grace.contains(StreamId(7))
                && grace.contains(StreamId(9))
        );
        grace.insert(StreamId(9), 3);
        assert!(
            grace.contains(StreamId(5)),
            "a repeated id does not push others out"
        );
    }
}
