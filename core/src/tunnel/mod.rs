//! The tunnel protocol between agent and balancer (specified in docs/PROTOCOL.md).
//!
//! - [`frame`]: the 9-byte header, [`Frame`] and its parts, [`ResetCode`].
//! - `codec`: [`encode`] into a caller's `BytesMut`, incremental [`FrameDecoder`].
//! - [`Connection`]: the sans-IO state machine of either side — handshake and version
//!   negotiation, stream-id rules, flow control, heartbeat, GOAWAY drain — with [`Event`]s out.
//! - [`pair`]: an in-memory balancer/agent pair for tests and fuzzing.
//!
//! # Driving a connection
//!
//! A driver owns the socket and one read and one write buffer, and per loop turn: appends what
//! it read to the read buffer and calls [`Connection::handle_input`]; drains
//! [`Connection::poll_event`] and acts on each event (calls such as
//! [`Connection::open_stream`], [`Connection::send_data`], [`Connection::release`]); calls
//! [`Connection::handle_timeout`] when [`Connection::poll_timeout`] has passed; then encodes
//! everything pending with one [`Connection::poll_transmit`] and writes it with one write.
//!
//! ```
//! use std::time::Instant;
//! use bytes::{Bytes, BytesMut};
//! use ringway_core::tunnel::{Config, Connection, Event, Hello, PROTOCOL_VERSION};
//!
//! let now = Instant::now();
//! let hello = Hello {
//!     version: PROTOCOL_VERSION,
//!     agent_id: "a1".into(),
//!     token: "secret".into(),
//!     routes: vec!["example.com/".into()],
//!     worker: None,
//! };
//! let mut agent = Connection::agent(Config::default(), hello, now);
//! let mut balancer = Connection::balancer(Config::default(), now);
//! let mut wire = BytesMut::new(); // stands in for the TCP connection
//!
//! agent.poll_transmit(&mut wire);
//! balancer.handle_input(&mut wire, now)?;
//! let Some(Event::Hello(hello)) = balancer.poll_event() else { panic!() };
//! assert_eq!(hello.token, "secret");
//! balancer.accept_hello(2, 0);
//!
//! let id = balancer.open_stream(Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"), true)?;
//! balancer.poll_transmit(&mut wire); // HELLO_ACK, WINDOW_UPDATEs and REQUEST_HEAD: one write
//! agent.handle_input(&mut wire, now)?;
//! assert!(matches!(agent.poll_event(), Some(Event::HelloAck(_))));
//! assert!(matches!(agent.poll_event(), Some(Event::StreamOpened { end: true, .. })));
//!
//! agent.send_response_head(id, Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n"), false)?;
//! agent.send_data(id, &mut Bytes::from_static(b"hi"), true)?;
//! agent.poll_transmit(&mut wire);
//! balancer.handle_input(&mut wire, now)?;
//! assert!(matches!(balancer.poll_event(), Some(Event::ResponseHead { .. })));
//! let Some(Event::Data { data, end: true, .. }) = balancer.poll_event() else { panic!() };
//! balancer.release(id, data.len());
//! assert_eq!(balancer.stream_count(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod codec;
mod config;
mod connection;
mod error;
mod event;
mod flow;
pub mod frame;
mod heartbeat;
mod hello;
mod inbound;
#[doc(hidden)]
pub mod pair;
mod stream;

pub use codec::{encode, encoded_len, FrameDecoder};
pub use config::{Config, MIN_FRAME_PAYLOAD};
pub use connection::Connection;
pub use error::{ProtocolError, StreamError};
pub use event::Event;
pub use flow::{INITIAL_CONNECTION_WINDOW, INITIAL_STREAM_WINDOW, MAX_WINDOW};
pub use frame::{
    Frame, Hello, HelloAck, ResetCode, StreamId, END_STREAM, HEADER_LEN, PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
};
