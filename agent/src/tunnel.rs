//! One tunnel connection's driver: socket IO around core's `tunnel::Connection`.
//!
//! The state machine lives in an `Rc<Tunnel>` shared by three kinds of task on one thread:
//! - the **reader** reads the socket, feeds `handle_input` and dispatches events (new streams,
//!   data, resets, credit) to the stream slots;
//! - the **writer** sleeps until something was queued, then encodes every pending frame of every
//!   stream with `poll_transmit` and writes them with one socket write: frames produced during
//!   one loop turn leave together;
//! - the **watchdog** runs the heartbeat timers (pings, `Dead`);
//! - one **stream task** per request (see `stream.rs`), which talks to the state machine through
//!   the methods below and rings the writer's doorbell.
//!
//! A `RefCell` borrow of the connection is never held across an `.await`.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use ringway_core::tunnel::{Connection, Event, HelloAck, ProtocolError, ResetCode, StreamId};

use crate::io::read_append;
use crate::notify::Notify;

/// Bytes asked of the kernel per socket read.
const READ_CHUNK: usize = 64 * 1024;
/// How long an idle connection stays open after GOAWAY before it closes.
const GOAWAY_LINGER: Duration = Duration::from_millis(200);

/// What the driver tells its owner about the connection's life.
pub(crate) trait TunnelHooks {
    /// The balancer accepted the hello.
    fn on_ack(&self, tunnel: &Rc<Tunnel>, ack: HelloAck);
    /// The balancer opened a stream; the owner spawns its stream task.
    fn on_stream(&self, tunnel: &Rc<Tunnel>, slot: Rc<StreamSlot>, head: Bytes, end: bool);
}

/// How a tunnel connection ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TunnelExit {
    /// We or the balancer went away gracefully and every stream finished.
    #[error("closed after goaway")]
    Closed,
    /// The balancer closed the socket.
    #[error("balancer closed the connection")]
    Eof,
    /// Socket error.
    #[error("tunnel socket: {0}")]
    Io(#[from] io::Error),
    /// The balancer broke the protocol.
    #[error("tunnel protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// Heartbeat missed: the balancer is gone without a FIN.
    #[error("balancer stopped answering pings")]
    Dead,
    /// The balancer refused the hello (goaway before hello-ack).
    #[error("balancer rejected the hello: {0}")]
    Rejected(ResetCode),
    /// Killed by its owner.
    #[error("killed")]
    Killed,
}

/// A stream aborted: reset by the balancer, or its tunnel connection is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stream reset by the balancer or tunnel closed ({0})")]
pub(crate) struct StreamAborted(pub(crate) ResetCode);

/// The agent-side view of one stream: inbound body chunks and doorbells.
#[derive(Debug)]
pub(crate) struct StreamSlot {
    pub(crate) id: StreamId,
    inbound: RefCell<VecDeque<Bytes>>,
    end: Cell<bool>,
    reset: Cell<Option<ResetCode>>,
    data: Notify,
    writable: Notify,
    aborted: Notify,
}

impl StreamSlot {
    pub(crate) fn new(id: StreamId, end: bool) -> Self {
        Self {
            id,
            inbound: RefCell::new(VecDeque::new()),
            end: Cell::new(end),
            reset: Cell::new(None),
            data: Notify::new(),
            writable: Notify::new(),
            aborted: Notify::new(),
        }
    }

    fn abort(&self, code: ResetCode) {
        if self.reset.get().is_none() {
            self.reset.set(Some(code));
        }
        self.data.notify();
        self.writable.notify();
        self.aborted.notify();
    }

    /// Queues inbound body bytes as the reader would.
    #[cfg(test)]
    pub(crate) fn deliver(&self, data: Bytes, end: bool) {
        self.inbound.borrow_mut().push_back(data);
        if end {
            self.end.set(true);
        }
    }

    /// The next inbound body chunk if one is here.
    pub(crate) fn try_pop(&self) -> Option<Bytes> {
        self.inbound.borrow_mut().pop_front()
    }

    /// The request body has fully arrived (and may still sit in the queue).
    pub(crate) fn is_end(&self) -> bool {
        self.end.get()
    }

    /// Why the stream was aborted, if it was.
    pub(crate) fn reset_code(&self) -> Option<ResetCode> {
        self.reset.get()
    }

    /// Completes when the stream is reset or its tunnel closes.
    pub(crate) async fn aborted(&self) -> StreamAborted {
        loop {
            if let Some(code) = self.reset.get() {
                return StreamAborted(code);
            }
            self.aborted.notified().await;
        }
    }
}

/// One tunnel connection to one balancer worker.
#[derive(Debug)]
pub(crate) struct Tunnel {
    peer: SocketAddr,
    conn: RefCell<Connection>,
    streams: RefCell<HashMap<StreamId, Rc<StreamSlot>>>,
    /// Doorbell of the writer task.
    flush: Notify,
    /// Graceful close requested: finish streams, flush, exit.
    closing: Cell<bool>,
    /// We sent GOAWAY (drain), as opposed to receiving one.
    sent_goaway: Cell<bool>,
    /// Killed, or the socket is gone.
    closed: Cell<bool>,
    acked: Cell<Option<HelloAck>>,
    /// The balancer broke the protocol; set by the reader, reported by the writer after it
    /// flushed the GOAWAY.
    failed: RefCell<Option<ProtocolError>>,
}

impl Tunnel {
    pub(crate) fn new(peer: SocketAddr, conn: Connection) -> Rc<Self> {
        Rc::new(Self {
            peer,
            conn: RefCell::new(conn),
            streams: RefCell::new(HashMap::new()),
            flush: Notify::new(),
            closing: Cell::new(false),
            sent_goaway: Cell::new(false),
            closed: Cell::new(false),
            acked: Cell::new(None),
            failed: RefCell::new(None),
        })
    }

    /// The balancer address.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The hello-ack, once received.
    pub(crate) fn ack(&self) -> Option<HelloAck> {
        self.acked.get()
    }

    /// Streams in flight on this connection.
    pub(crate) fn active_streams(&self) -> usize {
        self.streams.borrow().len()
    }

    /// Sends GOAWAY (no new streams), lets in-flight streams finish, then closes.
    pub(crate) fn go_away(&self) {
        if !self.sent_goaway.replace(true) {
            self.closing.set(true);
            self.conn.borrow_mut().go_away(ResetCode::NoError);
        }
        self.flush.notify();
    }

    /// Closes at once: every stream is aborted.
    pub(crate) fn kill(&self) {
        self.closed.set(true);
        self.flush.notify();
    }

    /// Runs the connection over `socket` until it ends.
    pub(crate) async fn drive(
        self: &Rc<Self>,
        socket: TcpStream,
        hooks: &dyn TunnelHooks,
    ) -> TunnelExit {
        let (rd, wr) = socket.into_split();
        let exit = monoio::select! {
            exit = self.read_loop(rd, hooks) => exit,
            exit = self.write_loop(wr, hooks) => exit,
            exit = self.watchdog(hooks) => exit,
        };
        self.closed.set(true);
        let slots: Vec<Rc<StreamSlot>> =
            self.streams.borrow_mut().drain().map(|(_, s)| s).collect();
        for slot in slots {
            slot.abort(ResetCode::Cancel);
        }
        exit
    }

    // ---- stream-side API (used by stream tasks) ----

    /// Next inbound body chunk; `None` at the end of the request body.
    pub(crate) async fn recv(&self, slot: &StreamSlot) -> Result<Option<Bytes>, StreamAborted> {
        loop {
            if let Some(code) = slot.reset.get() {
                return Err(StreamAborted(code));
            }
            if let Some(chunk) = slot.inbound.borrow_mut().pop_front() {
                return Ok(Some(chunk));
            }
            if slot.end.get() {
                return Ok(None);
            }
            slot.data.notified().await;
        }
    }

    /// Tells the balancer that `n` received bytes were consumed (credit returns).
    pub(crate) fn release(&self, id: StreamId, n: usize) {
        if n > 0 && !self.closed.get() {
            self.conn.borrow_mut().release(id, n);
            self.flush.notify();
        }
    }

    /// Queues the response head.
    pub(crate) fn send_response_head(
        &self,
        slot: &StreamSlot,
        head: Bytes,
        end: bool,
    ) -> Result<(), StreamAborted> {
        self.check(slot)?;
        let sent = self
            .conn
            .borrow_mut()
            .send_response_head(slot.id, head, end);
        self.flush.notify();
        sent.map_err(|e| {
            // E.g. a head larger than one frame: the balancer must still learn that this stream
            // failed, so reset it here; the stream task then just ends.
            tracing::warn!(stream = %slot.id, error = %e, "response head refused by the state machine");
            self.conn.borrow_mut().reset(slot.id, ResetCode::Internal);
            slot.abort(ResetCode::Internal);
            StreamAborted(ResetCode::Internal)
        })
    }

    /// Queues `data` as DATA frames, waiting for flow-control credit as needed.
    pub(crate) async fn send_data(
        &self,
        slot: &StreamSlot,
        mut data: Bytes,
        end: bool,
    ) -> Result<(), StreamAborted> {
        loop {
            self.check(slot)?;
            let sent = self.conn.borrow_mut().send_data(slot.id, &mut data, end);
            self.flush.notify();
            if let Err(e) = sent {
                tracing::debug!(stream = %slot.id, error = %e, "data refused by the state machine");
                return Err(StreamAborted(ResetCode::StreamClosed));
            }
            if data.is_empty() {
                return Ok(());
            }
            slot.writable.notified().await;
        }
    }

    /// Resets the stream towards the balancer and forgets it.
    pub(crate) fn reset(&self, slot: &StreamSlot, code: ResetCode) {
        if !self.closed.get() && slot.reset.get().is_none() {
            self.conn.borrow_mut().reset(slot.id, code);
            self.flush.notify();
        }
        self.finish(slot);
    }

    /// The stream task is done with the stream.
    pub(crate) fn finish(&self, slot: &StreamSlot) {
        let removed = self.streams.borrow_mut().remove(&slot.id);
        // Body bytes that arrived but were never consumed still hold connection credit.
        let unread: usize = slot.inbound.borrow_mut().drain(..).map(|b| b.len()).sum();
        if removed.is_some() && unread > 0 {
            self.release(slot.id, unread);
        }
        if self.closing.get() {
            self.flush.notify();
        }
    }

    /// Every frame queued so far, encoded (what the writer would send now).
    #[cfg(test)]
    pub(crate) fn take_transmit(&self) -> BytesMut {
        let mut out = BytesMut::new();
        self.conn.borrow_mut().poll_transmit(&mut out);
        out
    }

    fn check(&self, slot: &StreamSlot) -> Result<(), StreamAborted> {
        match slot.reset.get() {
            Some(code) => Err(StreamAborted(code)),
            None if self.closed.get() => Err(StreamAborted(ResetCode::Cancel)),
            None => Ok(()),
        }
    }

    // ---- driver internals ----

    async fn read_loop(
        self: &Rc<Self>,
        mut rd: OwnedReadHalf<TcpStream>,
        hooks: &dyn TunnelHooks,
    ) -> TunnelExit {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            match read_append(&mut rd, &mut buf, READ_CHUNK).await {
                Ok(0) => return TunnelExit::Eof,
                Ok(_) => {}
                Err(e) => return TunnelExit::Io(e),
            }
            let fed = self
                .conn
                .borrow_mut()
                .handle_input(&mut buf, Instant::now());
            if let Err(e) = fed {
                // The state machine queued a GOAWAY saying why: the writer flushes it, then ends
                // the connection.
                tracing::debug!(balancer = %self.peer, error = %e, "protocol error from the balancer");
                *self.failed.borrow_mut() = Some(e);
                self.flush.notify();
                return std::future::pending().await;
            }
            if let Some(exit) = self.dispatch(hooks) {
                return exit;
            }
            self.flush.notify();
        }
    }

    async fn write_loop(
        self: &Rc<Self>,
        mut wr: OwnedWriteHalf<TcpStream>,
        hooks: &dyn TunnelHooks,
    ) -> TunnelExit {
        let mut out = BytesMut::with_capacity(READ_CHUNK);
        let mut linger: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if let Some(exit) = self.dispatch(hooks) {
                return exit;
            }
            out.clear();
            let pending = self.conn.borrow_mut().poll_transmit(&mut out);
            if pending && !out.is_empty() {
                let (res, b) = wr.write_all(out).await;
                out = b;
                if let Err(e) = res {
                    return TunnelExit::Io(e);
                }
                // More may have been queued while the write was in flight.
                continue;
            }
            if let Some(e) = self.failed.borrow_mut().take() {
                return TunnelExit::Protocol(e);
            }
            if self.closed.get() {
                return TunnelExit::Killed;
            }
            let mut deadline = None;
            if self.closing.get() && self.streams.borrow().is_empty() {
                // Idle after our GOAWAY: linger briefly so that requests the balancer sent before
                // it saw the GOAWAY are answered with an explicit Refused (safe to retry
                // elsewhere) instead of a lost connection. After the balancer's GOAWAY nothing
                // new can come: close at once.
                let grace = if self.sent_goaway.get() {
                    GOAWAY_LINGER
                } else {
                    Duration::ZERO
                };
                let until = *linger.get_or_insert_with(|| now + grace);
                if now >= until {
                    return TunnelExit::Closed;
                }
                deadline = Some(until);
            }
            match deadline {
                Some(at) => {
                    let at = monoio::time::Instant::from_std(at);
                    monoio::select! {
                        () = self.flush.notified() => {}
                        () = monoio::time::sleep_until(at) => {}
                    }
                }
                None => self.flush.notified().await,
            }
        }
    }

    /// Heartbeat timers, apart from the writer so that a write blocked on a balancer that stopped
    /// reading cannot keep a dead connection alive: the state machine pings after a quiet
    /// interval and reports `Dead` after missed ones, which ends the connection (and drops the
    /// stuck write).
    async fn watchdog(self: &Rc<Self>, hooks: &dyn TunnelHooks) -> TunnelExit {
        loop {
            let next = self.conn.borrow().poll_timeout();
            let Some(at) = next else {
                return std::future::pending().await;
            };
            monoio::time::sleep_until(monoio::time::Instant::from_std(at)).await;
            self.conn.borrow_mut().handle_timeout(Instant::now());
            if let Some(exit) = self.dispatch(hooks) {
                return exit;
            }
            self.flush.notify();
        }
    }

    /// Drains the state machine's events; `Some` when the connection must end.
    fn dispatch(self: &Rc<Self>, hooks: &dyn TunnelHooks) -> Option<TunnelExit> {
        loop {
            let event = self.conn.borrow_mut().poll_event();
            let event = event?;
            match event {
                Event::HelloAck(ack) => {
                    self.acked.set(Some(ack));
                    hooks.on_ack(self, ack);
                }
                Event::StreamOpened { id, head, end } => {
                    let slot = Rc::new(StreamSlot::new(id, end));
                    self.streams.borrow_mut().insert(id, slot.clone());
                    hooks.on_stream(self, slot, head, end);
                }
                Event::Data { id, data, end } => {
                    let slot = self.streams.borrow().get(&id).cloned();
                    match slot {
                        Some(slot) => {
                            if !data.is_empty() {
                                slot.inbound.borrow_mut().push_back(data);
                            }
                            if end {
                                slot.end.set(true);
                            }
                            slot.data.notify();
                        }
                        // The stream already finished (e.g. the backend answered before reading
                        // the whole upload): the bytes are dropped, their credit returned.
                        None => self.conn.borrow_mut().release(id, data.len()),
                    }
                }
                Event::Reset { id, code } => {
                    let slot = self.streams.borrow_mut().remove(&id);
                    if let Some(slot) = slot {
                        slot.abort(code);
                    }
                }
                Event::Writable { id } => {
                    if let Some(slot) = self.streams.borrow().get(&id) {
                        slot.writable.notify();
                    }
                }
                Event::GoAway {
                    last_stream_id,
                    code,
                } => {
                    if self.acked.get().is_none() {
                        return Some(TunnelExit::Rejected(code));
                    }
                    tracing::info!(balancer = %self.peer, %last_stream_id, %code, "balancer sent goaway");
                    self.closing.set(true);
                }
                Event::Dead => return Some(TunnelExit::Dead),
                other => {
                    tracing::debug!(balancer = %self.peer, event = ?other, "event not meant for an agent");
                }
            }
        }
    }
}
