//! An agent connection arrives: its TLS handshake runs (unless the listener is plaintext,
//! `agents.insecure_plaintext`), its hello is read (handshake and hello within
//! [`HELLO_TIMEOUT`]), the connection moves to the worker the hello asks for — with its TLS
//! state, so that it stays encrypted and pinned there — or is registered here, and the shared
//! tunnel driver (`ringway_io::tunnel::drive`) runs it until it closes.
//!
//! With client certificates (`agents.tls.client_ca`) a verified certificate's name
//! (`agent_tls::certificate_name`) is the agent's id, whatever its hello says.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringway_core::tunnel::{Connection, Event, Hello, ProtocolError, ResetCode};
use ringway_io::net::TcpStream;
use ringway_io::tls::TlsStream;
use ringway_io::tunnel::{drive, Link, TunnelSocket, FINAL_FLUSH, READ_CHUNK};
use tracing::{debug, info, warn};

use crate::agent_conn::{AgentConn, AgentIdentity, IdSource};
use crate::agent_tls::certificate_name;
use crate::handoff;
use crate::peer_log::PeerMistake;
use crate::registry::RegisterError;
use crate::stats::Rejection;
use crate::worker::Worker;

/// How long a new agent connection may take to complete its TLS handshake and send its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection the agent listener accepted: the TLS handshake (when the listener speaks TLS),
/// then [`accept`].
pub(crate) async fn accept_new(worker: Rc<Worker>, tcp: TcpStream, peer: SocketAddr) {
    let socket = match &worker.agent_tls {
        None => TunnelSocket::Plain(tcp),
        Some(tls) => {
            let at = ringway_io::time::Instant::from_std(Instant::now() + HELLO_TIMEOUT);
            let handshake = TlsStream::accept(tcp, tls.server_config());
            match ringway_io::time::timeout_at(at, handshake).await {
                Ok(Ok(stream)) => stream.into(),
                Ok(Err(e)) => {
                    if worker.peer_log.allow(peer, PeerMistake::AgentTls) {
                        warn!(%peer, error = %e, hint = handshake_hint(&e), "agent TLS handshake failed");
                    }
                    return;
                }
                Err(_) => {
                    if worker.peer_log.allow(peer, PeerMistake::AgentNoHello) {
                        warn!(%peer, "agent did not complete its TLS handshake in time");
                    }
                    return;
                }
            }
        }
    };
    accept(worker, socket, peer, Bytes::new(), false).await;
}

/// What most likely went wrong, for the log line of a failed handshake.
fn handshake_hint(e: &std::io::Error) -> &'static str {
    let text = e.to_string();
    if text.contains("InvalidContentType") || text.contains("corrupt message") {
        "the peer does not speak TLS: an agent started with --insecure-plaintext? this listener \
         speaks TLS (agents.insecure_plaintext is off)"
    } else if text.contains("peer closed") || text.contains("alert") {
        "the agent gave up: does it trust this listener's certificate (its --ca-file) and \
         present a client certificate if one is required?"
    } else {
        "see the error"
    }
}

/// Reads the hello of a new agent connection; serves it here or hands it to the worker it asked
/// for. `received` holds bytes already read (by the worker that handed it over).
pub(crate) async fn accept(
    worker: Rc<Worker>,
    stream: TunnelSocket,
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
        if !stream.is_tls() && looks_like_tls(&pending) {
            if worker.peer_log.allow(peer, PeerMistake::AgentTls) {
                warn!(
                    %peer,
                    "agent began a TLS handshake but this listener is plaintext \
                     (agents.insecure_plaintext): start the agent with --insecure-plaintext, or \
                     give the listener a certificate ([agents.tls])"
                );
            }
            let _ = stream.shutdown().await;
            return;
        }
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
            let _ = stream.write_all_by(out, Instant::now() + FINAL_FLUSH).await;
            let _ = stream.shutdown().await;
            return;
        }
        if let Some(hello) = take_hello(&mut conn) {
            break hello;
        }
        let at = ringway_io::time::Instant::from_std(deadline);
        let read = ringway_io::time::timeout_at(at, stream.read_more(&mut pending, READ_CHUNK));
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

/// Whether the first bytes are a TLS handshake record (content type 22, version 3.x), which
/// no tunnel frame begins with (its first byte is the top of a length the hello never has).
fn looks_like_tls(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x16 && bytes[1] == 0x03
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
    mut stream: TunnelSocket,
    pending: BytesMut,
    peer: SocketAddr,
) {
    let (agent_id, id_source) = identify(&worker, &stream, &hello, peer);
    // Held until the connection closes: then its routes let go (and may be forgotten later).
    let registration = match worker
        .registry
        .register(&agent_id, &hello.routes, &hello.token)
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
                    agent = %agent_id,
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
            let _ = stream.write_all_by(out, Instant::now() + FINAL_FLUSH).await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    conn.accept_hello(worker.count, worker.index);
    let link = Link::new(conn);
    let identity = AgentIdentity {
        key: worker.next_conn_key(),
        agent_id: agent_id.clone(),
        id_source,
        tls: stream.is_tls(),
        token: registration.token().digest,
        token_name: registration.token().name.clone(),
        routes: registration.ids().to_vec(),
        max_streams: worker.settings().tunnel.max_streams as usize,
        worker_index: worker.index,
    };
    let agent = Rc::new(AgentConn::new(link.clone(), identity, worker.clone()));
    info!(
        agent = %agent_id,
        %peer,
        worker = worker.index,
        routes = ?hello.routes,
        tls = stream.is_tls(),
        id_from = id_source.as_str(),
        token = registration.token().name.as_deref().unwrap_or("-"),
        "agent registered"
    );
    worker.add_endpoint(&agent);
    let exit = drive(link, stream, pending, agent.clone()).await;
    agent.closed(&exit);
    drop(registration);
}

/// The agent's id: the name of its verified client certificate when the listener checks
/// client certificates and it presented one, else what its hello says.
fn identify(
    worker: &Worker,
    stream: &TunnelSocket,
    hello: &Hello,
    peer: SocketAddr,
) -> (String, IdSource) {
    let verified = worker
        .agent_tls
        .as_ref()
        .is_some_and(|t| t.verifies_clients());
    let name = stream
        .tls()
        .filter(|_| verified)
        .and_then(TlsStream::peer_certificate)
        .map(|cert| certificate_name(&cert));
    match name {
        Some(Some(name)) => {
            if name != hello.agent_id {
                debug!(%peer, certificate = %name, hello = %hello.agent_id, "agent id taken from its client certificate");
            }
            (name, IdSource::Certificate)
        }
        Some(None) => {
            warn!(%peer, hello = %hello.agent_id, "client certificate names no DNS name nor CN: the hello's agent id is used");
            (hello.agent_id.clone(), IdSource::Hello)
        }
        None => (hello.agent_id.clone(), IdSource::Hello),
    }
}
