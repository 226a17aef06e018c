//! Fuzz the tunnel protocol. The first input byte picks the mode:
//! - even: decode arbitrary bytes with `FrameDecoder` (no panic; every decoded frame re-encodes
//!   to bytes that decode to the same frame);
//! - odd: replay the rest as an operation sequence against an in-memory balancer/agent `Pair`
//!   (`ringway_core::tunnel::pair::ops`: no panic, no protocol error unless a byte was corrupted,
//!   bodies arrive intact).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringway_core::tunnel::{encode, pair::ops, FrameDecoder};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 1 {
        ops::run(rest);
        return;
    }
    let mut buf = BytesMut::from(rest);
    let mut decoder = FrameDecoder::new(64 * 1024);
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        let mut again = BytesMut::new();
        encode(&frame, &mut again);
        let decoded = FrameDecoder::new(1 << 24).decode(&mut again);
        assert_eq!(decoded, Ok(Some(frame)));
        assert!(again.is_empty());
    }
});
