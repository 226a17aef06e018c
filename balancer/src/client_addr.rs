//! A user connection's client address, stored compactly.
//!
//! `std::net::SocketAddr` is 32 bytes, because its IPv6 arm carries a flow label and a scope id
//! that a client address never needs here (they are not forwarded, logged or limited on). This
//! keeps the IP and the port only: 20 bytes. Every idle connection holds one, and idle
//! connections are counted in bytes (results/idle-conns-*.md): the 12 bytes are what keeps an
//! idle connection's task in the smaller allocator size class.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// A client's IP address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientAddr {
    ip: IpAddr,
    port: u16,
}

impl ClientAddr {
    /// The IP address.
    pub(crate) fn ip(self) -> IpAddr {
        self.ip
    }

    /// As a socket address (an IPv6 one with flow label and scope id 0).
    pub(crate) fn socket_addr(self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

impl From<SocketAddr> for ClientAddr {
    fn from(addr: SocketAddr) -> Self {
        Self {
            ip: addr.ip(),
            port: addr.port(),
        }
    }
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.socket_addr().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_ip_and_port_and_prints_like_a_socket_address() {
        for text in ["192.0.2.7:443", "[2001:db8::1]:8080"] {
            let addr: SocketAddr = text.parse().expect("test address");
            let client = ClientAddr::from(addr);
            assert_eq!(client.socket_addr(), addr);
            assert_eq!(client.ip(), addr.ip());
            assert_eq!(client.to_string(), text);
        }
        assert!(size_of::<ClientAddr>() <= 20);
    }
}
