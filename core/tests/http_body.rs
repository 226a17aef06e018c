//! Body framing rules: Content-Length, chunked (sizes, extensions, trailers, errors),
//! close-delimited and upgraded bodies, size limits, and the encoders.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use ringway_core::http::{BodyDecoder, BodyEncoder, BodyEvent, BodyFraming, HttpError};

/// Decodes everything `raw` holds; returns the body, whether it ended, and what is left over.
fn decode_all(
    framing: BodyFraming,
    max: Option<u64>,
    raw: &[u8],
) -> Result<(Vec<u8>, bool, Vec<u8>), HttpError> {
    let mut decoder = BodyDecoder::new(framing, max);
    let mut buf = BytesMut::from(raw);
    let mut body = Vec::new();
    loop {
        match decoder.decode(&mut buf)? {
            BodyEvent::Data(d) => body.extend_from_slice(&d),
            BodyEvent::End => return Ok((body, true, buf.to_vec())),
            BodyEvent::NeedMore => return Ok((body, false, buf.to_vec())),
        }
    }
}

fn chunked(raw: &[u8]) -> Result<(Vec<u8>, bool, Vec<u8>), HttpError> {
    decode_all(BodyFraming::Chunked, None, raw)
}

#[test]
fn content_length_body_stops_at_its_length() {
    let (body, done, rest) = decode_all(BodyFraming::Length(5), None, b"helloGET /").unwrap();
    assert_eq!(
        (body.as_slice(), done, rest.as_slice()),
        (&b"hello"[..], true, &b"GET /"[..])
    );
    let (body, done, _) = decode_all(BodyFraming::Length(5), None, b"hel").unwrap();
    assert_eq!((body.as_slice(), done), (&b"hel"[..], false));
}

#[test]
fn data_is_a_zero_copy_split_of_the_buffer() {
    let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\n"[..]);
    let base = buf.as_ptr() as usize;
    let mut decoder = BodyDecoder::new(BodyFraming::Chunked, None);
    match decoder.decode(&mut buf).unwrap() {
        BodyEvent::Data(d) => assert_eq!(d.as_ptr() as usize, base + 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn empty_body_ends_at_once() {
    assert_eq!(
        decode_all(BodyFraming::Empty, None, b"next").unwrap(),
        (vec![], true, b"next".to_vec())
    );
    assert_eq!(
        decode_all(BodyFraming::Length(0), None, b"next").unwrap(),
        (vec![], true, b"next".to_vec())
    );
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let raw = b"4;name=value;q=\"quoted;x\"\r\nWiki\r\n5 ; ext\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0;last\r\nExpires: never\r\nX-Sum: 1\r\n\r\nNEXT";
    let (body, done, rest) = chunked(raw).unwrap();
    assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
    assert!(done);
    assert_eq!(rest, b"NEXT");
}

#[test]
fn chunk_sizes_are_hex_in_either_case() {
    let mut raw = b"1A\r\n".to_vec();
    raw.extend_from_slice(&[b'x'; 26]);
    raw.extend_from_slice(b"\r\na\r\n0123456789\r\n0\r\n\r\n");
    let (body, done, _) = chunked(&raw).unwrap();
    assert_eq!((body.len(), done), (36, true));
}

#[test]
fn bad_chunk_sizes_are_refused() {
    assert_eq!(chunked(b"g\r\n").unwrap_err(), HttpError::InvalidChunkSize);
    assert_eq!(chunked(b"\r\n").unwrap_err(), HttpError::InvalidChunkSize);
    assert_eq!(
        chunked(b";ext\r\n").unwrap_err(),
        HttpError::InvalidChunkSize
    );
    assert_eq!(chunked(b"-1\r\n").unwrap_err(), HttpError::InvalidChunkSize);
    assert_eq!(
        chunked(b"0x5\r\n").unwrap_err(),
        HttpError::InvalidChunkSize
    );
    assert_eq!(
        chunked(b"5 5\r\n").unwrap_err(),
        HttpError::InvalidChunkSize
    );
    assert_eq!(
        chunked(b"1\0\r\n").unwrap_err(),
        HttpError::InvalidChunkSize
    );
    assert_eq!(
        chunked(b"1;a\x01\r\n").unwrap_err(),
        HttpError::InvalidChunkSize
    );
}

#[test]
fn chunk_size_overflow_is_refused() {
    assert_eq!(
        chunked(b"10000000000000000\r\n").unwrap_err(),
        HttpError::ChunkSizeOverflow
    );
    // 16 hex digits still fit (then the body is simply incomplete).
    assert!(chunked(b"ffffffffffffffff\r\n").is_ok());
    // Leading zeros do not count towards overflow.
    assert!(
        chunked(b"00000000000000000000001\r\nx\r\n0\r\n\r\n")
            .unwrap()
            .1
    );
}

#[test]
fn missing_crlf_is_refused() {
    assert_eq!(
        chunked(b"3\r\nabcX").unwrap_err(),
        HttpError::MissingChunkCrlf
    );
    assert_eq!(
        chunked(b"3\r\nabc\rX").unwrap_err(),
        HttpError::MissingChunkCrlf
    );
    assert_eq!(chunked(b"3\rX").unwrap_err(), HttpError::MissingChunkCrlf);
    assert_eq!(chunked(b"3\nabc").unwrap_err(), HttpError::MissingChunkCrlf);
    assert_eq!(
        chunked(b"0\r\n\rX").unwrap_err(),
        HttpError::MissingChunkCrlf
    );
}

#[test]
fn chunk_line_length_is_bounded() {
    let mut raw = b"1;".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 5000));
    assert_eq!(chunked(&raw).unwrap_err(), HttpError::ChunkLineTooLong);
}

#[test]
fn malformed_trailers_are_refused() {
    assert_eq!(
        chunked(b"0\r\n: v\r\n\r\n").unwrap_err(),
        HttpError::InvalidTrailer
    );
    assert_eq!(
        chunked(b"0\r\nBad Name: v\r\n\r\n").unwrap_err(),
        HttpError::InvalidTrailer
    );
    assert_eq!(
        chunked(b"0\r\nX: a\0b\r\n\r\n").unwrap_err(),
        HttpError::InvalidTrailer
    );
    assert_eq!(
        chunked(b"0\r\nX: a\r\n folded\r\n\r\n").unwrap_err(),
        HttpError::InvalidTrailer
    );
    assert_eq!(
        chunked(b"0\r\nX: a\rb\r\n\r\n").unwrap_err(),
        HttpError::InvalidTrailer
    );
    let mut raw = b"0\r\nX: ".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 20000));
    assert_eq!(chunked(&raw).unwrap_err(), HttpError::TrailersTooLarge);
}

#[test]
fn body_limit_applies_to_every_framing() {
    let e = decode_all(BodyFraming::Length(11), Some(10), b"").unwrap_err();
    assert_eq!(
        (e, e.status()),
        (HttpError::BodyTooLarge { limit: 10 }, 413)
    );
    assert_eq!(
        decode_all(BodyFraming::Chunked, Some(10), b"b\r\n").unwrap_err(),
        HttpError::BodyTooLarge { limit: 10 }
    );
    assert_eq!(
        decode_all(BodyFraming::Chunked, Some(10), b"6\r\nabcdef\r\n6\r\n").unwrap_err(),
        HttpError::BodyTooLarge { limit: 10 }
    );
    assert!(
        decode_all(
            BodyFraming::Chunked,
            Some(10),
            b"a\r\n0123456789\r\n0\r\n\r\n"
        )
        .unwrap()
        .1
    );
    assert_eq!(
        decode_all(BodyFraming::UntilClose, Some(3), b"abcd").unwrap_err(),
        HttpError::BodyTooLarge { limit: 3 }
    );
}

#[test]
fn close_delimited_body_ends_at_eof_and_others_do_not() {
    let mut decoder = BodyDecoder::new(BodyFraming::UntilClose, None);
    let mut buf = BytesMut::from(&b"all of it"[..]);
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        BodyEvent::Data("all of it".into())
    );
    assert_eq!(decoder.decode(&mut buf).unwrap(), BodyEvent::NeedMore);
    assert!(!decoder.is_done());
    decoder.finish_on_eof().unwrap();
    assert!(decoder.is_done());
    assert_eq!(decoder.decode(&mut buf).unwrap(), BodyEvent::End);

    let mut upgraded = BodyDecoder::new(BodyFraming::Upgrade, None);
    let mut buf = BytesMut::from(&b"\x00\x01opaque"[..]);
    assert_eq!(
        upgraded.decode(&mut buf).unwrap(),
        BodyEvent::Data((&b"\x00\x01opaque"[..]).into())
    );
    upgraded.finish_on_eof().unwrap();

    let mut cut = BodyDecoder::new(BodyFraming::Length(10), None);
    assert_eq!(cut.finish_on_eof().unwrap_err(), HttpError::IncompleteBody);
    let mut cut = BodyDecoder::new(BodyFraming::Chunked, None);
    assert_eq!(cut.finish_on_eof().unwrap_err(), HttpError::IncompleteBody);
    let mut done = BodyDecoder::new(BodyFraming::Length(0), None);
    done.finish_on_eof().unwrap();
}

#[test]
fn chunked_encoder_round_trips_through_the_decoder() {
    let mut enc = BodyEncoder::new(BodyFraming::Chunked);
    let mut out = BytesMut::new();
    enc.encode(b"hello ", &mut out);
    enc.encode(b"", &mut out);
    enc.encode(&[b'w'; 300], &mut out);
    enc.finish(&mut out);
    enc.finish(&mut out);
    assert!(out.starts_with(b"6\r\nhello \r\n12c\r\n"));
    assert!(out.ends_with(b"\r\n0\r\n\r\n"));
    assert!(
        !out.ends_with(b"0\r\n\r\n0\r\n\r\n"),
        "finish writes the last chunk once"
    );
    let (body, done, rest) = chunked(&out).unwrap();
    assert_eq!(body.len(), 306);
    assert!(done && rest.is_empty());
    enc.check().unwrap();
}

#[test]
fn length_encoder_checks_the_count() {
    let mut enc = BodyEncoder::new(BodyFraming::Length(5));
    let mut out = BytesMut::new();
    enc.encode(b"abc", &mut out);
    enc.finish(&mut out);
    assert_eq!(enc.check().unwrap_err(), HttpError::IncompleteBody);

    let mut enc = BodyEncoder::new(BodyFraming::Length(5));
    let mut out = BytesMut::new();
    enc.encode(b"abc", &mut out);
    enc.encode(b"defg", &mut out);
    assert_eq!(
        &out[..],
        b"abcde",
        "bytes beyond Content-Length are never written"
    );
    assert_eq!(enc.check().unwrap_err(), HttpError::BodyOverrun);

    let mut enc = BodyEncoder::new(BodyFraming::Length(3));
    let mut out = BytesMut::new();
    enc.encode(b"abc", &mut out);
    enc.finish(&mut out);
    enc.check().unwrap();
    assert_eq!(&out[..], b"abc");
}

#[test]
fn raw_and_empty_encoders() {
    let mut enc = BodyEncoder::new(BodyFraming::UntilClose);
    let mut out = BytesMut::new();
    enc.encode(b"raw", &mut out);
    enc.finish(&mut out);
    assert_eq!(&out[..], b"raw");
    let mut enc = BodyEncoder::new(BodyFraming::Empty);
    let mut out = BytesMut::new();
    enc.encode(b"x", &mut out);
    assert!(out.is_empty());
    assert_eq!(enc.check().unwrap_err(), HttpError::BodyOverrun);
}
