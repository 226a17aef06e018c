//! ringway-agent as a library: tunnel connections out to every balancer worker, the keep-alive
//! backend pool, stream ↔ backend forwarding and graceful drain.
//!
//! - [`Agent::start`] runs an agent on its own runtime thread(s) and returns an [`AgentHandle`]
//!   (`drain`, `kill`, `join`); `ringway-demo` and tests use it in-process.
//!
//! Inside: `session` keeps one tunnel connection per balancer worker (reconnecting with backoff),
//! `tunnel` drives one connection over core's state machine, `stream` forwards one request to the
//! backend through `pool`, and `drain` handles SIGTERM.
#![forbid(unsafe_code)]

mod agent;
mod backoff;
pub mod cli;
mod config;
mod drain;
mod io;
mod notify;
mod pool;
mod request_body;
mod resolve;
mod session;
mod stream;
#[cfg(test)]
mod test_runtime;
mod tunnel;
mod worker;

pub use agent::{Agent, AgentHandle, AgentRemote};
pub use backoff::BackoffConfig;
pub use config::{default_agent_id, AgentConfig};
pub use drain::{block_termination_signals, watch_signals};
