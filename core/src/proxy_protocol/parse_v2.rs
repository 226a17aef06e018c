//! The v2 (binary) header: the 12-byte signature, version and command, family and transport, a
//! big-endian length, then that many bytes: the addresses of the family and optional TLVs.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::{Command, Parsed, ProxyHeader, ProxyProtocolError, Version, V2_MAX_LEN, V2_SIGNATURE};

type Error = ProxyProtocolError;

/// Bytes before the variable part: signature, version/command, family/transport, length.
pub(super) const FIXED_LEN: usize = 16;
/// Addresses of `AF_INET`: two IPv4 addresses and two ports.
pub(super) const INET_LEN: usize = 12;
/// Addresses of `AF_INET6`: two IPv6 addresses and two ports.
pub(super) const INET6_LEN: usize = 36;
/// Addresses of `AF_UNIX`: two 108-byte paths.
const UNIX_LEN: usize = 216;
/// A TLV's type and length bytes.
const TLV_HEADER_LEN: usize = 3;

/// The family and transport byte's defined values.
pub(super) const UNSPEC: u8 = 0x00;
pub(super) const TCP4: u8 = 0x11;
pub(super) const TCP6: u8 = 0x21;
const UNIX_STREAM: u8 = 0x31;
const DATAGRAMS: [u8; 3] = [0x12, 0x22, 0x32];

/// Parses a v2 header; `buf` agrees with [`V2_SIGNATURE`] on their common length. Each fixed
/// byte is checked as soon as it is there, so garbage fails before the whole header arrives.
pub(super) fn parse(buf: &[u8]) -> Result<Parsed, Error> {
    let sig = V2_SIGNATURE.len();
    let Some(&ver_cmd) = buf.get(sig) else {
        return Ok(Parsed::Incomplete);
    };
    let (version, command) = (ver_cmd >> 4, ver_cmd & 0x0f);
    if version != 2 {
        return Err(Error::V2BadVersion { version });
    }
    let command = match command {
        0 => Command::Local,
        1 => Command::Proxy,
        command => return Err(Error::V2BadCommand { command }),
    };
    let Some(&family) = buf.get(sig + 1) else {
        return Ok(Parsed::Incomplete);
    };
    // A LOCAL header's family is ignored (the spec: the receiver discards the protocol block).
    let addresses = match command {
        Command::Local => 0,
        Command::Proxy => address_len(family)?,
    };
    let Some(len_bytes) = buf.get(sig + 2..FIXED_LEN) else {
        return Ok(Parsed::Incomplete);
    };
    let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
    if FIXED_LEN + len > V2_MAX_LEN {
        return Err(Error::V2TooLong {
            len: FIXED_LEN + len,
            limit: V2_MAX_LEN,
        });
    }
    if len < addresses {
        return Err(Error::V2ShortAddresses {
            len,
            need: addresses,
        });
    }
    let Some(body) = buf.get(FIXED_LEN..FIXED_LEN + len) else {
        return Ok(Parsed::Incomplete);
    };
    let header = match command {
        Command::Local => ProxyHeader {
            command,
            source: None,
            destination: None,
        },
        Command::Proxy => {
            check_tlvs(&body[addresses..], FIXED_LEN + addresses)?;
            let (source, destination) = match addresses_of(family, body) {
                Some((s, d)) => (Some(s), Some(d)),
                None => (None, None),
            };
            ProxyHeader {
                command,
                source,
                destination,
            }
        }
    };
    Ok(Parsed::Header {
        header,
        version: Version::V2,
        len: FIXED_LEN + len,
    })
}

/// The bytes of a PROXY header's addresses for its family/transport byte.
fn address_len(family: u8) -> Result<usize, Error> {
    match family {
        UNSPEC => Ok(0),
        TCP4 => Ok(INET_LEN),
        TCP6 => Ok(INET6_LEN),
        UNIX_STREAM => Ok(UNIX_LEN),
        byte if DATAGRAMS.contains(&byte) => Err(Error::V2Datagram { byte }),
        byte => Err(Error::V2BadFamily { byte }),
    }
}

/// The source and destination of an `AF_INET`/`AF_INET6` body (long enough: checked by the
/// caller); `None` for the families without IP addresses.
fn addresses_of(family: u8, body: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let port = |at: usize| Some(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]));
    match family {
        TCP4 => {
            let ip = |at: usize| {
                Some(Ipv4Addr::from(
                    <[u8; 4]>::try_from(body.get(at..at + 4)?).ok()?,
                ))
            };
            Some((
                SocketAddrV4::new(ip(0)?, port(8)?).into(),
                SocketAddrV4::new(ip(4)?, port(10)?).into(),
            ))
        }
        TCP6 => {
            let ip = |at: usize| {
                Some(Ipv6Addr::from(
                    <[u8; 16]>::try_from(body.get(at..at + 16)?).ok()?,
                ))
            };
            Some((
                SocketAddrV6::new(ip(0)?, port(32)?, 0, 0).into(),
                SocketAddrV6::new(ip(16)?, port(34)?, 0, 0).into(),
            ))
        }
        _ => None,
    }
}

/// Walks the TLVs after the addresses (skipped: ringway uses none of them), each of which must
/// end within the header. `offset` is where `tlvs` begins in the header, for the error.
fn check_tlvs(mut tlvs: &[u8], mut offset: usize) -> Result<(), Error> {
    while !tlvs.is_empty() {
        let value_len = match tlvs {
            [_, hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => return Err(Error::V2BadTlv { offset }),
        };
        let Some(rest) = tlvs.get(TLV_HEADER_LEN + value_len..) else {
            return Err(Error::V2BadTlv { offset });
        };
        offset += TLV_HEADER_LEN + value_len;
        tlvs = rest;
    }
    Ok(())
}
