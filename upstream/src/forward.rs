//! The driver of one request over the backend pool: a thin loop over core's
//! [`UpstreamExchange`], which decides everything (framing, response rewrite, reuse, retry,
//! Upgrade, timers). This file only moves bytes and waits.
//!
//! Three loops run concurrently in the request's task, over one backend connection:
//! - the **request** loop writes what the exchange produces (head, framed body; opaque bytes
//!   after an Upgrade) and hands the downstream's body pieces to it, returning each piece's
//!   credit once written;
//! - the **response** loop reads from the backend and passes on what the exchange makes of it
//!   (interim and final heads, decoded body) within the downstream's flow control;
//! - the **timer** loop runs the exchange's `poll_timeout`/`handle_timeout`.
//!
//! The response loop ends the attempt (a backend may answer before it read the whole body, as an
//! early 413 does). A failed attempt that the exchange lets run again goes to a fresh connection
//! once; the outcome decides whether the connection goes back to the pool.
//!
//! A [`Private`] request (its route sends the PROXY protocol) runs on a connection of its owner
//! only; the pool writes the preamble on each new one, the retry's included.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Instant;

use bytes::BytesMut;
use ringway_core::http::RequestHead;
use ringway_core::upstream::{
    Outcome, RequestStep, ResponseStep, UpstreamConfig, UpstreamError, UpstreamErrorKind,
    UpstreamExchange,
};
use ringway_io::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Split,
    Splitable,
};
use ringway_io::{read_append, Doorbell};

use crate::downstream::{BodyPiece, Downstream};
use crate::pool::{BackendConn, BackendPool, BackendStream, ConnectError, Private};

/// Bytes asked of the backend socket per read.
const READ_CHUNK: usize = 32 * 1024;

/// Why a request did not complete.
#[derive(Debug)]
pub enum Failure<G> {
    /// The downstream went away: nothing more to tell it.
    Gone(G),
    /// The backend side failed: tell the downstream (before the response started it may get
    /// an error answer, after it the response is cut).
    Upstream(UpstreamError),
}

/// Forwards `request` (body from `down`) to a backend connection of `pool` and its response to
/// `down`, retrying once on a fresh connection when the exchange allows it. With `private`,
/// only connections of that owner carry it.
pub async fn forward<D: Downstream>(
    down: &D,
    request: RequestHead,
    pool: &Rc<BackendPool>,
    private: Option<&Private>,
    config: UpstreamConfig,
) -> Result<(), Failure<D::Gone>> {
    let mut conn = connect(down, pool, private, false).await?;
    let exchange = RefCell::new(UpstreamExchange::new(request, conn.reused, config));
    loop {
        let Some(stream) = conn.take_stream() else {
            // The pool hands out connections with their stream; this is a bug, not the backend.
            return Err(Failure::Upstream(
                UpstreamError::new(UpstreamErrorKind::ConnectFailed, true)
                    .with_detail("the pool handed out an empty connection"),
            ));
        };
        let mut read_buf = conn.take_read_buf();
        let attempt = match stream {
            BackendStream::Tcp(s) => attempt(down, &exchange, s, &mut read_buf)
                .await
                .map(|kept| kept.map(BackendStream::Tcp)),
            BackendStream::Unix(s) => attempt(down, &exchange, s, &mut read_buf)
                .await
                .map(|kept| kept.map(BackendStream::Unix)),
        };
        match attempt {
            Ok(Some(stream)) => {
                conn.checkin(stream, read_buf);
                return Ok(());
            }
            Ok(None) => return Ok(()),
            Err(Failure::Gone(gone)) => return Err(Failure::Gone(gone)),
            Err(Failure::Upstream(e)) if exchange.borrow().may_retry(&e) => {
                tracing::debug!(backend = %pool.addr(), reason = %e, "stale pooled backend connection, retrying on a fresh one");
                down.release(exchange.borrow_mut().retry());
                // The stale connection is dropped before the next connect, freeing its place.
                drop(conn);
                conn = connect(down, pool, private, true).await?;
            }
            Err(Failure::Upstream(e)) => {
                down.release(exchange.borrow_mut().take_unreleased());
                return Err(Failure::Upstream(e));
            }
        }
    }
}

/// A connection from the pool (a pooled one if `fresh` is false); the downstream going away
/// ends the wait.
async fn connect<D: Downstream>(
    down: &D,
    pool: &Rc<BackendPool>,
    private: Option<&Private>,
    fresh: bool,
) -> Result<BackendConn, Failure<D::Gone>> {
    let checkout = async {
        if fresh {
            pool.connect_fresh(private).await
        } else {
            pool.checkout(private).await
        }
    };
    ringway_io::select! {
        conn = checkout => conn.map_err(|e| Failure::Upstream(connect_error(&e))),
        gone = down.gone() => Err(Failure::Gone(gone)),
    }
}

fn connect_error(e: &ConnectError) -> UpstreamError {
    let kind = match e {
        ConnectError::Io { .. } | ConnectError::Preamble { .. } => UpstreamErrorKind::ConnectFailed,
        ConnectError::Timeout { .. } => UpstreamErrorKind::ConnectTimeout,
    };
    UpstreamError::new(kind, true).with_detail(e)
}

/// One attempt on one backend connection. `Ok(Some(stream))`: the connection may be reused;
/// `Ok(None)`: done, the connection closes.
async fn attempt<D, S>(
    down: &D,
    exchange: &RefCell<UpstreamExchange>,
    stream: S,
    read_buf: &mut BytesMut,
) -> Result<Option<S>, Failure<D::Gone>>
where
    D: Downstream,
    S: Split + AsyncReadRent + AsyncWriteRent,
{
    let (mut rd, mut wr) = stream.into_split();
    // Rung when the exchange's timers may have moved.
    let timers = Doorbell::new();
    let done = {
        let mut request = pin!(request_loop(down, exchange, &mut wr, &timers));
        let mut response = pin!(response_loop(down, exchange, &mut rd, read_buf, &timers));
        let mut timer = pin!(timer_loop(exchange, &timers));
        let mut gone = pin!(down.gone());
        let mut request_ended = false;
        poll_fn(|cx| {
            if let Poll::Ready(gone) = gone.as_mut().poll(cx) {
                return Poll::Ready(Err(Failure::Gone(gone)));
            }
            if !request_ended {
                if let Poll::Ready(ended) = request.as_mut().poll(cx) {
                    request_ended = true;
                    if let Err(gone) = ended {
                        return Poll::Ready(Err(Failure::Gone(gone)));
                    }
                }
            }
            if let Poll::Ready(e) = timer.as_mut().poll(cx) {
                return Poll::Ready(Err(Failure::Upstream(e)));
            }
            response.as_mut().poll(cx)
        })
        .await
    };
    done?;
    let outcome = exchange.borrow().outcome();
    match outcome {
        Some(Outcome::Reuse) => Ok(rd.reunite(wr).ok()),
        Some(Outcome::CloseAndStopRequest) => {
            down.stop_request();
            Ok(None)
        }
        Some(Outcome::Close) | None => Ok(None),
    }
}

/// Writes the request to the backend as the exchange frames it. A failed write does not end
/// the attempt (the backend may have answered already); it ends this loop.
async fn request_loop<D, S>(
    down: &D,
    exchange: &RefCell<UpstreamExchange>,
    wr: &mut OwnedWriteHalf<S>,
    timers: &Doorbell,
) -> Result<(), D::Gone>
where
    D: Downstream,
    S: Split + AsyncWriteRent,
{
    let mut out = BytesMut::new();
    loop {
        // Pieces that are already there go out in the next write (with the head, for the
        // first ones).
        while exchange.borrow().wants_body() {
            match down.try_recv_body()? {
                Some(piece) => push(exchange, piece),
                None => break,
            }
        }
        let step = exchange.borrow_mut().poll_request(&mut out);
        let written = match step {
            RequestStep::WriteHead(head) => wr.write_all(head).await.0,
            RequestStep::Write => {
                let (res, mut buf) = wr.write_all(std::mem::take(&mut out)).await;
                buf.clear();
                out = buf;
                res
            }
            RequestStep::NeedBody => {
                let piece = down.recv_body().await?;
                push(exchange, piece);
                continue;
            }
            RequestStep::Done { shutdown } => {
                if shutdown {
                    let _ = wr.shutdown().await;
                }
                return Ok(());
            }
            // Only while a write is unreported, which this loop never leaves behind.
            RequestStep::Wait => return Ok(()),
        };
        let now = Instant::now();
        match written {
            Ok(_) => down.release(exchange.borrow_mut().handle_written(now)),
            Err(e) => {
                let (credit, e) = exchange.borrow_mut().handle_write_failed(e, now);
                down.release(credit);
                tracing::debug!(error = %e, "backend write failed");
            }
        }
        timers.ring();
    }
}

fn push(exchange: &RefCell<UpstreamExchange>, piece: BodyPiece) {
    let mut exchange = exchange.borrow_mut();
    match piece {
        BodyPiece::Data(data) => exchange.push_body(data, false),
        BodyPiece::End => exchange.push_body(bytes::Bytes::new(), true),
    }
}

/// Reads the response from the backend and passes on what the exchange makes of it.
async fn response_loop<D, S>(
    down: &D,
    exchange: &RefCell<UpstreamExchange>,
    rd: &mut OwnedReadHalf<S>,
    buf: &mut BytesMut,
    timers: &Doorbell,
) -> Result<(), Failure<D::Gone>>
where
    D: Downstream,
    S: Split + AsyncReadRent,
{
    // The pooled connection's buffer is empty: a connection is reused only when nothing
    // followed its last response.
    buf.clear();
    loop {
        let step = exchange
            .borrow_mut()
            .poll_response(buf, Instant::now())
            .map_err(Failure::Upstream)?;
        match step {
            ResponseStep::Interim(head) => down.send_head(head, false).map_err(Failure::Gone)?,
            ResponseStep::Head { head, end } => down.send_head(head, end).map_err(Failure::Gone)?,
            ResponseStep::Data { data, end } => {
                timers.ring();
                down.send_data(data, end).await.map_err(Failure::Gone)?;
                exchange.borrow_mut().response_forwarded();
                timers.ring();
            }
            ResponseStep::Read => {
                let read = read_append(rd, buf, READ_CHUNK).await;
                let mut exchange = exchange.borrow_mut();
                match read {
                    Ok(n) => exchange.handle_read(n).map_err(Failure::Upstream)?,
                    Err(e) => return Err(Failure::Upstream(exchange.handle_read_failed(e))),
                }
            }
            ResponseStep::Done => return Ok(()),
        }
    }
}

/// Runs the exchange's timers; completes with the error of the first that fires.
///
/// One runtime timer per attempt. It is armed at the first deadline and moved only when a
/// deadline comes that is earlier than the armed one; a later deadline (each response piece
/// pushes the exchange's deadline on) is left to an early wake-up, after which the exchange
/// says what is really due and the timer is armed again. So a request that goes well arms it
/// once, instead of once per doorbell ring (the head written, each piece of the response).
async fn timer_loop(exchange: &RefCell<UpstreamExchange>, timers: &Doorbell) -> UpstreamError {
    let idle = ringway_io::time::Instant::now() + std::time::Duration::from_secs(86_400);
    let mut sleep = pin!(ringway_io::time::sleep_until(idle));
    let mut armed: Option<Instant> = None;
    loop {
        if let Some(at) = exchange.borrow().poll_timeout() {
            if armed.is_none_or(|armed| at < armed) {
                sleep
                    .as_mut()
                    .reset(ringway_io::time::Instant::from_std(at));
                armed = Some(at);
            }
        }
        if armed.is_none() {
            timers.wait().await;
            continue;
        }
        ringway_io::select! {
            () = &mut sleep => {
                armed = None;
                if let Err(e) = exchange.borrow_mut().handle_timeout(Instant::now()) {
                    return e;
                }
            }
            () = timers.wait() => {}
        }
    }
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
