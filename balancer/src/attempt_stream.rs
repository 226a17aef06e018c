//! What one attempt of a request talks to, as `duplex` sees it: a tunnel stream to an agent
//! ([`crate::tunnel_stream::TunnelStream`]) or a static backend's in-process pipe
//! ([`crate::backends::BackendStream`]). Both carry the same events with the same credit rules,
//! so one request path (core's `Exchange` driven by `duplex`) serves both kinds of route.

use std::fmt::Display;

use bytes::Bytes;
use ringway_core::exchange::ProxyError;

use crate::tunnel_stream::StreamEvent;

/// The upstream end of one attempt. Single task per direction: the response loop alone calls
/// [`Self::event`]/[`Self::try_event`]/[`Self::release`], the upload loop alone
/// [`Self::writable`]/[`Self::send`].
pub(crate) trait AttemptStream {
    /// What to call it in logs (a stream id, a backend address).
    fn label(&self) -> impl Display;

    /// The next event: queued heads and data first, then the failure (`Reset`, `Lost`; every
    /// time it is asked).
    async fn event(&self) -> StreamEvent;

    /// A queued event or the failure, without waiting; never `Writable`.
    fn try_event(&self) -> Option<StreamEvent>;

    /// Waits until there is send credit, or the attempt failed (`event` then says how).
    async fn writable(&self);

    /// Sends request body bytes from the front of `data` as far as credit allows; `end` goes
    /// out with the last byte.
    fn send(&self, data: &mut Bytes, end: bool) -> Result<(), ProxyError>;

    /// `n` response bytes reached the user: that many more may come.
    fn release(&self, n: usize);

    /// Whether the upstream takes no new requests (an agent connection going away).
    fn draining(&self) -> bool;

    /// The final response head arrived (the picker's latency sample).
    fn head_received(&self);

    /// The exchange completed in both directions: dropping the stream then cancels nothing.
    fn finish(&self);
}
