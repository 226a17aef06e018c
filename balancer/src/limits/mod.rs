//! Limits on what the balancer takes on, each counted in `/metrics`:
//!
//! - [`ConnLimit`] (`[limits] max_connections_per_worker`): a worker at its limit of open user
//!   connections stops accepting; new connections wait in its SO_REUSEPORT listener's accept
//!   queue (the kernel's backlog) until one of its connections closes.
//! - [`ClientTable`] (`[limits] max_connections_per_client`): open connections per client IP,
//!   process-wide (one client's connections hash to different workers), touched only when a
//!   connection is accepted and when it closes; one over the limit is answered 429 and closed.
//! - [`RouteLimits`] (`[[route]] max_concurrent`, `max_queue`, `queue_timeout`): requests of a
//!   route in flight at once on one worker, a FIFO queue for the ones past it, and 503 with
//!   `Retry-After` beyond the queue or after the queue timeout.

mod clients;
mod conns;
mod routes;

pub(crate) use clients::{ClientAdmission, ClientTable, CLIENT_RETRY_AFTER_SECS};
pub(crate) use conns::ConnLimit;
pub(crate) use routes::{RouteLimitCounts, RouteLimits};
