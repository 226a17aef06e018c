//! Logging for every ringway binary: one set-up ([`LogArgs`], [`init`]) that `ringway-balancer`,
//! `ringway-agent` and `ringway-demo` share, and [`RepeatLimiter`], which keeps a peer that
//! repeats one mistake from filling the log.
//!
//! A crate of its own because the three binaries must not depend on one another (only the demo
//! sees both the balancer and the agent), and `ringway-tuning`, the other crate they all share,
//! is about sockets and CPUs (and holds the only `unsafe`): logging is another idea, with its own
//! dependencies (`tracing-subscriber` with its JSON formatter).
#![forbid(unsafe_code)]

mod repeat;
mod setup;

pub use repeat::{RepeatLimiter, Suppressed, Verdict};
pub use setup::{init, LogArgs, LogFormat};
