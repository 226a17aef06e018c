//! Hand-off of an agent connection to the worker it asked for.
//!
//! An agent opens one tunnel connection per balancer worker, and its hello names the worker each
//! one is for. The kernel's SO_REUSEPORT hashing delivers a connection to any worker; when that is
//! not the one asked for, the accepting worker turns the socket into a plain file descriptor
//! (`ringway_tuning::socket::into_std`) and sends it, with the bytes it has already read (and,
//! on a TLS connection, the TLS state past the handshake: keys, sequence numbers and whatever
//! rustls holds), over a channel to the right worker, which registers it with its own runtime
//! and reads the hello again. A TLS connection thus ends encrypted on the worker it asked for,
//! with one handshake.
//! The channel is only used at connection set-up, never on the request path. The receiving
//! loop is `listener::receive_handoffs`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tracing::{info, warn};

/// An agent connection on its way to another worker.
pub(crate) struct Handoff {
    pub(crate) stream: std::net::TcpStream,
    /// Its TLS state past the handshake (`None`: plaintext): rustls' keys and any bytes it
    /// holds, so that the receiving worker goes on where this one stopped.
    pub(crate) tls: Option<ringway_io::tls::TlsState>,
    /// Everything read from the connection so far (at least the hello).
    pub(crate) received: Bytes,
    pub(crate) peer: SocketAddr,
}

/// The senders to every worker, indexed by worker.
pub(crate) type HandoffTx = Arc<[flume::Sender<Handoff>]>;
/// One worker's receiving end.
pub(crate) type HandoffRx = flume::Receiver<Handoff>;

/// One channel per worker.
pub(crate) fn channels(workers: usize) -> (HandoffTx, Vec<HandoffRx>) {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..workers).map(|_| flume::unbounded()).unzip();
    (txs.into(), rxs)
}

/// Sends `socket` (with no IO in flight) to worker `target` over its channel in `senders`.
pub(crate) fn send(
    senders: &HandoffTx,
    target: u16,
    socket: ringway_io::tunnel::TunnelSocket,
    received: Bytes,
    peer: SocketAddr,
) {
    let Some(tx) = senders.get(usize::from(target)) else {
        warn!(%peer, target, "hand-off to a worker that does not exist");
        return;
    };
    let detached = match socket.detach() {
        Ok(d) => d,
        Err(e) => {
            warn!(%peer, target, error = %e, "agent connection hand-off failed");
            return;
        }
    };
    match ringway_tuning::socket::into_std(detached.tcp) {
        Ok(stream) => {
            info!(%peer, target, tls = detached.tls.is_some(), "agent connection handed to its worker");
            if tx
                .send(Handoff {
                    stream,
                    tls: detached.tls,
                    received,
                    peer,
                })
                .is_err()
            {
                warn!(%peer, target, "worker is gone; agent connection dropped");
            }
        }
        Err(e) => warn!(%peer, target, error = %e, "agent connection hand-off failed"),
    }
}
