//! One tunnel connection as its driver tasks and its streams share it: core's state machine,
//! the stream slots, the writer's doorbell, and how and why the connection closed.
//!
//! A `RefCell` borrow of the connection ([`Link::conn`]) is never held across an `.await`.

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use monoio::io::Canceller;
use ringway_core::tunnel::{Connection, ProtocolError, ResetCode, StreamError, StreamId};

use super::slot::StreamSlot;
use crate::{BufPool, Doorbell, IdMap};

/// Bytes asked of the kernel per socket read (and the size of the pool's buffers).
pub const READ_CHUNK: usize = 64 * 1024;
/// Spare buffers the thread's pool keeps.
const SPARE_BUFFERS: usize = 16;

thread_local! {
    static BUFFERS: Rc<BufPool> = Rc::new(BufPool::new(READ_CHUNK, SPARE_BUFFERS));
}

/// This thread's pool of tunnel read and write buffers ([`READ_CHUNK`] bytes each). Every
/// link's driver takes its buffers here and gives them back when it ends; bytes read before a
/// driver starts (an agent's hello) may use it too.
pub fn buffers() -> Rc<BufPool> {
    BUFFERS.with(Rc::clone)
}

/// Why a tunnel connection ended.
#[derive(Debug, thiserror::Error)]
pub enum Exit {
    /// A GOAWAY was sent or received and every stream finished.
    #[error("drained after a goaway")]
    Drained,
    /// The peer closed the socket.
    #[error("peer closed the connection")]
    Eof,
    /// Reading the socket failed.
    #[error("tunnel read failed: {0}")]
    Read(io::Error),
    /// Writing the socket failed.
    #[error("tunnel write failed: {0}")]
    Write(io::Error),
    /// The peer broke the protocol (a GOAWAY saying so was flushed, within a bound).
    #[error("protocol error: {0}")]
    Protocol(ProtocolError),
    /// No frame for too many ping intervals: the peer is gone without a FIN. (The balancer's
    /// tests and operators look for this wording in its log.)
    #[error("heartbeat missed")]
    Dead,
    /// The balancer refused the agent's hello (a GOAWAY before the hello-ack).
    #[error("hello rejected by the balancer: {0}")]
    Rejected(ResetCode),
    /// Closed by its owner (an agent killed, a connection dropped on purpose).
    #[error("closed by its owner")]
    Killed,
}

/// How often the connection read and wrote: a measure of how well frames were coalesced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkStats {
    /// Socket reads.
    pub reads: u64,
    /// Socket writes (each carries every frame queued since the last one).
    pub writes: u64,
}

/// One tunnel connection, shared (`Rc`) by its driver tasks and its streams.
pub struct Link {
    conn: RefCell<Connection>,
    streams: RefCell<IdMap<StreamId, Rc<StreamSlot>>>,
    /// Wakes the writer: something was queued, or the connection closed.
    pub(super) writer: Doorbell,
    /// Wakes the heartbeat when the connection closes.
    pub(super) closing: Doorbell,
    closed: Cell<bool>,
    exit: RefCell<Option<Exit>>,
    /// Cancels the reader's and the writer's blocked socket operations on close.
    pub(super) canceller: RefCell<Option<Canceller>>,
    /// Close once no stream is left, this long after (set by a GOAWAY).
    drain_linger: Cell<Option<Duration>>,
    pub(super) bufs: Rc<BufPool>,
    pub(super) reads: Cell<u64>,
    pub(super) writes: Cell<u64>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("streams", &self.stream_count())
            .field("closed", &self.is_closed())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Link {
    /// A link around `conn`; its read and write buffers come from the thread's pool
    /// ([`buffers`]).
    pub fn new(conn: Connection) -> Rc<Self> {
        Rc::new(Self {
            conn: RefCell::new(conn),
            streams: RefCell::new(IdMap::default()),
            writer: Doorbell::new(),
            closing: Doorbell::new(),
            closed: Cell::new(false),
            exit: RefCell::new(None),
            canceller: RefCell::new(None),
            drain_linger: Cell::new(None),
            bufs: buffers(),
            reads: Cell::new(0),
            writes: Cell::new(0),
        })
    }

    /// The state machine, for calls the helpers below do not cover (`open_stream`,
    /// `send_response_head`, `go_away`, ...). Ring [`Self::flush`] after queueing frames.
    pub fn conn(&self) -> RefMut<'_, Connection> {
        self.conn.borrow_mut()
    }

    /// The state machine, read-only (`stream_count`, `send_credit`, ...).
    pub fn conn_ref(&self) -> Ref<'_, Connection> {
        self.conn.borrow()
    }

    /// Rings the writer: frames were queued. It writes everything queued by then in one write.
    pub fn flush(&self) {
        self.writer.ring();
    }

    /// Whether the connection closed (its streams were told they are lost).
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Closes the connection for `exit` (the first reason sticks): every stream is lost, the
    /// reader and a blocked write are cancelled, and the writer flushes what is queued (a
    /// GOAWAY) once, within a bound — unless the owner killed it — then shuts the socket down.
    pub fn close(&self, exit: Exit) {
        if self.closed.replace(true) {
            return;
        }
        *self.exit.borrow_mut() = Some(exit);
        let slots: Vec<Rc<StreamSlot>> = self.streams.borrow().values().cloned().collect();
        for slot in slots {
            slot.lose();
        }
        if let Some(canceller) = self.canceller.borrow_mut().take() {
            drop(canceller.cancel());
        }
        self.writer.ring();
        self.closing.ring();
    }

    /// Whether its owner closed the connection ([`Exit::Killed`]): nothing is flushed then.
    pub(super) fn killed(&self) -> bool {
        matches!(*self.exit.borrow(), Some(Exit::Killed))
    }

    /// Why the connection closed; `None` while open (taken once).
    pub fn take_exit(&self) -> Option<Exit> {
        self.exit.borrow_mut().take()
    }

    /// Close once no stream is left, `linger` after that (the longest linger asked for wins):
    /// after a GOAWAY, sent or received.
    pub fn close_when_drained(&self, linger: Duration) {
        let linger = self.drain_linger.get().map_or(linger, |l| l.max(linger));
        self.drain_linger.set(Some(linger));
        self.flush();
    }

    /// The linger asked for by [`Self::close_when_drained`], if any.
    pub(super) fn drain_linger(&self) -> Option<Duration> {
        self.drain_linger.get()
    }

    /// Adds the slot of a stream that just opened.
    pub fn insert_stream(&self, slot: Rc<StreamSlot>) {
        self.streams.borrow_mut().insert(slot.id(), slot);
    }

    /// The slot of stream `id`, if its task still holds it.
    pub fn stream(&self, id: StreamId) -> Option<Rc<StreamSlot>> {
        self.streams.borrow().get(&id).cloned()
    }

    /// Forgets stream `id` (its task is done with it, or the peer reset it).
    pub fn remove_stream(&self, id: StreamId) -> Option<Rc<StreamSlot>> {
        let slot = self.streams.borrow_mut().remove(&id);
        if self.drain_linger.get().is_some() {
            // The writer closes a drained connection: let it look again.
            self.flush();
        }
        slot
    }

    /// Streams whose slot is held.
    pub fn stream_count(&self) -> usize {
        self.streams.borrow().len()
    }

    /// `n` received bytes of stream `id` were consumed: the peer may send that many more.
    pub fn release(&self, id: StreamId, n: usize) {
        if n > 0 && !self.is_closed() {
            self.conn.borrow_mut().release(id, n);
            self.flush();
        }
    }

    /// Queues as much of `data` as credit allows (see `Connection::send_data`).
    pub fn send_data(&self, id: StreamId, data: &mut Bytes, end: bool) -> Result<(), StreamError> {
        let sent = self.conn.borrow_mut().send_data(id, data, end);
        self.flush();
        sent
    }

    /// Resets stream `id` towards the peer (no-op once closed).
    pub fn reset(&self, id: StreamId, code: ResetCode) {
        if !self.is_closed() {
            self.conn.borrow_mut().reset(id, code);
            self.flush();
        }
    }

    /// Waits until stream `slot` has send credit, failed, or the connection closed. Level
    /// triggered (it looks at the credit itself), so it misses nothing whoever else waits on
    /// the slot; a stream that waits here once gets no `StreamEvent::Writable` from
    /// `StreamSlot::event` any more. One task at a time may wait here per stream.
    pub async fn writable(&self, slot: &StreamSlot) {
        slot.use_writable();
        loop {
            if slot.is_failed() || self.is_closed() || self.conn.borrow().send_credit(slot.id()) > 0
            {
                return;
            }
            slot.writable.wait().await;
        }
    }

    /// Socket reads and writes so far.
    pub fn stats(&self) -> LinkStats {
        LinkStats {
            reads: self.reads.get(),
            writes: self.writes.get(),
        }
    }
}
