//! ringway-agent as a library: tunnel connections out to every balancer worker, stream ↔
//! backend forwarding (over `ringway-upstream`'s pool and driver) and graceful drain.
//!
//! - [`Agent::start`] runs an agent on its own runtime thread(s) and returns an [`AgentHandle`]
//!   (`drain`, `kill`, `join`); `ringway-demo` and tests use it in-process.
//!
//! Inside: `agent` starts the runtime threads and runs each one's control loop (`control`: what
//! the threads share), `worker` is one thread's state, `session` keeps one tunnel connection per
//! balancer worker (reconnecting with backoff), `tunnel` is the agent's side of the shared tunnel
//! driver (`ringway_io::tunnel`), `stream` is one tunnel stream as the downstream of `ringway_upstream::forward`,
//! `drain` drains a thread and `signals` turns SIGTERM into a drain.
#![forbid(unsafe_code)]

mod agent;
mod backoff;
pub mod cli;
mod config;
mod control;
mod drain;
mod resolve;
mod session;
mod signals;
mod stream;
mod tls;
mod tunnel;
mod worker;

pub use agent::{Agent, AgentHandle, AgentRemote};
pub use backoff::BackoffConfig;
pub use config::{default_agent_id, AgentConfig, TlsSettings, Transport};
pub use signals::{block_termination_signals, watch_signals};
