//! Static backends (classic mode): routes served by fixed backend addresses from the config,
//! as nginx's `upstream` or HAProxy's `backend` sections are, on the same request path as agent
//! routes.
//!
//! - [`book`]: the process-wide list of static routes, their entries and the addresses each
//!   stands for, with the health checks' verdicts (written by the monitor, read by workers).
//! - [`monitor`]: name resolution and active health checks, on their own threads.
//! - [`table`]: one worker's backends per route — its keep-alive pools, loads for the pickers,
//!   passive ejection — and the pick.
//! - [`send_proxy`]: the PROXY protocol header of a `send_proxy` route's backend connections,
//!   which are private to one user connection.
//! - [`stream`]: one attempt on a backend: `ringway_upstream::forward` (the agent's backend
//!   driver) in a task of the worker, joined to the request's exchange by an in-process pipe.

pub(crate) mod book;
pub(crate) mod monitor;
mod send_proxy;
mod stream;
mod table;

use std::sync::Arc;

use arc_swap::ArcSwap;

pub(crate) use book::BackendBook;

/// The current book, swapped by a reload; the monitor and the admin listener read it, workers
/// get each new one through their control channel.
pub(crate) type SharedBook = Arc<ArcSwap<BackendBook>>;
pub(crate) use send_proxy::Owner;
pub(crate) use stream::BackendStream;
pub(crate) use table::{BackendTable, WorkerBackend};
