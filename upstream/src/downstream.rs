//! The side a request comes from and its response goes to, as [`crate::forward`] sees it: a
//! tunnel stream for the agent, a user connection for the balancer's static backends.

use std::fmt;
use std::future::Future;

use bytes::Bytes;

/// One piece of the request body, as the downstream hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyPiece {
    /// Decoded body bytes (opaque bytes after an Upgrade).
    Data(Bytes),
    /// The request side ended.
    End,
}

/// The downstream of one request. Every method fails with `Self::Gone` once the downstream
/// went away (reset, closed): the exchange then ends without a word to it.
///
/// Single-threaded by design (each worker thread runs its own requests), so the futures need
/// not be `Send`.
pub trait Downstream {
    /// Why the downstream went away.
    type Gone: fmt::Debug + fmt::Display;

    /// The next request body piece, waiting for it.
    fn recv_body(&self) -> impl Future<Output = Result<BodyPiece, Self::Gone>>;

    /// A request body piece that is already there, without waiting.
    fn try_recv_body(&self) -> Result<Option<BodyPiece>, Self::Gone>;

    /// `n` request body bytes reached the backend (or never will): their credit goes back.
    fn release(&self, n: usize);

    /// An interim or final response head, as the backend exchange rewrote it; `end`: no body.
    fn send_head(&self, head: Bytes, end: bool) -> Result<(), Self::Gone>;

    /// Response body bytes, waiting for the downstream to take them (its flow control).
    fn send_data(&self, data: Bytes, end: bool) -> impl Future<Output = Result<(), Self::Gone>>;

    /// The backend answered before taking the whole request: stop sending the rest.
    fn stop_request(&self);

    /// Completes when the downstream went away.
    fn gone(&self) -> impl Future<Output = Self::Gone>;
}
