//! The sans-IO protocol core of ringway.
//!
//! Every protocol decision lives here and nothing here does IO: no sockets, no runtime, no clock
//! reads. Bytes come in as slices or [`bytes::BytesMut`], time comes in as an argument, and output
//! is written into buffers the caller owns. The balancer, agent and load generator are thin drivers
//! around these state machines.
//!
//! - [`exchange`]: one proxied request (full duplex, interim heads, early answers, upgrade,
//!   retry permission, keep-alive, timers).
//! - [`upstream`]: one request over one backend HTTP/1.1 connection (the side next to the
//!   backend: framing, response rewrite, replay and retry permission, connection reuse, Upgrade,
//!   the response timeout).
//! - [`http`]: HTTP/1.1 request/response heads (zero-copy over `Bytes`), body framing, forwarding
//!   rewrites and keep-alive rules.
//! - [`tunnel`]: the multiplexed binary protocol between `ringway-agent` and `ringway-balancer`.
//! - [`proxy_protocol`]: the PROXY protocol (v1 and v2) header an L4 front puts before a
//!   connection's first byte: parsed incrementally, and written.
//! - [`route`]: the host + path-prefix routing table.
//! - [`pick`]: pickers that choose one endpoint of a route.
//! - [`health`]: whether a static backend is up: active checks (rise/fall), passive ejection
//!   after consecutive failures, and the check's request and verdict.
#![forbid(unsafe_code)]

pub mod exchange;
pub mod health;
pub mod http;
pub mod pick;
pub mod proxy_protocol;
pub mod route;
pub mod tunnel;
pub mod upstream;
