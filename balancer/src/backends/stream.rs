//! One attempt of a request on a static backend: the same request path as a tunnel stream
//! (core's `Exchange` on the user side, `duplex` moving the bytes), with the agent's backend
//! side running in this worker instead — `ringway_upstream::forward` over this worker's pool,
//! the driver the agent runs — joined to the exchange by an in-process pipe.
//!
//! The pipe carries what a tunnel stream carries, within the same kind of credit: request body
//! pieces one way (released as `forward` writes them to the backend), response heads, body and
//! the final failure the other way (released as the user's connection takes them). Dropping the
//! [`BackendStream`] before the exchange completed makes `forward` abandon the backend
//! connection, as a reset does to the agent.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use ringway_core::exchange::{ErrorKind, ProxyError};
use ringway_core::http::{Limits, RequestParser};
use ringway_core::tunnel::ResetCode;
use ringway_core::upstream::UpstreamConfig;
use ringway_io::tunnel::StreamEvent;
use ringway_io::Doorbell;
use ringway_upstream::{BodyPiece, Downstream, Failure};

use super::send_proxy::PrivateRequest;
use super::table::WorkerBackend;
use crate::attempt_stream::AttemptStream;

/// Request body bytes one attempt may have on its way to the backend.
const REQUEST_WINDOW: usize = 256 * 1024;
/// Response bytes one attempt may have on their way to the user.
const RESPONSE_WINDOW: usize = 256 * 1024;

/// Header lines the balancer may add to a request head (forwarding headers, the request id).
const ADDED_HEADERS: usize = 16;

/// The state both ends of one attempt share (one thread).
#[derive(Default)]
struct Pipe {
    /// Request body pieces for `forward`.
    body: RefCell<VecDeque<BodyPiece>>,
    /// Request bytes sent and not yet released by `forward`.
    body_unreleased: Cell<usize>,
    /// Wakes `forward`'s request side: a body piece arrived, or the user side went away.
    body_bell: Doorbell,
    /// Wakes the upload loop: request credit came back.
    credit_bell: Doorbell,
    /// Response events for the user side.
    events: RefCell<VecDeque<StreamEvent>>,
    /// Response bytes queued and not yet released by the user side.
    response_unreleased: Cell<usize>,
    /// Wakes the response loop: an event arrived.
    event_bell: Doorbell,
    /// Wakes `forward`'s response side: response credit came back, or the user side went away.
    window_bell: Doorbell,
    /// Wakes `forward` waiting in `gone`.
    gone_bell: Doorbell,
    /// The backend side's last word, repeated once the events ran out.
    failure: Cell<Option<ResetCode>>,
    /// The user side went away before the exchange completed.
    gone: Cell<bool>,
    /// The final response status (for the passive check).
    status: Cell<u16>,
}

impl Pipe {
    fn push_event(&self, event: StreamEvent) {
        self.events.borrow_mut().push_back(event);
        self.event_bell.ring();
    }

    fn fail(&self, code: ResetCode) {
        if self.failure.get().is_none() {
            self.failure.set(Some(code));
        }
        self.event_bell.ring();
        self.credit_bell.ring();
    }
}

/// The user side of an attempt on a static backend.
pub(crate) struct BackendStream {
    pipe: Rc<Pipe>,
    backend: Rc<WorkerBackend>,
    started: Instant,
    head_at: Cell<Option<Instant>>,
    done: Cell<bool>,
}

impl BackendStream {
    /// Starts an attempt: `forwarded` is the request head as the balancer rewrote it (`ended`:
    /// no body follows) from one it accepted under `user_limits`; `forward` runs in its own
    /// task on this worker, on a connection of `private`'s owner when it is given.
    pub(crate) fn open(
        backend: &Rc<WorkerBackend>,
        forwarded: &Bytes,
        ended: bool,
        private: Option<PrivateRequest>,
        config: UpstreamConfig,
        user_limits: &Limits,
    ) -> Result<Self, ProxyError> {
        // The head was written by the balancer from one it accepted: it parses under limits
        // wide enough for any head it can have written (the user's, plus the forwarding
        // headers it added).
        let limits = Limits {
            max_head_bytes: forwarded.len(),
            max_target_len: forwarded.len(),
            max_headers: user_limits.max_headers + ADDED_HEADERS,
            max_body_bytes: None,
        };
        let parsed = RequestParser::new(limits).parse_bytes(forwarded);
        let Ok(Some(request)) = parsed else {
            return Err(ProxyError::new(ErrorKind::BackendReset));
        };
        let pipe = Rc::new(Pipe::default());
        if ended {
            pipe.body.borrow_mut().push_back(BodyPiece::End);
        }
        backend.load.borrow_mut().start();
        let task_pipe = pipe.clone();
        let task_backend = backend.clone();
        drop(ringway_io::spawn(async move {
            run(task_pipe, request, task_backend, private, config).await;
        }));
        Ok(Self {
            pipe,
            backend: backend.clone(),
            started: Instant::now(),
            head_at: Cell::new(None),
            done: Cell::new(false),
        })
    }
}

/// The backend side of one attempt, to its end; reports to the passive check.
async fn run(
    pipe: Rc<Pipe>,
    request: ringway_core::http::RequestHead,
    backend: Rc<WorkerBackend>,
    private: Option<PrivateRequest>,
    config: UpstreamConfig,
) {
    let down = PipeEnd(pipe.clone());
    let pool = &backend.pool;
    let owned = private.as_ref().map(|p| &p.private);
    let result = ringway_upstream::forward(&down, request, pool, owned, config).await;
    if let Some(private) = private.filter(PrivateRequest::owner_gone) {
        // The user connection closed while this task still held its connection, which went
        // back to the pool after `Worker::close_private` ran: no request of its will come.
        pool.close_owned(private.private.owner);
    }
    let now = Instant::now();
    match result {
        Ok(()) => backend.record(pipe.status.get() < 500, now),
        Err(Failure::Gone(Gone)) => {}
        Err(Failure::Upstream(e)) => {
            tracing::debug!(backend = %backend.member.addr, reason = %e, "backend request failed");
            backend.record(false, now);
            pipe.fail(e.reset_code());
        }
    }
}

impl AttemptStream for BackendStream {
    fn label(&self) -> impl std::fmt::Display {
        self.backend.member.addr.clone()
    }

    async fn event(&self) -> StreamEvent {
        loop {
            if let Some(event) = self.try_event() {
                return event;
            }
            self.pipe.event_bell.wait().await;
        }
    }

    fn try_event(&self) -> Option<StreamEvent> {
        let queued = self.pipe.events.borrow_mut().pop_front();
        queued.or_else(|| self.pipe.failure.get().map(StreamEvent::Reset))
    }

    async fn writable(&self) {
        while self.pipe.body_unreleased.get() >= REQUEST_WINDOW && self.pipe.failure.get().is_none()
        {
            self.pipe.credit_bell.wait().await;
        }
    }

    fn send(&self, data: &mut Bytes, end: bool) -> Result<(), ProxyError> {
        let pipe = &self.pipe;
        if pipe.failure.get().is_some() {
            return Err(ProxyError::new(ErrorKind::BackendReset));
        }
        let room = REQUEST_WINDOW.saturating_sub(pipe.body_unreleased.get());
        let n = room.min(data.len());
        let mut body = pipe.body.borrow_mut();
        if n > 0 {
            body.push_back(BodyPiece::Data(data.split_to(n)));
            pipe.body_unreleased.set(pipe.body_unreleased.get() + n);
        }
        if end && data.is_empty() {
            body.push_back(BodyPiece::End);
        }
        drop(body);
        pipe.body_bell.ring();
        Ok(())
    }

    fn release(&self, n: usize) {
        let pipe = &self.pipe;
        pipe.response_unreleased
            .set(pipe.response_unreleased.get().saturating_sub(n));
        pipe.window_bell.ring();
    }

    fn draining(&self) -> bool {
        false
    }

    fn head_received(&self) {
        if self.head_at.get().is_none() {
            self.head_at.set(Some(Instant::now()));
        }
    }

    fn finish(&self) {
        self.done.set(true);
    }
}

impl Drop for BackendStream {
    fn drop(&mut self) {
        let mut load = self.backend.load.borrow_mut();
        match self.head_at.get() {
            Some(at) => load.finish(at, at.duration_since(self.started)),
            None => load.abandon(),
        }
        drop(load);
        if !self.done.get() {
            let pipe = &self.pipe;
            pipe.gone.set(true);
            pipe.gone_bell.ring();
            pipe.body_bell.ring();
            pipe.window_bell.ring();
        }
    }
}

/// The user side went away: `forward` stops without a word to it.
#[derive(Debug)]
pub(crate) struct Gone;

impl std::fmt::Display for Gone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the user side of the request went away")
    }
}

/// The pipe as `forward`'s downstream.
struct PipeEnd(Rc<Pipe>);

impl PipeEnd {
    fn check(&self) -> Result<(), Gone> {
        if self.0.gone.get() {
            Err(Gone)
        } else {
            Ok(())
        }
    }
}

impl Downstream for PipeEnd {
    type Gone = Gone;

    async fn recv_body(&self) -> Result<BodyPiece, Gone> {
        loop {
            if let Some(piece) = self.try_recv_body()? {
                return Ok(piece);
            }
            self.0.body_bell.wait().await;
        }
    }

    fn try_recv_body(&self) -> Result<Option<BodyPiece>, Gone> {
        self.check()?;
        Ok(self.0.body.borrow_mut().pop_front())
    }

    fn release(&self, n: usize) {
        let pipe = &self.0;
        pipe.body_unreleased
            .set(pipe.body_unreleased.get().saturating_sub(n));
        pipe.credit_bell.ring();
    }

    fn send_head(&self, head: Bytes, end: bool) -> Result<(), Gone> {
        self.check()?;
        if let Some(status) = status_of(&head).filter(|s| *s >= 200) {
            self.0.status.set(status);
        }
        self.0.push_event(StreamEvent::Head { head, end });
        Ok(())
    }

    async fn send_data(&self, data: Bytes, end: bool) -> Result<(), Gone> {
        let pipe = &self.0;
        loop {
            self.check()?;
            if pipe.response_unreleased.get() < RESPONSE_WINDOW {
                break;
            }
            pipe.window_bell.wait().await;
        }
        pipe.response_unreleased
            .set(pipe.response_unreleased.get() + data.len());
        pipe.push_event(StreamEvent::Data { data, end });
        Ok(())
    }

    fn stop_request(&self) {
        // As the agent does over the tunnel: a no-error reset after the complete response.
        self.0.fail(ResetCode::NoError);
    }

    async fn gone(&self) -> Gone {
        while !self.0.gone.get() {
            self.0.gone_bell.wait().await;
        }
        Gone
    }
}

/// The status code of a response head written as `HTTP/1.1 NNN …`.
fn status_of(head: &[u8]) -> Option<u16> {
    let digits = head.get(9..12)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::status_of;

    #[test]
    fn status_of_a_written_head() {
        assert_eq!(
            status_of(b"HTTP/1.1 503 Service Unavailable\r\n\r\n"),
            Some(503)
        );
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n\r\n"), Some(200));
        assert_eq!(status_of(b"HTTP/1.1"), None);
    }
}
