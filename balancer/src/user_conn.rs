//! A user connection's state between the IO loop that owns it (`client`), the request path
//! (`proxy`) and the error answers (`answer`), and how it goes on after a request.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::BytesMut;
use ringway_core::exchange::Outcome;

use crate::backends::Owner;
use crate::client_addr::ClientAddr;
use crate::user_stream::UserStream;
use crate::worker::Worker;

/// A user connection and the bytes in flight on it.
pub(crate) struct UserConn {
    pub(crate) worker: Rc<Worker>,
    /// The client's address: the socket's peer, or the source a PROXY protocol header named
    /// (`listen.proxy_protocol`), which replaces it once the header is read.
    pub(crate) peer: ClientAddr,
    /// The socket; lent out (split in two halves) while a request streams both ways.
    pub(crate) stream: Option<UserStream>,
    /// Bytes read from the user and not yet consumed (a partial head, body bytes, pipelined
    /// requests). No allocation while idle.
    pub(crate) buf: BytesMut,
    /// Bytes to write to the user. No allocation while idle.
    pub(crate) out: BytesMut,
    /// What only some connections need (HTTPS, counted per client, a PROXY header's destination,
    /// private backend connections): boxed, so that an idle connection without it pays one
    /// pointer (idle connections are counted in bytes: results/archive/idle-conns-*.md).
    pub(crate) extra: Option<Box<ConnExtra>>,
}

/// The rarely needed part of a user connection.
#[derive(Default)]
pub(crate) struct ConnExtra {
    /// Came in over the HTTPS listener (`X-Forwarded-Proto: https`); a TLS connection holds
    /// far more than this box anyway.
    pub(crate) https: bool,
    /// Counted in the per-client table (`[limits] max_connections_per_client`) at the accept.
    pub(crate) client_counted: bool,
    /// The address the client connected to, when a PROXY protocol header named it (the
    /// front's); else the socket's local address, once a `send_proxy` route asked for it.
    pub(crate) destination: Option<SocketAddr>,
    /// It as the owner of private backend connections, from its first request to a
    /// `send_proxy` route on.
    pub(crate) owner: Option<Owner>,
}

impl UserConn {
    /// Whether it came in over the HTTPS listener.
    pub(crate) fn is_https(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| e.https)
    }
}

impl Drop for UserConn {
    fn drop(&mut self) {
        let counted = self.extra.as_ref().is_some_and(|e| e.client_counted);
        self.worker.conn_closed(self.peer.ip(), counted);
        if let Some(owner) = self.extra.as_ref().and_then(|e| e.owner.as_ref()) {
            self.worker.close_private(owner.key);
        }
    }
}

/// Whether the connection serves another request after this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    KeepAlive,
    Close,
    /// Close after reading and dropping what the user still sends (see `user_io::linger`).
    Linger,
}

impl From<Outcome> for Flow {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::KeepAlive => Self::KeepAlive,
            Outcome::Close => Self::Close,
            Outcome::LingeringClose => Self::Linger,
        }
    }
}
