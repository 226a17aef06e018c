//! Socket options, core pinning, io_uring ring setup and the `ringway-tune` host report.
//!
//! This is the one crate of ringway allowed to hold `unsafe` code, and only in its private `sys`
//! module: every block there carries a `// SAFETY:` comment. Everything else is safe Rust on top.
//!
//! - [`runtime`]: one monoio runtime per worker thread, io_uring (COOP_TASKRUN) or epoll.
//! - [`ring`]: probing which io_uring set-ups this kernel accepts.
//! - [`cpu`]: the CPUs this process may run on, pinning, and the worker pin plan.
//! - [`duration`]: the duration syntax of the balancer's configuration and both programs' flags.
//! - [`socket`]: SO_REUSEPORT listener groups and handing a connection to another thread.
//! - [`limits`]: the open-file limit.
//! - [`report`]: the host report printed by `ringway-tune`.
#![deny(unsafe_code)]

pub mod cpu;
pub mod duration;
pub mod limits;
pub mod report;
pub mod ring;
pub mod runtime;
pub mod socket;
mod sys;
