//! The tunnel connection driver, one for both ends: socket IO around core's
//! `tunnel::Connection`.
//!
//! - [`Link`]: one connection as its tasks share it (the state machine, the stream slots, the
//!   writer's doorbell, why it closed).
//! - [`drive`]: the reader, the coalescing writer (one write per wake-up) and the heartbeat.
//! - [`StreamSlot`]: one stream's inbound events, failure and send credit, with separate
//!   doorbells so an upload and a download can wait on the same stream at once.
//! - [`TunnelSocket`]: the transport, plain TCP or TLS (`crate::tls`); taken apart
//!   ([`TunnelSocket::detach`]) and put together again on another thread for a hand-off.
//! - [`Role`]: what only one end does — the balancer registers agents and stops opening streams
//!   on GOAWAY; the agent starts a task per opened stream and lingers after its own GOAWAY.
//!
//! ```no_run
//! use std::rc::Rc;
//! use bytes::BytesMut;
//! use ringway_core::tunnel::{Config, Connection, Event};
//! use ringway_io::tunnel::{drive, Exit, Link, Role};
//!
//! struct Quiet;
//! impl Role for Quiet {
//!     fn on_event(&self, _event: Event) -> Result<(), Exit> {
//!         Ok(())
//!     }
//! }
//!
//! # async fn run(socket: monoio::net::TcpStream) {
//! let conn = Connection::balancer(Config::default(), std::time::Instant::now());
//! let link = Link::new(conn);
//! let exit = drive(link, socket, BytesMut::new(), Rc::new(Quiet)).await;
//! println!("connection closed: {exit}");
//! # }
//! ```

mod driver;
mod link;
mod slot;
mod socket;

pub use driver::{drive, Role, FINAL_FLUSH};
pub use link::{buffers, Exit, Link, LinkStats, READ_CHUNK};
pub use slot::{StreamAborted, StreamEvent, StreamSlot};
pub use socket::{DetachedSocket, TunnelSocket};
