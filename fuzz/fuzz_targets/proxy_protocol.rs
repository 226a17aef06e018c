//! Fuzz the PROXY protocol parser: arbitrary bytes must never panic, a header must take no more
//! bytes than were given, every shorter prefix of it is Incomplete, and a header parsed from the
//! bytes is written back into bytes that parse to the same addresses.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringway_core::proxy_protocol::{parse, write_v2, Parsed};

fuzz_target!(|data: &[u8]| {
    let Ok(Parsed::Header { header, len, .. }) = parse(data) else {
        return;
    };
    assert!(len <= data.len());
    for cut in 0..len {
        assert_eq!(parse(&data[..cut]), Ok(Parsed::Incomplete), "cut at {cut}");
    }
    let mut out = BytesMut::new();
    write_v2(&header, &mut out);
    match parse(&out) {
        Ok(Parsed::Header {
            header: back, len, ..
        }) => {
            assert_eq!(len, out.len());
            assert_eq!(back.client(), header.client());
        }
        other => panic!("written header does not parse: {other:?}"),
    }
});
