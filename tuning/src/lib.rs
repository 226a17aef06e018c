//! Socket options, core pinning and the `ringway-tune` host report.
//!
//! This is the one crate of ringway allowed to hold `unsafe` code, and only in its private `sys`
//! module: every block there carries a `// SAFETY:` comment. Everything else is safe Rust on top.
//!
//! - [`runtime`], [`ring`]: the worker runtimes (io_uring with COOP_TASKRUN, or epoll) and the
//!   io_uring probe live in `ringway-io`; they are re-exported here because the report describes
//!   exactly them (which driver `auto` picks, the ring set-ups, the driver echo probe).
//! - [`cpu`]: the CPUs this process may run on, pinning, and the worker pin plan.
//! - [`duration`]: the duration syntax of the balancer's configuration and both programs' flags.
//! - [`socket`]: SO_REUSEPORT listener groups and handing a connection to another thread.
//! - [`limits`]: the open-file limit.
//! - [`child`]: child processes that start with no signal blocked.
//! - [`report`]: the host report printed by `ringway-tune`.
#![deny(unsafe_code)]

pub mod child;
pub mod cpu;
pub mod duration;
pub mod limits;
pub mod report;
pub mod socket;
pub use ringway_io::{ring, runtime};
mod sys;
