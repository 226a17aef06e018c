//! `send_proxy` routes (HAProxy's `send-proxy` / `send-proxy-v2`): each new connection to their
//! backends starts with a PROXY protocol header naming the user's client — the address the
//! balancer puts in X-Forwarded-For (after an incoming PROXY header, the original client) — and
//! the address that client connected to (the front's, from an incoming header, else the user
//! socket's local address).
//!
//! As the header names one client, such connections are private to one user connection (HAProxy
//! marks them private): the connection gets an owner key at its first request to such a route,
//! the pools hand its later requests only its own connections, and its idle ones close when it
//! does (`Worker::close_private`; one that a request's task returns to the pool after that is
//! closed by the task, which sees the owner gone). Routes without `send_proxy` never come here.

use std::rc::{Rc, Weak};

use bytes::BytesMut;
use ringway_core::proxy_protocol::{self, Command, ProxyHeader};
use ringway_upstream::Private;
use tracing::debug;

use crate::config::SendProxy;
use crate::user_conn::UserConn;

/// A user connection as the owner of private backend connections.
pub(crate) struct Owner {
    pub(crate) key: u64,
    /// Dropped with the user connection.
    alive: Rc<()>,
}

/// A request of a `send_proxy` route: what the pool needs, and whether its owner still lives.
pub(crate) struct PrivateRequest {
    pub(crate) private: Private,
    owner_alive: Weak<()>,
}

impl PrivateRequest {
    /// The user connection it came from closed.
    pub(crate) fn owner_gone(&self) -> bool {
        self.owner_alive.strong_count() == 0
    }
}

impl UserConn {
    /// What a request of this connection to a route with `send_proxy` carries to the pool:
    /// the owner key and the header; `None` for a route without.
    pub(crate) fn private_for(&mut self, send_proxy: SendProxy) -> Option<PrivateRequest> {
        if send_proxy == SendProxy::Off {
            return None;
        }
        let worker = &self.worker;
        let extra = self.extra.get_or_insert_default();
        let owner = extra.owner.get_or_insert_with(|| Owner {
            key: worker.next_conn_key(),
            alive: Rc::new(()),
        });
        let (key, owner_alive) = (owner.key, Rc::downgrade(&owner.alive));
        if extra.destination.is_none() {
            extra.destination = match self.stream.as_ref().map(|s| s.local_addr()) {
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
            source: Some(self.peer.socket_addr()),
            destination: extra.destination,
        };
        let mut preamble = BytesMut::new();
        match send_proxy {
            SendProxy::Off => {}
            SendProxy::V1 => proxy_protocol::write_v1(&header, &mut preamble),
            SendProxy::V2 => proxy_protocol::write_v2(&header, &mut preamble),
        }
        Some(PrivateRequest {
            private: Private {
                owner: key,
                preamble: preamble.freeze(),
            },
            owner_alive,
        })
    }
}
