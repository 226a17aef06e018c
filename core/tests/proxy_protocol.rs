//! The PROXY protocol parser and writers: the spec's examples, every truncation of a valid
//! header, garbage and wrong families refused with the rule they broke, v2 TLVs, and properties
//! (write → parse round-trips at any split; arbitrary bytes never panic).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use bytes::BytesMut;
use proptest::prelude::*;
use ringway_core::proxy_protocol::{
    parse, write_v1, write_v2, Command, Parsed, ProxyHeader, ProxyProtocolError as E, Version,
    V1_MAX_LEN, V2_MAX_LEN, V2_SIGNATURE,
};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn proxied(src: &str, dst: &str) -> ProxyHeader {
    ProxyHeader {
        command: Command::Proxy,
        source: Some(addr(src)),
        destination: Some(addr(dst)),
    }
}

const NO_ADDRESSES: ProxyHeader = ProxyHeader {
    command: Command::Proxy,
    source: None,
    destination: None,
};

/// Parses a whole header and asserts it took exactly `bytes` (followed by a request).
fn whole(bytes: &[u8]) -> (ProxyHeader, Version) {
    let mut buf = bytes.to_vec();
    buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    match parse(&buf) {
        Ok(Parsed::Header {
            header,
            version,
            len,
        }) => {
            assert_eq!(len, bytes.len(), "consumed exactly the header");
            (header, version)
        }
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
    }
}

/// Every proper prefix of `bytes` (a valid header) is Incomplete.
fn every_prefix_incomplete(bytes: &[u8]) {
    for cut in 0..bytes.len() {
        assert_eq!(
            parse(&bytes[..cut]),
            Ok(Parsed::Incomplete),
            "cut at {cut} of {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

fn v2(ver_cmd: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let mut b = V2_SIGNATURE.to_vec();
    b.push(ver_cmd);
    b.push(family);
    b.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    b.extend_from_slice(body);
    b
}

/// The 12 address bytes of an AF_INET header: 203.0.113.7:56324 → 192.0.2.1:443.
fn inet_body() -> Vec<u8> {
    let mut body = vec![203, 0, 113, 7, 192, 0, 2, 1];
    body.extend_from_slice(&56324u16.to_be_bytes());
    body.extend_from_slice(&443u16.to_be_bytes());
    body
}

#[test]
fn v1_spec_examples_parse() {
    let cases: [(&[u8], ProxyHeader); 5] = [
        (
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
            proxied("192.168.0.1:56324", "192.168.0.11:443"),
        ),
        // The longest TCP4 line.
        (
            b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
            proxied("255.255.255.255:65535", "255.255.255.255:65535"),
        ),
        (
            b"PROXY TCP6 2001:db8::1 ::1 0 8080\r\n",
            proxied("[2001:db8::1]:0", "[::1]:8080"),
        ),
        (b"PROXY UNKNOWN\r\n", NO_ADDRESSES),
        // The worst case of the spec: 107 bytes, whatever follows UNKNOWN ignored.
        (
            b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
            NO_ADDRESSES,
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(whole(bytes), (want, Version::V1));
        every_prefix_incomplete(bytes);
    }
    let longest = cases[4].0;
    assert_eq!(longest.len(), V1_MAX_LEN);
    let tcp6_longest = b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_eq!(whole(tcp6_longest).1, Version::V1);
    every_prefix_incomplete(tcp6_longest);
}

#[test]
fn v1_garbage_and_wrong_families_are_refused() {
    let cases: [(&[u8], E); 16] = [
        (b"GET / HTTP/1.1\r\n", E::NotProxyProtocol),
        (b"G", E::NotProxyProtocol),
        (b"PROXYTCP4", E::NotProxyProtocol),
        (b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", E::NotProxyProtocol),
        (b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", E::V1UnknownProtocol),
        // Refused before the line ends.
        (b"PROXY TCP5", E::V1UnknownProtocol),
        (b"PROXY UDP4 ", E::V1UnknownProtocol),
        (
            b"PROXY TCP4 ::1 1.2.3.4 1 2\r\n",
            E::V1BadAddress {
                which: "source",
                family: "IPv4",
            },
        ),
        (
            b"PROXY TCP6 ::1 1.2.3.4 1 2\r\n",
            E::V1BadAddress {
                which: "destination",
                family: "IPv6",
            },
        ),
        (
            b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n",
            E::V1BadPort { which: "source" },
        ),
        (
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 080\r\n",
            E::V1BadPort {
                which: "destination",
            },
        ),
        (
            b"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n",
            E::V1Malformed {
                what: "an empty field (two spaces in a row, or a space at the end)",
            },
        ),
        (
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
            E::V1Malformed {
                what: "fewer than four fields after the protocol",
            },
        ),
        (
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
            E::V1Malformed {
                what: "more than four fields after the protocol",
            },
        ),
        (
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n",
            E::V1Malformed {
                what: "LF without CR",
            },
        ),
        (
            b"PROXY TCP4 1.2.3.4\r1.2.3.4",
            E::V1Malformed {
                what: "CR without LF",
            },
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            parse(bytes),
            Err(want),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 200]].concat();
    assert_eq!(parse(&long), Err(E::V1TooLong { limit: V1_MAX_LEN }));
    assert_eq!(
        parse(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 \x002\r\n"),
        Err(E::V1Malformed {
            what: "byte that is not printable ASCII",
        })
    );
    // Errors say where they came from.
    let text = E::V1BadPort { which: "source" }.to_string();
    assert!(text.starts_with("PROXY v1 header:"), "{text}");
}

#[test]
fn v2_inet_inet6_unix_unspec_and_local() {
    let tcp4 = v2(0x21, 0x11, &inet_body());
    assert_eq!(
        whole(&tcp4),
        (proxied("203.0.113.7:56324", "192.0.2.1:443"), Version::V2)
    );
    every_prefix_incomplete(&tcp4);

    let mut body6 = Vec::new();
    body6.extend_from_slice(
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    body6.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    body6.extend_from_slice(&1234u16.to_be_bytes());
    body6.extend_from_slice(&80u16.to_be_bytes());
    let tcp6 = v2(0x21, 0x21, &body6);
    assert_eq!(
        whole(&tcp6),
        (proxied("[2001:db8::7]:1234", "[::1]:80"), Version::V2)
    );
    every_prefix_incomplete(&tcp6);

    let unix = v2(0x21, 0x31, &[b'/'; 216]);
    assert_eq!(whole(&unix), (NO_ADDRESSES, Version::V2));
    let unspec = v2(0x21, 0x00, &[]);
    assert_eq!(whole(&unspec), (NO_ADDRESSES, Version::V2));

    // LOCAL: the front's own connection; whatever family and addresses it names are ignored.
    let local = v2(0x20, 0x11, &inet_body());
    let (header, _) = whole(&local);
    assert_eq!(header.command, Command::Local);
    assert_eq!(
        (header.source, header.destination, header.client()),
        (None, None, None)
    );
    let local_empty = v2(0x20, 0x00, &[]);
    assert_eq!(whole(&local_empty).0.command, Command::Local);
    every_prefix_incomplete(&local_empty);
}

#[test]
fn v2_tlvs_are_skipped_within_the_length() {
    let mut body = inet_body();
    // PP2_TYPE_AUTHORITY "example.com", PP2_TYPE_NOOP with 3 bytes, an empty unknown type.
    body.extend_from_slice(&[0x02, 0, 11]);
    body.extend_from_slice(b"example.com");
    body.extend_from_slice(&[0x04, 0, 3, 0, 0, 0]);
    body.extend_from_slice(&[0xee, 0, 0]);
    let bytes = v2(0x21, 0x11, &body);
    assert_eq!(
        whole(&bytes).0,
        proxied("203.0.113.7:56324", "192.0.2.1:443")
    );
    every_prefix_incomplete(&bytes);

    // A TLV whose value runs past the header's length; a TLV header cut short.
    let mut over = inet_body();
    over.extend_from_slice(&[0x02, 0, 20, b'x']);
    assert_eq!(
        parse(&v2(0x21, 0x11, &over)),
        Err(E::V2BadTlv { offset: 28 })
    );
    let mut short = inet_body();
    short.extend_from_slice(&[0x02, 0]);
    assert_eq!(
        parse(&v2(0x21, 0x11, &short)),
        Err(E::V2BadTlv { offset: 28 })
    );
}

#[test]
fn v2_garbage_is_refused_as_soon_as_it_shows() {
    let sig = V2_SIGNATURE.to_vec();
    let with = |extra: &[u8]| [sig.as_slice(), extra].concat();
    assert_eq!(parse(&with(&[0x11])), Err(E::V2BadVersion { version: 1 }));
    assert_eq!(parse(&with(&[0x22])), Err(E::V2BadCommand { command: 2 }));
    assert_eq!(
        parse(&with(&[0x21, 0x41])),
        Err(E::V2BadFamily { byte: 0x41 })
    );
    assert_eq!(
        parse(&with(&[0x21, 0x13])),
        Err(E::V2BadFamily { byte: 0x13 })
    );
    assert_eq!(
        parse(&with(&[0x21, 0x10])),
        Err(E::V2BadFamily { byte: 0x10 })
    );
    assert_eq!(
        parse(&with(&[0x21, 0x12])),
        Err(E::V2Datagram { byte: 0x12 })
    );
    assert_eq!(
        parse(&with(&[0x21, 0x11, 0, 11])),
        Err(E::V2ShortAddresses { len: 11, need: 12 })
    );
    assert_eq!(
        parse(&with(&[0x21, 0x21, 0, 12])),
        Err(E::V2ShortAddresses { len: 12, need: 36 })
    );
    assert_eq!(
        parse(&with(&[0x21, 0x11, 0xff, 0xff])),
        Err(E::V2TooLong {
            len: 16 + 0xffff,
            limit: V2_MAX_LEN
        })
    );
    // A broken signature is no header at all.
    let mut broken = sig.clone();
    broken[5] = b'x';
    assert_eq!(parse(&broken), Err(E::NotProxyProtocol));
    let text = E::V2BadVersion { version: 1 }.to_string();
    assert!(text.starts_with("PROXY v2 header:"), "{text}");
}

#[test]
fn writers_write_what_the_spec_shows() {
    let mut out = BytesMut::new();
    write_v1(&proxied("192.168.0.1:56324", "192.168.0.11:443"), &mut out);
    assert_eq!(
        &out[..],
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
    );
    out.clear();
    write_v1(&NO_ADDRESSES, &mut out);
    assert_eq!(&out[..], b"PROXY UNKNOWN\r\n");
    out.clear();
    write_v2(&proxied("203.0.113.7:56324", "192.0.2.1:443"), &mut out);
    assert_eq!(&out[..], &v2(0x21, 0x11, &inet_body())[..]);
    out.clear();
    let local = ProxyHeader {
        command: Command::Local,
        ..NO_ADDRESSES
    };
    write_v2(&local, &mut out);
    assert_eq!(&out[..], &v2(0x20, 0x00, &[])[..]);
    // Mixed families: both as IPv6, the IPv4 one mapped.
    out.clear();
    write_v1(&proxied("1.2.3.4:1", "[::1]:2"), &mut out);
    assert_eq!(&out[..], b"PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n");
}

fn any_addr(v6: bool) -> BoxedStrategy<SocketAddr> {
    if v6 {
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::from((ip, port)))
            .boxed()
    } else {
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::from((ip, port)))
            .boxed()
    }
}

fn any_header() -> impl Strategy<Value = ProxyHeader> {
    prop_oneof![
        any::<bool>().prop_flat_map(|v6| (any_addr(v6), any_addr(v6)).prop_map(|(s, d)| {
            ProxyHeader {
                command: Command::Proxy,
                source: Some(s),
                destination: Some(d),
            }
        })),
        Just(NO_ADDRESSES),
        Just(ProxyHeader {
            command: Command::Local,
            ..NO_ADDRESSES
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn write_then_parse_round_trips_at_any_split(
        header in any_header(),
        v1 in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..32),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut out = BytesMut::new();
        if v1 { write_v1(&header, &mut out) } else { write_v2(&header, &mut out) }
        let len = out.len();
        out.extend_from_slice(&tail);
        let got = parse(&out).unwrap();
        // v1 has no LOCAL: it is written as UNKNOWN, which reads back as a Proxy header
        // without addresses (the same meaning to the receiver: keep the real endpoints).
        let want = if v1 && header.command == Command::Local { NO_ADDRESSES } else { header };
        let version = if v1 { Version::V1 } else { Version::V2 };
        prop_assert_eq!(got, Parsed::Header { header: want, version, len });
        prop_assert_eq!(parse(&out[..cut.index(len)]).unwrap(), Parsed::Incomplete);
    }

    #[test]
    fn parse_never_panics_and_a_header_needs_all_its_bytes(
        data in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            // Starts like a header, then anything.
            proptest::collection::vec(any::<u8>(), 0..120)
                .prop_map(|rest| [b"PROXY TCP4 ".as_slice(), &rest].concat()),
            proptest::collection::vec(any::<u8>(), 0..120)
                .prop_map(|rest| [V2_SIGNATURE.as_slice(), &[0x21], &rest].concat()),
        ],
    ) {
        if let Ok(Parsed::Header { len, .. }) = parse(&data) {
            prop_assert!(len <= data.len());
            for cut in 0..len {
                prop_assert_eq!(parse(&data[..cut]), Ok(Parsed::Incomplete));
            }
        }
    }
}
