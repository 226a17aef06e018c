//! Fuzz the chunked body decoder: arbitrary bytes must never panic, the decoded body may never
//! exceed the input, and decoding in two pieces must give the same body and outcome.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringway_core::http::{BodyDecoder, BodyEvent, BodyFraming, HttpError};

fn decode(pieces: &[&[u8]]) -> (Vec<u8>, Result<bool, HttpError>) {
    let mut decoder = BodyDecoder::new(BodyFraming::Chunked, Some(1 << 20));
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(BodyEvent::Data(d)) => body.extend_from_slice(&d),
                Ok(BodyEvent::End) => return (body, Ok(true)),
                Ok(BodyEvent::NeedMore) => break,
                Err(e) => return (body, Err(e)),
            }
        }
    }
    (body, Ok(false))
}

fuzz_target!(|data: &[u8]| {
    let whole = decode(&[data]);
    assert!(whole.0.len() <= data.len());
    let cut = data.len() / 2;
    let split = decode(&[&data[..cut], &data[cut..]]);
    assert_eq!(whole.1, split.1);
    if whole.1.is_ok() {
        assert_eq!(whole.0, split.0);
    }
});
