//! Forwarding rewrites: what a proxy hop changes in a head before passing it on.
//!
//! Order matters and is fixed here: hop-by-hop fields are dropped first (Connection, every field
//! Connection names, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade unless upgrading, and the
//! client's framing fields; and `Expect`, which the proxy answers itself), then the framing is rebuilt from the parsed [`BodyFraming`] (never
//! copied from the peer's bytes), then the trusted fields are added. A client can therefore not
//! smuggle a trusted field past the proxy by naming it in `Connection`, nor keep one of its own
//! framing fields.

use std::net::IpAddr;

use bytes::{BufMut, BytesMut};

use super::fields::{is_tchar, tokens, trim};
use super::limits::{BodyFraming, Version};
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
    /// Whether the peer is a trusted proxy: only then are the X-Forwarded-For and Forwarded
    /// lists it sent kept (and appended to). From anyone else they are dropped, so a client
    /// cannot make the backend believe it came from another address.
    pub trusted_peer: bool,
}

/// Longest client-supplied X-Request-Id that is kept.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The client's X-Request-Id, when it is one the proxy keeps: the first such field, 1 to
/// [`MAX_REQUEST_ID_LEN`] visible ASCII characters, and not named in `Connection` (which would
/// make it hop-by-hop). [`write_request`] forwards exactly this id, or the proxy's own when this
/// is `None`, so what the proxy logs and what the backend sees agree.
pub fn request_id(head: &RequestHead) -> Option<&[u8]> {
    let id = head.header("x-request-id")?;
    let usable = !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id.iter().all(u8::is_ascii_graphic)
        && !ConnectionTokens::of(head.header_all("connection")).contains(b"x-request-id");
    usable.then_some(id)
}

/// Writes `head` as the next hop should receive it: request line in origin-form with
/// `HTTP/1.1`, end-to-end fields in order, framing rebuilt from `framing`, then
/// X-Forwarded-For (appended to the list a trusted peer sent, else fresh), X-Forwarded-Proto,
/// X-Forwarded-Host, Forwarded (likewise), and X-Request-Id: the client's when [`request_id`] accepts it, else
/// `info.request_id`.
pub fn write_request(
    head: &RequestHead,
    info: &ForwardInfo<'_>,
    framing: BodyFraming,
    out: &mut BytesMut,
) {
    let upgrading = head.wants_upgrade();
    let listed = ConnectionTokens::of(head.header_all("connection"));
    out.reserve(head.as_bytes().len() + 256);
    out.extend_from_slice(head.method());
    out.put_u8(b' ');
    put_origin_form(out, head);
    out.extend_from_slice(b" HTTP/1.1\r\n");

    let host = head.host();
    if let Some(host) = host {
        put_field(out, b"Host", host);
    }
    // Pass 1: drop hop-by-hop fields (fixed ones and those Connection names), the client's
    // framing and the fields the proxy sets itself; copy the rest in order.
    let mut xff_kept = false;
    let mut forwarded_kept = false;
    for (name, value, line) in head.field_lines() {
        let class = FieldClass::of(name);
        if class == FieldClass::HopByHop || listed.contains(name) {
            continue;
        }
        match class {
            FieldClass::EndToEnd => put_line(out, name, value, line),
            FieldClass::ForwardedFor => xff_kept = info.trusted_peer,
            FieldClass::Forwarded => forwarded_kept = info.trusted_peer,
            _ => {}
        }
    }
    if upgrading {
        if let Some(upgrade) = head.header("upgrade") {
            put_field(out, b"Upgrade", upgrade);
        }
        out.extend_from_slice(b"Connection: upgrade\r\n");
    }
    put_framing(out, framing);

    // Pass 2: the trusted fields, built on what survived pass 1.
    let mut ip_text = [0u8; 64];
    let client = format_ip(info.client_addr, &mut ip_text);
    out.extend_from_slice(b"X-Forwarded-For: ");
    if xff_kept {
        for value in head.header_all("x-forwarded-for") {
            for hop in tokens(value) {
                out.extend_from_slice(hop);
                out.extend_from_slice(b", ");
            }
        }
    }
    out.extend_from_slice(client);
    out.extend_from_slice(b"\r\n");
    put_field(out, b"X-Forwarded-Proto", info.proto.as_bytes());
    if let Some(host) = host {
        put_field(out, b"X-Forwarded-Host", host);
    }
    out.extend_from_slice(b"Forwarded: ");
    if forwarded_kept {
        for value in head
            .header_all("forwarded")
            .map(trim)
            .filter(|v| !v.is_empty())
        {
            out.extend_from_slice(value);
            out.extend_from_slice(b", ");
        }
    }
    put_forwarded_element(out, info, client, host);
    let id = request_id(head).unwrap_or(info.request_id.as_bytes());
    put_field(out, b"X-Request-Id", id);
    out.extend_from_slice(b"\r\n");
}

/// The request target in origin-form. An absolute-form target with no path but a query
/// (`http://h?x=1`) becomes `/?x=1`: the query is kept.
fn put_origin_form(out: &mut BytesMut, head: &RequestHead) {
    let origin = head.origin_form();
    let target = head.target();
    if origin == b"/" && !target.starts_with(b"/") {
        // Absolute-form: the authority holds no `?`, so the first one starts the query.
        if let Some(q) = target.iter().position(|&b| b == b'?') {
            out.put_u8(b'/');
            out.extend_from_slice(&target[q..]);
            return;
        }
    }
    out.extend_from_slice(origin);
}

/// What a forwarded response tells the next hop about the connection it arrives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// The connection stays open and the next hop speaks HTTP/1.1, where that is the default:
    /// no Connection field.
    Persistent,
    /// The connection stays open for an HTTP/1.0 next hop, which would close it unless told
    /// otherwise: `Connection: keep-alive`.
    KeepAlive,
    /// The connection closes after this response: `Connection: close`.
    Close,
}

impl Persistence {
    /// For a next hop that spoke `version` and whose connection is kept when `keep`.
    pub fn for_peer(version: Version, keep: bool) -> Self {
        match (keep, version) {
            (false, _) => Self::Close,
            (true, Version::Http10) => Self::KeepAlive,
            (true, Version::Http11) => Self::Persistent,
        }
    }

    /// Whether the connection closes after the response.
    pub fn closes(self) -> bool {
        self == Self::Close
    }
}

/// Writes `head` as the next hop should receive it: `HTTP/1.1` status line, end-to-end fields,
/// framing rebuilt from `framing`, and the Connection field `persistence` asks for (none for
/// [`Persistence::Persistent`]). A 101 upgrade says `Connection: upgrade` instead.
///
/// With [`BodyFraming::Empty`] a HEAD response keeps its Content-Length (it describes the GET
/// representation); 1xx and 204 never carry one.
pub fn write_response(
    head: &ResponseHead,
    framing: BodyFraming,
    persistence: Persistence,
    out: &mut BytesMut,
) {
    let upgrading = framing == BodyFraming::Upgrade && head.status() == 101;
    let listed = ConnectionTokens::of(head.header_all("connection"));
    out.reserve(head.as_bytes().len() + 64);
    out.extend_from_slice(b"HTTP/1.1 ");
    put_decimal(out, head.status());
    out.put_u8(b' ');
    out.extend_from_slice(head.reason());
    out.extend_from_slice(b"\r\n");
    for (name, value, line) in head.field_lines() {
        let class = FieldClass::of(name);
        if matches!(class, FieldClass::HopByHop | FieldClass::Framing) || listed.contains(name) {
            continue;
        }
        put_line(out, name, value, line);
    }
    match framing {
        BodyFraming::Empty => {
            let status = head.status();
            if status >= 200 && status != 204 {
                if let Some(n) = head.content_length() {
                    put_content_length(out, n);
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
    } else {
        match persistence {
            Persistence::Persistent => {}
            Persistence::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
            Persistence::Close => out.extend_from_slice(b"Connection: close\r\n"),
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// What a proxy does with a field, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldClass {
    /// Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade: never forwarded as is
    /// (an upgrading hop re-adds Upgrade and `Connection: upgrade` itself).
    HopByHop,
    /// Expect: the proxy answers `100-continue` to its client itself, so the next hop must not
    /// wait for the body or answer it a second time. Dropped from requests.
    Expect,
    /// Content-Length, Transfer-Encoding: rebuilt from the parsed framing.
    Framing,
    /// X-Forwarded-For: the client's list, our hop appended.
    ForwardedFor,
    /// Forwarded: the client's elements, ours appended.
    Forwarded,
    /// X-Forwarded-Proto, X-Forwarded-Host: set by the proxy only.
    Trusted,
    /// Host: written first, from the request's effective host.
    Host,
    /// X-Request-Id: written once, after the copy: the client's if usable, else ours.
    RequestId,
    /// Everything else.
    EndToEnd,
}

impl FieldClass {
    /// Classifies a field name, case-insensitively, looking at its length first so most names
    /// cost one comparison.
    fn of(name: &[u8]) -> Self {
        let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
        match name.len() {
            2 if is("te") => Self::HopByHop,
            4 if is("host") => Self::Host,
            6 if is("expect") => Self::Expect,
            7 if is("trailer") || is("upgrade") => Self::HopByHop,
            9 if is("forwarded") => Self::Forwarded,
            10 if is("connection") || is("keep-alive") => Self::HopByHop,
            12 if is("x-request-id") => Self::RequestId,
            14 if is("content-length") => Self::Framing,
            15 if is("x-forwarded-for") => Self::ForwardedFor,
            16 if is("proxy-connection") => Self::HopByHop,
            16 if is("x-forwarded-host") => Self::Trusted,
            17 if is("transfer-encoding") => Self::Framing,
            17 if is("x-forwarded-proto") => Self::Trusted,
            _ => Self::EndToEnd,
        }
    }
}

/// The field names a head's Connection fields list (RFC 9110 §7.6.1), gathered once.
struct ConnectionTokens<'a> {
    tokens: Vec<&'a [u8]>,
}

impl<'a> ConnectionTokens<'a> {
    fn of(values: impl Iterator<Item = &'a [u8]>) -> Self {
        Self {
            tokens: values.flat_map(tokens).collect(),
        }
    }

    fn contains(&self, name: &[u8]) -> bool {
        self.tokens.iter().any(|t| t.eq_ignore_ascii_case(name))
    }
}

/// Formats an address into `buf` without allocating: an IPv4 address digit by digit (the
/// common case, without `fmt`'s machinery), an IPv6 one by its `Display`.
fn format_ip(addr: IpAddr, buf: &mut [u8; 64]) -> &[u8] {
    if let IpAddr::V4(v4) = addr {
        let mut n = 0;
        for (i, octet) in v4.octets().into_iter().enumerate() {
            if i > 0 {
                buf[n] = b'.';
                n += 1;
            }
            let mut digits = itoa::Buffer::new();
            let text = digits.format(octet).as_bytes();
            buf[n..n + text.len()].copy_from_slice(text);
            n += text.len();
        }
        return &buf[..n];
    }
    let mut cursor = &mut buf[..];
    let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{addr}"));
    let left = cursor.len();
    &buf[..64 - left]
}

/// Writes `n` in decimal (itoa: no `fmt` machinery on the per-request path).
pub(crate) fn put_decimal(out: &mut BytesMut, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn put_content_length(out: &mut BytesMut, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    put_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

fn put_framing(out: &mut BytesMut, framing: BodyFraming) {
    match framing {
        BodyFraming::Length(n) => put_content_length(out, n),
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyFraming::Empty | BodyFraming::UntilClose | BodyFraming::Upgrade => {}
    }
}

/// Copies a field line as received (one copy instead of four); `line` is empty when the parser
/// could not give it, then the field is rebuilt from name and value.
fn put_line(out: &mut BytesMut, name: &[u8], value: &[u8], line: &[u8]) {
    if line.is_empty() {
        put_field(out, name, value);
    } else {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Our `Forwarded` element (RFC 7239): `for=…;proto=…;host=…`, an IPv6 address bracketed and
/// quoted, a host quoted when it is not a token.
fn put_forwarded_element(
    out: &mut BytesMut,
    info: &ForwardInfo<'_>,
    client: &[u8],
    host: Option<&[u8]>,
) {
    out.extend_from_slice(b"for=");
    match info.client_addr {
        IpAddr::V4(_) => out.extend_from_slice(client),
        IpAddr::V6(_) => {
            out.extend_from_slice(b"\"[");
            out.extend_from_slice(client);
            out.extend_from_slice(b"]\"");
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_format_as_display_does() {
        let addrs = [
            "0.0.0.0",
            "1.2.3.4",
            "10.200.0.9",
            "255.255.255.255",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:1.2.3.4",
        ];
        for text in addrs {
            let addr: IpAddr = text.parse().expect("test address");
            let mut buf = [0u8; 64];
            assert_eq!(format_ip(addr, &mut buf), addr.to_string().as_bytes());
        }
    }
}
