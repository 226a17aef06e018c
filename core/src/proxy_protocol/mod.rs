//! The PROXY protocol (versions 1 and 2, as specified in haproxy's `proxy-protocol.txt`): the
//! header an L4 front (HAProxy in TCP mode, an AWS NLB, IPVS) puts before the first byte of a
//! connection to say whom the connection really came from.
//!
//! - [`parse`]: detects and parses a v1 (text) or v2 (binary) header at the start of a buffer,
//!   incrementally: [`Parsed::Incomplete`] while the bytes so far can still begin a valid header,
//!   [`Parsed::Header`] with the number of bytes it took (what follows is the application's).
//! - [`write_v1`], [`write_v2`]: the same headers written for a backend that expects them.
//!
//! Nothing here does IO; the parser never panics and never trusts a length it did not check.

mod error;
mod parse_v1;
mod parse_v2;
mod write;

use std::net::SocketAddr;

pub use error::ProxyProtocolError;
pub use write::{write_v1, write_v2};

/// The 12 bytes every v2 header begins with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The longest v1 header, CRLF included (the spec's bound: a receiver gives up after it).
pub const V1_MAX_LEN: usize = 107;

/// The longest v2 header accepted (16 fixed bytes, the addresses and any TLVs). The spec allows
/// up to 16 + 65535; real fronts send far less (addresses plus a few short TLVs), and a bound
/// keeps one connection from making the balancer buffer 64 KiB before it sees a request.
pub const V2_MAX_LEN: usize = 4096;

/// What a header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// Whether the front relays a client (`Proxy`) or speaks for itself (`Local`).
    pub command: Command,
    /// The client's address, as the front saw it; `None` when the header gives none (v1
    /// `UNKNOWN`, v2 `AF_UNSPEC` or `AF_UNIX`, or a `LOCAL` header).
    pub source: Option<SocketAddr>,
    /// The address the client connected to on the front; `None` as for `source`.
    pub destination: Option<SocketAddr>,
}

impl ProxyHeader {
    /// The address to treat as the client's: the header's source for a `Proxy` header that
    /// names one, else `None` (the receiver then keeps the real peer address).
    pub fn client(&self) -> Option<SocketAddr> {
        match self.command {
            Command::Proxy => self.source,
            Command::Local => None,
        }
    }
}

/// A header's command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// The connection was made by the front itself (a health check): use the real endpoints.
    Local,
    /// The connection relays a client's: the addresses are the client's.
    Proxy,
}

/// The version of the protocol a header came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The text form: `PROXY TCP4 … CRLF`.
    V1,
    /// The binary form, after [`V2_SIGNATURE`].
    V2,
}

/// What [`parse`] found at the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The bytes so far are the beginning of a valid header: read more and call again.
    Incomplete,
    /// A whole header; its `len` bytes are consumed, what follows them is the application's.
    Header {
        header: ProxyHeader,
        version: Version,
        len: usize,
    },
}

/// Parses the PROXY protocol header at the start of `buf` (v1 or v2, told apart by their first
/// bytes). Anything that cannot begin a valid header is an error saying what was wrong, as soon
/// as the bytes show it (a plain `GET / HTTP/1.1` fails on its first byte).
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyProtocolError> {
    if buf.is_empty() {
        return Ok(Parsed::Incomplete);
    }
    if is_prefix_either_way(buf, &V2_SIGNATURE) {
        return parse_v2::parse(buf);
    }
    if is_prefix_either_way(buf, parse_v1::PREFIX) {
        return parse_v1::parse(buf);
    }
    Err(ProxyProtocolError::NotProxyProtocol)
}

/// Whether `buf` and `sig` agree on their common length (one is a prefix of the other).
fn is_prefix_either_way(buf: &[u8], sig: &[u8]) -> bool {
    let n = buf.len().min(sig.len());
    buf[..n] == sig[..n]
}
