//! One error type for a proxied request: what went wrong, where it came from (client, upstream
//! agent, backend, internal), whether the request may be retried on another upstream, and the
//! HTTP status the user sees (the shape of pingora's `Error`: `etype`, `esource`, `retry`).

use std::fmt;

/// Where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorSource {
    /// The user's connection or request.
    Client,
    /// The agent or its tunnel connection.
    Agent,
    /// The backend behind the agent (reported by the agent as a reset code).
    Backend,
    /// The balancer itself.
    Internal,
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request could not be parsed or broke a limit; carries the status (400/413/414/431/501/505).
    Malformed(u16),
    /// No route matches the host and path.
    UnknownRoute,
    /// The route is known but no agent serves it on this worker (after the park time).
    NoAgent,
    /// The route has static backends but none of them is up (health checks or passive
    /// ejection took every one out).
    NoBackend,
    /// The agent connection was lost before any response byte.
    AgentLost,
    /// The agent refused the stream before processing it (GOAWAY above the last stream id).
    AgentRefused,
    /// The agent could not connect to its backend.
    BackendRefused,
    /// The backend reset or closed its connection mid-exchange.
    BackendReset,
    /// The backend did not answer in the agent's own time limit.
    BackendTimeout,
    /// No response head within the response-head timeout.
    ResponseTimeout,
    /// The agent sent something the protocol does not allow on this stream.
    AgentProtocol,
    /// The client connection failed or closed while its request body was read.
    ClientIo,
    /// The client sent no request body bytes within the body timeout.
    ClientTimeout,
    /// The route has as many requests in flight as it allows and its queue is full.
    QueueFull,
    /// The request waited in its route's queue for the queue timeout without getting a slot.
    QueueTimeout,
    /// The client's address has as many connections open as one address may.
    TooManyConnections,
}

/// A request-path error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Where it came from.
    pub source: ErrorSource,
    /// Whether the request may go to another agent.
    pub retry: bool,
}

impl ProxyError {
    /// An error of `kind` with its usual source and retry rule.
    pub fn new(kind: ErrorKind) -> Self {
        let (source, retry) = match kind {
            ErrorKind::Malformed(_) | ErrorKind::ClientIo | ErrorKind::ClientTimeout => {
                (ErrorSource::Client, false)
            }
            ErrorKind::UnknownRoute | ErrorKind::NoAgent | ErrorKind::NoBackend => {
                (ErrorSource::Internal, false)
            }
            // A limit of the balancer's own: another agent would not change it.
            ErrorKind::QueueFull | ErrorKind::QueueTimeout => (ErrorSource::Internal, false),
            ErrorKind::TooManyConnections => (ErrorSource::Client, false),
            ErrorKind::AgentLost => (ErrorSource::Agent, true),
            ErrorKind::AgentRefused => (ErrorSource::Agent, true),
            ErrorKind::AgentProtocol => (ErrorSource::Agent, false),
            // The agent could not reach its backend: nothing was processed.
            ErrorKind::BackendRefused => (ErrorSource::Backend, true),
            ErrorKind::BackendReset | ErrorKind::BackendTimeout => (ErrorSource::Backend, false),
            ErrorKind::ResponseTimeout => (ErrorSource::Backend, false),
        };
        Self {
            kind,
            source,
            retry,
        }
    }

    /// The status code the user gets.
    pub fn status(&self) -> u16 {
        match self.kind {
            ErrorKind::Malformed(status) => status,
            ErrorKind::UnknownRoute => 404,
            ErrorKind::NoAgent
            | ErrorKind::NoBackend
            | ErrorKind::QueueFull
            | ErrorKind::QueueTimeout => 503,
            ErrorKind::TooManyConnections => 429,
            ErrorKind::ClientIo => 400,
            ErrorKind::ClientTimeout => 408,
            ErrorKind::ResponseTimeout | ErrorKind::BackendTimeout => 504,
            ErrorKind::AgentLost
            | ErrorKind::AgentRefused
            | ErrorKind::AgentProtocol
            | ErrorKind::BackendRefused
            | ErrorKind::BackendReset => 502,
        }
    }

    /// The short plain-text body.
    pub fn message(&self) -> &'static str {
        match self.kind {
            ErrorKind::Malformed(413) => "request body too large",
            ErrorKind::Malformed(414) => "request target too long",
            ErrorKind::Malformed(431) => "request header fields too large",
            ErrorKind::Malformed(501) => "not implemented",
            ErrorKind::Malformed(505) => "HTTP version not supported",
            ErrorKind::Malformed(_) => "malformed request",
            ErrorKind::UnknownRoute => "no route for this host and path",
            ErrorKind::NoAgent => "no agent is serving this route right now",
            ErrorKind::NoBackend => "no backend of this route is up right now",
            ErrorKind::AgentLost => "the agent connection was lost",
            ErrorKind::AgentRefused => "the agent refused the request",
            ErrorKind::AgentProtocol => "the agent broke the tunnel protocol",
            ErrorKind::BackendRefused => "the backend refused the connection",
            ErrorKind::BackendReset => "the backend reset the connection",
            ErrorKind::BackendTimeout | ErrorKind::ResponseTimeout => {
                "the backend did not answer in time"
            }
            ErrorKind::ClientIo => "request body incomplete",
            ErrorKind::ClientTimeout => "request body not received in time",
            ErrorKind::QueueFull => "this route is at its limit of requests in flight",
            ErrorKind::QueueTimeout => "this route stayed at its limit of requests in flight",
            ErrorKind::TooManyConnections => "too many connections from this address",
        }
    }

    /// Whether the answer tells the user when to try again (`Retry-After`): the request was
    /// refused for a while, not for what it is. The seconds are the driver's to choose (from
    /// its park time or the route's queue timeout).
    pub fn sends_retry_after(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::NoAgent
                | ErrorKind::NoBackend
                | ErrorKind::QueueFull
                | ErrorKind::QueueTimeout
                | ErrorKind::TooManyConnections
        )
    }

    /// Whether the user's connection must close after the error response.
    pub fn closes_connection(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Malformed(_)
                | ErrorKind::ClientIo
                | ErrorKind::ClientTimeout
                | ErrorKind::TooManyConnections
        )
    }

    /// Whether the request may go to another agent, given what was already sent.
    pub fn may_retry(&self, idempotent: bool, body_streamed: bool) -> bool {
        match self.kind {
            // The agent never processed the stream (GOAWAY above it, or no backend connection):
            // safe for any method, as long as the body bytes were not consumed from the client
            // (they cannot be replayed).
            ErrorKind::AgentRefused | ErrorKind::BackendRefused => !body_streamed,
            _ => self.retry && idempotent && !body_streamed,
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} from {:?} ({}): {}",
            self.kind,
            self.source,
            self.status(),
            self.message()
        )
    }
}

impl std::error::Error for ProxyError {}

impl From<&crate::http::HttpError> for ProxyError {
    fn from(e: &crate::http::HttpError) -> Self {
        Self::new(ErrorKind::Malformed(e.status()))
    }
}

/// Maps an agent's reset code (received before any response byte) to an error. `Refused` means
/// the stream was not processed: on a connection that is going away (its GOAWAY named streams
/// below this one) the agent refused it, else the agent could not reach its backend.
pub fn from_reset(code: crate::tunnel::ResetCode, draining: bool) -> ProxyError {
    use crate::tunnel::ResetCode;
    let kind = match code {
        ResetCode::Refused if draining => ErrorKind::AgentRefused,
        ResetCode::Refused => ErrorKind::BackendRefused,
        ResetCode::BackendReset => ErrorKind::BackendReset,
        ResetCode::BackendTimeout => ErrorKind::BackendTimeout,
        ResetCode::Protocol | ResetCode::FlowControl => ErrorKind::AgentProtocol,
        _ => ErrorKind::BackendReset,
    };
    ProxyError::new(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(ProxyError::new(ErrorKind::UnknownRoute).status(), 404);
        assert_eq!(ProxyError::new(ErrorKind::NoAgent).status(), 503);
        assert_eq!(ProxyError::new(ErrorKind::NoBackend).status(), 503);
        assert_eq!(ProxyError::new(ErrorKind::AgentLost).status(), 502);
        assert_eq!(ProxyError::new(ErrorKind::ResponseTimeout).status(), 504);
        assert_eq!(ProxyError::new(ErrorKind::Malformed(431)).status(), 431);
    }

    #[test]
    fn retry_rules() {
        let lost = ProxyError::new(ErrorKind::AgentLost);
        assert!(lost.may_retry(true, false));
        assert!(!lost.may_retry(false, false));
        assert!(!lost.may_retry(true, true));
        let refused = ProxyError::new(ErrorKind::AgentRefused);
        assert!(refused.may_retry(false, false));
        assert!(!refused.may_retry(false, true));
        // A refused stream was never processed: any method may go elsewhere.
        let backend_refused = from_reset(crate::tunnel::ResetCode::Refused, false);
        assert_eq!(backend_refused.kind, ErrorKind::BackendRefused);
        assert!(backend_refused.may_retry(false, false));
        assert!(!backend_refused.may_retry(false, true));
        let goaway = from_reset(crate::tunnel::ResetCode::Refused, true);
        assert_eq!(goaway.kind, ErrorKind::AgentRefused);
        assert!(goaway.may_retry(false, false));
        assert!(!from_reset(crate::tunnel::ResetCode::BackendReset, false).may_retry(true, false));
    }

    #[test]
    fn a_body_timeout_is_408_and_closes() {
        let e = ProxyError::new(ErrorKind::ClientTimeout);
        assert_eq!(e.status(), 408);
        assert!(e.closes_connection());
        assert_eq!(ProxyError::new(ErrorKind::ClientIo).status(), 400);
    }

    #[test]
    fn route_limits_are_503_with_retry_after_and_keep_the_connection() {
        for kind in [ErrorKind::QueueFull, ErrorKind::QueueTimeout] {
            let e = ProxyError::new(kind);
            assert_eq!(e.status(), 503, "{kind:?}");
            assert_eq!(e.source, ErrorSource::Internal);
            assert!(e.sends_retry_after());
            assert!(!e.closes_connection(), "a busy route is no reason to close");
            assert!(!e.may_retry(true, false), "another agent would not help");
        }
        assert_ne!(
            ProxyError::new(ErrorKind::QueueFull).message(),
            ProxyError::new(ErrorKind::QueueTimeout).message()
        );
    }

    #[test]
    fn too_many_connections_is_429_with_retry_after_and_closes() {
        let e = ProxyError::new(ErrorKind::TooManyConnections);
        assert_eq!(e.status(), 429);
        assert_eq!(e.source, ErrorSource::Client);
        assert!(e.sends_retry_after());
        assert!(e.closes_connection());
        assert!(!e.may_retry(true, false));
    }

    #[test]
    fn only_refusals_for_a_while_send_retry_after() {
        assert!(ProxyError::new(ErrorKind::NoAgent).sends_retry_after());
        for kind in [
            ErrorKind::UnknownRoute,
            ErrorKind::AgentLost,
            ErrorKind::ResponseTimeout,
            ErrorKind::Malformed(400),
        ] {
            assert!(!ProxyError::new(kind).sends_retry_after(), "{kind:?}");
        }
    }
}
