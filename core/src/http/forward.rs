//! Forwarding rewrites: what a proxy hop changes in a head before passing it on.
//!
//! Order matters and is fixed here: hop-by-hop fields are dropped first (Connection, every field
//! Connection names, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade unless upgrading, and the
//! client's framing fields), then the framing is rebuilt from the parsed [`BodyFraming`] (never
//! copied from the peer's bytes), then the trusted fields are added. A client can therefore not
//! smuggle a trusted field past the proxy by naming it in `Connection`, nor keep one of its own
//! framing fields.

use std::fmt::Write as _;
use std::net::IpAddr;

use bytes::{BufMut, BytesMut};

use super::fields::{is_tchar, list_contains, tokens, trim};
use super::limits::BodyFraming;
use super::request::RequestHead;
use super::response::ResponseHead;

/// What the proxy knows about the client connection a request came in on.
#[derive(Debug, Clone, Copy)]
pub struct ForwardInfo<'a> {
    /// The client's address (becomes X-Forwarded-For / Forwarded `for=`).
    pub client_addr: IpAddr,
    /// `http` or `https` (X-Forwarded-Proto / Forwarded `proto=`).
    pub proto: &'a str,
    /// The id to send as X-Request-Id when the client sent none.
    pub request_id: &'a str,
}

/// The request's X-Request-Id, if it carries one.
pub fn request_id(head: &RequestHead) -> Option<&[u8]> {
    head.header("x-request-id")
}

/// Writes `head` as the next hop should receive it: request line in origin-form with
/// `HTTP/1.1`, end-to-end fields in order, framing rebuilt from `framing`, then
/// X-Forwarded-For (appended to the client's list), X-Forwarded-Proto, X-Forwarded-Host,
/// Forwarded (appended), and X-Request-Id when the client sent none.
pub fn write_request(
    head: &RequestHead,
    info: &ForwardInfo<'_>,
    framing: BodyFraming,
    out: &mut BytesMut,
) {
    let upgrading = head.wants_upgrade();
    let connection: Vec<&[u8]> = head.header_all("connection").collect();
    out.reserve(head.as_bytes().len() + 256);
    out.extend_from_slice(head.method());
    out.put_u8(b' ');
    out.extend_from_slice(head.origin_form());
    out.extend_from_slice(b" HTTP/1.1\r\n");

    let host = head.host();
    if let Some(host) = host {
        put_field(out, b"Host", host);
    }
    for (name, value) in head.headers() {
        if is_hop_by_hop(name, &connection)
            || is_framing(name)
            || is_trusted(name)
            || name.eq_ignore_ascii_case(b"host")
        {
            continue;
        }
        put_field(out, name, value);
    }
    if upgrading {
        if let Some(upgrade) = head.header("upgrade") {
            put_field(out, b"Upgrade", upgrade);
        }
        out.extend_from_slice(b"Connection: upgrade\r\n");
    }
    put_framing(out, framing);

    // Trusted fields last. A field the client named in Connection is hop-by-hop and was dropped
    // above, so its old values do not count as "existing" here.
    let kept = |name: &[u8]| !is_hop_by_hop(name, &connection);
    out.extend_from_slice(b"X-Forwarded-For: ");
    if kept(b"x-forwarded-for") {
        for value in head.header_all("x-forwarded-for") {
            for hop in tokens(value) {
                out.extend_from_slice(hop);
                out.extend_from_slice(b", ");
            }
        }
    }
    let _ = write!(StrSink(out), "{}\r\n", info.client_addr);
    put_field(out, b"X-Forwarded-Proto", info.proto.as_bytes());
    if let Some(host) = host {
        put_field(out, b"X-Forwarded-Host", host);
    }
    put_forwarded(out, head, info, host, kept(b"forwarded"));
    if request_id(head).is_none() || !kept(b"x-request-id") {
        put_field(out, b"X-Request-Id", info.request_id.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes `head` as the client should receive it: `HTTP/1.1` status line, end-to-end fields,
/// framing rebuilt from `framing`, and `Connection: close` when `close`.
///
/// With [`BodyFraming::Empty`] a HEAD response keeps its Content-Length (it describes the GET
/// representation); 1xx and 204 never carry one.
pub fn write_response(head: &ResponseHead, framing: BodyFraming, close: bool, out: &mut BytesMut) {
    let upgrading = framing == BodyFraming::Upgrade && head.status() == 101;
    let connection: Vec<&[u8]> = head.header_all("connection").collect();
    out.reserve(head.as_bytes().len() + 64);
    let _ = write!(StrSink(out), "HTTP/1.1 {} ", head.status());
    out.extend_from_slice(head.reason());
    out.extend_from_slice(b"\r\n");
    for (name, value) in head.headers() {
        if is_hop_by_hop(name, &connection) || is_framing(name) {
            continue;
        }
        put_field(out, name, value);
    }
    match framing {
        BodyFraming::Empty => {
            let status = head.status();
            if status >= 200 && status != 204 {
                if let Some(n) = head.content_length() {
                    let _ = write!(StrSink(out), "Content-Length: {n}\r\n");
                }
            }
        }
        _ => put_framing(out, framing),
    }
    if upgrading {
        if let Some(upgrade) = head.header("upgrade") {
            put_field(out, b"Upgrade", upgrade);
        }
        out.extend_from_slice(b"Connection: upgrade\r\n");
    } else if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Hop-by-hop: Connection, the fields it names, Keep-Alive, Proxy-Connection, TE, Trailer, and
/// Upgrade (when this hop upgrades, the writer re-adds Upgrade and `Connection: upgrade` itself).
fn is_hop_by_hop(name: &[u8], connection: &[&[u8]]) -> bool {
    const FIXED: [&[u8]; 6] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
    ];
    FIXED.iter().any(|f| name.eq_ignore_ascii_case(f))
        || connection.iter().any(|list| list_contains(list, name))
}

/// Framing fields, rebuilt by the writer from the parsed framing.
fn is_framing(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"transfer-encoding")
}

/// Fields the proxy sets itself; a client's own values are dropped (X-Forwarded-For and
/// Forwarded are re-emitted with the proxy's hop appended).
fn is_trusted(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"x-forwarded-for")
        || name.eq_ignore_ascii_case(b"x-forwarded-proto")
        || name.eq_ignore_ascii_case(b"x-forwarded-host")
        || name.eq_ignore_ascii_case(b"forwarded")
}

fn put_framing(out: &mut BytesMut, framing: BodyFraming) {
    match framing {
        BodyFraming::Length(n) => {
            let _ = write!(StrSink(out), "Content-Length: {n}\r\n");
        }
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyFraming::Empty | BodyFraming::UntilClose | BodyFraming::Upgrade => {}
    }
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `Forwarded` (RFC 7239): the client's elements, then ours: `for=…;proto=…;host=…`, with an
/// IPv6 address bracketed and quoted and a host quoted when it is not a token.
fn put_forwarded(
    out: &mut BytesMut,
    head: &RequestHead,
    info: &ForwardInfo<'_>,
    host: Option<&[u8]>,
    keep_existing: bool,
) {
    out.extend_from_slice(b"Forwarded: ");
    for value in head.header_all("forwarded").filter(|_| keep_existing) {
        let value = trim(value);
        if !value.is_empty() {
            out.extend_from_slice(value);
            out.extend_from_slice(b", ");
        }
    }
    let _ = match info.client_addr {
        IpAddr::V4(ip) => write!(StrSink(out), "for={ip}"),
        IpAddr::V6(ip) => write!(StrSink(out), "for=\"[{ip}]\""),
    };
    out.extend_from_slice(b";proto=");
    put_token_or_quoted(out, info.proto.as_bytes());
    if let Some(host) = host {
        out.extend_from_slice(b";host=");
        put_token_or_quoted(out, host);
    }
    out.extend_from_slice(b"\r\n");
}

fn put_token_or_quoted(out: &mut BytesMut, value: &[u8]) {
    if !value.is_empty() && value.iter().all(|&b| is_tchar(b)) {
        out.extend_from_slice(value);
        return;
    }
    out.put_u8(b'"');
    for &b in value {
        if b == b'"' || b == b'\\' {
            out.put_u8(b'\\');
        }
        out.put_u8(b);
    }
    out.put_u8(b'"');
}

/// `fmt::Write` into a `BytesMut` without an intermediate `String`.
pub(crate) struct StrSink<'a>(pub(crate) &'a mut BytesMut);

impl std::fmt::Write for StrSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}
