//! Writing headers, for a backend that expects the PROXY protocol from ringway.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use bytes::{BufMut, BytesMut};

use super::parse_v2::{FIXED_LEN, INET6_LEN, INET_LEN, TCP4, TCP6, UNSPEC};
use super::{Command, ProxyHeader, V2_SIGNATURE};

/// Appends `header` as a v1 line. v1 has no LOCAL command: a `Local` header, or one without
/// both addresses, is written `PROXY UNKNOWN\r\n` (the receiver then keeps the real endpoints).
/// Addresses of different families are both written as IPv6 (IPv4-mapped).
pub fn write_v1(header: &ProxyHeader, out: &mut BytesMut) {
    let Some((src, dst)) = addresses(header) else {
        out.extend_from_slice(b"PROXY UNKNOWN\r\n");
        return;
    };
    let protocol = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    // Writing into a BytesMut cannot fail.
    let _ = write!(
        out,
        "PROXY {protocol} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    );
}

/// Appends `header` as a v2 header (no TLVs). A `Local` header, or one without both
/// addresses, carries no addresses (`AF_UNSPEC`); addresses of different families are both
/// written as IPv6 (IPv4-mapped).
pub fn write_v2(header: &ProxyHeader, out: &mut BytesMut) {
    out.extend_from_slice(&V2_SIGNATURE);
    let command = match header.command {
        Command::Local => 0x20,
        Command::Proxy => 0x21,
    };
    out.put_u8(command);
    let addrs = match header.command {
        Command::Local => None,
        Command::Proxy => addresses(header),
    };
    out.reserve(FIXED_LEN - V2_SIGNATURE.len() - 1 + INET6_LEN);
    match addrs {
        None => {
            out.put_u8(UNSPEC);
            out.put_u16(0);
        }
        Some((SocketAddr::V4(src), SocketAddr::V4(dst))) => {
            out.put_u8(TCP4);
            out.put_u16(INET_LEN as u16);
            out.extend_from_slice(&src.ip().octets());
            out.extend_from_slice(&dst.ip().octets());
            out.put_u16(src.port());
            out.put_u16(dst.port());
        }
        Some((src, dst)) => {
            let (src, dst) = (as_v6(src), as_v6(dst));
            out.put_u8(TCP6);
            out.put_u16(INET6_LEN as u16);
            out.extend_from_slice(&src.ip().octets());
            out.extend_from_slice(&dst.ip().octets());
            out.put_u16(src.port());
            out.put_u16(dst.port());
        }
    }
}

/// Both addresses, of one family (IPv4 ones mapped into IPv6 when the other is IPv6).
fn addresses(header: &ProxyHeader) -> Option<(SocketAddr, SocketAddr)> {
    if header.command == Command::Local {
        return None;
    }
    let (src, dst) = (header.source?, header.destination?);
    if src.is_ipv4() == dst.is_ipv4() {
        return Some((src, dst));
    }
    Some((as_v6(src).into(), as_v6(dst).into()))
}

fn as_v6(addr: SocketAddr) -> SocketAddrV6 {
    let ip = match addr.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    SocketAddrV6::new(ip, addr.port(), 0, 0)
}
