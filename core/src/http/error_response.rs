//! Error responses the proxy writes itself (400, 404, 413, 502, 503, 504, …).

use std::fmt::Write as _;

use bytes::BytesMut;

use super::forward::{Persistence, StrSink};

/// Whether an error response with this status must close the client connection: the request's
/// framing could not be trusted (400, 413, 414, 431, 501, 505) or it timed out (408).
pub fn closes_connection(status: u16) -> bool {
    matches!(status, 400 | 408 | 411 | 413 | 414 | 431 | 501 | 505)
}

/// The standard reason phrase for `status` (empty for codes it does not know).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        304 => "Not Modified",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        421 => "Misdirected Request",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Writes a complete error response: a short `text/plain` body (`message` and a newline),
/// `X-Request-Id`, `Retry-After` when given, and `Connection: close` when
/// [`closes_connection`] says so. Bytes of `request_id` or `message` that could break the head or
/// the body's framing (CR, LF, other controls) are replaced with `_`.
pub fn write_error_response(
    status: u16,
    request_id: &str,
    message: &str,
    retry_after: Option<u32>,
    out: &mut BytesMut,
) {
    ErrorResponse {
        status,
        request_id,
        message,
        retry_after,
        persistence: Persistence::Persistent,
    }
    .write(out);
}

/// An error response the proxy writes itself, for callers that need more than
/// [`write_error_response`] offers (closing after a status that would not close by itself, or
/// telling an HTTP/1.0 client that its connection stays open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorResponse<'a> {
    /// The status code.
    pub status: u16,
    /// Sent as `X-Request-Id`.
    pub request_id: &'a str,
    /// The body text (a newline is appended).
    pub message: &'a str,
    /// `Retry-After` seconds (503 with no agent yet).
    pub retry_after: Option<u32>,
    /// What the response says about the connection: [`Persistence::Close`] adds
    /// `Connection: close` even when the status alone would not, [`Persistence::KeepAlive`]
    /// adds `Connection: keep-alive` for an HTTP/1.0 client. A status for which
    /// [`closes_connection`] is true closes whatever this says.
    pub persistence: Persistence,
}

impl ErrorResponse<'_> {
    /// Whether the written response says `Connection: close`.
    pub fn closes(&self) -> bool {
        self.persistence.closes() || closes_connection(self.status)
    }

    /// Appends the whole response, head and body, to `out`.
    pub fn write(&self, out: &mut BytesMut) {
        let body_len = self.message.len() + 1;
        out.reserve(160 + self.request_id.len() + body_len);
        let _ = write!(
            StrSink(out),
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {body_len}\r\nX-Request-Id: ",
            self.status,
            reason_phrase(self.status)
        );
        put_sanitized(out, self.request_id.as_bytes(), false);
        out.extend_from_slice(b"\r\n");
        if let Some(seconds) = self.retry_after {
            let _ = write!(StrSink(out), "Retry-After: {seconds}\r\n");
        }
        if self.closes() {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if self.persistence == Persistence::KeepAlive {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
        put_sanitized(out, self.message.as_bytes(), true);
        out.extend_from_slice(b"\n");
    }
}

fn put_sanitized(out: &mut BytesMut, text: &[u8], allow_tab: bool) {
    for &b in text {
        let bad = (b < 0x20 && !(allow_tab && b == b'\t')) || b == 0x7f;
        out.extend_from_slice(if bad { b"_" } else { std::slice::from_ref(&b) });
    }
}
