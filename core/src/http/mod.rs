//! HTTP/1.1 heads, body framing, forwarding rewrites and keep-alive rules.
//!
//! Sans-IO, zero-copy: a connection's read buffer (`BytesMut`) goes in, and a parsed head comes
//! out as a [`RequestHead`] / [`ResponseHead`] that owns the head's bytes as [`bytes::Bytes`]
//! (split off the buffer, not copied) and refers to method, target and each header by range.
//! httparse does the tokenising; this module adds what a proxy must refuse (RFC 9112's
//! request-smuggling rules, bare LF, obs-fold, control characters, ambiguous framing) with one
//! [`HttpError`] kind per rule, and the limits in [`Limits`].
//!
//! Order of use on a client connection:
//! 1. [`RequestParser::parse`] after each read until a head arrives (errors: answer
//!    [`HttpError::status`] with [`write_error_response`] and close).
//! 2. [`BodyDecoder::new`]`(head.framing(), limits.max_body_bytes)` for the request body.
//! 3. [`forward::write_request`] writes the head for the next hop, which parses it with
//!    [`Limits::forwarded`] (the rewrite adds fields).
//! 4. The response: [`ResponseParser::parse`] (again after 1xx heads), its
//!    [`ResponseHead::framing`] for the request method, [`BodyFraming::reframe_for`] the client's
//!    version, [`forward::write_response`], then [`BodyDecoder`] → [`BodyEncoder`] for the body.
//! 5. Keep the connection when [`RequestHead::keep_alive`], [`ResponseHead::keep_alive`] and not
//!    [`BodyFraming::ends_connection`]. Pipelined requests are already in the buffer for the next
//!    `parse`; answer them in order.

mod body;
mod error;
mod error_response;
mod fields;
pub mod forward;
mod head;
mod limits;
mod local_response;
mod request;
mod response;
mod scan;

pub use body::{BodyDecoder, BodyEncoder, BodyEvent};
pub use error::HttpError;
pub use error_response::{closes_connection, reason_phrase, write_error_response, ErrorResponse};
pub use limits::{BodyFraming, Limits, Version};
pub use local_response::{https_location, write_body_response, write_redirect};
pub use request::{RequestHead, RequestParser, REQUEST_LINE_SLACK};
pub use response::{ResponseHead, ResponseParser};
