//! Configured limits for HTTP/1.1 heads and bodies, and the protocol version.

/// Size limits applied while parsing. Every limit is a configured number, never a constant, and
/// each one maps to its own status when it is exceeded (see [`crate::http::HttpError::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes a head may take, request line (or status line) through the final CRLF CRLF.
    /// Exceeded → 431.
    pub max_head_bytes: usize,
    /// Most header fields in one head. Exceeded → 431.
    pub max_headers: usize,
    /// Longest request target. Exceeded → 414.
    pub max_target_len: usize,
    /// Largest body, or `None` for no limit. Exceeded → 413.
    pub max_body_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head_bytes: 16384,
            max_headers: 100,
            max_target_len: 8192,
            max_body_bytes: None,
        }
    }
}

impl Limits {
    /// The limits a next hop applies to heads that [`crate::http::forward::write_request`] wrote
    /// from heads accepted under `self`: room for the fields the proxy adds (Host, X-Forwarded-*,
    /// Forwarded, X-Request-Id, framing, Connection/Upgrade) and for the host repeated in
    /// X-Forwarded-Host and Forwarded. The agent parses tunnelled request heads with these, so
    /// a request the balancer accepted is never refused one hop later.
    pub fn forwarded(self) -> Self {
        Self {
            max_head_bytes: self.max_head_bytes.saturating_mul(3).saturating_add(1024),
            max_headers: self.max_headers.saturating_add(8),
            ..self
        }
    }
}

/// The HTTP/1.x version of a message. Other versions are refused with 505.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// HTTP/1.0: connections close after each message unless `Connection: keep-alive`.
    Http10,
    /// HTTP/1.1: persistent by default; `Host` required in requests.
    Http11,
}

impl Version {
    /// The version as it appears on the wire, e.g. `HTTP/1.1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http10 => "HTTP/1.0",
            Self::Http11 => "HTTP/1.1",
        }
    }

    pub(crate) fn from_minor(minor: u8) -> Option<Self> {
        match minor {
            0 => Some(Self::Http10),
            1 => Some(Self::Http11),
            _ => None,
        }
    }
}

/// How a message body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyFraming {
    /// No body at all (no framing headers in a request; HEAD/204/304/1xx responses).
    Empty,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Responses only: the body runs until the server closes the connection.
    UntilClose,
    /// After `101 Switching Protocols`: the bytes are opaque and run until close.
    Upgrade,
}

impl BodyFraming {
    /// Whether a message framed this way carries no body bytes at all.
    pub fn is_empty(self) -> bool {
        matches!(self, Self::Empty | Self::Length(0))
    }

    /// How to frame this body when re-sending it to a peer speaking `version`: a known length
    /// stays a length, no body stays none, an upgraded connection stays opaque; a body of unknown
    /// length (chunked or close-delimited) becomes chunked for HTTP/1.1 and close-delimited for
    /// HTTP/1.0, which has no chunked coding.
    pub fn reframe_for(self, version: Version) -> Self {
        match self {
            Self::Empty | Self::Length(_) | Self::Upgrade => self,
            Self::Chunked | Self::UntilClose => match version {
                Version::Http11 => Self::Chunked,
                Version::Http10 => Self::UntilClose,
            },
        }
    }

    /// Whether the connection must close after a body framed this way (its end is the close,
    /// or the connection now carries another protocol).
    pub fn ends_connection(self) -> bool {
        matches!(self, Self::UntilClose | Self::Upgrade)
    }
}
