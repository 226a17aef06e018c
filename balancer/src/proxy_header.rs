//! The PROXY protocol header a user connection must begin with when the balancer sits behind an
//! L4 front (`listen.proxy_protocol`, HAProxy's `accept-proxy`): read within the head timeout,
//! parsed by `core::proxy_protocol`, and its source made the connection's client address.
//!
//! A connection whose first bytes are no header, a malformed one, or one that stops mid-header
//! is closed without an HTTP answer (whoever sent it is not the front, or the front is
//! misconfigured: answering would tell a scanner what runs here), logged through the per-peer
//! limiter and counted (`ringway_proxy_protocol_errors_total`). One that sends nothing at all
//! closes quietly when the head timeout passes, as without the header.

use std::fmt::Display;
use std::time::Instant;

use bytes::Buf;
use ringway_core::proxy_protocol::{self, Parsed};
use tracing::{debug, info};

use crate::peer_log::PeerMistake;
use crate::user_conn::UserConn;
use crate::user_io::{ensure_buffer, release_if_empty, HEAD_READ};
use crate::user_stream::UserRead;

impl UserConn {
    /// Reads the PROXY protocol header by `deadline` (the first request head's, from the
    /// accept). A `PROXY` header with a source replaces [`UserConn::peer`] with it (and its
    /// destination is kept as [`UserConn::destination`]); a `LOCAL`
    /// one (the front's own health check) or one without addresses keeps the socket's peer.
    /// Bytes after the header stay in `buf`: the start of the first request. `false`: the
    /// connection must close without an answer.
    pub(crate) async fn accept_proxy_header(&mut self, deadline: Instant) -> bool {
        let worker = self.worker.clone();
        loop {
            match proxy_protocol::parse(&self.buf) {
                Ok(Parsed::Header {
                    header,
                    version,
                    len,
                }) => {
                    self.buf.advance(len);
                    release_if_empty(&mut self.buf, &worker.bufs);
                    let front = self.peer;
                    if let Some(client) = header.client() {
                        self.peer = client.into();
                        // What the client connected to on the front, for a `send_proxy` route.
                        if header.destination.is_some() {
                            self.extra.get_or_insert_default().destination = header.destination;
                        }
                    }
                    debug!(%front, client = %self.peer, ?version, command = ?header.command, "PROXY protocol header");
                    return true;
                }
                Ok(Parsed::Incomplete) => {}
                Err(e) => return self.proxy_header_failed(&e),
            }
            let Some(stream) = self.stream.as_mut() else {
                return false;
            };
            let started = !self.buf.is_empty();
            ensure_buffer(&mut self.buf, &worker.bufs);
            let read = stream.read_more(&mut self.buf, HEAD_READ);
            match worker.deadlines.timeout_at(deadline, read).await {
                Some(Ok(0) | Err(_)) if started => {
                    return self.proxy_header_failed(&"the connection closed within the header")
                }
                Some(Ok(0) | Err(_)) => return false,
                Some(Ok(_)) => {}
                None if started => {
                    return self.proxy_header_failed(&"the head timeout passed within the header")
                }
                None => return false,
            }
        }
    }

    /// Counts and logs (limited per peer) a connection that did not begin with a valid header.
    fn proxy_header_failed(&self, why: &dyn Display) -> bool {
        let worker = &self.worker;
        worker.stats.proxy_protocol_error();
        if worker
            .peer_log
            .allow(self.peer.socket_addr(), PeerMistake::ProxyProtocol)
        {
            info!(peer = %self.peer, error = %why, "no valid PROXY protocol header; closing without an answer");
        }
        false
    }
}
