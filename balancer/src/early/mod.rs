//! Answers the balancer gives itself before a request is proxied: an ACME HTTP-01 challenge
//! (`GET /.well-known/acme-challenge/<token>` for a token the ACME thread has pending: `200`
//! with the key authorization), and on the plain listener the `308` to HTTPS of a route with
//! `redirect_https = true` (never for the challenge path, which the CA fetches over plain
//! HTTP). The request path calls [`answer`] once, after the route lookup; with neither
//! configured it costs one branch.

mod table;

use ringway_core::http::forward::Persistence;
use ringway_core::http::{https_location, write_body_response, write_redirect, RequestHead};

pub(crate) use table::{EarlyAnswers, EarlySetup};

use crate::acme::is_challenge_path;
use crate::registry::RouteId;
use crate::user_conn::{Flow, UserConn};
use crate::user_io::write_out;

/// What a request gets before it is proxied, if anything: when it is answered here, the
/// answer is in `conn.out` (for [`send`]) and its status in `status`. `route` is the lookup's;
/// `persistence` what an answer says about the connection. Not async: the request path's
/// future holds nothing of it, and sends the rare answer from a box of its own.
pub(crate) fn answer(
    conn: &mut UserConn,
    head: &RequestHead,
    route: Option<RouteId>,
    persistence: Persistence,
    status: &mut Option<u16>,
) -> bool {
    let early = conn.worker.early();
    if early.is_off() {
        return false;
    }
    let path = head.path();
    if let Some(challenges) = early.challenges() {
        if let Some(key_authorization) = challenges.answer(path) {
            let head_only = head.method() == b"HEAD";
            write_body_response(
                &mut conn.out,
                200,
                "application/octet-stream",
                key_authorization.as_bytes(),
                head_only,
                persistence,
            );
            *status = Some(200);
            return true;
        }
    }
    let redirect =
        !conn.is_https() && route.is_some_and(|r| early.redirects(r)) && !is_challenge_path(path);
    let location = early
        .https_port()
        .filter(|_| redirect)
        .and_then(|port| https_location(head.host()?, head.origin_form(), port));
    let Some(location) = location else {
        return false;
    };
    write_redirect(&mut conn.out, &location, persistence);
    *status = Some(308);
    true
}

/// Writes what `conn.out` holds; the connection goes on unless `persistence` closes it.
pub(crate) async fn send(conn: &mut UserConn, persistence: Persistence) -> Flow {
    let limit = conn.worker.timeouts().body;
    let Some(stream) = conn.stream.as_mut() else {
        return Flow::Close;
    };
    match write_out(stream, &mut conn.out, &conn.worker.deadlines, limit).await {
        Ok(()) if !persistence.closes() => Flow::KeepAlive,
        _ => Flow::Close,
    }
}
