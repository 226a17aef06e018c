//! The one IO layer of ringway: what the balancer, the agent and the load generator share to do
//! socket IO on thread-per-core monoio runtimes.
//!
//! - [`runtime`]: one monoio runtime per worker thread (pinned), on io_uring set up with
//!   COOP_TASKRUN or on epoll; [`ring`]: which io_uring set-ups this kernel accepts.
//! - [`Doorbell`]: the one wake-up between tasks of a thread (one permit, one waiter).
//! - [`IdMap`]: maps keyed by small integers (stream ids, route ids) without SipHash.
//! - [`read_append`], [`write_all_by`]: a read into the spare capacity of a `BytesMut`, a write
//!   bounded by a deadline; [`BufPool`]: a per-thread pool of read buffers.
//! - [`FineTimer`]: sleeps with µs resolution on one timerfd per thread (the runtime's timer
//!   wheel has 1 ms slots), for schedules such as the load generator's.
//! - [`signals`]: SIGTERM/SIGINT read from a signalfd, for the binaries' graceful shutdown.
//! - [`tls`]: TLS on a server-side TCP stream, rustls driven sans-IO (handshake, reads that
//!   append decrypted bytes, writes, splitting in halves for full duplex).
//! - [`tunnel`]: the tunnel connection driver both ends run over core's
//!   `tunnel::Connection` — reader, coalescing writer, heartbeat — and the per-stream slots.
//!
//! - The runtime underneath, under this crate's names: [`net`] (sockets), [`io`] (the
//!   owned-buffer read/write traits, splitting, cancellation), [`buf`] (buffer traits),
//!   [`time`] (timers), [`task`], [`spawn`] and [`select!`]. No other crate of the workspace
//!   names the runtime (monoio today; docs/decisions/0001-io-runtime.md): they import these,
//!   so a change of runtime is a change of this crate.
//!
//! Everything here is single-threaded (`Rc`, `Cell`): a worker's state never leaves its thread.
#![forbid(unsafe_code)]

mod buf_pool;
mod doorbell;
mod fine_timer;
mod id_map;
pub mod ring;
pub mod runtime;
mod rw;
pub mod signals;
pub mod tls;
pub mod tunnel;

pub use buf_pool::BufPool;
pub use doorbell::{Doorbell, Rung};
pub use fine_timer::{FineSleep, FineTimer};
pub use id_map::{IdHasher, IdMap};
pub use rw::{read_append, read_append_cancelable, write_all_by};

/// Sockets (TCP, unix) of the runtime underneath.
pub mod net {
    pub use monoio::net::*;
}

/// The runtime's IO traits: reads and writes that own their buffers (the completion model
/// io_uring needs; the epoll driver follows the same API), splitting a stream in two halves,
/// cancellation of a pending read.
pub mod io {
    pub use monoio::io::*;
}

/// Buffer traits of the owned-buffer IO.
pub mod buf {
    pub use monoio::buf::*;
}

/// Timers of the runtime (precise: the request path's many coarse deadlines live in the
/// balancer's per-worker wheel instead).
pub mod time {
    pub use monoio::time::*;
}

/// Tasks of the runtime.
pub mod task {
    pub use monoio::task::*;
}

pub use monoio::{select, spawn};
