//! The request body of one stream as the backend exchange consumes it, with a bounded replay
//! log: a reused pooled connection may turn out stale only once bytes were already written to
//! it, and a retry on a fresh connection must send them again. Bytes are kept (as refcounted
//! `Bytes`, no copy) while the attempt is on a reused connection and the total stays under
//! [`REPLAY_LIMIT`]; past that, a stale connection is reported instead of retried.

use bytes::Bytes;
use ringway_core::http::BodyFraming;

use crate::tunnel::{StreamAborted, StreamSlot, Tunnel};

/// Request-body bytes kept for a replay on a fresh connection.
pub(crate) const REPLAY_LIMIT: usize = 64 * 1024;

/// One step of the request body.
pub(crate) enum BodyChunk {
    /// `fresh`: first time these bytes are written (their credit is released after the write);
    /// replayed bytes were released already.
    Data {
        data: Bytes,
        fresh: bool,
    },
    End,
    /// Nothing available right now.
    Pending,
}

/// The request body as received from the tunnel, with a bounded replay log for one retry.
pub(crate) struct RequestBody {
    pub(crate) framing: BodyFraming,
    log: Vec<Bytes>,
    log_bytes: usize,
    replay_at: usize,
    /// Keep a log (the current attempt is on a reused connection and may be retried).
    pub(crate) replayable: bool,
    overflowed: bool,
}

impl RequestBody {
    pub(crate) fn new(framing: BodyFraming) -> Self {
        Self {
            framing,
            log: Vec::new(),
            log_bytes: 0,
            replay_at: 0,
            replayable: false,
            overflowed: false,
        }
    }

    /// Starts over for a retry; false when the body sent so far cannot be replayed.
    pub(crate) fn rewind(&mut self) -> bool {
        if self.overflowed {
            return false;
        }
        self.replay_at = 0;
        true
    }

    pub(crate) async fn next(
        &mut self,
        tunnel: &Tunnel,
        slot: &StreamSlot,
    ) -> Result<BodyChunk, StreamAborted> {
        if let Some(chunk) = self.replay() {
            return Ok(chunk);
        }
        match tunnel.recv(slot).await? {
            Some(data) => Ok(self.logged(data)),
            None => Ok(BodyChunk::End),
        }
    }

    pub(crate) fn try_next(&mut self, slot: &StreamSlot) -> Result<BodyChunk, StreamAborted> {
        if let Some(chunk) = self.replay() {
            return Ok(chunk);
        }
        if let Some(code) = slot.reset_code() {
            return Err(StreamAborted(code));
        }
        let popped = slot.try_pop();
        Ok(match popped {
            Some(data) => self.logged(data),
            None if slot.is_end() => BodyChunk::End,
            None => BodyChunk::Pending,
        })
    }

    fn replay(&mut self) -> Option<BodyChunk> {
        let data = self.log.get(self.replay_at)?.clone();
        self.replay_at += 1;
        Some(BodyChunk::Data { data, fresh: false })
    }

    fn logged(&mut self, data: Bytes) -> BodyChunk {
        if self.replayable && !self.overflowed {
            if self.log_bytes + data.len() <= REPLAY_LIMIT {
                self.log_bytes += data.len();
                self.log.push(data.clone());
                self.replay_at = self.log.len();
            } else {
                self.overflowed = true;
                self.log.clear();
                self.replay_at = 0;
            }
        }
        BodyChunk::Data { data, fresh: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringway_core::tunnel::StreamId;

    fn data(chunk: BodyChunk) -> (Bytes, bool) {
        match chunk {
            BodyChunk::Data { data, fresh } => (data, fresh),
            BodyChunk::End => panic!("end"),
            BodyChunk::Pending => panic!("pending"),
        }
    }

    #[test]
    fn replays_what_was_sent_then_continues_with_new_bytes() {
        let slot = StreamSlot::new(StreamId(1), false);
        let mut body = RequestBody::new(BodyFraming::Chunked);
        body.replayable = true;
        slot.deliver(Bytes::from_static(b"one"), false);
        slot.deliver(Bytes::from_static(b"two"), false);
        assert_eq!(
            data(body.try_next(&slot).unwrap()),
            (Bytes::from_static(b"one"), true)
        );
        assert_eq!(
            data(body.try_next(&slot).unwrap()),
            (Bytes::from_static(b"two"), true)
        );
        assert!(matches!(body.try_next(&slot).unwrap(), BodyChunk::Pending));
        // Stale connection: start over on a fresh one, which keeps no log.
        assert!(body.rewind());
        body.replayable = false;
        assert_eq!(
            data(body.try_next(&slot).unwrap()),
            (Bytes::from_static(b"one"), false)
        );
        assert_eq!(
            data(body.try_next(&slot).unwrap()),
            (Bytes::from_static(b"two"), false)
        );
        slot.deliver(Bytes::from_static(b"three"), true);
        assert_eq!(
            data(body.try_next(&slot).unwrap()),
            (Bytes::from_static(b"three"), true)
        );
        assert!(matches!(body.try_next(&slot).unwrap(), BodyChunk::End));
    }

    #[test]
    fn a_body_past_the_limit_cannot_be_replayed() {
        let slot = StreamSlot::new(StreamId(1), false);
        let mut body = RequestBody::new(BodyFraming::Length(REPLAY_LIMIT as u64 + 1));
        body.replayable = true;
        slot.deliver(Bytes::from(vec![0u8; REPLAY_LIMIT]), false);
        slot.deliver(Bytes::from_static(b"x"), true);
        data(body.try_next(&slot).unwrap());
        assert!(body.rewind(), "exactly at the limit is still replayable");
        data(body.try_next(&slot).unwrap());
        data(body.try_next(&slot).unwrap());
        assert!(!body.rewind());
    }
}
