//! One attempt of one request over one tunnel stream, both directions at once.
//!
//! Two loops run concurrently in the client's task, and decide nothing themselves: core's
//! [`Exchange`] does.
//! - The **upload** loop asks the exchange what the request side needs ([`UploadStep`]): it
//!   sends decoded body bytes within the stream's credit, reads more from the user, or waits
//!   (an Upgrade until its 101).
//! - The **response** loop takes the stream's events (heads, body, resets), lets the exchange
//!   frame them for the user, writes them and only then releases their credit, and runs the
//!   exchange's timers.
//!
//! A response may thus start (and end) while the body is still arriving, as an echo does. When
//! the response loop ends (the exchange is complete, or failed) it cancels the upload's read in
//! a way that loses no byte (`cancelable_read`), so a retry or the next request finds the
//! user's bytes where they were.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringway_core::exchange::{ErrorKind, Exchange, ProxyError, UploadStep};
use ringway_core::http::{Limits, ResponseHead, ResponseParser};
use ringway_io::io::Canceller;
use ringway_io::Doorbell;
use tracing::{debug, info};

use crate::attempt_stream::AttemptStream;
use crate::deadlines::Deadlines;
use crate::drain::Drain;
use crate::tunnel_stream::StreamEvent;
use crate::user_io::{write_out, BODY_READ};
use crate::user_stream::{UserReadHalf, UserStream, UserWrite, UserWriteHalf};

/// The user connection's halves and buffers, lent to one attempt.
pub(crate) struct UserHalves<'a> {
    pub(crate) rd: &'a mut UserReadHalf,
    pub(crate) wr: &'a mut UserWriteHalf,
    /// Bytes read from the user and not yet consumed.
    pub(crate) buf: &'a mut BytesMut,
    /// Bytes to write to the user.
    pub(crate) out: &'a mut BytesMut,
    /// Bound on one write to the user.
    pub(crate) write_limit: Duration,
    /// The worker's coarse deadlines (the exchange's timers).
    pub(crate) deadlines: &'a Deadlines,
    /// The worker's shutdown: a response that starts while it runs closes its connection.
    pub(crate) drain: &'a Drain,
}

/// How an attempt ended.
#[derive(Debug)]
pub(crate) enum AttemptEnd {
    /// Both directions finished; `exchange.outcome()` says how the connection goes on.
    Complete,
    /// The attempt failed. Before the response started the user may get `.status()`, or the
    /// request may go elsewhere; after, the connection must close.
    Failed(ProxyError),
}

/// What the two loops share.
struct Shared<'a, S> {
    exchange: &'a RefCell<Exchange>,
    stream: &'a S,
    deadlines: &'a Deadlines,
    drain: &'a Drain,
    /// Wakes the upload loop: the exchange's request side may have changed, or it must stop.
    upload_bell: Doorbell,
    /// Wakes the response loop: the upload progressed, ended or failed.
    response_bell: Doorbell,
    /// The upload loop's failure, for the response loop to report.
    upload_failed: Cell<Option<ProxyError>>,
    stop: Cell<bool>,
}

impl<'a, S: AttemptStream> Shared<'a, S> {
    fn new(
        exchange: &'a RefCell<Exchange>,
        stream: &'a S,
        deadlines: &'a Deadlines,
        drain: &'a Drain,
    ) -> Self {
        Self {
            exchange,
            stream,
            deadlines,
            drain,
            upload_bell: Doorbell::new(),
            response_bell: Doorbell::new(),
            upload_failed: Cell::new(None),
            stop: Cell::new(false),
        }
    }
}

/// Runs one attempt to its end.
pub(crate) async fn run<S: AttemptStream>(
    user: UserHalves<'_>,
    exchange: &RefCell<Exchange>,
    stream: &S,
) -> AttemptEnd {
    let UserHalves {
        rd,
        wr,
        buf,
        out,
        write_limit,
        deadlines,
        drain,
    } = user;
    let shared = Shared::new(exchange, stream, deadlines, drain);
    let mut canceller = Some(Canceller::new());
    let handle = canceller.as_ref().map(Canceller::handle);
    let mut upload = pin!(upload(&shared, rd, buf, handle));
    let mut response = pin!(respond(&shared, wr, out, write_limit));
    let mut upload_done = false;
    let mut end = None;
    poll_fn(|cx| {
        if end.is_none() {
            if let Poll::Ready(e) = response.as_mut().poll(cx) {
                end = Some(e);
                // Stop the upload where it stands: its read is cancelled, not dropped, so the
                // bytes it may already hold stay in the buffer.
                shared.stop.set(true);
                if let Some(c) = canceller.take() {
                    drop(c.cancel());
                }
                shared.upload_bell.ring();
            }
        }
        if !upload_done && upload.as_mut().poll(cx).is_ready() {
            upload_done = true;
        }
        match (&end, upload_done) {
            (Some(_), true) => Poll::Ready(()),
            _ => Poll::Pending,
        }
    })
    .await;
    end.unwrap_or(AttemptEnd::Failed(ProxyError::new(ErrorKind::AgentLost)))
}

/// Runs an attempt whose request side has nothing to do (no body and no upgrade: most GETs):
/// the response loop alone, over the whole socket. Nothing is read from the user meanwhile —
/// the upload loop would not read either — so there is no split, no read to cancel and no
/// second loop to wake.
pub(crate) async fn respond_only<S: AttemptStream>(
    socket: &mut UserStream,
    out: &mut BytesMut,
    write_limit: Duration,
    (deadlines, drain): (&Deadlines, &Drain),
    exchange: &RefCell<Exchange>,
    stream: &S,
) -> AttemptEnd {
    let shared = Shared::new(exchange, stream, deadlines, drain);
    respond(&shared, socket, out, write_limit).await
}

/// The request side: as the exchange asks, send body bytes, read more, or wait.
async fn upload<S: AttemptStream>(
    shared: &Shared<'_, S>,
    rd: &mut UserReadHalf,
    buf: &mut BytesMut,
    handle: Option<ringway_io::io::CancelHandle>,
) {
    let fail = |e: ProxyError| {
        shared.upload_failed.set(Some(e));
        shared.response_bell.ring();
    };
    while !shared.stop.get() {
        let now = shared.deadlines.now();
        let step = shared.exchange.borrow_mut().poll_upload(buf, now);
        match step {
            Err(e) => return fail(e),
            Ok(UploadStep::Send { mut data, end }) => {
                if shared.stream.send(&mut data, end).is_err() {
                    // The stream is gone: the response loop learns why from its events (an early
                    // answer, a reset) and tells this loop what to do next.
                    shared.response_bell.ring();
                    shared.upload_bell.wait().await;
                    continue;
                }
                let blocked = !data.is_empty();
                shared.exchange.borrow_mut().upload_sent(data, end, now);
                if end && !blocked {
                    // The request side is complete: the response loop's timers change (the
                    // response-head timer starts) and the exchange may be complete.
                    shared.response_bell.ring();
                }
                if blocked {
                    ringway_io::select! {
                        () = shared.stream.writable() => {}
                        () = shared.upload_bell.wait() => {}
                    }
                }
            }
            Ok(UploadStep::Read) => {
                let Some(handle) = handle.clone() else {
                    return;
                };
                match rd.read_more_cancelable(buf, BODY_READ, handle).await {
                    Ok(0) => {
                        let eof = shared.exchange.borrow_mut().handle_client_eof();
                        if let Err(e) = eof {
                            return fail(e);
                        }
                    }
                    Ok(_) => {}
                    Err(_) if shared.stop.get() => return,
                    Err(_) => return fail(ProxyError::new(ErrorKind::ClientIo)),
                }
            }
            Ok(UploadStep::Wait) => shared.upload_bell.wait().await,
            Ok(UploadStep::Done) => {
                // Only news for the response loop when it finished first (a GET's request side
                // is done from the start: no wake-up for it).
                if shared.exchange.borrow().response_done() {
                    shared.response_bell.ring();
                }
                return;
            }
        }
    }
}

/// The response side: events from the stream into the exchange, the exchange's bytes to the
/// user, credit back after they were written; the exchange's timers.
async fn respond<S: AttemptStream, W: UserWrite>(
    shared: &Shared<'_, S>,
    wr: &mut W,
    out: &mut BytesMut,
    write_limit: Duration,
) -> AttemptEnd {
    let stream = shared.stream;
    let mut shut = false;
    // One timer for the attempt, moved in place as the exchange's deadline moves.
    let far = shared.deadlines.after(Duration::from_secs(86_400));
    let mut timer = shared.deadlines.sleep_until(far);
    loop {
        if let Some(e) = shared.upload_failed.take() {
            return AttemptEnd::Failed(e);
        }
        if shared.exchange.borrow().is_complete() {
            return AttemptEnd::Complete;
        }
        let deadline = shared.exchange.borrow().poll_timeout();
        // The exchange's timers are seconds long: the worker's coarse deadlines serve them
        // (no runtime timer armed and disarmed per event).
        // One tick later than the exchange asks: its times came off the coarse clock, which
        // may lag by a tick (the timer then never fires early; the exchange agrees it is due).
        timer.reset(deadline.map_or(far, |at| shared.deadlines.later(at, Duration::ZERO)));
        let first = ringway_io::select! {
            event = stream.event() => Some(event),
            () = shared.response_bell.wait() => None,
            () = &mut timer => {
                let fired = shared.exchange.borrow_mut().handle_timeout(shared.deadlines.now());
                if let Err(e) = fired {
                    debug!(stream = %stream.label(), error = %e, "exchange timed out");
                    return AttemptEnd::Failed(e);
                }
                None
            }
        };
        let Some(first) = first else {
            continue;
        };
        // Every event already queued goes into one write to the user.
        let mut taken = 0;
        let now = shared.deadlines.now();
        let mut event = Some(first);
        while let Some(ev) = event.take() {
            // A reset or a lost connection is the stream's last word (the slot repeats it).
            let last = matches!(ev, StreamEvent::Reset(_) | StreamEvent::Lost);
            if let Err(e) = feed(shared, ev, out, &mut taken, now) {
                // What was framed for the user before the failure still goes out.
                if !out.is_empty() && shared.exchange.borrow().response_started() {
                    let _ = write_out(wr, out, shared.deadlines, write_limit).await;
                }
                return AttemptEnd::Failed(e);
            }
            if !last {
                event = stream.try_event();
            }
        }
        if !out.is_empty() {
            if let Err(e) = write_out(wr, out, shared.deadlines, write_limit).await {
                if e.kind() == std::io::ErrorKind::TimedOut {
                    info!(stream = %stream.label(), "user stopped reading; closing");
                }
                return AttemptEnd::Failed(ProxyError::new(ErrorKind::ClientIo));
            }
        }
        stream.release(taken);
        let ended = shared.exchange.borrow().upstream_ended();
        if ended && !shut && shared.exchange.borrow().is_upgraded() {
            // The upstream ended its side of an upgraded connection: so does the user's.
            shut = true;
            let _ = wr.shutdown().await;
        }
    }
}

/// Feeds one stream event to the exchange; response bytes for the user go to `out`.
fn feed<S: AttemptStream>(
    shared: &Shared<'_, S>,
    event: StreamEvent,
    out: &mut BytesMut,
    taken: &mut usize,
    now: Instant,
) -> Result<(), ProxyError> {
    let mut exchange = shared.exchange.borrow_mut();
    match event {
        StreamEvent::Head { head, end } => {
            let response = parse_response(&head)?;
            if shared.drain.is_started() {
                exchange.stop_keep_alive();
            }
            exchange.handle_response_head(&response, end, out, now)?;
            if !response.is_interim() {
                shared.stream.head_received();
            }
        }
        StreamEvent::Data { data, end } => {
            *taken += data.len();
            exchange.handle_response_data(&data, end, out, now)?;
        }
        StreamEvent::Reset(code) => {
            exchange.handle_upstream_reset(code, shared.stream.draining())?;
        }
        StreamEvent::Lost => return Err(ProxyError::new(ErrorKind::AgentLost)),
        // Credit is the upload loop's business (`TunnelStream::writable`).
        StreamEvent::Writable => {}
    }
    // The request side may have changed (an upgrade, an early answer that stops the upload).
    shared.upload_bell.ring();
    Ok(())
}

/// Parses a tunnelled response head. The agent wrote it with `forward::write_response` from a
/// head it accepted under the forwarded limits, so the same limits apply here; its size is
/// bounded by the tunnel's frame size already.
fn parse_response(bytes: &Bytes) -> Result<ResponseHead, ProxyError> {
    let limits = Limits {
        max_head_bytes: usize::MAX,
        ..Limits::default().forwarded()
    };
    match ResponseParser::new(limits).parse_bytes(bytes) {
        Ok(Some(head)) => Ok(head),
        _ => Err(ProxyError::new(ErrorKind::AgentProtocol)),
    }
}
