//! One stream as the driver and the stream's own task(s) share it, the same type at both ends.
//!
//! The driver fills the slot: inbound heads and body bytes in order, the stream's failure (the
//! peer's RESET, or the connection lost), and the news that send credit arrived. The stream side
//! drains it. Inbound events and send credit have separate doorbells, so that two tasks may wait
//! on one stream at once — one uploading (waiting for credit), one downloading (waiting for
//! events): full duplex. A third doorbell serves [`StreamSlot::aborted`], which a task can
//! select on while it waits for something else (a backend connection).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use bytes::Bytes;
use ringway_core::tunnel::{ResetCode, StreamId};

use crate::Doorbell;

/// What a stream's task learns from its slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// A head from the peer (at the balancer: a response head; 1xx interim heads come before
    /// the final one).
    Head {
        /// The head bytes.
        head: Bytes,
        /// No body follows.
        end: bool,
    },
    /// Body bytes (decoded); `end` marks the last of this direction (possibly empty).
    Data {
        /// The bytes, a slice of the connection's read buffer.
        data: Bytes,
        /// The last bytes of this direction.
        end: bool,
    },
    /// The peer reset the stream. (Streams a GOAWAY says were never processed get
    /// `Reset(Refused)` from core.)
    Reset(ResetCode),
    /// The connection is gone.
    Lost,
    /// Send credit became available (reported by [`StreamSlot::event`] only to a stream that
    /// never waits with `Link::writable`).
    Writable,
}

/// A stream aborted: reset by the peer (or given up locally), or its tunnel connection is gone
/// (`Cancel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stream reset by the peer or tunnel closed ({0})")]
pub struct StreamAborted(pub ResetCode);

/// How a stream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Reset(ResetCode),
    Lost,
}

/// The shared state of one stream (held in an `Rc` by the driver and the stream's task).
#[derive(Debug)]
pub struct StreamSlot {
    id: StreamId,
    inbound: RefCell<VecDeque<StreamEvent>>,
    /// The inbound direction ended (its last bytes may still be queued).
    end: Cell<bool>,
    failure: Cell<Option<Failure>>,
    /// Credit arrived and [`Self::event`] has not reported it yet.
    credit: Cell<bool>,
    /// Someone waits for credit with `Link::writable`: `event` reports no `Writable` then.
    uses_writable: Cell<bool>,
    /// Rung for inbound events, failure, and (see `credit`) credit.
    events: Doorbell,
    /// Rung for credit and failure.
    pub(super) writable: Doorbell,
    /// Rung for failure.
    aborted: Doorbell,
}

impl StreamSlot {
    /// A slot for stream `id`; `end`: the peer's direction is over already (a request without
    /// a body, or a head-only response).
    pub fn new(id: StreamId, end: bool) -> Self {
        Self {
            id,
            inbound: RefCell::new(VecDeque::new()),
            end: Cell::new(end),
            failure: Cell::new(None),
            credit: Cell::new(false),
            uses_writable: Cell::new(false),
            events: Doorbell::new(),
            writable: Doorbell::new(),
            aborted: Doorbell::new(),
        }
    }

    /// The stream's id.
    pub fn id(&self) -> StreamId {
        self.id
    }

    // ---- the stream side ----

    /// The next event: queued heads and data first, then the failure (every time it is asked),
    /// then `Writable` once per credit arrival unless credit is awaited with `Link::writable`.
    /// One task at a time may wait here.
    pub async fn event(&self) -> StreamEvent {
        loop {
            if let Some(event) = self.try_event() {
                return event;
            }
            if !self.uses_writable.get() && self.credit.replace(false) {
                return StreamEvent::Writable;
            }
            self.events.wait().await;
        }
    }

    /// A queued head or data event, or the failure, without waiting (never `Writable`).
    pub fn try_event(&self) -> Option<StreamEvent> {
        if let Some(event) = self.inbound.borrow_mut().pop_front() {
            return Some(event);
        }
        self.failure.get().map(|f| match f {
            Failure::Reset(code) => StreamEvent::Reset(code),
            Failure::Lost => StreamEvent::Lost,
        })
    }

    /// The next inbound body chunk; `None` at the end of the body. A failure comes first, even
    /// before bytes still queued. One task at a time may wait here.
    pub async fn recv(&self) -> Result<Option<Bytes>, StreamAborted> {
        loop {
            if let Some(code) = self.reset_code() {
                return Err(StreamAborted(code));
            }
            if let Some(chunk) = self.try_pop() {
                return Ok(Some(chunk));
            }
            if self.end.get() {
                return Ok(None);
            }
            self.events.wait().await;
        }
    }

    /// The next non-empty inbound body chunk if one is queued.
    pub fn try_pop(&self) -> Option<Bytes> {
        let mut inbound = self.inbound.borrow_mut();
        while let Some(event) = inbound.pop_front() {
            if let StreamEvent::Data { data, .. } = event {
                if !data.is_empty() {
                    return Some(data);
                }
            }
        }
        None
    }

    /// The inbound body has fully arrived (and may still sit in the queue).
    pub fn is_end(&self) -> bool {
        self.end.get()
    }

    /// Why the stream was aborted, if it was (`Cancel` when the connection was lost).
    pub fn reset_code(&self) -> Option<ResetCode> {
        self.failure.get().map(|f| match f {
            Failure::Reset(code) => code,
            Failure::Lost => ResetCode::Cancel,
        })
    }

    /// Whether the stream was reset or lost.
    pub fn is_failed(&self) -> bool {
        self.failure.get().is_some()
    }

    /// Completes when the stream is reset or its connection closes. Its own doorbell: it may be
    /// awaited while the same task also waits in [`Self::recv`] or for credit.
    pub async fn aborted(&self) -> StreamAborted {
        loop {
            if let Some(code) = self.reset_code() {
                return StreamAborted(code);
            }
            self.aborted.wait().await;
        }
    }

    /// Drops every queued event and returns how many body bytes they held (their credit is
    /// still owed to the peer).
    pub fn take_unread(&self) -> usize {
        self.inbound
            .borrow_mut()
            .drain(..)
            .map(|e| match e {
                StreamEvent::Data { data, .. } => data.len(),
                _ => 0,
            })
            .sum()
    }

    // ---- the driver side ----

    /// Queues inbound body bytes (what the driver does with a DATA frame; tests call it too).
    pub fn deliver(&self, data: Bytes, end: bool) {
        self.push(StreamEvent::Data { data, end }, end);
    }

    /// Queues an inbound head.
    pub fn deliver_head(&self, head: Bytes, end: bool) {
        self.push(StreamEvent::Head { head, end }, end);
    }

    /// Marks the stream failed with `code` (the peer's RESET, or the local end giving up) and
    /// wakes every waiter. The first failure sticks; nothing is queued after it.
    pub fn fail(&self, code: ResetCode) {
        self.set_failure(Failure::Reset(code));
    }

    /// The connection is gone.
    pub(super) fn lose(&self) {
        self.set_failure(Failure::Lost);
    }

    /// Send credit arrived.
    pub(super) fn credit_arrived(&self) {
        self.writable.ring();
        if !self.uses_writable.get() {
            self.credit.set(true);
            self.events.ring();
        }
    }

    /// A task waits for credit with `Link::writable`: `event` stops reporting `Writable`.
    pub(super) fn use_writable(&self) {
        self.uses_writable.set(true);
        self.credit.set(false);
    }

    fn push(&self, event: StreamEvent, end: bool) {
        if self.failure.get().is_some() {
            return;
        }
        if end {
            self.end.set(true);
        }
        self.inbound.borrow_mut().push_back(event);
        self.events.ring();
    }

    fn set_failure(&self, failure: Failure) {
        if self.failure.get().is_some() {
            return;
        }
        self.failure.set(Some(failure));
        self.events.ring();
        self.writable.ring();
        self.aborted.ring();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> StreamSlot {
        StreamSlot::new(StreamId(1), false)
    }

    #[test]
    fn events_come_in_order_then_the_failure_every_time() {
        let s = slot();
        s.deliver_head(Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n"), false);
        s.deliver(Bytes::from_static(b"body"), true);
        s.fail(ResetCode::Cancel);
        s.deliver(Bytes::from_static(b"late"), true);
        assert!(matches!(
            s.try_event(),
            Some(StreamEvent::Head { end: false, .. })
        ));
        assert!(matches!(
            s.try_event(),
            Some(StreamEvent::Data { end: true, .. })
        ));
        assert_eq!(s.try_event(), Some(StreamEvent::Reset(ResetCode::Cancel)));
        assert_eq!(s.try_event(), Some(StreamEvent::Reset(ResetCode::Cancel)));
    }

    #[test]
    fn try_pop_skips_empty_end_markers() {
        let s = slot();
        s.deliver(Bytes::from_static(b"one"), false);
        s.deliver(Bytes::new(), true);
        assert_eq!(s.try_pop().as_deref(), Some(&b"one"[..]));
        assert_eq!(s.try_pop(), None);
        assert!(s.is_end());
    }

    #[test]
    fn credit_is_an_event_only_without_a_writable_waiter() {
        let s = slot();
        s.credit_arrived();
        assert!(s.credit.get());
        assert!(s.writable.take(), "the writable doorbell always rings");
        s.use_writable();
        s.credit_arrived();
        assert!(!s.credit.get(), "credit goes to the writable waiter only");
        assert!(s.writable.take());
    }

    #[test]
    fn a_lost_stream_reads_as_cancel_and_keeps_the_first_failure() {
        let s = slot();
        s.lose();
        s.fail(ResetCode::Refused);
        assert_eq!(s.reset_code(), Some(ResetCode::Cancel));
        assert_eq!(s.try_event(), Some(StreamEvent::Lost));
    }

    #[test]
    fn unread_bytes_are_counted() {
        let s = slot();
        s.deliver(Bytes::from_static(b"abc"), false);
        s.deliver(Bytes::from_static(b"de"), true);
        assert_eq!(s.take_unread(), 5);
        assert_eq!(s.take_unread(), 0);
    }
}
