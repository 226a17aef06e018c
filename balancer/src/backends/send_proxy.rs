//! `send_proxy` routes (HAProxy's `send-proxy` / `send-proxy-v2`): each new connection to their
//! backends starts with a PROXY protocol header naming the user's client — the address the
//! balancer puts in X-Forwarded-For (after an incoming PROXY header, the original client) — and
//! the address that client connected to (the front's, from an incoming header, else the user
//! socket's local address).
//!
//! As the header names one client, such connections are private to one user connection (HAProxy
//! marks them private): the connection gets an owner key at its first request to such a route,
//! the pools hand its later requests only its own connections, and its idle ones close when it
//! does (`Worker::close_private`). Routes without `send_proxy` never come here.

use bytes::BytesMut;
use ringway_core::proxy_protocol::{self, Command, ProxyHeader};
use ringway_upstream::Private;
use tracing::debug;

use crate::config::SendProxy;
use crate::user_conn::UserConn;

impl UserConn {
    /// What a request of this connection to a route with `send_proxy` carries to the pool:
    /// the owner key and the header; `None` for a route without.
    pub(crate) fn private_for(&mut self, send_proxy: SendProxy) -> Option<Private> {
        if send_proxy == SendProxy::Off {
            return None;
        }
        let owner = *self
            .owner
            .get_or_insert_with(|| self.worker.next_conn_key());
        if self.destination.is_none() {
            self.destination = match self.stream.as_ref().map(|s| s.local_addr()) {
                Some(Ok(local)) => Some(local),
                // The header then says `UNKNOWN` (v1) or carries no addresses (v2).
                Some(Err(e)) => {
                    debug!(error = %e, "the user socket's local address is unknown");
                    None
                }
                None => None,
            };
        }
        let header = ProxyHeader {
            command: Command::Proxy,
            source: Some(self.peer),
            destination: self.destination,
        };
        let mut preamble = BytesMut::new();
        match send_proxy {
            SendProxy::Off => {}
            SendProxy::V1 => proxy_protocol::write_v1(&header, &mut preamble),
            SendProxy::V2 => proxy_protocol::write_v2(&header, &mut preamble),
        }
        Some(Private {
            owner,
            preamble: preamble.freeze(),
        })
    }
}
