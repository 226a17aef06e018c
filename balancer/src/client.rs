//! One user connection: wait for a request head, hand it to the request path ([`crate::proxy`]),
//! repeat while the connection is kept (pipelined requests are served in order from the same
//! buffer).
//!
//! Between requests the connection holds no buffer: it waits for readiness (nothing pending in
//! the ring but a poll), takes its read buffer when bytes arrive and drops it, with the output
//! buffer, once it is idle again. The per-request state lives in a boxed future that exists only
//! while a request is in progress, so an idle connection costs its task, its socket and this
//! struct.
//!
//! Behind an L4 front (`listen.proxy_protocol`), a connection must begin with a PROXY protocol
//! header (`proxy_header`), whose source then stands for the peer everywhere.

use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use bytes::BytesMut;
use ringway_core::exchange::{ErrorKind, ProxyError};
use ringway_core::http::forward::Persistence;
use ringway_core::http::{RequestHead, RequestParser};
use ringway_io::net::TcpStream;
use tracing::{debug_span, info, Instrument};

use crate::answer;
use crate::limits::ClientAdmission;
use crate::peer_log::PeerMistake;
use crate::proxy;
use crate::user_conn::{ConnExtra, Flow, UserConn};
use crate::user_io::{ensure_buffer, linger, release_if_empty, HEAD_READ};
use crate::user_stream::{UserRead, UserStream, UserWrite};
use crate::worker::Worker;

/// Serves one user connection to the end. `admitted` is what the per-client limit said at the
/// accept (`Worker::conn_opened`): a refused connection is answered 429 and closed.
pub(crate) fn serve(
    worker: Rc<Worker>,
    stream: UserStream,
    peer: SocketAddr,
    admitted: ClientAdmission,
) -> impl Future<Output = ()> {
    let https = stream.is_tls();
    // Not an `async fn`, and `run` borrows: the connection is stored once in the task (an
    // `async fn` argument, or a `self` taken by value, is copied into the body's locals).
    let mut conn = UserConn {
        worker,
        peer: peer.into(),
        stream: Some(stream),
        buf: BytesMut::new(),
        out: BytesMut::new(),
        extra: (admitted == ClientAdmission::Counted || https).then(|| {
            Box::new(ConnExtra {
                client_counted: admitted == ClientAdmission::Counted,
                https,
                ..ConnExtra::default()
            })
        }),
    };
    async move {
        if admitted == ClientAdmission::Refused {
            // Boxed: a refusal's state takes no room in every connection's task.
            let refusal = Box::pin(conn.refuse());
            refusal.await;
        } else {
            conn.run().await;
        }
    }
}

/// How reading the next request head ended.
enum HeadRead {
    Head(RequestHead),
    /// The user closed or went idle between requests.
    Gone,
    /// The head was malformed or too slow: answered and the connection must close.
    Failed(ProxyError),
}

impl UserConn {
    async fn run(&mut self) {
        let worker = self.worker.clone();
        // The first request's head must arrive within the head timeout of the accept.
        let mut head_deadline = Some(worker.deadlines.after(worker.timeouts().head));
        let flow = loop {
            let fresh = head_deadline.is_some();
            if self.buf.is_empty() {
                if worker.drain.is_started() && !fresh {
                    // Shutting down: an idle keep-alive connection closes now. (A fresh one,
                    // accepted while the listener emptied its queue, gets its one request.)
                    break Flow::Close;
                }
                // Idle (or fresh): wait for bytes without lending the ring a buffer. This is the only
                // state an idle connection's task is in; all else is boxed below.
                let Some(user) = self.stream.as_ref() else {
                    break Flow::Close;
                };
                // (TLS may hold bytes already read off the socket: then no wait.)
                if let Some(stream) = user.idle_wait_socket() {
                    let at = head_deadline
                        .unwrap_or_else(|| worker.deadlines.after(worker.timeouts().idle));
                    // Built in its own statement, so that no temporary of it takes room in the task.
                    let wait = if fresh {
                        worker.deadlines.timeout_at(at, stream.readable(false))
                    } else {
                        worker.deadlines.idle_timeout_at(at, stream.readable(false))
                    };
                    match wait.await {
                        Some(Ok(())) => {}
                        // Nothing of a request arrived: close quietly (an idle or preconnected client).
                        Some(Err(_)) | None => break Flow::Close,
                    }
                }
            }
            if let Some(at) =
                // (Not on the HTTPS listener: there the header would precede the handshake.)
                head_deadline.filter(|_| {
                    !self.is_https() && worker.settings().config.listen.proxy_protocol
                })
            {
                // Boxed like the request below: nothing of it stays in an idle task.
                let accept = Box::pin(self.accept_proxy_header(at));
                if !accept.await {
                    break Flow::Close;
                }
            }
            // The request's state machine, buffers and span live only while it runs.
            // (Boxed in its own statement: a future built inside an `.await` expression would
            // take room in this task even though it lives in the box.)
            let span = debug_span!("client", peer = %self.peer);
            let request = Box::pin(self.serve_one(head_deadline).instrument(span));
            let flow = request.await;
            release_if_empty(&mut self.buf, &worker.bufs);
            release_if_empty(&mut self.out, &worker.bufs);
            if flow != Flow::KeepAlive {
                break flow;
            }
            if worker.drain.is_started() && self.buf.is_empty() {
                break Flow::Close;
            }
            head_deadline = None;
        };
        self.close(flow).await;
    }

    /// The client holds `max_connections_per_client` connections already: 429 with
    /// `Retry-After` and `Connection: close`, at once (no request is read), then a lingering
    /// close (the request the client is sending meanwhile must not reset the answer away).
    async fn refuse(&mut self) {
        let worker = self.worker.clone();
        worker.stats.client_refused();
        let id = worker.next_request_id();
        let e = ProxyError::new(ErrorKind::TooManyConnections);
        let flow = answer::error(self, e, id.as_str(), Persistence::Close, None).await;
        self.close(if flow == Flow::Close {
            Flow::Linger
        } else {
            flow
        })
        .await;
    }

    /// Shuts the connection down; with `Flow::Linger`, reads and drops what still comes first.
    async fn close(&mut self, flow: Flow) {
        let worker = self.worker.clone();
        let Some(mut stream) = self.stream.take() else {
            return;
        };
        let shutdown = Box::pin(stream.shutdown());
        let _ = shutdown.await;
        if flow == Flow::Linger {
            let lingering = Box::pin(linger(
                &mut stream,
                &worker.deadlines,
                worker.timeouts().linger,
            ));
            lingering.await;
        }
    }

    /// Reads one request head (bytes are there or on their way) and serves the request.
    async fn serve_one(&mut self, head_deadline: Option<Instant>) -> Flow {
        match self.read_head(head_deadline).await {
            HeadRead::Head(head) => proxy::serve(self, head).await,
            HeadRead::Gone => Flow::Close,
            HeadRead::Failed(e) => {
                let started = Instant::now();
                let id = self.worker.next_request_id();
                let status = e.status();
                answer::error(self, e, id.as_str(), Persistence::Close, None).await;
                let stats = &self.worker.stats;
                stats.request_done(None, Some(status), started.elapsed(), (0, 0));
                Flow::Close
            }
        }
    }

    /// Reads until a whole head is parsed, within `deadline` (the first request's, from the
    /// accept) or the head timeout from now (later requests: their first byte is here or
    /// about to be). Both are the worker's coarse deadlines (no timer per connection).
    async fn read_head(&mut self, deadline: Option<Instant>) -> HeadRead {
        let worker = self.worker.clone();
        let at = deadline.unwrap_or_else(|| worker.deadlines.after(worker.timeouts().head));
        // A parser per head: nothing of it needs to live while the connection is idle.
        let mut parser = RequestParser::new(worker.settings().limits);
        loop {
            if !self.buf.is_empty() {
                match parser.parse(&mut self.buf) {
                    Ok(Some(head)) => return HeadRead::Head(head),
                    Ok(None) => {}
                    Err(e) => return HeadRead::Failed(ProxyError::from(&e)),
                }
            }
            let Some(stream) = self.stream.as_mut() else {
                return HeadRead::Gone;
            };
            let started = !self.buf.is_empty();
            ensure_buffer(&mut self.buf, &worker.bufs);
            ensure_buffer(&mut self.out, &worker.bufs);
            let read = stream.read_more(&mut self.buf, HEAD_READ);
            match worker.deadlines.timeout_at(at, read).await {
                Some(Ok(0) | Err(_)) => return HeadRead::Gone,
                Some(Ok(_)) => {}
                None if !started => return HeadRead::Gone,
                None => return self.head_too_slow(),
            }
        }
    }

    fn head_too_slow(&self) -> HeadRead {
        // A peer can cause this at will (slowloris): limited like its other mistakes.
        if self
            .worker
            .peer_log
            .allow(self.peer.socket_addr(), PeerMistake::BadRequest)
        {
            info!(peer = %self.peer, "request head deadline passed; closing");
        }
        HeadRead::Failed(ProxyError::new(ErrorKind::Malformed(408)))
    }
}

/// Serves one connection of the HTTPS listener: the TLS handshake (on this worker, within the
/// head timeout of the accept), then the connection as [`serve`] does over plain TCP.
pub(crate) async fn serve_tls(
    worker: Rc<Worker>,
    stream: TcpStream,
    peer: SocketAddr,
    admitted: ClientAdmission,
    config: std::sync::Arc<rustls::ServerConfig>,
) {
    let at = worker.deadlines.after(worker.timeouts().head);
    let handshake = Box::pin(ringway_io::tls::TlsStream::accept(stream, config));
    let failed = match worker.deadlines.timeout_at(at, handshake).await {
        // A TLS-ALPN-01 validation (RFC 8737) ends with its handshake: no HTTP follows.
        Some(Ok(tls)) if tls.alpn_protocol().as_deref() == Some(crate::tls::ACME_TLS_ALPN) => None,
        Some(Ok(tls)) => {
            return serve(worker, UserStream::Tls(Box::new(tls)), peer, admitted).await;
        }
        Some(Err(e)) => Some(e),
        // Nothing (or too little) within the head timeout: closed quietly, as plain HTTP does.
        None => None,
    };
    // Counted at the accept: the close is counted here, as UserConn's drop does later.
    worker.conn_closed(peer.ip(), admitted == ClientAdmission::Counted);
    if let Some(e) = failed {
        // A peer can cause this at will: limited like its other mistakes.
        if worker.peer_log.allow(peer, PeerMistake::BadRequest) {
            info!(peer = %peer, error = %e, "TLS handshake failed; closing");
        }
    }
}
