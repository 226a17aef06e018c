//! Request heads: the incremental zero-copy parser and the parsed [`RequestHead`].

use bytes::{Bytes, BytesMut};

use super::error::HttpError;
use super::fields::{self, FieldSpan, Fields, FramingFields, Span};
use super::head::{check_transfer_encoding, head_field_accessors, keeps_alive, split_head};
use super::limits::{BodyFraming, Limits, Version};
use super::scan::{HeadScanner, Scan};

/// Parses request heads out of a connection's read buffer, one after the other (pipelining).
///
/// Call [`RequestParser::parse`] after every read with the same buffer. Bytes already scanned
/// are not scanned again; when a head is complete it is split off the front of the buffer, and
/// whatever follows (a body, or the next pipelined request) stays in the buffer.
#[derive(Debug, Clone)]
pub struct RequestParser {
    limits: Limits,
    scanner: HeadScanner,
}

impl RequestParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            scanner: HeadScanner::default(),
        }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Tries to parse one request head from the front of `buf`.
    ///
    /// `Ok(Some(head))`: the head's bytes were split off `buf` (zero-copy). `Ok(None)`: more bytes
    /// are needed. `Err(e)`: the request is malformed or over a limit; answer `e.status()` and
    /// close the connection.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<RequestHead>, HttpError> {
        skip_leading_empty_lines(buf, &mut self.scanner);
        let end = match self.scanner.scan(buf)? {
            Scan::Complete(end) => end,
            Scan::Partial => {
                self.check_partial(buf)?;
                return Ok(None);
            }
        };
        if end > self.limits.max_head_bytes {
            return Err(self.too_large(buf));
        }
        let limits = &self.limits;
        let (bytes, parsed) = split_head(buf, end, &mut self.scanner, |h| parse_head(h, limits))?;
        Ok(Some(RequestHead::from_parsed(bytes, parsed)))
    }

    /// Parses a head that arrived whole in its own `Bytes` (a tunnel frame's payload), without
    /// copying it: the head is a slice of `bytes`. Same checks and results as [`Self::parse`]
    /// over a buffer holding `bytes`; bytes after the head's CRLF CRLF are not part of it.
    /// `Ok(None)`: `bytes` holds no complete head.
    pub fn parse_bytes(&mut self, bytes: &Bytes) -> Result<Option<RequestHead>, HttpError> {
        let skip = leading_empty_lines(bytes);
        let rest = &bytes[skip..];
        self.scanner.reset();
        let end = match self.scanner.scan(rest)? {
            Scan::Complete(end) => end,
            Scan::Partial => {
                let partial = self.check_partial(rest);
                self.scanner.reset();
                partial?;
                return Ok(None);
            }
        };
        if end > self.limits.max_head_bytes {
            let e = self.too_large(rest);
            self.scanner.reset();
            return Err(e);
        }
        let parsed = parse_head(&rest[..end], &self.limits);
        self.scanner.reset();
        Ok(Some(RequestHead::from_parsed(
            bytes.slice(skip..skip + end),
            parsed?,
        )))
    }

    /// Checks the limits on a head that has not ended yet.
    ///
    /// While the request line is incomplete it can only be checked once the buffer is longer
    /// than the longest allowed target; from then on it is either too long a target (414) or,
    /// a few bytes later, longer than any valid request line with such a target can be (400).
    /// So the O(n) look at the line happens on at most [`REQUEST_LINE_SLACK`] calls.
    fn check_partial(&self, buf: &[u8]) -> Result<(), HttpError> {
        let max_target = self.limits.max_target_len;
        if self.scanner.start_line_end().is_none() && buf.len() > max_target {
            if target_len(buf) > max_target {
                return Err(HttpError::UriTooLong { limit: max_target });
            }
            if buf.len() > max_target.saturating_add(REQUEST_LINE_SLACK) {
                return Err(HttpError::InvalidRequestLine);
            }
        }
        if buf.len() > self.limits.max_head_bytes {
            return Err(self.too_large(buf));
        }
        Ok(())
    }

    fn too_large(&self, buf: &[u8]) -> HttpError {
        let line_end = self.scanner.start_line_end().unwrap_or(buf.len());
        if target_len(&buf[..line_end]) > self.limits.max_target_len {
            HttpError::UriTooLong {
                limit: self.limits.max_target_len,
            }
        } else {
            HttpError::HeadTooLarge {
                limit: self.limits.max_head_bytes,
            }
        }
    }
}

/// Room for method, two spaces and version around a target of the longest allowed length.
pub const REQUEST_LINE_SLACK: usize = 64;

/// RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
pub(crate) fn skip_leading_empty_lines(buf: &mut BytesMut, scanner: &mut HeadScanner) {
    let n = leading_empty_lines(buf);
    if n > 0 {
        let _ = buf.split_to(n);
        scanner.reset();
    }
}

/// How many bytes of empty lines (CRLF) `buf` starts with.
pub(crate) fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut n = 0;
    while buf[n..].starts_with(b"\r\n") {
        n += 2;
    }
    n
}

/// Length of the target in a (possibly incomplete) request line: the bytes after the first space
/// up to the next space or the end.
fn target_len(line: &[u8]) -> usize {
    let Some(sp) = line.iter().position(|&b| b == b' ') else {
        return 0;
    };
    let rest = &line[sp + 1..];
    rest.iter()
        .position(|&b| b == b' ' || b == b'\r')
        .unwrap_or(rest.len())
}

/// A request head as parsed, before it is wrapped around its frozen bytes.
#[derive(Debug)]
struct ParsedRequest {
    method: Span,
    target: Span,
    version: Version,
    fields: Vec<FieldSpan>,
    facts: FramingFields,
    framing: BodyFraming,
}

fn parse_head(head: &[u8], limits: &Limits) -> Result<ParsedRequest, HttpError> {
    let config = httparse::ParserConfig::default();
    let (method, target, minor, fields) = fields::with_header_slots(limits.max_headers, |slots| {
        let mut req = httparse::Request::new(&mut []);
        match config.parse_request_with_uninit_headers(&mut req, head, slots) {
            Ok(httparse::Status::Complete(_)) => {}
            // The scanner found CRLF CRLF, so httparse has the whole head: a partial result
            // means the request line itself is cut short.
            Ok(httparse::Status::Partial) => return Err(HttpError::InvalidRequestLine),
            Err(e) => return Err(map_httparse(e, limits)),
        }
        let method = Span::of(head, req.method.unwrap_or_default().as_bytes());
        let target = Span::of(head, req.path.unwrap_or_default().as_bytes());
        Ok((
            method,
            target,
            req.version.unwrap_or(1),
            fields::spans_of(head, req.headers),
        ))
    })?;
    let version = Version::from_minor(minor).ok_or(HttpError::UnsupportedVersion)?;
    if target.len() > limits.max_target_len {
        return Err(HttpError::UriTooLong {
            limit: limits.max_target_len,
        });
    }
    let facts = FramingFields::collect(head, &fields)?;
    match (version, facts.host_count) {
        (_, n) if n > 1 => return Err(HttpError::DuplicateHost),
        (Version::Http11, 0) => return Err(HttpError::MissingHost),
        _ => {}
    }
    // RFC 9112 §3.2: a Host with an invalid value is refused like a missing one. Routing
    // depends on it, so the absolute-form authority (which takes its place) is held to the same.
    let host = match absolute_form(target.get(head)) {
        Some((authority, _)) => Some(authority),
        None => facts
            .host_index
            .and_then(|i| fields.get(i))
            .map(|f| f.value.get(head)),
    };
    if host.is_some_and(|h| !is_valid_host(h)) {
        return Err(HttpError::InvalidHost);
    }
    let framing = request_framing(version, &facts, limits)?;
    Ok(ParsedRequest {
        method,
        target,
        version,
        fields,
        facts,
        framing,
    })
}

/// RFC 9112 §6.3 for requests, strictly: no guessing when the framing is ambiguous.
fn request_framing(
    version: Version,
    facts: &FramingFields,
    limits: &Limits,
) -> Result<BodyFraming, HttpError> {
    if facts.has_te {
        check_transfer_encoding(version, facts)?;
        if !facts.te_chunked_last {
            return Err(HttpError::TransferEncodingNotChunked);
        }
        if facts.te_other {
            return Err(HttpError::UnsupportedTransferCoding);
        }
        return Ok(BodyFraming::Chunked);
    }
    match facts.content_length {
        Some(n) => match limits.max_body_bytes {
            Some(limit) if n > limit => Err(HttpError::BodyTooLarge { limit }),
            _ => Ok(BodyFraming::Length(n)),
        },
        None => Ok(BodyFraming::Empty),
    }
}

pub(crate) fn map_httparse(e: httparse::Error, limits: &Limits) -> HttpError {
    match e {
        httparse::Error::HeaderName => HttpError::InvalidHeaderName,
        httparse::Error::HeaderValue => HttpError::InvalidHeaderValue,
        httparse::Error::NewLine => HttpError::BareLf,
        httparse::Error::Status => HttpError::InvalidStatusLine,
        httparse::Error::Token => HttpError::InvalidRequestLine,
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders {
            limit: limits.max_headers,
        },
        httparse::Error::Version => HttpError::UnsupportedVersion,
    }
}

/// A parsed request head. It owns the head's bytes (`Bytes`, shared, never copied) and refers to
/// the method, target and every header field by range.
#[derive(Debug, Clone)]
pub struct RequestHead {
    bytes: Bytes,
    method: Span,
    target: Span,
    version: Version,
    fields: Fields,
    facts: FramingFields,
    framing: BodyFraming,
}

impl RequestHead {
    fn from_parsed(bytes: Bytes, p: ParsedRequest) -> Self {
        Self {
            bytes,
            method: p.method,
            target: p.target,
            version: p.version,
            fields: Fields { spans: p.fields },
            facts: p.facts,
            framing: p.framing,
        }
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &[u8] {
        self.method.get(&self.bytes)
    }

    /// The request target as sent (origin-form `/a?b`, absolute-form `http://h/a?b`, `*`, …).
    pub fn target(&self) -> &[u8] {
        self.target.get(&self.bytes)
    }

    /// The path of the target without the query; for absolute-form the path part (`/` when
    /// the URI has none).
    pub fn path(&self) -> &[u8] {
        let target = self.target();
        let path = match absolute_form(target) {
            Some((_, path)) if path.is_empty() || path[0] == b'?' => return b"/",
            Some((_, path)) => path,
            None => target,
        };
        let end = path.iter().position(|&b| b == b'?').unwrap_or(path.len());
        &path[..end]
    }

    /// The target in origin-form: path and query (absolute-form reduced to its path and query).
    pub fn origin_form(&self) -> &[u8] {
        match absolute_form(self.target()) {
            Some((_, path)) if path.is_empty() || path[0] == b'?' => b"/",
            Some((_, path)) => path,
            None => self.target(),
        }
    }

    head_field_accessors!();

    /// The host the request is for: the authority of an absolute-form target, else the Host
    /// header (RFC 9112 §3.2.2).
    pub fn host(&self) -> Option<&[u8]> {
        if let Some((authority, _)) = absolute_form(self.target()) {
            return Some(authority);
        }
        let index = self.facts.host_index?;
        self.fields
            .spans
            .get(index)
            .map(|f| f.value.get(&self.bytes))
    }

    /// How the request body is delimited.
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// Whether the client wants the connection kept open after this request: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive` (and no `close`).
    pub fn keep_alive(&self) -> bool {
        keeps_alive(self.version, &self.facts)
    }

    /// `Expect: 100-continue` on an HTTP/1.1 request with a body.
    pub fn expects_continue(&self) -> bool {
        self.version == Version::Http11 && self.facts.expect_continue && !self.framing.is_empty()
    }

    /// Whether the method is idempotent (RFC 9110 §9.2.2), so a request that never reached a
    /// backend may be retried.
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self.method(),
            b"GET" | b"HEAD" | b"PUT" | b"DELETE" | b"OPTIONS" | b"TRACE"
        )
    }

    /// An HTTP/1.1 upgrade request: an `Upgrade` header named in `Connection`.
    pub fn wants_upgrade(&self) -> bool {
        self.version == Version::Http11 && self.facts.has_upgrade && self.facts.conn_upgrade
    }
}

/// Bytes allowed in a reg-name: unreserved, sub-delims and `%` of pct-encoded (RFC 3986 §3.2.2).
const REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'_' | b'~' | b'%')
            || matches!(
                c,
                b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
            );
        b += 1;
    }
    table
};

/// `uri-host [ ":" port ]` (RFC 9110 §7.2): a reg-name (unreserved, pct-encoded, sub-delims), an
/// IPv4 address or a bracketed IP literal, then optional port digits. Empty is allowed (a target
/// without authority).
fn is_valid_host(host: &[u8]) -> bool {
    let (name, port) = match host.first() {
        Some(b'[') => match host.iter().position(|&b| b == b']') {
            Some(close) => {
                let literal = &host[1..close];
                let ok = !literal.is_empty()
                    && literal
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || b":.vV".contains(&b));
                if !ok {
                    return false;
                }
                (&host[..0], &host[close + 1..])
            }
            None => return false,
        },
        _ => match host.iter().position(|&b| b == b':') {
            Some(colon) => (&host[..colon], &host[colon..]),
            None => (host, &host[..0]),
        },
    };
    let reg_name_ok = name.iter().all(|&b| REG_NAME[usize::from(b)]);
    let port_ok = match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    };
    reg_name_ok && port_ok
}

/// Splits an absolute-form target `scheme://authority/path?query` into authority and the rest.
fn absolute_form(target: &[u8]) -> Option<(&[u8], &[u8])> {
    // Origin-form (`/…`) and asterisk-form (`*`) are by far the most common: decide on one byte.
    if matches!(target.first(), None | Some(b'/' | b'*')) {
        return None;
    }
    let sep = target.windows(3).position(|w| w == b"://")?;
    let scheme = &target[..sep];
    if scheme.is_empty()
        || !scheme
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
    {
        return None;
    }
    let rest = &target[sep + 3..];
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    // Userinfo is not allowed in http(s) URIs (RFC 9110 §4.2.4): keep only what follows '@'.
    let authority = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    Some((authority, &rest[end..]))
}
