//! What request and response heads share: the accessors over their fields, the keep-alive rule,
//! the Transfer-Encoding rules both directions enforce, and splitting a scanned head off the
//! read buffer. [`RequestHead`](super::RequestHead) and [`ResponseHead`](super::ResponseHead)
//! each hold `bytes`, `version`, `fields` and `facts`; the rest of their parsing differs.

use bytes::{Bytes, BytesMut};

use super::error::HttpError;
use super::fields::FramingFields;
use super::limits::Version;
use super::scan::HeadScanner;

/// The accessors every head has, written once for both. Expands inside an `impl` of a struct
/// with the fields `bytes: Bytes`, `version: Version`, `fields: Fields`, `facts: FramingFields`.
macro_rules! head_field_accessors {
    () => {
        /// HTTP/1.0 or HTTP/1.1.
        pub fn version(&self) -> Version {
            self.version
        }

        /// Every header field in order, as (name, value) slices of the head's bytes.
        pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
            self.fields.iter(&self.bytes)
        }

        /// The first value of header `name` (case-insensitive).
        pub fn header(&self, name: &str) -> Option<&[u8]> {
            self.fields.get(&self.bytes, name)
        }

        /// Every header field as (name, value, the field line as received without its CRLF),
        /// for writers that copy a field unchanged in one piece.
        pub(crate) fn field_lines(&self) -> impl Iterator<Item = (&[u8], &[u8], &[u8])> + '_ {
            self.fields.lines(&self.bytes)
        }

        /// Every value of header `name` (case-insensitive), in order.
        pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
            self.fields.all(&self.bytes, name)
        }

        /// The head's bytes exactly as received.
        pub fn as_bytes(&self) -> &Bytes {
            &self.bytes
        }
    };
}
pub(crate) use head_field_accessors;

/// RFC 9112 §9.3: HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0 only with
/// `Connection: keep-alive` (and no `close`).
pub(crate) fn keeps_alive(version: Version, facts: &FramingFields) -> bool {
    match version {
        Version::Http11 => !facts.conn_close,
        Version::Http10 => facts.conn_keep_alive && !facts.conn_close,
    }
}

/// The Transfer-Encoding rules requests and responses share: none in HTTP/1.0, never together
/// with Content-Length (RFC 9112 §6.3 lets TE win, but also calls such a message an error: a
/// proxy that forwards it invites smuggling and response splitting).
pub(crate) fn check_transfer_encoding(
    version: Version,
    facts: &FramingFields,
) -> Result<(), HttpError> {
    if version == Version::Http10 {
        return Err(HttpError::TransferEncodingInHttp10);
    }
    if facts.content_length.is_some() {
        return Err(HttpError::ContentLengthWithTransferEncoding);
    }
    Ok(())
}

/// Parses the complete head of `end` bytes at the front of `buf` with `parse`, readies the
/// scanner for the next head whatever the outcome, and on success splits the head's bytes off
/// `buf` (zero-copy) to go with what `parse` returned.
pub(crate) fn split_head<T>(
    buf: &mut BytesMut,
    end: usize,
    scanner: &mut HeadScanner,
    parse: impl FnOnce(&[u8]) -> Result<T, HttpError>,
) -> Result<(Bytes, T), HttpError> {
    let parsed = parse(&buf[..end]);
    scanner.reset();
    let parsed = parsed?;
    Ok((buf.split_to(end).freeze(), parsed))
}
