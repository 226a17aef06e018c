//! Error answers: what the user sees when a request cannot be served. One short plain-text
//! response with the request's `X-Request-Id` (in a header and in the body), and one log line
//! that names the same id.

use ringway_core::exchange::{ErrorKind, ErrorSource, ProxyError};
use ringway_core::http::forward::Persistence;
use ringway_core::http::ErrorResponse;
use tracing::info;

use crate::limits::CLIENT_RETRY_AFTER_SECS;
use crate::peer_log::PeerMistake;
use crate::registry::RouteId;
use crate::user_conn::{Flow, UserConn};
use crate::user_io::write_out;

/// Answers `e` and says whether the connection goes on: as `persistence` says (close for an
/// unread request body or a user that asked to close; keep-alive for an HTTP/1.0 user that
/// keeps it), and closed whenever the error demands it.
pub(crate) async fn error(
    conn: &mut UserConn,
    e: ProxyError,
    request_id: &str,
    persistence: Persistence,
    route: Option<RouteId>,
) -> Flow {
    let worker = &conn.worker;
    let status = e.status();
    let route_text = route
        .map(|r| worker.registry.route_text(r))
        .unwrap_or_default();
    // A client's own mistakes are limited per peer (one sending garbage must not flood the log).
    if e.source != ErrorSource::Client
        || worker
            .peer_log
            .allow(conn.peer.socket_addr(), PeerMistake::BadRequest)
    {
        info!(
            request_id,
            status,
            kind = ?e.kind,
            source = ?e.source,
            route = %route_text,
            peer = %conn.peer,
            "request failed: {}",
            e.message()
        );
    }
    let retry_after = e.sends_retry_after().then(|| match e.kind {
        ErrorKind::QueueFull | ErrorKind::QueueTimeout => route
            .and_then(|r| worker.route_limits().retry_after_secs(r))
            .unwrap_or(1),
        ErrorKind::TooManyConnections => CLIENT_RETRY_AFTER_SECS,
        _ => worker.timeouts().retry_after_secs(),
    });
    let message = format!("{} (request id {request_id})", e.message());
    let response = ErrorResponse {
        status,
        request_id,
        message: &message,
        retry_after,
        persistence: if e.closes_connection() {
            Persistence::Close
        } else {
            persistence
        },
    };
    response.write(&mut conn.out);
    let close = response.closes();
    let limit = worker.timeouts().body;
    let Some(stream) = conn.stream.as_mut() else {
        return Flow::Close;
    };
    if write_out(stream, &mut conn.out, &worker.deadlines, limit)
        .await
        .is_err()
        || close
    {
        Flow::Close
    } else {
        Flow::KeepAlive
    }
}
