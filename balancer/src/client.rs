//! One user connection: wait for a request head, hand it to the request path ([`crate::proxy`]),
//! repeat while the connection is kept (pipelined requests are served in order from the same
//! buffer).
//!
//! Between requests the connection holds no buffer: it waits for readiness (nothing pending in
//! the ring but a poll), takes its read buffer when bytes arrive and drops it, with the output
//! buffer, once it is idle again. The per-request state lives in a boxed future that exists only
//! while a request is in progress, so an idle connection costs its task, its socket and this
//! struct.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use bytes::BytesMut;
use monoio::io::AsyncWriteRent;
use monoio::net::TcpStream;
use ringway_core::exchange::{ErrorKind, ProxyError};
use ringway_core::http::forward::Persistence;
use ringway_core::http::{RequestHead, RequestParser};
use tracing::{debug_span, info, Instrument};

use crate::answer;
use crate::proxy::{self, Flow};
use crate::user_io::{linger, read_more, release_if_empty, HEAD_READ};
use crate::worker::Worker;

/// `now + d`, saturating far in the future instead of overflowing.
fn after(d: std::time::Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + std::time::Duration::from_secs(86_400 * 365))
}

/// Serves one user connection to the end.
pub(crate) async fn serve(worker: Rc<Worker>, stream: TcpStream, peer: SocketAddr) {
    let span = debug_span!("client", %peer);
    let mut conn = UserConn {
        parser: RequestParser::new(worker.limits),
        worker,
        peer,
        stream: Some(stream),
        buf: BytesMut::new(),
        out: BytesMut::new(),
    };
    conn.run().instrument(span).await;
}

/// A user connection and the bytes in flight on it.
pub(crate) struct UserConn {
    pub(crate) worker: Rc<Worker>,
    pub(crate) peer: SocketAddr,
    /// The socket; lent out (split in two halves) while a request streams both ways.
    pub(crate) stream: Option<TcpStream>,
    /// Bytes read from the user and not yet consumed (a partial head, body bytes, pipelined
    /// requests). No allocation while idle.
    pub(crate) buf: BytesMut,
    /// Bytes to write to the user. No allocation while idle.
    pub(crate) out: BytesMut,
    parser: RequestParser,
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
        let mut first = true;
        let flow = loop {
            let head = match self.read_head(first).await {
                HeadRead::Head(head) => head,
                HeadRead::Gone => break Flow::Close,
                HeadRead::Failed(e) => {
                    let id = self.worker.next_request_id();
                    // Boxed, like the request below: rare paths must not grow the idle task.
                    Box::pin(answer::error(
                        self,
                        e,
                        id.as_str(),
                        Persistence::Close,
                        None,
                    ))
                    .await;
                    break Flow::Close;
                }
            };
            first = false;
            // The request's state machine and buffers live only while it runs.
            let flow = Box::pin(proxy::serve(self, head)).await;
            if flow != Flow::KeepAlive {
                break flow;
            }
            release_if_empty(&mut self.buf);
            release_if_empty(&mut self.out);
        };
        let Some(mut stream) = self.stream.take() else {
            return;
        };
        let _ = Box::pin(stream.shutdown()).await;
        if flow == Flow::Linger {
            Box::pin(linger(&mut stream, self.worker.timeouts.linger)).await;
        }
    }

    /// Reads until a whole head is parsed. The head deadline runs from the accept (first request)
    /// or from the first byte of the head; between requests the idle timeout applies, and the
    /// wait holds no buffer. Both are the worker's coarse deadlines (no timer per connection).
    async fn read_head(&mut self, first: bool) -> HeadRead {
        let timeouts = self.worker.timeouts;
        let worker = self.worker.clone();
        let deadlines = &worker.deadlines;
        let mut deadline = first.then(|| after(timeouts.head));
        loop {
            if !self.buf.is_empty() {
                match self.parser.parse(&mut self.buf) {
                    Ok(Some(head)) => return HeadRead::Head(head),
                    Ok(None) => {}
                    Err(e) => return HeadRead::Failed(ProxyError::from(&e)),
                }
                deadline.get_or_insert_with(|| after(timeouts.head));
            }
            let Some(stream) = self.stream.as_mut() else {
                return HeadRead::Gone;
            };
            let started = !self.buf.is_empty();
            let at = deadline.unwrap_or_else(|| after(timeouts.idle));
            if !started {
                // Idle (or a fresh connection): wait for bytes without lending the ring a buffer.
                match deadlines.timeout_at(at, stream.readable(false)).await {
                    Some(Ok(())) => {}
                    // Nothing of a request arrived: close quietly (an idle or preconnected client).
                    Some(Err(_)) | None => return HeadRead::Gone,
                }
            }
            match deadlines
                .timeout_at(at, read_more(stream, &mut self.buf, HEAD_READ))
                .await
            {
                Some(Ok(0) | Err(_)) => return HeadRead::Gone,
                Some(Ok(_)) => {}
                None if !started => return HeadRead::Gone,
                None => return self.head_too_slow(),
            }
        }
    }

    fn head_too_slow(&self) -> HeadRead {
        info!(peer = %self.peer, "request head deadline passed; closing");
        HeadRead::Failed(ProxyError::new(ErrorKind::Malformed(408)))
    }
}
