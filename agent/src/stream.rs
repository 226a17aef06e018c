//! One tunnel stream ↔ one request to the backend.
//!
//! The stream is the downstream of `ringway_upstream::forward`, which drives core's
//! `UpstreamExchange` over the thread's backend pool: every protocol decision (framing, the
//! response rewrite, reuse, retry on a fresh connection, Upgrade, the response timeout) is
//! made there. This file only adapts the tunnel stream to it: the request body comes as DATA
//! (decoded bytes) and its credit is released when the exchange says the bytes reached the
//! backend; response heads go out as RESPONSE_HEAD and the body as DATA within flow-control
//! credit; a backend failure becomes a RESET with the exchange's code.

use std::rc::Rc;

use bytes::Bytes;
use ringway_core::http::{Limits, RequestParser};
use ringway_core::tunnel::ResetCode;
use ringway_core::upstream::UpstreamConfig;
use ringway_upstream::{BackendPool, BodyPiece, Downstream, Failure};

use crate::tunnel::{StreamAborted, StreamSlot, Tunnel};

/// What a stream task needs besides the stream itself.
#[derive(Debug, Clone)]
pub(crate) struct StreamEnv {
    pub(crate) pool: Rc<BackendPool>,
    /// The backend exchange's settings (response timeout, head limits).
    pub(crate) upstream: UpstreamConfig,
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
    let request = match RequestParser::new(env.head_limits).parse_bytes(&head) {
        Ok(Some(request)) => request,
        Ok(None) => {
            tracing::info!(stream = %id, "resetting stream: incomplete request head");
            return tunnel.reset(&slot, ResetCode::Protocol);
        }
        Err(e) => {
            tracing::info!(stream = %id, reason = %e, "resetting stream: bad request head");
            return tunnel.reset(&slot, ResetCode::Protocol);
        }
    };
    let stream = TunnelDownstream {
        tunnel: &tunnel,
        slot: &slot,
    };
    match ringway_upstream::forward(&stream, request, &env.pool, None, env.upstream).await {
        Ok(()) => tunnel.finish(&slot),
        Err(Failure::Gone(StreamAborted(code))) => {
            tracing::debug!(stream = %id, %code, "stream aborted by the balancer");
            tunnel.finish(&slot);
        }
        Err(Failure::Upstream(e)) => {
            let code = e.reset_code();
            tracing::info!(stream = %id, %code, reason = %e, "resetting stream");
            tunnel.reset(&slot, code);
        }
    }
}

/// A tunnel stream as the downstream of one backend request.
struct TunnelDownstream<'a> {
    tunnel: &'a Tunnel,
    slot: &'a StreamSlot,
}

impl Downstream for TunnelDownstream<'_> {
    type Gone = StreamAborted;

    async fn recv_body(&self) -> Result<BodyPiece, StreamAborted> {
        Ok(match self.tunnel.recv(self.slot).await? {
            Some(data) => BodyPiece::Data(data),
            None => BodyPiece::End,
        })
    }

    fn try_recv_body(&self) -> Result<Option<BodyPiece>, StreamAborted> {
        if let Some(code) = self.slot.reset_code() {
            return Err(StreamAborted(code));
        }
        Ok(match self.slot.try_pop() {
            Some(data) => Some(BodyPiece::Data(data)),
            None if self.slot.is_end() => Some(BodyPiece::End),
            None => None,
        })
    }

    fn release(&self, n: usize) {
        if n > 0 {
            self.tunnel.release(self.slot.id(), n);
        }
    }

    fn send_head(&self, head: Bytes, end: bool) -> Result<(), StreamAborted> {
        self.tunnel.send_response_head(self.slot, head, end)
    }

    async fn send_data(&self, data: Bytes, end: bool) -> Result<(), StreamAborted> {
        self.tunnel.send_data(self.slot, data, end).await
    }

    fn stop_request(&self) {
        // The response is complete but the request body is not: tell the balancer to stop
        // sending (a NoError reset after a complete response).
        self.tunnel.reset(self.slot, ResetCode::NoError);
    }

    async fn gone(&self) -> StreamAborted {
        self.slot.aborted().await
    }
}
