//! Response heads: the incremental zero-copy parser and the parsed [`ResponseHead`].

use bytes::{Bytes, BytesMut};

use super::error::HttpError;
use super::fields::{self, FieldSpan, Fields, FramingFields, Span};
use super::head::{check_transfer_encoding, head_field_accessors, keeps_alive, split_head};
use super::limits::{BodyFraming, Limits, Version};
use super::request::{leading_empty_lines, map_httparse, skip_leading_empty_lines};
use super::scan::{HeadScanner, Scan};

/// Parses response heads from a backend connection's read buffer. After an interim (1xx) head
/// call it again for the next head.
#[derive(Debug, Clone)]
pub struct ResponseParser {
    limits: Limits,
    scanner: HeadScanner,
}

impl ResponseParser {
    /// A parser enforcing `limits` (head bytes and header count; bodies are limited by the
    /// [`crate::http::BodyDecoder`]).
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            scanner: HeadScanner::default(),
        }
    }

    /// Parses a head that arrived whole in its own `Bytes` (a tunnel frame's payload), without
    /// copying it: the head is a slice of `bytes`. Same checks and results as [`Self::parse`]
    /// over a buffer holding `bytes`; bytes after the head's CRLF CRLF are not part of it.
    /// `Ok(None)`: `bytes` holds no complete head.
    pub fn parse_bytes(&mut self, bytes: &Bytes) -> Result<Option<ResponseHead>, HttpError> {
        let skip = leading_empty_lines(bytes);
        let rest = &bytes[skip..];
        self.scanner.reset();
        let scanned = self.scanner.scan(rest);
        self.scanner.reset();
        let end = match scanned? {
            Scan::Complete(end) if end <= self.limits.max_head_bytes => end,
            Scan::Partial if rest.len() <= self.limits.max_head_bytes => return Ok(None),
            Scan::Complete(_) | Scan::Partial => {
                return Err(HttpError::HeadTooLarge {
                    limit: self.limits.max_head_bytes,
                });
            }
        };
        let parsed = parse_head(&rest[..end], &self.limits)?;
        Ok(Some(ResponseHead::from_parsed(
            bytes.slice(skip..skip + end),
            parsed,
        )))
    }

    /// Tries to parse one response head from the front of `buf`; on `Some` the head's bytes were
    /// split off `buf`. `None`: more bytes are needed.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<ResponseHead>, HttpError> {
        skip_leading_empty_lines(buf, &mut self.scanner);
        let end = match self.scanner.scan(buf)? {
            Scan::Complete(end) => end,
            Scan::Partial if buf.len() > self.limits.max_head_bytes => {
                return Err(HttpError::HeadTooLarge {
                    limit: self.limits.max_head_bytes,
                });
            }
            Scan::Partial => return Ok(None),
        };
        if end > self.limits.max_head_bytes {
            return Err(HttpError::HeadTooLarge {
                limit: self.limits.max_head_bytes,
            });
        }
        let limits = &self.limits;
        let (bytes, parsed) = split_head(buf, end, &mut self.scanner, |h| parse_head(h, limits))?;
        Ok(Some(ResponseHead::from_parsed(bytes, parsed)))
    }
}

#[derive(Debug)]
struct ParsedResponse {
    status: u16,
    reason: Span,
    version: Version,
    fields: Vec<FieldSpan>,
    facts: FramingFields,
}

fn parse_head(head: &[u8], limits: &Limits) -> Result<ParsedResponse, HttpError> {
    let config = httparse::ParserConfig::default();
    let (status, reason, minor, fields) = fields::with_header_slots(limits.max_headers, |slots| {
        let mut res = httparse::Response::new(&mut []);
        match config.parse_response_with_uninit_headers(&mut res, head, slots) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(HttpError::InvalidStatusLine),
            Err(httparse::Error::Token) => return Err(HttpError::InvalidStatusLine),
            Err(e) => return Err(map_httparse(e, limits)),
        }
        let reason = Span::of(head, res.reason.unwrap_or_default().as_bytes());
        let status = res.code.ok_or(HttpError::InvalidStatusLine)?;
        Ok((
            status,
            reason,
            res.version.unwrap_or(1),
            fields::spans_of(head, res.headers),
        ))
    })?;
    let version = Version::from_minor(minor).ok_or(HttpError::UnsupportedVersion)?;
    if !(100..=999).contains(&status) {
        return Err(HttpError::InvalidStatusLine);
    }
    let facts = FramingFields::collect(head, &fields)?;
    if facts.has_te {
        check_transfer_encoding(version, &facts)?;
        if facts.te_other {
            // A coding ringway would have to decode before it could re-frame the body.
            return Err(HttpError::UnsupportedTransferCoding);
        }
    }
    Ok(ParsedResponse {
        status,
        reason,
        version,
        fields,
        facts,
    })
}

/// A parsed response head over its own `Bytes`, fields by range.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    bytes: Bytes,
    status: u16,
    reason: Span,
    version: Version,
    fields: Fields,
    facts: FramingFields,
}

impl ResponseHead {
    fn from_parsed(bytes: Bytes, p: ParsedResponse) -> Self {
        Self {
            bytes,
            status: p.status,
            reason: p.reason,
            version: p.version,
            fields: Fields { spans: p.fields },
            facts: p.facts,
        }
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase (may be empty).
    pub fn reason(&self) -> &[u8] {
        self.reason.get(&self.bytes)
    }

    head_field_accessors!();

    /// Whether the server lets the connection be reused after this response. A body delimited by
    /// close ([`BodyFraming::UntilClose`]) also ends the connection; check the framing too.
    pub fn keep_alive(&self) -> bool {
        keeps_alive(self.version, &self.facts)
    }

    /// An interim response (1xx other than 101): a final head follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// How the body of this response to a `request_method` request is delimited (RFC 9112
    /// §6.3): HEAD, 1xx, 204 and 304 have none; 101 turns the connection into opaque bytes;
    /// then chunked, then Content-Length, else until the server closes.
    pub fn framing(&self, request_method: &[u8]) -> BodyFraming {
        match self.status {
            101 => BodyFraming::Upgrade,
            100..=199 | 204 | 304 => BodyFraming::Empty,
            _ if request_method == b"HEAD" => BodyFraming::Empty,
            200..=299 if request_method == b"CONNECT" => BodyFraming::Upgrade,
            // The parser refused every Transfer-Encoding other than a lone `chunked`, so the
            // RFC's "TE not ending in chunked → until close" case cannot reach this point.
            _ if self.facts.has_te => BodyFraming::Chunked,
            _ => self
                .facts
                .content_length
                .map_or(BodyFraming::UntilClose, BodyFraming::Length),
        }
    }

    /// The Content-Length the server declared, if any (meaningful for HEAD responses too).
    pub fn content_length(&self) -> Option<u64> {
        self.facts.content_length
    }
}
