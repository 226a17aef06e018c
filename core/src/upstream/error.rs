//! What can go wrong on the backend connection of one request, where in the exchange it
//! happened, and the tunnel reset code that tells the balancer about it.

use std::fmt;
use std::time::Duration;

use crate::http::HttpError;
use crate::tunnel::ResetCode;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamErrorKind {
    /// No connection to the backend could be made (refused, unreachable).
    ConnectFailed,
    /// The connect did not finish within its timeout.
    ConnectTimeout,
    /// Writing to the backend failed.
    Write,
    /// Reading from the backend failed.
    Read,
    /// The backend closed before sending a response byte.
    ClosedBeforeResponse,
    /// The backend closed inside the response head.
    ClosedInHead,
    /// The backend closed before the body's framing said it was complete.
    ClosedInBody(HttpError),
    /// The response head broke a rule or a limit.
    BadHead(HttpError),
    /// The response body's framing broke a rule.
    BadBody(HttpError),
    /// A 101 answered a request that asked for no upgrade.
    UnrequestedUpgrade,
    /// No response head within the response timeout of the request being sent.
    ResponseTimeout(Duration),
    /// The next hop took no response byte within the response timeout (its reader stopped).
    ForwardTimeout(Duration),
}

/// An error on one backend exchange: what went wrong and whether it happened before any
/// response byte came back (the precondition of a retry on a fresh connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    /// What went wrong.
    pub kind: UpstreamErrorKind,
    /// No response byte had come back when it happened.
    pub before_response: bool,
    /// The OS error text of a failed read or write, when there was one.
    pub detail: Option<String>,
}

impl UpstreamError {
    /// An error of `kind`; `before_response`: no response byte had come back.
    pub fn new(kind: UpstreamErrorKind, before_response: bool) -> Self {
        Self {
            kind,
            before_response,
            detail: None,
        }
    }

    /// The error with the OS error text of the failed operation.
    #[must_use]
    pub fn with_detail(mut self, detail: impl fmt::Display) -> Self {
        self.detail = Some(detail.to_string());
        self
    }

    /// How the stream is reset towards the balancer: `Refused` when the backend could not be
    /// reached (never processed: safe to retry elsewhere), `BackendTimeout` for timeouts of the
    /// backend, `Cancel` when the next hop stopped taking the response, else `BackendReset`.
    pub fn reset_code(&self) -> ResetCode {
        match self.kind {
            UpstreamErrorKind::ConnectFailed => ResetCode::Refused,
            UpstreamErrorKind::ConnectTimeout | UpstreamErrorKind::ResponseTimeout(_) => {
                ResetCode::BackendTimeout
            }
            UpstreamErrorKind::ForwardTimeout(_) => ResetCode::Cancel,
            _ => ResetCode::BackendReset,
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            UpstreamErrorKind::ConnectFailed => f.write_str("connecting to backend")?,
            UpstreamErrorKind::ConnectTimeout => f.write_str("connecting to backend: timed out")?,
            UpstreamErrorKind::Write => f.write_str("writing to backend")?,
            UpstreamErrorKind::Read => f.write_str("reading from backend")?,
            UpstreamErrorKind::ClosedBeforeResponse => {
                f.write_str("backend closed before responding")?;
            }
            UpstreamErrorKind::ClosedInHead => {
                f.write_str("backend closed inside the response head")?;
            }
            UpstreamErrorKind::ClosedInBody(e) => write!(f, "backend closed mid-body: {e}")?,
            UpstreamErrorKind::BadHead(e) => write!(f, "backend response head: {e}")?,
            UpstreamErrorKind::BadBody(e) => write!(f, "backend response body: {e}")?,
            UpstreamErrorKind::UnrequestedUpgrade => {
                f.write_str("the backend switched protocols without an Upgrade request")?;
            }
            UpstreamErrorKind::ResponseTimeout(after) => {
                write!(f, "no response head within {after:?} of the request")?;
            }
            UpstreamErrorKind::ForwardTimeout(after) => {
                write!(
                    f,
                    "no flow-control credit from the balancer within {after:?}"
                )?;
            }
        }
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UpstreamError {}
