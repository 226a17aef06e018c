//! ringway's backend side, shared by every hop that talks to an HTTP/1.1 backend (the agent's
//! tunnel streams today, the balancer's static backends next): not tunnel-specific, and no
//! dependency on the agent or the balancer.
//!
//! - [`pool`]: the per-thread keep-alive pool of connections to one backend ([`BackendAddr`]:
//!   TCP or a unix socket), bounded, with idle expiry and a stale check at checkout; a
//!   [`Private`] connection serves one owner only and starts with its preamble.
//! - [`forward`]: one request over the pool, a thin driver over core's
//!   `upstream::UpstreamExchange` (which decides everything), with one retry on a fresh
//!   connection when the exchange allows it.
//! - [`Downstream`]: what the driver needs of the side the request came from (its body, its
//!   credit, where the response goes).
#![forbid(unsafe_code)]

mod downstream;
mod forward;
pub mod pool;
#[cfg(test)]
mod test_runtime;

pub use downstream::{BodyPiece, Downstream};
pub use forward::{forward, Failure};
pub use pool::{
    BackendAddr, BackendConn, BackendPool, BackendStream, ConnectError, PoolConfig, Private,
};
