//! An agent connection arrives: its hello is read (within [`HELLO_TIMEOUT`]), the connection
//! moves to the worker the hello asks for or is registered here, and the shared tunnel driver
//! (`ringway_io::tunnel::drive`) runs it until it closes.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringway_core::tunnel::{Connection, Event, Hello, ProtocolError, ResetCode};
use ringway_io::io::AsyncWriteRent;
use ringway_io::net::TcpStream;
use ringway_io::tunnel::{drive, Link, FINAL_FLUSH, READ_CHUNK};
use ringway_io::{read_append, write_all_by};
use tracing::{debug, info, warn};

use crate::agent_conn::{AgentConn, AgentIdentity};
use crate::handoff;
use crate::peer_log::PeerMistake;
use crate::registry::RegisterError;
use crate::stats::Rejection;
use crate::worker::Worker;

/// How long a new agent connection may take to send its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the hello of a new agent connection; serves it here or hands it to the worker it asked
/// for. `received` holds bytes already read (by the worker that handed it over).
pub(crate) async fn accept(
    worker: Rc<Worker>,
    stream: TcpStream,
    peer: SocketAddr,
    received: Bytes,
    handed: bool,
) {
    let mut stream = stream;
    let mut conn = Connection::balancer(worker.settings().tunnel.clone(), Instant::now());
    // `raw` keeps every byte read, for a hand-off; `pending` is what the state machine has not
    // consumed yet.
    let mut raw = BytesMut::from(&received[..]);
    let mut pending = ringway_io::tunnel::buffers().take();
    pending.extend_from_slice(&received);
    let deadline = Instant::now() + HELLO_TIMEOUT;
    let hello = loop {
        if let Err(e) = conn.handle_input(&mut pending, Instant::now()) {
            if matches!(e, ProtocolError::TooManyRoutes { .. }) {
                worker.stats.agent_rejected(Rejection::TooManyRoutes);
            }
            if worker.peer_log.allow(peer, PeerMistake::AgentProtocol) {
                warn!(%peer, error = %e, "agent broke the protocol before its hello");
            }
            // The GOAWAY with the error's code (e.g. TOO_MANY_ROUTES) tells the agent why.
            let mut out = BytesMut::new();
            conn.poll_transmit(&mut out);
            let _ = write_all_by(&mut stream, out, Instant::now() + FINAL_FLUSH).await;
            let _ = stream.shutdown().await;
            return;
        }
        if let Some(hello) = take_hello(&mut conn) {
            break hello;
        }
        let at = ringway_io::time::Instant::from_std(deadline);
        let read =
            ringway_io::time::timeout_at(at, read_append(&mut stream, &mut pending, READ_CHUNK));
        let Ok(res) = read.await else {
            if worker.peer_log.allow(peer, PeerMistake::AgentNoHello) {
                warn!(%peer, "agent sent no hello in time");
            }
            return;
        };
        match res {
            Ok(0) | Err(_) => {
                if worker.peer_log.allow(peer, PeerMistake::AgentNoHello) {
                    debug!(%peer, "agent connection closed before its hello");
                }
                return;
            }
            Ok(n) => raw.extend_from_slice(&pending[pending.len() - n..]),
        }
    };
    if let Some(target) = hello.worker {
        if !handed && target != worker.index && target < worker.count {
            handoff::send(&worker.handoff, target, stream, raw.freeze(), peer);
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

/// Registers the agent's routes (or rejects it), then drives the connection until it ends.
async fn serve(
    worker: Rc<Worker>,
    mut conn: Connection,
    hello: Hello,
    mut stream: TcpStream,
    pending: BytesMut,
    peer: SocketAddr,
) {
    // Held until the connection closes: then its routes let go (and may be forgotten later).
    let registration = match worker
        .registry
        .register(&hello.agent_id, &hello.routes, &hello.token)
    {
        Ok(registration) => registration,
        Err(e) => {
            let (code, why, route, token) = match &e {
                RegisterError::BadToken { route } => {
                    (ResetCode::Unauthorized, Rejection::BadToken, &**route, "-")
                }
                RegisterError::OutOfScope { route, token } => (
                    ResetCode::OutOfScope,
                    Rejection::OutOfScope,
                    &**route,
                    &**token,
                ),
                RegisterError::InvalidRoute { route, .. }
                | RegisterError::StaticRoute { route } => {
                    (ResetCode::BadRoute, Rejection::BadRoute, &**route, "-")
                }
                RegisterError::TooManyRoutes { .. } => {
                    (ResetCode::TooManyRoutes, Rejection::TooManyRoutes, "-", "-")
                }
            };
            worker.stats.agent_rejected(why);
            // `token` is the name of its `[[agents.tokens]]` entry, never the token.
            if worker.peer_log.allow(peer, PeerMistake::AgentRejected) {
                warn!(
                    agent = %hello.agent_id,
                    %peer,
                    route,
                    token,
                    reason = why.label(),
                    error = %e,
                    "agent rejected: nothing registered"
                );
            }
            conn.reject_hello(code);
            let mut out = BytesMut::new();
            conn.poll_transmit(&mut out);
            let _ = write_all_by(&mut stream, out, Instant::now() + FINAL_FLUSH).await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    conn.accept_hello(worker.count, worker.index);
    let link = Link::new(conn);
    let identity = AgentIdentity {
        key: worker.next_conn_key(),
        agent_id: hello.agent_id.clone(),
        token: registration.token().digest,
        token_name: registration.token().name.clone(),
        routes: registration.ids().to_vec(),
        max_streams: worker.settings().tunnel.max_streams as usize,
        worker_index: worker.index,
    };
    let agent = Rc::new(AgentConn::new(link.clone(), identity, worker.clone()));
    info!(
        agent = %hello.agent_id,
        %peer,
        worker = worker.index,
        routes = ?hello.routes,
        token = registration.token().name.as_deref().unwrap_or("-"),
        "agent registered"
    );
    worker.add_endpoint(&agent);
    let exit = drive(link, stream, pending, agent.clone()).await;
    agent.closed(&exit);
    drop(registration);
}
