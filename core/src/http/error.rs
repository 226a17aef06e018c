//! What can be wrong in the peer's HTTP/1.1 input, one kind per rule.

/// An error in HTTP/1.1 input (a request or response head, or a body's framing).
///
/// Each variant names one rule. [`HttpError::status`] says which status the balancer answers a
/// client with; every one of them means the connection must be closed afterwards, because the
/// framing of whatever follows can no longer be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The head did not end within the configured number of bytes.
    #[error("head larger than {limit} bytes")]
    HeadTooLarge { limit: usize },
    /// More header fields than configured.
    #[error("more than {limit} header fields")]
    TooManyHeaders { limit: usize },
    /// The request target is longer than configured.
    #[error("request target longer than {limit} bytes")]
    UriTooLong { limit: usize },
    /// The body is larger than configured (declared or actual).
    #[error("body larger than {limit} bytes")]
    BodyTooLarge { limit: u64 },
    /// A line ends in LF without the CR before it.
    #[error("bare LF in head")]
    BareLf,
    /// A CR not followed by LF.
    #[error("bare CR in head")]
    BareCr,
    /// A control character (NUL included) where the grammar does not allow one.
    #[error("control character 0x{byte:02x} in head")]
    ControlChar { byte: u8 },
    /// A header line continued on the next line (obs-fold), refused by RFC 9112 §5.2.
    #[error("obsolete line folding in head")]
    ObsFold,
    /// The request line is malformed (method, target or separators).
    #[error("malformed request line")]
    InvalidRequestLine,
    /// The status line is malformed.
    #[error("malformed status line")]
    InvalidStatusLine,
    /// A header name is empty or holds a byte that is not a token character.
    #[error("invalid header name")]
    InvalidHeaderName,
    /// A header value holds a forbidden byte.
    #[error("invalid header value")]
    InvalidHeaderValue,
    /// The version is not HTTP/1.0 or HTTP/1.1.
    #[error("unsupported HTTP version")]
    UnsupportedVersion,
    /// An HTTP/1.1 request without a Host header.
    #[error("missing Host header")]
    MissingHost,
    /// A Host value (or absolute-form authority) that is not `host[:port]`.
    #[error("invalid Host")]
    InvalidHost,
    /// More than one Host header.
    #[error("repeated Host header")]
    DuplicateHost,
    /// Content-Length and Transfer-Encoding in one message (request smuggling vector).
    #[error("both Content-Length and Transfer-Encoding")]
    ContentLengthWithTransferEncoding,
    /// A Content-Length value that is not plain digits, or does not fit in 64 bits.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Several Content-Length values that differ.
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    /// A request whose last transfer coding is not `chunked`: its length cannot be known.
    #[error("Transfer-Encoding whose last coding is not chunked")]
    TransferEncodingNotChunked,
    /// A transfer coding other than `chunked` (e.g. `gzip, chunked`), which ringway does not
    /// decode and so cannot re-frame.
    #[error("unsupported transfer coding")]
    UnsupportedTransferCoding,
    /// Transfer-Encoding in an HTTP/1.0 message, which has no chunked coding.
    #[error("Transfer-Encoding in HTTP/1.0")]
    TransferEncodingInHttp10,
    /// A chunk size that is empty or holds a non-hex digit.
    #[error("invalid chunk size")]
    InvalidChunkSize,
    /// A chunk size that does not fit in 64 bits.
    #[error("chunk size overflows")]
    ChunkSizeOverflow,
    /// Chunk data not followed by CRLF, or a chunk-size line not ended by CRLF.
    #[error("missing CRLF after chunk")]
    MissingChunkCrlf,
    /// A chunk-size line (with extensions) longer than the decoder accepts.
    #[error("chunk-size line too long")]
    ChunkLineTooLong,
    /// A malformed trailer field.
    #[error("invalid trailer field")]
    InvalidTrailer,
    /// Trailer section larger than the decoder accepts.
    #[error("trailer section too large")]
    TrailersTooLarge,
    /// More body bytes than the framing allows (an encoder was given too much).
    #[error("body longer than its framing allows")]
    BodyOverrun,
    /// The connection closed before the body was complete.
    #[error("connection closed before the body ended")]
    IncompleteBody,
}

impl HttpError {
    /// The status to answer a client with when its request broke this rule. For errors in a
    /// backend's response the driver answers 502 instead (see [`HttpError::response_status`]).
    pub fn status(&self) -> u16 {
        match self {
            Self::HeadTooLarge { .. } | Self::TooManyHeaders { .. } => 431,
            Self::UriTooLong { .. } => 414,
            Self::BodyTooLarge { .. } => 413,
            Self::UnsupportedVersion => 505,
            Self::UnsupportedTransferCoding => 501,
            _ => 400,
        }
    }

    /// The status a proxy answers with when a backend's response broke this rule: always 502.
    pub fn response_status(&self) -> u16 {
        502
    }
}
