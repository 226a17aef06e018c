//! The v1 (text) header: `PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n`, or
//! `PROXY UNKNOWN …\r\n` (the rest of an UNKNOWN line is ignored), at most 107 bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Command, Parsed, ProxyHeader, ProxyProtocolError, Version, V1_MAX_LEN};

/// The first bytes of every v1 header.
pub(super) const PREFIX: &[u8] = b"PROXY ";

/// The protocols a v1 line may name.
const PROTOCOLS: [&[u8]; 3] = [b"TCP4", b"TCP6", b"UNKNOWN"];

type Error = ProxyProtocolError;

/// Parses a v1 header; `buf` agrees with [`PREFIX`] on their common length.
pub(super) fn parse(buf: &[u8]) -> Result<Parsed, Error> {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return incomplete(window);
    };
    let Some(line) = window[..lf].strip_suffix(b"\r") else {
        return Err(Error::V1Malformed {
            what: "LF without CR",
        });
    };
    let header = parse_line(line)?;
    Ok(Parsed::Header {
        header,
        version: Version::V1,
        len: lf + 1,
    })
}

/// A line without its LF yet: Incomplete while it can still become a valid header.
fn incomplete(window: &[u8]) -> Result<Parsed, Error> {
    if window.len() >= V1_MAX_LEN {
        return Err(Error::V1TooLong { limit: V1_MAX_LEN });
    }
    if let Some(cr) = window.iter().position(|&b| b == b'\r') {
        if cr + 1 < window.len() {
            return Err(Error::V1Malformed {
                what: "CR without LF",
            });
        }
    }
    if window
        .iter()
        .any(|&b| b != b'\r' && !(0x20..0x7f).contains(&b))
    {
        return Err(Error::V1Malformed {
            what: "byte that is not printable ASCII",
        });
    }
    // The protocol, once its bytes are there, must be (the beginning of) a known one.
    if let Some(rest) = window.get(PREFIX.len()..) {
        let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
        match rest.iter().position(|&b| b == b' ') {
            Some(sp) => {
                if !PROTOCOLS.contains(&&rest[..sp]) {
                    return Err(Error::V1UnknownProtocol);
                }
            }
            None => {
                if !PROTOCOLS.iter().any(|p| p.starts_with(rest)) {
                    return Err(Error::V1UnknownProtocol);
                }
            }
        }
    }
    Ok(Parsed::Incomplete)
}

/// Parses a whole line, CRLF removed.
fn parse_line(line: &[u8]) -> Result<ProxyHeader, Error> {
    let Some(rest) = line.strip_prefix(PREFIX) else {
        return Err(Error::V1Malformed {
            what: "no \"PROXY \" prefix",
        });
    };
    if rest.iter().any(|b| !(0x20..0x7f).contains(b)) {
        return Err(Error::V1Malformed {
            what: "byte that is not printable ASCII",
        });
    }
    let (protocol, rest) = match rest.iter().position(|&b| b == b' ') {
        Some(sp) => (&rest[..sp], Some(&rest[sp + 1..])),
        None => (rest, None),
    };
    let v6 = match protocol {
        b"UNKNOWN" => {
            // The receiver ignores whatever follows UNKNOWN and keeps the real endpoints.
            return Ok(ProxyHeader {
                command: Command::Proxy,
                source: None,
                destination: None,
            });
        }
        b"TCP4" => false,
        b"TCP6" => true,
        _ => return Err(Error::V1UnknownProtocol),
    };
    let Some(rest) = rest else {
        return Err(Error::V1Malformed {
            what: "no addresses after the protocol",
        });
    };
    if rest.split(|&b| b == b' ').any(<[u8]>::is_empty) {
        return Err(Error::V1Malformed {
            what: "an empty field (two spaces in a row, or a space at the end)",
        });
    }
    let mut fields = rest.split(|&b| b == b' ');
    let mut next = || {
        fields.next().ok_or(Error::V1Malformed {
            what: "fewer than four fields after the protocol",
        })
    };
    let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
    if fields.next().is_some() {
        return Err(Error::V1Malformed {
            what: "more than four fields after the protocol",
        });
    }
    let source = SocketAddr::new(address(src, v6, "source")?, port(sport, "source")?);
    let destination = SocketAddr::new(
        address(dst, v6, "destination")?,
        port(dport, "destination")?,
    );
    Ok(ProxyHeader {
        command: Command::Proxy,
        source: Some(source),
        destination: Some(destination),
    })
}

/// An address of the family the protocol names (`TCP4`: dotted quad, `TCP6`: RFC 4291 text).
fn address(text: &[u8], v6: bool, which: &'static str) -> Result<IpAddr, Error> {
    let text = std::str::from_utf8(text).ok();
    let parsed = if v6 {
        text.and_then(|t| t.parse::<Ipv6Addr>().ok())
            .map(IpAddr::V6)
    } else {
        text.and_then(|t| t.parse::<Ipv4Addr>().ok())
            .map(IpAddr::V4)
    };
    parsed.ok_or(Error::V1BadAddress {
        which,
        family: if v6 { "IPv6" } else { "IPv4" },
    })
}

/// A port: 1 to 5 decimal digits, no sign, no leading zero (but `0` itself), at most 65535.
fn port(text: &[u8], which: &'static str) -> Result<u16, Error> {
    let bad = Error::V1BadPort { which };
    let digits = !text.is_empty() && text.len() <= 5 && text.iter().all(u8::is_ascii_digit);
    if !digits || (text.len() > 1 && text[0] == b'0') {
        return Err(bad);
    }
    let value = text.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(value).map_err(|_| bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_strict_decimals() {
        assert_eq!(port(b"0", "source"), Ok(0));
        assert_eq!(port(b"65535", "source"), Ok(65535));
        for bad in [&b""[..], b"65536", b"080", b"+80", b"-1", b"8a", b"123456"] {
            assert!(port(bad, "source").is_err(), "{bad:?}");
        }
    }
}
