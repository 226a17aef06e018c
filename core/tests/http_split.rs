//! Property tests: any split of a valid byte stream (request heads, pipelined requests with
//! Content-Length and chunked bodies with extensions and trailers, responses with interim heads
//! and close-delimited bodies) decodes to exactly what the unsplit stream decodes to.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::sample::Index;
use ringway_core::http::{
    BodyDecoder, BodyEvent, BodyFraming, HttpError, Limits, RequestParser, ResponseParser,
};

/// A decoded message: its head's bytes and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    head: Vec<u8>,
    framing: BodyFraming,
    keep_alive: bool,
    body: Vec<u8>,
}

/// Feeds `chunks` one at a time to a parser + body decoder loop, as a connection driver would.
fn drive<H>(
    chunks: &[&[u8]],
    mut parse_head: impl FnMut(&mut BytesMut) -> Result<Option<H>, HttpError>,
    describe: impl Fn(&H) -> (Vec<u8>, BodyFraming, bool),
) -> Result<Vec<Message>, HttpError> {
    let mut buf = BytesMut::new();
    let mut body: Option<(BodyDecoder, Message)> = None;
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match &mut body {
                None => match parse_head(&mut buf)? {
                    Some(h) => {
                        let (head, framing, keep_alive) = describe(&h);
                        let msg = Message {
                            head,
                            framing,
                            keep_alive,
                            body: Vec::new(),
                        };
                        body = Some((BodyDecoder::new(framing, None), msg));
                    }
                    None => break,
                },
                Some((decoder, msg)) => match decoder.decode(&mut buf)? {
                    BodyEvent::Data(d) => msg.body.extend_from_slice(&d),
                    BodyEvent::End => out.push(body.take().unwrap().1),
                    BodyEvent::NeedMore => break,
                },
            }
        }
    }
    if let Some((mut decoder, msg)) = body {
        decoder.finish_on_eof()?;
        out.push(msg);
    }
    Ok(out)
}

fn drive_requests(chunks: &[&[u8]]) -> Result<Vec<Message>, HttpError> {
    let mut parser = RequestParser::new(Limits::default());
    drive(
        chunks,
        |buf| parser.parse(buf),
        |h| (h.as_bytes().to_vec(), h.framing(), h.keep_alive()),
    )
}

fn drive_responses(chunks: &[&[u8]]) -> Result<Vec<Message>, HttpError> {
    let mut parser = ResponseParser::new(Limits::default());
    drive(
        chunks,
        |buf| parser.parse(buf),
        |h| (h.as_bytes().to_vec(), h.framing(b"GET"), h.keep_alive()),
    )
}

/// Cuts `stream` at the given points.
fn split<'a>(stream: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
    points.push(0);
    points.push(stream.len());
    points.sort_unstable();
    points.windows(2).map(|w| &stream[w[0]..w[1]]).collect()
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9-]{0,12}"
}

fn value() -> impl Strategy<Value = String> {
    "[ -~]{0,24}".prop_map(|s| s.trim().to_string())
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Length(Vec<u8>),
    /// Chunks, an extension per chunk (maybe empty), trailers.
    Chunked(Vec<(Vec<u8>, String)>, Vec<(String, String)>),
}

fn body() -> impl Strategy<Value = Body> {
    let bytes = proptest::collection::vec(any::<u8>(), 1..40);
    let ext = prop_oneof![
        Just(String::new()),
        "(;[a-z]{1,5}(=[a-z0-9]{1,5})?){1,2}",
        Just(";q=\"a;b\"".to_string())
    ];
    prop_oneof![
        Just(Body::None),
        proptest::collection::vec(any::<u8>(), 0..60).prop_map(Body::Length),
        (
            proptest::collection::vec((bytes, ext), 0..5),
            proptest::collection::vec((token(), value()), 0..3)
        )
            .prop_map(|(c, t)| Body::Chunked(c, t)),
    ]
}

fn encode_body(body: &Body, out: &mut Vec<u8>) {
    match body {
        Body::None => out.extend_from_slice(b"\r\n"),
        Body::Length(data) => {
            out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", data.len()).as_bytes());
            out.extend_from_slice(data);
        }
        Body::Chunked(chunks, trailers) => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for (data, ext) in chunks {
                out.extend_from_slice(format!("{:X}{ext}\r\n", data.len()).as_bytes());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n");
            for (name, value) in trailers {
                out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }
}

fn request() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE")],
        "/[a-z0-9/]{0,20}(\\?[a-z=&]{0,10})?",
        proptest::collection::vec((token(), value()), 0..6),
        body(),
        any::<bool>(),
    )
        .prop_map(|(method, target, headers, body, leading_crlf)| {
            let mut out = Vec::new();
            if leading_crlf {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(
                format!("{method} {target} HTTP/1.1\r\nHost: example.com\r\n").as_bytes(),
            );
            for (name, value) in headers {
                if ["host", "content-length", "transfer-encoding"]
                    .contains(&name.to_ascii_lowercase().as_str())
                {
                    continue;
                }
                out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            encode_body(&body, &mut out);
            out
        })
}

fn response(last: bool) -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(200u16), Just(201), Just(204), Just(304), Just(404)],
        any::<bool>(),
        proptest::collection::vec((token(), value()), 0..5),
        body(),
        proptest::collection::vec(any::<u8>(), 0..50),
    )
        .prop_map(move |(status, interim, headers, body, close_body)| {
            let mut out = Vec::new();
            if interim {
                out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            out.extend_from_slice(format!("HTTP/1.1 {status} Something\r\n").as_bytes());
            for (name, value) in headers {
                if ["content-length", "transfer-encoding"]
                    .contains(&name.to_ascii_lowercase().as_str())
                {
                    continue;
                }
                out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            if status == 204 || status == 304 {
                out.extend_from_slice(b"\r\n");
            } else if last && matches!(body, Body::None) {
                // Close-delimited: the body runs to the end of the stream.
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&close_body);
            } else if matches!(body, Body::None) {
                encode_body(&Body::Length(Vec::new()), &mut out);
            } else {
                encode_body(&body, &mut out);
            }
            out
        })
}

fn responses() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(response(false), 0..3),
        response(true),
    )
        .prop_map(|(mut first, last)| {
            first.push(last);
            first.concat()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_split_of_pipelined_requests_decodes_the_same(
        requests in proptest::collection::vec(request(), 1..5),
        cuts in proptest::collection::vec(any::<Index>(), 0..12),
    ) {
        let stream = requests.concat();
        let whole = drive_requests(&[&stream]).unwrap();
        prop_assert_eq!(whole.len(), requests.len());
        prop_assert_eq!(drive_requests(&split(&stream, &cuts)).unwrap(), whole);
    }

    #[test]
    fn any_split_of_responses_decodes_the_same(
        stream in responses(),
        cuts in proptest::collection::vec(any::<Index>(), 0..12),
    ) {
        let whole = drive_responses(&[&stream]).unwrap();
        prop_assert_eq!(drive_responses(&split(&stream, &cuts)).unwrap(), whole);
    }

    #[test]
    fn byte_at_a_time_decodes_the_same(requests in proptest::collection::vec(request(), 1..3)) {
        let stream = requests.concat();
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        prop_assert_eq!(drive_requests(&bytes).unwrap(), drive_requests(&[&stream]).unwrap());
    }
}

#[test]
fn every_two_way_split_of_a_chunked_request_decodes_the_same() {
    let stream = b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=\"x;y\"\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 31\r\nX-Other: b\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    let whole = drive_requests(&[stream]).unwrap();
    assert_eq!(whole.len(), 2);
    assert_eq!(whole[0].body, b"helloabcdefghijklmnopqrstuvwxyz");
    for a in 0..=stream.len() {
        let (x, y) = stream.split_at(a);
        assert_eq!(drive_requests(&[x, y]).unwrap(), whole, "cut at {a}");
    }
}
