//! One tunnel stream ↔ one backend request/response exchange.
//!
//! The request head goes to the backend byte for byte as the balancer framed it; the body (DATA,
//! decoded bytes) is framed as that head says with core's `BodyEncoder`, and its credit is
//! released only once the bytes were written to the backend. The response head is parsed with
//! core, rewritten by `forward::write_response` (hop-by-hop removed, framing rebuilt) and sent as
//! RESPONSE_HEAD; the decoded body follows as DATA within flow-control credit, so memory is bounded
//! by the windows whatever the body size.
//!
//! Upload and download run concurrently inside the stream task (a backend may stream its response
//! while the request body still flows, as `/echo` does). A reused pooled connection that fails
//! before any response byte is retried once on a fresh connection when the request body sent so
//! far can be replayed (kept while it is small) and the request is idempotent or never reached
//! the backend. Once the response has started nothing is retried.

use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use ringway_core::http::{
    forward, BodyDecoder, BodyEncoder, BodyEvent, BodyFraming, Limits, RequestHead, RequestParser,
    ResponseParser,
};
use ringway_core::tunnel::ResetCode;
use ringway_io::{read_append, Doorbell};

use crate::pool::{BackendPool, ConnectError};
use crate::request_body::{BodyChunk, RequestBody};
use crate::tunnel::{StreamAborted, StreamSlot, Tunnel};

/// Bytes asked of the backend socket per read.
const READ_CHUNK: usize = 32 * 1024;
/// Request-body bytes gathered before a backend write.
const WRITE_BATCH: usize = 64 * 1024;

/// What a stream task needs besides the stream itself.
#[derive(Debug, Clone)]
pub(crate) struct StreamEnv {
    pub(crate) pool: Rc<BackendPool>,
    pub(crate) response_timeout: std::time::Duration,
    /// Limits for parsing request heads (already accepted by the balancer) and backend response
    /// heads: generous, since a head must fit one tunnel frame anyway.
    pub(crate) head_limits: Limits,
}

/// Head limits derived from the tunnel's frame size.
pub(crate) fn head_limits(max_frame_payload: u32) -> Limits {
    let frame = usize::try_from(max_frame_payload).unwrap_or(usize::MAX);
    let mut limits = Limits::default();
    limits.max_head_bytes = limits.max_head_bytes.max(frame);
    limits.max_target_len = limits.max_target_len.max(frame);
    limits.max_headers = limits.max_headers.max(128);
    limits
}

/// Serves one stream to completion (or reset).
pub(crate) async fn serve(tunnel: Rc<Tunnel>, slot: Rc<StreamSlot>, head: Bytes, env: StreamEnv) {
    let id = slot.id();
    let outcome = forward_stream(&tunnel, &slot, head, &env).await;
    match outcome {
        Ok(()) => tunnel.finish(&slot),
        Err(Failure::Aborted(StreamAborted(code))) => {
            tracing::debug!(stream = %id, %code, "stream aborted by the balancer");
            tunnel.finish(&slot);
        }
        Err(Failure::Reset(code, why)) => {
            tracing::info!(stream = %id, %code, reason = %why, "resetting stream");
            tunnel.reset(&slot, code);
        }
    }
}

/// Why a stream did not complete normally.
#[derive(Debug)]
enum Failure {
    /// The balancer reset it or the tunnel went away: nothing to send.
    Aborted(StreamAborted),
    /// We reset it with this code.
    Reset(ResetCode, String),
}

impl From<StreamAborted> for Failure {
    fn from(e: StreamAborted) -> Self {
        Self::Aborted(e)
    }
}

/// How one attempt on one backend connection failed.
#[derive(Debug)]
enum AttemptError {
    Failure(Failure),
    /// The connection failed before any response byte came back.
    NoResponse(String),
}

impl From<StreamAborted> for AttemptError {
    fn from(e: StreamAborted) -> Self {
        Self::Failure(Failure::Aborted(e))
    }
}

fn reset(code: ResetCode, why: impl std::fmt::Display) -> AttemptError {
    AttemptError::Failure(Failure::Reset(code, why.to_string()))
}

async fn forward_stream(
    tunnel: &Tunnel,
    slot: &StreamSlot,
    head: Bytes,
    env: &StreamEnv,
) -> Result<(), Failure> {
    let mut head_buf = BytesMut::from(&head[..]);
    let request = match RequestParser::new(env.head_limits).parse(&mut head_buf) {
        Ok(Some(request)) => request,
        Ok(None) => {
            return Err(Failure::Reset(
                ResetCode::Protocol,
                "incomplete request head".into(),
            ))
        }
        Err(e) => {
            return Err(Failure::Reset(
                ResetCode::Protocol,
                format!("request head: {e}"),
            ))
        }
    };
    let mut body = RequestBody::new(request.framing());
    let mut fresh_only = false;
    loop {
        // The pool may make this stream wait for a connection: a reset ends the wait.
        let checkout = async {
            if fresh_only {
                env.pool.connect_fresh().await
            } else {
                env.pool.checkout().await
            }
        };
        let mut conn = monoio::select! {
            conn = checkout => conn.map_err(|e| connect_failure(&e))?,
            aborted = slot.aborted() => return Err(Failure::Aborted(aborted)),
        };
        let Some(stream) = conn.take_stream() else {
            return Err(Failure::Reset(
                ResetCode::Internal,
                "pool handed out an empty connection".into(),
            ));
        };
        let mut read_buf = conn.take_read_buf();
        let reused = conn.reused;
        body.replayable = reused;
        match exchange(
            tunnel,
            slot,
            &request,
            &mut body,
            stream,
            &mut read_buf,
            env,
        )
        .await
        {
            Ok(Some(stream)) => {
                conn.checkin(stream, read_buf);
                return Ok(());
            }
            Ok(None) => return Ok(()),
            Err(AttemptError::Failure(f)) => return Err(f),
            Err(AttemptError::NoResponse(why)) if reused && !fresh_only && body.rewind() => {
                tracing::debug!(stream = %slot.id(), reason = %why, "stale pooled backend connection, retrying on a fresh one");
                // `conn` (the stale one) is dropped before the next checkout, freeing its place.
                fresh_only = true;
            }
            Err(AttemptError::NoResponse(why)) => {
                return Err(Failure::Reset(ResetCode::BackendReset, why));
            }
        }
    }
}

fn connect_failure(e: &ConnectError) -> Failure {
    match e {
        ConnectError::Io { .. } => Failure::Reset(ResetCode::Refused, e.to_string()),
        ConnectError::Timeout { .. } => Failure::Reset(ResetCode::BackendTimeout, e.to_string()),
    }
}

/// One request/response on one backend connection. `Ok(Some(stream))`: the connection may be
/// reused; `Ok(None)`: done, connection closed.
async fn exchange(
    tunnel: &Tunnel,
    slot: &StreamSlot,
    request: &RequestHead,
    body: &mut RequestBody,
    stream: TcpStream,
    read_buf: &mut BytesMut,
    env: &StreamEnv,
) -> Result<Option<TcpStream>, AttemptError> {
    let (mut rd, mut wr) = stream.into_split();
    let attempt = Attempt::default();
    let outcome = {
        let upload = pin!(upload(tunnel, slot, request, body, &mut wr, &attempt));
        let download = pin!(download(
            tunnel, slot, request, &mut rd, read_buf, env, &attempt
        ));
        let aborted = pin!(slot.aborted());
        let (mut upload, mut download, mut aborted) = (upload, download, aborted);
        let mut upload_result: Option<Result<(), AttemptError>> = None;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(code) = aborted.as_mut().poll(cx) {
                return Poll::Ready(Err(AttemptError::from(code)));
            }
            if upload_result.is_none() {
                match upload.as_mut().poll(cx) {
                    Poll::Ready(Err(AttemptError::Failure(Failure::Aborted(a)))) => {
                        return Poll::Ready(Err(a.into()))
                    }
                    // A failed upload does not end the attempt: the backend may have answered
                    // already (e.g. 413 before reading the body), the download decides.
                    Poll::Ready(r) => {
                        upload_result = Some(r);
                        attempt.upload_finished.ring();
                    }
                    Poll::Pending => {}
                }
            }
            match download.as_mut().poll(cx) {
                Poll::Ready(Ok(keep_alive)) => {
                    let upload_done = matches!(upload_result, Some(Ok(())));
                    Poll::Ready(Ok((keep_alive, upload_done)))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    };
    let (keep_alive, upload_done) =
        outcome.map_err(|e| unless_replayable(e, request, &attempt.sent))?;
    if !upload_done {
        // The response is complete but the request body is not: tell the balancer to stop sending.
        tunnel.reset(slot, ResetCode::NoError);
        return Ok(None);
    }
    if !keep_alive {
        return Ok(None);
    }
    Ok(rd.reunite(wr).ok())
}

/// What the two halves of one attempt tell each other.
#[derive(Default)]
struct Attempt {
    /// A response byte came back: the attempt can no longer be retried.
    responded: std::cell::Cell<bool>,
    /// A write to the backend succeeded: the backend may have the request.
    sent: std::cell::Cell<bool>,
    /// The upload ended (well or not): the response-head timer starts.
    upload_finished: Doorbell,
    /// The backend answered an Upgrade with 101: both sides now carry opaque bytes.
    upgraded: std::cell::Cell<bool>,
}

/// A connection that failed before any response byte may be retried on a fresh one, but once a
/// write reached it the backend may have processed the request (the close crossed it): only an
/// idempotent request is run again then (RFC 9112 §9.3.1). A request whose first write failed
/// never reached the backend and is always retryable.
fn unless_replayable(
    e: AttemptError,
    request: &RequestHead,
    sent: &std::cell::Cell<bool>,
) -> AttemptError {
    match e {
        AttemptError::NoResponse(why) if sent.get() && !request.is_idempotent() => reset(
            ResetCode::BackendReset,
            format!("{why}; not retried: the request was sent and is not idempotent"),
        ),
        other => other,
    }
}

/// Writes the request head and body to the backend. Chunks that are already queued go out in
/// one write (with the head, for the first); their credit is released once written.
async fn upload(
    tunnel: &Tunnel,
    slot: &StreamSlot,
    request: &RequestHead,
    body: &mut RequestBody,
    wr: &mut OwnedWriteHalf<TcpStream>,
    attempt: &Attempt,
) -> Result<(), AttemptError> {
    let (responded, sent) = (&attempt.responded, &attempt.sent);
    if matches!(body.framing, BodyFraming::Empty) {
        // No body (the common GET): the head goes out as it came, without a copy.
        let (res, _) = wr.write_all(request.as_bytes().clone()).await;
        res.map_err(|e| write_failed(&e, responded))?;
        sent.set(true);
        if request.wants_upgrade() {
            return upgraded_upload(tunnel, slot, wr, attempt).await;
        }
        return Ok(());
    }
    let mut out = BytesMut::with_capacity(request.as_bytes().len() + 1024);
    out.extend_from_slice(request.as_bytes());
    let mut encoder = BodyEncoder::new(body.framing);
    let mut unreleased = 0;
    loop {
        let chunk = if out.is_empty() {
            body.next(tunnel, slot).await?
        } else {
            body.try_next(slot)?
        };
        match chunk {
            BodyChunk::Data { data, fresh } => {
                encoder.encode(&data, &mut out);
                if fresh {
                    unreleased += data.len();
                }
                if out.len() < WRITE_BATCH {
                    continue;
                }
            }
            BodyChunk::Pending => {}
            BodyChunk::End => {
                encoder.finish(&mut out);
                let written = write(wr, &mut out, responded, sent).await;
                // Released whether or not the write worked: a retry replays these bytes from
                // the log as not fresh, so this is the only release they get.
                tunnel.release(slot.id(), unreleased);
                return written;
            }
        }
        let written = write(wr, &mut out, responded, sent).await;
        tunnel.release(slot.id(), std::mem::take(&mut unreleased));
        written?;
    }
}

/// The request side of an Upgrade request after its head: once the backend switched protocols,
/// the balancer's DATA are opaque bytes written to the backend as they come, until the
/// balancer ends its side (then the backend's write side is shut). Without a 101 the balancer
/// ends the request side right after the final head, and nothing was written.
async fn upgraded_upload(
    tunnel: &Tunnel,
    slot: &StreamSlot,
    wr: &mut OwnedWriteHalf<TcpStream>,
    attempt: &Attempt,
) -> Result<(), AttemptError> {
    let mut out = BytesMut::new();
    while let Some(chunk) = tunnel.recv(slot).await? {
        // Every chunk already queued goes out in one write; its credit returns once written.
        out.extend_from_slice(&chunk);
        while let Some(more) = slot.try_pop() {
            out.extend_from_slice(&more);
        }
        let taken = out.len();
        write(wr, &mut out, &attempt.responded, &attempt.sent).await?;
        tunnel.release(slot.id(), taken);
    }
    if attempt.upgraded.get() {
        let _ = wr.shutdown().await;
    }
    Ok(())
}

async fn write(
    wr: &mut OwnedWriteHalf<TcpStream>,
    out: &mut BytesMut,
    responded: &std::cell::Cell<bool>,
    sent: &std::cell::Cell<bool>,
) -> Result<(), AttemptError> {
    if out.is_empty() {
        return Ok(());
    }
    let buf = std::mem::take(out);
    let (res, mut buf) = wr.write_all(buf).await;
    buf.clear();
    *out = buf;
    res.map_err(|e| write_failed(&e, responded))?;
    sent.set(true);
    Ok(())
}

/// A failed backend write: retryable while no response byte came back.
fn write_failed(e: &std::io::Error, responded: &std::cell::Cell<bool>) -> AttemptError {
    if responded.get() {
        reset(ResetCode::BackendReset, format!("writing to backend: {e}"))
    } else {
        AttemptError::NoResponse(format!("writing to backend: {e}"))
    }
}

/// Reads the response from the backend and sends it through the tunnel. Returns whether the
/// backend connection can serve another request.
async fn download(
    tunnel: &Tunnel,
    slot: &StreamSlot,
    request: &RequestHead,
    rd: &mut OwnedReadHalf<TcpStream>,
    buf: &mut BytesMut,
    env: &StreamEnv,
    attempt: &Attempt,
) -> Result<bool, AttemptError> {
    let (responded, upload_finished) = (&attempt.responded, &attempt.upload_finished);
    // The pooled connection's buffer (empty: a connection is reused only when nothing followed
    // its last response).
    buf.clear();
    let mut parser = ResponseParser::new(env.head_limits);
    // The response-head timer runs from the end of the upload: a long upload is not a slow
    // backend. When it fires the connection is dropped, so losing a pending read is harmless.
    let timer = async {
        upload_finished.wait().await;
        monoio::time::sleep(env.response_timeout).await;
    };
    let head_read = async {
        loop {
            match parser.parse(buf) {
                Ok(Some(head)) if head.is_interim() => {
                    tunnel.send_response_head(slot, head.as_bytes().clone(), false)?;
                    parser = ResponseParser::new(env.head_limits);
                    // The next head may already be in the buffer (a backend that writes its 1xx
                    // and final heads together): parse again before reading.
                    continue;
                }
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => {
                    return Err(reset(
                        ResetCode::BackendReset,
                        format!("backend response head: {e}"),
                    ))
                }
            }
            if read_some(rd, buf, responded).await? == 0 {
                return Err(if responded.get() {
                    reset(
                        ResetCode::BackendReset,
                        "backend closed inside the response head",
                    )
                } else {
                    AttemptError::NoResponse("backend closed before responding".into())
                });
            }
            responded.set(true);
        }
    };
    let head = monoio::select! {
        head = head_read => head?,
        () = timer => {
            return Err(reset(
                ResetCode::BackendTimeout,
                format!("no response head within {:?} of the request", env.response_timeout),
            ));
        }
    };
    responded.set(true);
    let framing = head.framing(request.method());
    let tunnel_framing = match (framing, head.content_length()) {
        (BodyFraming::UntilClose, _) => BodyFraming::Chunked,
        // HEAD and 304 responses keep the Content-Length of the representation they describe;
        // no body follows whatever it says.
        (BodyFraming::Empty, Some(n)) if head.status() != 204 && head.status() >= 200 => {
            BodyFraming::Length(n)
        }
        (other, _) => other,
    };
    if matches!(framing, BodyFraming::Upgrade) {
        return upgraded_download(tunnel, slot, request, &head, rd, buf, env, attempt).await;
    }
    let mut head_out = BytesMut::with_capacity(head.as_bytes().len() + 64);
    forward::write_response(
        &head,
        tunnel_framing,
        forward::Persistence::Persistent,
        &mut head_out,
    );
    let empty = matches!(framing, BodyFraming::Empty);
    tunnel.send_response_head(slot, head_out.freeze(), empty)?;
    let reusable =
        head.keep_alive() && request.keep_alive() && !matches!(framing, BodyFraming::UntilClose);
    if empty {
        return Ok(reusable && buf.is_empty());
    }
    let mut decoder = BodyDecoder::new(framing, None);
    loop {
        match decoder.decode(buf) {
            Ok(BodyEvent::Data(data)) => send_body(tunnel, slot, data, false, env).await?,
            Ok(BodyEvent::End) => {
                send_body(tunnel, slot, Bytes::new(), true, env).await?;
                // Bytes past the response mean a confused backend: do not reuse.
                return Ok(reusable && buf.is_empty());
            }
            Ok(BodyEvent::NeedMore) => {
                if read_some(rd, buf, responded).await? == 0 {
                    return match decoder.finish_on_eof() {
                        Ok(()) => {
                            send_body(tunnel, slot, Bytes::new(), true, env).await?;
                            Ok(false)
                        }
                        Err(e) => Err(reset(
                            ResetCode::BackendReset,
                            format!("backend closed mid-body: {e}"),
                        )),
                    };
                }
            }
            Err(e) => {
                return Err(reset(
                    ResetCode::BackendReset,
                    format!("backend response body: {e}"),
                ))
            }
        }
    }
}

/// The backend switched protocols: the 101 goes to the balancer, then whatever the backend
/// sends is opaque bytes for the user until it closes. A 101 nobody asked for is refused.
#[allow(clippy::too_many_arguments)]
async fn upgraded_download(
    tunnel: &Tunnel,
    slot: &StreamSlot,
    request: &RequestHead,
    head: &ringway_core::http::ResponseHead,
    rd: &mut OwnedReadHalf<TcpStream>,
    buf: &mut BytesMut,
    env: &StreamEnv,
    attempt: &Attempt,
) -> Result<bool, AttemptError> {
    if head.status() != 101 || !request.wants_upgrade() {
        return Err(reset(
            ResetCode::BackendReset,
            "the backend switched protocols without an Upgrade request",
        ));
    }
    let mut head_out = BytesMut::with_capacity(head.as_bytes().len() + 64);
    forward::write_response(
        head,
        BodyFraming::Upgrade,
        forward::Persistence::Close,
        &mut head_out,
    );
    tunnel.send_response_head(slot, head_out.freeze(), false)?;
    attempt.upgraded.set(true);
    loop {
        if !buf.is_empty() {
            send_body(tunnel, slot, buf.split().freeze(), false, env).await?;
        }
        if read_some(rd, buf, &attempt.responded).await? == 0 {
            send_body(tunnel, slot, Bytes::new(), true, env).await?;
            return Ok(false);
        }
    }
}

/// Sends response body bytes, waiting for flow-control credit at most `response_timeout`: a
/// balancer that stops returning credit (its user stopped reading) must not hold the stream and
/// its backend connection forever. On timeout the stream is reset with `Cancel`.
async fn send_body(
    tunnel: &Tunnel,
    slot: &StreamSlot,
    data: Bytes,
    end: bool,
    env: &StreamEnv,
) -> Result<(), AttemptError> {
    match monoio::time::timeout(env.response_timeout, tunnel.send_data(slot, data, end)).await {
        Ok(sent) => Ok(sent?),
        Err(_) => Err(reset(
            ResetCode::Cancel,
            format!(
                "no flow-control credit from the balancer within {:?}",
                env.response_timeout
            ),
        )),
    }
}

/// One backend read. A failed read is retryable only while no response byte came back: once the
/// response started, the backend processed the request and running it again is wrong.
async fn read_some(
    rd: &mut OwnedReadHalf<TcpStream>,
    buf: &mut BytesMut,
    responded: &std::cell::Cell<bool>,
) -> Result<usize, AttemptError> {
    read_append(rd, buf, READ_CHUNK).await.map_err(|e| {
        let why = format!("reading from backend: {e}");
        if responded.get() {
            reset(ResetCode::BackendReset, why)
        } else {
            AttemptError::NoResponse(why)
        }
    })
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
