//! One agent tunnel connection on the worker that owns it: a thin driver over core's
//! `tunnel::Connection` (balancer role).
//!
//! Two tasks drive a connection. The reader reads into one buffer, feeds every complete frame to
//! the state machine and hands each event to the stream it belongs to (a per-stream queue the
//! client task drains). The writer sleeps until something is queued (a client task opened a
//! stream, sent body bytes or released credit; the reader got a ping) or the heartbeat is due,
//! then encodes every pending frame of every stream into one buffer and writes it with one
//! write: many requests' frames share one syscall.
//!
//! Memory is bounded by the windows: the agent may send a stream at most its window, and a client
//! task releases credit only once it has written those bytes to its user, so a slow user stalls
//! only its own stream.

use std::cell::{Cell, Ref, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, CancelableAsyncReadRent, Canceller,
    OwnedReadHalf, OwnedWriteHalf, Splitable,
};
use monoio::net::TcpStream;
use ringway_core::pick::EndpointLoad;
use ringway_core::tunnel::{Connection, Event, Hello, ResetCode, StreamId};
use tracing::{debug, info, warn};

use crate::handoff;
use crate::registry::RouteId;
use crate::signal::IdMap;
use crate::tunnel_stream::{StreamEvent, StreamSlot, TunnelStream};
use crate::worker::Worker;
use ringway_core::exchange::{ErrorKind, ProxyError};

/// How long a new agent connection may take to send its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes asked of one read.
const READ_CHUNK: usize = 64 * 1024;
/// How long the last write of a closed connection (its GOAWAY) may take.
const FINAL_FLUSH: Duration = Duration::from_secs(1);

/// One agent connection owned by this worker.
pub(crate) struct AgentConn {
    key: u64,
    agent_id: String,
    routes: Vec<RouteId>,
    pub(crate) conn: RefCell<Connection>,
    pub(crate) streams: RefCell<IdMap<StreamId, StreamSlot>>,
    pub(crate) load: RefCell<EndpointLoad>,
    /// Wakes the writer.
    pub(crate) tx: crate::signal::Signal,
    /// New streams may be opened (not draining, not closed).
    open: Cell<bool>,
    pub(crate) closed: Cell<bool>,
    reader: RefCell<Option<Canceller>>,
    worker: Rc<Worker>,
    stats: ConnStats,
}

/// Counters logged when the connection closes: how well frames were coalesced.
#[derive(Default)]
struct ConnStats {
    streams: Cell<u64>,
    reads: Cell<u64>,
    writes: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// Reads the hello of a new agent connection; serves it here or hands it to the worker it asked for.
/// `received` holds bytes already read (by the worker that handed it over).
pub(crate) async fn accept(
    worker: Rc<Worker>,
    stream: TcpStream,
    peer: SocketAddr,
    received: Bytes,
    handed: bool,
) {
    let mut stream = stream;
    let mut conn = Connection::balancer(worker.tunnel.clone(), Instant::now());
    let mut raw = BytesMut::from(&received[..]);
    let mut pending = raw.clone();
    let deadline = Instant::now() + HELLO_TIMEOUT;
    let hello = loop {
        if let Err(e) = conn.handle_input(&mut pending, Instant::now()) {
            warn!(%peer, error = %e, "agent broke the protocol before its hello");
            // The GOAWAY with the error's code (e.g. TOO_MANY_ROUTES) tells the agent why.
            let mut out = BytesMut::new();
            conn.poll_transmit(&mut out);
            let at = (Instant::now() + FINAL_FLUSH).into();
            let _ = monoio::time::timeout_at(at, stream.write_all(out)).await;
            let _ = stream.shutdown().await;
            return;
        }
        if let Some(hello) = take_hello(&mut conn) {
            break hello;
        }
        let buf = std::mem::take(&mut pending);
        let read = monoio::time::timeout_at(deadline.into(), read_more(&mut stream, buf)).await;
        let Ok((res, buf)) = read else {
            warn!(%peer, "agent sent no hello in time");
            return;
        };
        pending = buf;
        match res {
            Ok(0) | Err(_) => {
                debug!(%peer, "agent connection closed before its hello");
                return;
            }
            Ok(n) => raw.extend_from_slice(&pending[pending.len() - n..]),
        }
    };
    if let Some(target) = hello.worker {
        if !handed && target != worker.index && target < worker.count {
            handoff::send(&worker, target, stream, raw.freeze(), peer);
            return;
        }
    }
    serve(worker, conn, hello, stream, pending, peer).await;
}

fn take_hello(conn: &mut Connection) -> Option<Hello> {
    while let Some(event) = conn.poll_event() {
        if let Event::Hello(hello) = event {
            return Some(hello);
        }
    }
    None
}

async fn read_more<R: AsyncReadRent>(
    r: &mut R,
    mut buf: BytesMut,
) -> (std::io::Result<usize>, BytesMut) {
    buf.reserve(READ_CHUNK);
    let len = buf.len();
    let cap = buf.capacity();
    let (res, slice) = r.read(buf.slice_mut(len..cap)).await;
    (res, slice.into_inner())
}

/// Registers the agent's routes (or rejects it), then drives the connection until it ends.
async fn serve(
    worker: Rc<Worker>,
    mut conn: Connection,
    hello: Hello,
    stream: TcpStream,
    pending: BytesMut,
    peer: SocketAddr,
) {
    let (rd, mut wr) = stream.into_split();
    // Held until this function returns (the connection closed): then the routes let go.
    let registration = match worker
        .registry
        .register(&hello.agent_id, &hello.routes, &hello.token)
    {
        Ok(registration) => registration,
        Err(e) => {
            let code = match e {
                crate::registry::RegisterError::BadToken { .. } => ResetCode::Unauthorized,
                crate::registry::RegisterError::InvalidRoute { .. } => ResetCode::BadRoute,
                crate::registry::RegisterError::TooManyRoutes { .. } => ResetCode::TooManyRoutes,
            };
            warn!(agent = %hello.agent_id, %peer, error = %e, "agent rejected");
            conn.reject_hello(code);
            let mut out = BytesMut::new();
            conn.poll_transmit(&mut out);
            let _ = wr.write_all(out).await;
            let _ = wr.shutdown().await;
            return;
        }
    };
    conn.accept_hello(worker.count, worker.index);
    let agent = Rc::new(AgentConn {
        key: worker.next_conn_key(),
        agent_id: hello.agent_id.clone(),
        routes: registration.ids().to_vec(),
        conn: RefCell::new(conn),
        streams: RefCell::new(IdMap::default()),
        load: RefCell::new(EndpointLoad::new()),
        tx: crate::signal::Signal::default(),
        open: Cell::new(true),
        closed: Cell::new(false),
        reader: RefCell::new(Some(Canceller::new())),
        worker: worker.clone(),
        stats: ConnStats::default(),
    });
    info!(
        agent = %hello.agent_id,
        %peer,
        worker = worker.index,
        routes = ?hello.routes,
        "agent registered"
    );
    worker.add_endpoint(&agent);
    agent.dispatch();
    monoio::spawn(agent.clone().write_loop(wr));
    monoio::spawn(agent.clone().heartbeat_loop());
    agent.tx.notify();
    let reason = agent.read_loop(rd, pending).await;
    agent.close(&reason);
    drop(registration);
}

impl AgentConn {
    pub(crate) fn key(&self) -> u64 {
        self.key
    }

    pub(crate) fn agent_id(&self) -> &str {
        &self.agent_id
    }

    pub(crate) fn routes(&self) -> &[RouteId] {
        &self.routes
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.get()
    }

    /// Whether another stream may be opened now (`tunnel.max_streams`).
    pub(crate) fn has_capacity(&self) -> bool {
        self.conn.borrow().stream_count() < self.worker.tunnel.max_streams as usize
    }

    /// A stream ended: a request parked because every connection was full may go now.
    pub(crate) fn stream_ended(&self) {
        self.worker.stream_ended(&self.routes);
    }

    pub(crate) fn load(&self) -> Ref<'_, EndpointLoad> {
        self.load.borrow()
    }

    /// Opens a stream carrying a request head (`end`: no body follows).
    pub(crate) fn open_stream(
        self: &Rc<Self>,
        head: Bytes,
        end: bool,
    ) -> Result<TunnelStream, ProxyError> {
        if !self.open.get() {
            return Err(ProxyError::new(ErrorKind::AgentRefused));
        }
        let id = self
            .conn
            .borrow_mut()
            .open_stream(head, end)
            .map_err(|_| ProxyError::new(ErrorKind::AgentRefused))?;
        self.streams.borrow_mut().insert(id, StreamSlot::default());
        bump(&self.stats.streams);
        self.load.borrow_mut().start();
        self.tx.notify();
        Ok(TunnelStream::new(self.clone(), id))
    }

    async fn read_loop(&self, mut rd: OwnedReadHalf<TcpStream>, mut buf: BytesMut) -> String {
        let Some(handle) = self.reader.borrow().as_ref().map(Canceller::handle) else {
            return "closed".to_owned();
        };
        loop {
            if !buf.is_empty() {
                let res = self
                    .conn
                    .borrow_mut()
                    .handle_input(&mut buf, Instant::now());
                if let Err(e) = res {
                    let mut conn = self.conn.borrow_mut();
                    conn.go_away(e.code());
                    drop(conn);
                    self.tx.notify();
                    return format!("protocol error: {e}");
                }
                self.dispatch();
                self.tx.notify();
            }
            if self.closed.get() {
                return "closed".to_owned();
            }
            buf.reserve(READ_CHUNK);
            let (len, cap) = (buf.len(), buf.capacity());
            let (res, slice) = rd
                .cancelable_read(buf.slice_mut(len..cap), handle.clone())
                .await;
            buf = slice.into_inner();
            bump(&self.stats.reads);
            match res {
                Ok(0) => return "agent closed the connection".to_owned(),
                Ok(_) => {}
                Err(e) => return format!("read failed: {e}"),
            }
        }
    }

    /// Writes everything the state machine has queued, one write per wake-up. A write blocked on
    /// an agent that stopped reading is cancelled by `close` (with the reader), so a dead
    /// connection's task, buffers and socket go away. What is queued when the connection closes
    /// (a GOAWAY) gets one last write, bounded by [`FINAL_FLUSH`].
    async fn write_loop(self: Rc<Self>, mut wr: OwnedWriteHalf<TcpStream>) {
        let Some(handle) = self.reader.borrow().as_ref().map(Canceller::handle) else {
            return;
        };
        let mut out = BytesMut::with_capacity(READ_CHUNK);
        loop {
            self.tx.wait().await;
            let closed = self.closed.get();
            if self.conn.borrow_mut().poll_transmit(&mut out) {
                bump(&self.stats.writes);
                if closed {
                    let at = (Instant::now() + FINAL_FLUSH).into();
                    let _ = monoio::time::timeout_at(at, wr.write_all(out)).await;
                    let _ = wr.shutdown().await;
                    return;
                }
                let (res, buf) = monoio::io::CancelableAsyncWriteRentExt::write_all(
                    &mut wr,
                    out,
                    handle.clone(),
                )
                .await;
                out = buf;
                out.clear();
                if let Err(e) = res {
                    self.close(&format!("write failed: {e}"));
                }
            }
            if self.closed.get() {
                let _ = wr.shutdown().await;
                return;
            }
        }
    }

    /// The heartbeat, in its own task so that a write blocked on a silent agent cannot keep a
    /// dead connection alive: sleeps until the state machine's next timer, lets it send a ping or
    /// declare the connection dead.
    async fn heartbeat_loop(self: Rc<Self>) {
        while !self.closed.get() {
            let Some(at) = self.conn.borrow().poll_timeout() else {
                return;
            };
            monoio::time::sleep_until(at.into()).await;
            self.conn.borrow_mut().handle_timeout(Instant::now());
            self.dispatch();
            self.tx.notify();
        }
    }

    /// Hands every pending event of the state machine to its stream.
    fn dispatch(&self) {
        loop {
            let Some(event) = self.conn.borrow_mut().poll_event() else {
                return;
            };
            match event {
                Event::ResponseHead { id, head, end } => {
                    self.deliver(id, StreamEvent::Head { head, end });
                }
                Event::Data { id, data, end } => {
                    let len = data.len();
                    if !self.deliver(id, StreamEvent::Data { data, end }) && len > 0 {
                        // The client is gone: give the credit back so the connection window lives on.
                        self.conn.borrow_mut().release(id, len);
                    }
                }
                Event::Reset { id, code } => {
                    self.deliver(id, StreamEvent::Reset(code));
                }
                Event::Writable { id } => {
                    if let Some(slot) = self.streams.borrow_mut().get_mut(&id) {
                        slot.set_writable();
                    }
                }
                Event::GoAway {
                    last_stream_id,
                    code,
                } => {
                    // Core follows this event with Reset(Refused) for every stream above
                    // `last_stream_id`: those were never processed and may go elsewhere.
                    info!(agent = %self.agent_id, ?code, last_stream_id = %last_stream_id, "agent is going away");
                    self.stop_new_streams();
                }
                Event::Dead => self.close("heartbeat missed"),
                other => debug!(agent = %self.agent_id, event = ?other, "unexpected tunnel event"),
            }
        }
    }

    fn deliver(&self, id: StreamId, event: StreamEvent) -> bool {
        match self.streams.borrow_mut().get_mut(&id) {
            Some(slot) => {
                slot.push(event);
                true
            }
            None => false,
        }
    }

    fn stop_new_streams(&self) {
        if self.open.replace(false) {
            self.worker.remove_endpoint(self.key, &self.routes);
        }
    }

    /// Ends the connection: no new streams, every open stream learns it was lost.
    fn close(&self, reason: &str) {
        if self.closed.replace(true) {
            return;
        }
        self.stop_new_streams();
        info!(
            agent = %self.agent_id,
            worker = self.worker.index,
            reason,
            streams = self.stats.streams.get(),
            reads = self.stats.reads.get(),
            writes = self.stats.writes.get(),
            "agent connection closed"
        );
        for slot in self.streams.borrow_mut().values_mut() {
            slot.push(StreamEvent::Lost);
        }
        if let Some(c) = self.reader.borrow_mut().take() {
            drop(c.cancel());
        }
        self.tx.notify();
    }
}
