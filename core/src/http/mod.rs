//! HTTP/1.1 heads, body framing, forwarding rewrites and keep-alive rules.
//!
//! Sans-IO, zero-copy: a connection's read buffer (`BytesMut`) goes in, and a parsed head comes
//! out as a [`RequestHead`] / [`ResponseHead`] that owns the head's bytes as [`bytes::Bytes`]
//! (split off the buffer, not copied) and refers to method, target and each header by range.
//! httparse does the tokenising; this module adds what a proxy must refuse (RFC 9112's
//! request-smuggling rules, bare LF, obs-fold, control characters, ambiguous framing) with one
//! [`HttpError`] kind per rule, and the limits in [`Limits`].
//!
//! Order of use on a client connection: [`RequestParser::parse`] until a head arrives;
//! [`BodyDecoder`] for its [`BodyFraming`]; [`forward::write_request`] for the next hop; the
//! response comes back through [`ResponseParser`], [`BodyDecoder`], [`forward::write_response`]
//! and [`BodyEncoder`]. Pipelined requests simply stay in the buffer for the next `parse`.

mod body;
mod error;
mod error_response;
mod fields;
pub mod forward;
mod limits;
mod request;
mod response;
mod scan;

pub use body::{BodyDecoder, BodyEncoder, BodyEvent};
pub use error::HttpError;
pub use error_response::{closes_connection, reason_phrase, write_error_response, ErrorResponse};
pub use limits::{BodyFraming, Limits, Version};
pub use request::{RequestHead, RequestParser, REQUEST_LINE_SLACK};
pub use response::{ResponseHead, ResponseParser};
