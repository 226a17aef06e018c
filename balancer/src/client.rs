//! One user connection: wait for a request head, hand it to the request path ([`crate::proxy`]),
//! repeat while the connection is kept (pipelined requests are served in order from the same
//! buffer).
//!
//! Between requests the connection holds no buffer: it waits for readiness (nothing pending in
//! the ring but a poll), takes its read buffer when bytes arrive and drops it, with the output
//! buffer, once it is idle again. The per-request state lives in a boxed future that exists only
//! while a request is in progress, so an idle connection costs its task, its socket and this
//! struct.

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::io::{AsyncWriteRent, Canceller};
use monoio::net::TcpStream;
use ringway_core::exchange::{ErrorKind, ProxyError};
use ringway_core::http::forward::Persistence;
use ringway_core::http::{RequestHead, RequestParser};
use tracing::{debug_span, info, Instrument};

use crate::answer;
use crate::proxy;
use crate::user_conn::{Flow, UserConn};
use crate::user_io::{
    ensure_buffer, linger, read_more, read_more_cancelable, release_if_empty, HEAD_READ,
};
use crate::worker::Worker;

/// `now + d`, saturating far in the future instead of overflowing.
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}

/// Serves one user connection to the end.
pub(crate) fn serve(
    worker: Rc<Worker>,
    stream: TcpStream,
    peer: SocketAddr,
) -> impl Future<Output = ()> {
    // Not an `async fn`, and `run` borrows: the connection is stored once in the task (an
    // `async fn` argument, or a `self` taken by value, is copied into the body's locals).
    let mut conn = UserConn {
        worker,
        peer,
        stream: Some(stream),
        buf: BytesMut::new(),
        out: BytesMut::new(),
    };
    async move { conn.run().await }
}

/// How long a connection that just served a request (or was just accepted) reads with a
/// buffer before it waits for readiness without one.
const HOT_GRACE: Duration = Duration::from_millis(100);

/// How a hot read ended.
enum HotRead {
    Bytes,
    /// Nothing within the grace (the read was cancelled, no byte lost).
    Quiet,
    Closed,
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
        let mut head_deadline = Some(after(worker.timeouts.head));
        // A fresh connection and one that just served a request read at once (hot): a busy
        // client's next request is usually on its way. One that stayed quiet through the hot
        // read's grace waits for readiness (cold) and holds no buffer.
        let mut cold = false;
        let flow = loop {
            if self.buf.is_empty() && cold {
                // Idle: wait for bytes without lending the ring a buffer. This is the only
                // state an idle connection's task is in; all else is boxed below.
                let Some(stream) = self.stream.as_ref() else {
                    break Flow::Close;
                };
                let at = head_deadline.unwrap_or_else(|| after(worker.timeouts.idle));
                // Built in its own statement, so that no temporary of it takes room in the task.
                let wait = worker.deadlines.timeout_at(at, stream.readable(false));
                match wait.await {
                    Some(Ok(())) => {}
                    // Nothing of a request arrived: close quietly (an idle or preconnected client).
                    Some(Err(_)) | None => break Flow::Close,
                }
            }
            // The request's state machine, buffers and span live only while it runs.
            // (Boxed in its own statement: a future built inside an `.await` expression would
            // take room in this task even though it lives in the box.)
            let span = debug_span!("client", peer = %self.peer);
            let request = Box::pin(self.serve_one(head_deadline, !cold).instrument(span));
            let flow = request.await;
            release_if_empty(&mut self.buf, &worker.bufs);
            release_if_empty(&mut self.out, &worker.bufs);
            match flow {
                Flow::KeepAlive => {
                    head_deadline = None;
                    cold = false;
                }
                // Nothing came within the hot read's grace: wait cold from now on.
                Flow::Idle => cold = true,
                flow => break flow,
            }
        };
        let Some(mut stream) = self.stream.take() else {
            return;
        };
        let shutdown = Box::pin(stream.shutdown());
        let _ = shutdown.await;
        if flow == Flow::Linger {
            let lingering = Box::pin(linger(&mut stream, worker.timeouts.linger));
            lingering.await;
        }
    }

    /// Reads one request head (bytes are there or on their way; `hot`: maybe not yet) and
    /// serves the request. [`Flow::Idle`]: a hot read got nothing within its grace.
    async fn serve_one(&mut self, head_deadline: Option<Instant>, hot: bool) -> Flow {
        if hot && self.buf.is_empty() {
            match self.hot_read().await {
                HotRead::Bytes => {}
                HotRead::Quiet => return Flow::Idle,
                HotRead::Closed => return Flow::Close,
            }
        }
        match self.read_head(head_deadline).await {
            HeadRead::Head(head) => proxy::serve(self, head).await,
            HeadRead::Gone => Flow::Close,
            HeadRead::Failed(e) => {
                let id = self.worker.next_request_id();
                answer::error(self, e, id.as_str(), Persistence::Close, None).await;
                Flow::Close
            }
        }
    }

    /// A read with a buffer, at once, for at most [`HOT_GRACE`] (plus a coarse tick): the
    /// common case of a keep-alive client skips the readiness wait and its extra completion.
    /// Past the grace the read is cancelled without losing a byte that raced the cancel.
    async fn hot_read(&mut self) -> HotRead {
        let worker = self.worker.clone();
        let Some(stream) = self.stream.as_mut() else {
            return HotRead::Closed;
        };
        ensure_buffer(&mut self.buf, &worker.bufs);
        let canceller = Canceller::new();
        let read = read_more_cancelable(stream, &mut self.buf, HEAD_READ, canceller.handle());
        let mut read = pin!(read);
        let mut grace = pin!(worker.deadlines.sleep_until(Instant::now() + HOT_GRACE));
        let mut canceller = Some(canceller);
        let res = poll_fn(|cx| {
            if let Poll::Ready(res) = read.as_mut().poll(cx) {
                return Poll::Ready(res);
            }
            if canceller.is_some() && grace.as_mut().poll(cx).is_ready() {
                // The read completes soon, cancelled (or with what raced the cancel).
                if let Some(c) = canceller.take() {
                    drop(c.cancel());
                }
            }
            Poll::Pending
        })
        .await;
        match res {
            Ok(0) => HotRead::Closed,
            Ok(_) => HotRead::Bytes,
            Err(_) if canceller.is_none() => HotRead::Quiet,
            Err(_) => HotRead::Closed,
        }
    }

    /// Reads until a whole head is parsed, within `deadline` (the first request's, from the
    /// accept) or the head timeout from now (later requests: their first byte is here or
    /// about to be). Both are the worker's coarse deadlines (no timer per connection).
    async fn read_head(&mut self, deadline: Option<Instant>) -> HeadRead {
        let worker = self.worker.clone();
        let at = deadline.unwrap_or_else(|| after(worker.timeouts.head));
        // A parser per head: nothing of it needs to live while the connection is idle.
        let mut parser = RequestParser::new(worker.limits);
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
            let read = read_more(stream, &mut self.buf, HEAD_READ);
            match worker.deadlines.timeout_at(at, read).await {
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
