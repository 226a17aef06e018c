//! One agent tunnel connection on the worker that owns it: the shared driver's [`Link`]
//! (`ringway_io::tunnel`) plus what the balancer knows about the agent — its routes, its load
//! for the picker, whether it still takes streams.
//!
//! The driver runs the socket (reader, coalescing writer, heartbeat) and hands response heads,
//! body bytes, resets and credit to the streams' slots; `AgentConn` is its [`Role`]: a GOAWAY
//! from the agent stops new streams here. Streams are opened with `open_stream`
//! (`tunnel_stream.rs`); accepting and registering a connection is `agent_accept.rs`.
//!
//! Memory is bounded by the windows: the agent may send a stream at most its window, and a client
//! task releases credit only once it has written those bytes to its user, so a slow user stalls
//! only its own stream.

use std::cell::{Cell, Ref, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use ringway_core::pick::EndpointLoad;
use ringway_core::tunnel::{Event, ResetCode};
use ringway_io::tunnel::{Exit, Link, Role};
use tracing::{debug, info};

use crate::config::TokenDigest;
use crate::registry::RouteId;

/// What an agent connection tells the worker that owns it (the worker implements it).
pub(crate) trait ConnOwner {
    /// One of the connection's streams ended: a request parked for its routes may take it.
    fn stream_ended(&self, routes: &[RouteId]);
    /// The connection takes no new streams (draining or closed): it leaves its routes.
    fn remove_endpoint(&self, key: u64, routes: &[RouteId]);
}

/// Who an accepted agent connection is, as its registration found it.
pub(crate) struct AgentIdentity {
    /// Unique among this worker's connections.
    pub(crate) key: u64,
    pub(crate) agent_id: String,
    /// Where the id came from.
    pub(crate) id_source: IdSource,
    /// Whether the connection is TLS.
    pub(crate) tls: bool,
    /// The SHA-256 of its hello's token (checked again when a reload changes the tokens; the
    /// token itself is not kept).
    pub(crate) token: TokenDigest,
    /// The `[[agents.tokens]]` entry of that token, if it is one (for logs).
    pub(crate) token_name: Option<Arc<str>>,
    pub(crate) routes: Vec<RouteId>,
    /// `tunnel.max_streams`: streams open at once on this connection.
    pub(crate) max_streams: usize,
    /// The worker that owns the connection (for logs).
    pub(crate) worker_index: u16,
}

/// Where an agent connection's id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdSource {
    /// The name of its verified client certificate (`agents.tls.client_ca`).
    Certificate,
    /// Its hello (`--agent-id`).
    Hello,
}

impl IdSource {
    /// As `/agents` and the log show it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Certificate => "certificate",
            Self::Hello => "hello",
        }
    }
}

/// One agent connection owned by this worker.
pub(crate) struct AgentConn {
    pub(crate) link: Rc<Link>,
    id: AgentIdentity,
    pub(crate) load: RefCell<EndpointLoad>,
    /// New streams may be opened (no GOAWAY received; see also `link.is_closed`).
    open: Cell<bool>,
    owner: Rc<dyn ConnOwner>,
    /// Streams opened, for the log line at close.
    opened: Cell<u64>,
}

impl AgentConn {
    pub(crate) fn new(link: Rc<Link>, id: AgentIdentity, owner: Rc<dyn ConnOwner>) -> Self {
        Self {
            link,
            id,
            load: RefCell::new(EndpointLoad::new()),
            open: Cell::new(true),
            owner,
            opened: Cell::new(0),
        }
    }

    pub(crate) fn key(&self) -> u64 {
        self.id.key
    }

    pub(crate) fn agent_id(&self) -> &str {
        &self.id.agent_id
    }

    /// Where its id came from.
    pub(crate) fn id_source(&self) -> IdSource {
        self.id.id_source
    }

    /// Whether the connection is TLS.
    pub(crate) fn is_tls(&self) -> bool {
        self.id.tls
    }

    pub(crate) fn token(&self) -> TokenDigest {
        self.id.token
    }

    /// The name of its token's `[[agents.tokens]]` entry (`-` for a plaintext token or none).
    pub(crate) fn token_name(&self) -> &str {
        self.id.token_name.as_deref().unwrap_or("-")
    }

    pub(crate) fn routes(&self) -> &[RouteId] {
        &self.id.routes
    }

    /// Whether new streams may be opened: no GOAWAY from the agent, connection not closed.
    pub(crate) fn is_open(&self) -> bool {
        self.open.get() && !self.link.is_closed()
    }

    /// Whether another stream may be opened now (`tunnel.max_streams`).
    pub(crate) fn has_capacity(&self) -> bool {
        self.link.conn_ref().stream_count() < self.id.max_streams
    }

    pub(crate) fn load(&self) -> Ref<'_, EndpointLoad> {
        self.load.borrow()
    }

    /// A stream ended: a request parked because every connection was full may go now.
    pub(crate) fn stream_ended(&self) {
        self.owner.stream_ended(&self.id.routes);
    }

    /// Counts a stream opened on this connection.
    pub(crate) fn count_stream(&self) {
        self.opened.set(self.opened.get() + 1);
    }

    /// The driver ended: the connection leaves its routes; says why and how well its frames
    /// were coalesced.
    pub(crate) fn closed(&self, exit: &Exit) {
        self.stop_new_streams();
        let stats = self.link.stats();
        let reason = exit.to_string();
        info!(
            agent = %self.id.agent_id,
            worker = self.id.worker_index,
            reason = reason.as_str(),
            streams = self.opened.get(),
            reads = stats.reads,
            writes = stats.writes,
            "agent connection closed"
        );
    }

    /// GOAWAY to the agent with `code` (`NoError`: the balancer is shutting down;
    /// `Unauthorized` / `OutOfScope`: a reload made its token invalid for its routes), no new
    /// streams, and the connection closes once its streams are done (within `linger`).
    pub(crate) fn go_away_with(&self, code: ResetCode, linger: std::time::Duration) {
        self.stop_new_streams();
        self.link.conn().go_away(code);
        self.link.close_when_drained(linger);
        self.link.flush();
    }

    /// Whether the tunnel connection is closed (its driver is done with it).
    pub(crate) fn is_closed(&self) -> bool {
        self.link.is_closed()
    }

    fn stop_new_streams(&self) {
        if self.open.replace(false) {
            self.owner.remove_endpoint(self.id.key, &self.id.routes);
        }
    }
}

/// The balancer's part of the driver: the agent's GOAWAY stops new streams here. (Core follows
/// it with `Reset(Refused)` for every stream above `last_stream_id`: those were never processed
/// and may go elsewhere; the driver hands those to their streams.)
impl Role for AgentConn {
    fn on_event(&self, event: Event) -> Result<(), Exit> {
        match event {
            Event::GoAway {
                last_stream_id,
                code,
            } => {
                info!(agent = %self.id.agent_id, ?code, last_stream_id = %last_stream_id, "agent is going away");
                self.stop_new_streams();
            }
            other => debug!(agent = %self.id.agent_id, event = ?other, "unexpected tunnel event"),
        }
        Ok(())
    }
}
