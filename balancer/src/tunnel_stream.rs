//! A client task's end of one tunnel stream: opened on an agent connection with
//! `AgentConn::open_stream`, it sends the request body within credit, yields the response's
//! events from the stream's slot (filled by the shared driver, `ringway_io::tunnel`) and
//! releases credit as the client writes to its user.
//!
//! Full duplex: [`TunnelStream::writable`] (send credit) and [`TunnelStream::event`] (response
//! events) wait on separate doorbells, so an upload loop and a download loop may wait at once.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringway_core::tunnel::{ResetCode, StreamId};
use ringway_io::tunnel::StreamSlot;

use crate::agent_conn::AgentConn;
use crate::attempt_stream::AttemptStream;
use ringway_core::exchange::{ErrorKind, ProxyError};

/// What a client task learns about its stream: `Head`, `Data`, `Reset`, `Lost`, `Writable`.
pub(crate) use ringway_io::tunnel::StreamEvent;

impl AgentConn {
    /// Opens a stream carrying a request head (`end`: no body follows).
    pub(crate) fn open_stream(
        self: &Rc<Self>,
        head: Bytes,
        end: bool,
    ) -> Result<TunnelStream, ProxyError> {
        if !self.is_open() {
            return Err(ProxyError::new(ErrorKind::AgentRefused));
        }
        let id = self
            .link
            .conn()
            .open_stream(head, end)
            .map_err(|_| ProxyError::new(ErrorKind::AgentRefused))?;
        let slot = Rc::new(StreamSlot::new(id, false));
        self.link.insert_stream(slot.clone());
        self.count_stream();
        self.load.borrow_mut().start();
        self.link.flush();
        Ok(TunnelStream {
            conn: self.clone(),
            slot,
            started: Instant::now(),
            rtt: Cell::new(None),
            done: Cell::new(false),
        })
    }
}

/// A client task's end of one tunnel stream. Dropping it before the exchange completed resets the
/// stream (the user went away or the balancer gave up on it).
pub(crate) struct TunnelStream {
    conn: Rc<AgentConn>,
    slot: Rc<StreamSlot>,
    started: Instant,
    rtt: Cell<Option<Duration>>,
    done: Cell<bool>,
}

impl TunnelStream {
    pub(crate) fn id(&self) -> StreamId {
        self.slot.id()
    }
}

impl AttemptStream for TunnelStream {
    fn label(&self) -> impl std::fmt::Display {
        self.slot.id()
    }

    /// Also reports `Writable` once per credit arrival — but only on a stream that never
    /// waited in [`Self::writable`]: once an upload waits for credit there, `event` is the
    /// response side's alone.
    async fn event(&self) -> StreamEvent {
        self.slot.event().await
    }

    fn try_event(&self) -> Option<StreamEvent> {
        self.slot.try_event()
    }

    /// Independent of [`Self::event`]; the agent connection closing ends the wait too.
    async fn writable(&self) {
        self.conn.link.writable(&self.slot).await;
    }

    fn send(&self, data: &mut Bytes, end: bool) -> Result<(), ProxyError> {
        if self.conn.link.is_closed() {
            return Err(ProxyError::new(ErrorKind::AgentLost));
        }
        self.conn
            .link
            .send_data(self.id(), data, end)
            .map_err(|_| ProxyError::new(ErrorKind::AgentLost))
    }

    fn release(&self, n: usize) {
        self.conn.link.release(self.id(), n);
    }

    /// GOAWAY received, or closed.
    fn draining(&self) -> bool {
        !self.conn.is_open()
    }

    fn head_received(&self) {
        if self.rtt.get().is_none() {
            self.rtt.set(Some(self.started.elapsed()));
        }
    }

    fn finish(&self) {
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
        let link = &self.conn.link;
        link.remove_stream(self.id());
        if !self.done.get() && !self.slot.is_failed() {
            link.reset(self.id(), ResetCode::Cancel);
        }
        self.conn.stream_ended();
    }
}
