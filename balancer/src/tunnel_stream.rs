//! A client task's view of one tunnel stream: the per-stream event queue the connection driver
//! fills (`StreamSlot`), and the handle a client task holds (`TunnelStream`) to send body bytes,
//! wait for response events and release credit as it writes to its user.
//!
//! The two directions are waited on apart, so that an upload and a download of the same
//! stream run at once (full duplex): response events wake [`TunnelStream::event`], send credit
//! wakes [`TunnelStream::writable`].

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringway_core::tunnel::{ResetCode, StreamId};

use crate::agent_conn::AgentConn;
use ringway_core::exchange::{ErrorKind, ProxyError};

/// What a client task learns about its stream.
#[derive(Debug)]
pub(crate) enum StreamEvent {
    /// A response head (1xx interim heads come before the final one).
    Head { head: Bytes, end: bool },
    /// Response body bytes.
    Data { data: Bytes, end: bool },
    /// The agent reset the stream.
    Reset(ResetCode),
    /// The connection is gone. (Streams a GOAWAY says were never processed get
    /// `Reset(Refused)` from core.)
    Lost,
}

#[derive(Default)]
pub(crate) struct StreamSlot {
    pub(crate) events: VecDeque<StreamEvent>,
    pub(crate) writable: bool,
    pub(crate) failed: bool,
    /// The task waiting for response events.
    pub(crate) waker: Option<Waker>,
    /// The task waiting for send credit.
    pub(crate) writable_waker: Option<Waker>,
}

impl StreamSlot {
    pub(crate) fn push(&mut self, event: StreamEvent) {
        if self.failed {
            return;
        }
        if matches!(event, StreamEvent::Lost | StreamEvent::Reset(_)) {
            self.failed = true;
        }
        self.events.push_back(event);
        self.wake();
    }

    pub(crate) fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        if self.failed {
            self.wake_writer();
        }
    }

    /// Send credit became available.
    pub(crate) fn set_writable(&mut self) {
        self.writable = true;
        self.wake_writer();
    }

    fn wake_writer(&mut self) {
        if let Some(w) = self.writable_waker.take() {
            w.wake();
        }
    }
}

/// A client task's end of one tunnel stream. Dropping it before the exchange completed resets the
/// stream (the user went away or the balancer gave up on it).
pub(crate) struct TunnelStream {
    conn: Rc<AgentConn>,
    id: StreamId,
    started: Instant,
    rtt: Cell<Option<Duration>>,
    done: Cell<bool>,
}

impl TunnelStream {
    pub(crate) fn new(conn: Rc<AgentConn>, id: StreamId) -> Self {
        Self {
            conn,
            id,
            started: Instant::now(),
            rtt: Cell::new(None),
            done: Cell::new(false),
        }
    }

    pub(crate) fn id(&self) -> StreamId {
        self.id
    }

    /// The next response event of this stream.
    pub(crate) async fn event(&self) -> StreamEvent {
        poll_fn(|cx| {
            let mut streams = self.conn.streams.borrow_mut();
            let Some(slot) = streams.get_mut(&self.id) else {
                return Poll::Ready(StreamEvent::Lost);
            };
            if let Some(e) = slot.events.pop_front() {
                return Poll::Ready(e);
            }
            slot.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Completes once send credit came back since the last call, or the stream failed (the
    /// next [`TunnelStream::send`] then says so).
    pub(crate) async fn writable(&self) {
        poll_fn(|cx| {
            let mut streams = self.conn.streams.borrow_mut();
            let Some(slot) = streams.get_mut(&self.id) else {
                return Poll::Ready(());
            };
            if std::mem::take(&mut slot.writable) || slot.failed {
                return Poll::Ready(());
            }
            slot.writable_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }

    /// Whether the agent connection takes no new streams (GOAWAY received, or closed).
    pub(crate) fn draining(&self) -> bool {
        !self.conn.is_open()
    }

    /// A queued event, without waiting (to coalesce several DATA frames into one user write).
    pub(crate) fn try_event(&self) -> Option<StreamEvent> {
        self.conn
            .streams
            .borrow_mut()
            .get_mut(&self.id)?
            .events
            .pop_front()
    }

    /// Sends body bytes from the front of `data` as far as credit allows; the rest waits for
    /// `StreamEvent::Writable`. `end` goes out with the last byte.
    pub(crate) fn send(&self, data: &mut Bytes, end: bool) -> Result<(), ProxyError> {
        let res = self.conn.conn.borrow_mut().send_data(self.id, data, end);
        self.conn.tx.notify();
        res.map_err(|_| ProxyError::new(ErrorKind::AgentLost))
    }

    /// The user consumed `n` response bytes: the agent may send that many more.
    pub(crate) fn release(&self, n: usize) {
        if n > 0 && !self.conn.closed.get() {
            self.conn.conn.borrow_mut().release(self.id, n);
            self.conn.tx.notify();
        }
    }

    /// The response head arrived: records the latency for the picker.
    pub(crate) fn head_received(&self) {
        if self.rtt.get().is_none() {
            self.rtt.set(Some(self.started.elapsed()));
        }
    }

    /// The exchange completed in both directions.
    pub(crate) fn finish(&self) {
        self.done.set(true);
    }
}

impl Drop for TunnelStream {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut load = self.conn.load.borrow_mut();
        match self.rtt.get() {
            Some(rtt) => load.finish(now, rtt),
            None => load.abandon(),
        }
        drop(load);
        let slot = self.conn.streams.borrow_mut().remove(&self.id);
        if !self.done.get() && !self.conn.closed.get() {
            let failed = slot.is_some_and(|s| s.failed);
            if !failed {
                self.conn
                    .conn
                    .borrow_mut()
                    .reset(self.id, ResetCode::Cancel);
            }
            self.conn.tx.notify();
        }
        self.conn.stream_ended();
    }
}
