//! The hello backend's routes, over loopback with a plain blocking client.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringway_core::http::{BodyDecoder, BodyEvent, Limits, ResponseHead, ResponseParser};
use ringway_hello as hello;

fn backend() -> (hello::HelloHandle, TcpStream) {
    let handle = hello::spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    let sock = TcpStream::connect(handle.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (handle, sock)
}

#[test]
fn root_names_the_backend_and_counts_requests() {
    let (handle, mut sock) = backend();
    let r = http(
        &mut sock,
        b"GET /some/path?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET",
    );
    assert_eq!(r.head.status(), 200);
    let body = String::from_utf8(r.body).unwrap();
    assert!(body.contains(&handle.addr.to_string()), "{body}");
    assert!(body.contains("GET /some/path?x=1"), "{body}");
    assert_eq!(
        r.head.header("x-served-by").unwrap(),
        format!("hello@{}", handle.addr).as_bytes()
    );
    // Keep-alive: a second request on the same connection.
    let r = http(&mut sock, b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", b"HEAD");
    assert_eq!(r.head.status(), 200);
    assert!(r.body.is_empty());
    assert_eq!(handle.requests(), 2);
}

#[test]
fn echo_streams_content_length_and_chunked_bodies_back() {
    let (_handle, mut sock) = backend();
    let r = http(
        &mut sock,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
        b"POST",
    );
    assert_eq!(r.head.status(), 200);
    assert_eq!(r.head.content_length(), Some(11));
    assert_eq!(r.body, b"hello world");

    let r = http(
        &mut sock,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        b"POST",
    );
    assert_eq!(r.head.header("transfer-encoding").unwrap(), b"chunked");
    assert_eq!(r.body, b"hello world");
}

#[test]
fn echo_answers_before_the_whole_body_arrived() {
    let (_handle, mut sock) = backend();
    sock.write_all(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n",
    )
    .unwrap();
    // The head and the first chunk come back before the request body is finished.
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&got).contains("first") {
        assert!(
            Instant::now() < deadline,
            "nothing echoed yet: {:?}",
            String::from_utf8_lossy(&got)
        );
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&chunk[..n]);
    }
    sock.write_all(b"0\r\n\r\n").unwrap();
}

#[test]
fn bytes_route_in_both_framings() {
    let (_handle, mut sock) = backend();
    let n = 200_000u64;
    let expect: Vec<u8> = (0..n).map(hello::pattern).collect();
    let r = http(
        &mut sock,
        format!("GET /bytes/{n} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
        b"GET",
    );
    assert_eq!(r.head.content_length(), Some(n));
    assert_eq!(r.body, expect);
    let r = http(
        &mut sock,
        format!("GET /bytes/{n}?chunked HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
        b"GET",
    );
    assert_eq!(r.head.header("transfer-encoding").unwrap(), b"chunked");
    assert_eq!(r.body, expect);
    let r = http(
        &mut sock,
        b"GET /bytes/0 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET",
    );
    assert_eq!(r.head.content_length(), Some(0));
}

#[test]
fn slow_delays_the_head_and_status_sets_the_code() {
    let (_handle, mut sock) = backend();
    let started = Instant::now();
    let r = http(
        &mut sock,
        b"GET /slow/150 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET",
    );
    assert_eq!(r.head.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    for code in [201u16, 404, 503] {
        let r = http(
            &mut sock,
            format!("GET /status/{code} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
            b"GET",
        );
        assert_eq!(r.head.status(), code);
    }
    let r = http(
        &mut sock,
        b"GET /status/204 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET",
    );
    assert_eq!(r.head.status(), 204);
    assert!(r.body.is_empty());
    let r = http(
        &mut sock,
        b"GET /status/abc HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET",
    );
    assert_eq!(r.head.status(), 400);
}

#[test]
fn connection_close_is_honoured() {
    let (_handle, mut sock) = backend();
    let r = http(
        &mut sock,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"GET",
    );
    assert_eq!(r.head.status(), 200);
    assert!(!r.head.keep_alive());
    let mut rest = [0u8; 16];
    assert_eq!(sock.read(&mut rest).unwrap(), 0, "connection stays open");
}

/// A response read by [`http`].
struct HttpReply {
    head: ResponseHead,
    body: Vec<u8>,
}

/// Sends one request on `sock` and reads the response (framing decoded with core).
fn http(sock: &mut TcpStream, request: &[u8], method: &[u8]) -> HttpReply {
    sock.write_all(request).unwrap();
    let mut buf = BytesMut::new();
    let mut parser = ResponseParser::new(Limits::default());
    let head = loop {
        if let Some(head) = parser.parse(&mut buf).unwrap() {
            if head.is_interim() {
                parser = ResponseParser::new(Limits::default());
                continue;
            }
            break head;
        }
        read_into(sock, &mut buf);
    };
    let mut decoder = BodyDecoder::new(head.framing(method), None);
    let mut body = Vec::new();
    loop {
        match decoder.decode(&mut buf).unwrap() {
            BodyEvent::Data(data) => body.extend_from_slice(&data),
            BodyEvent::End => return HttpReply { head, body },
            BodyEvent::NeedMore => {
                if read_into(sock, &mut buf) == 0 {
                    decoder.finish_on_eof().unwrap();
                    return HttpReply { head, body };
                }
            }
        }
    }
}

fn read_into(sock: &mut TcpStream, buf: &mut BytesMut) -> usize {
    let mut chunk = [0u8; 64 * 1024];
    let n = sock.read(&mut chunk).unwrap();
    buf.extend_from_slice(&chunk[..n]);
    n
}
