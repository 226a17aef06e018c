//! The sans-IO half every variant shares: parse what arrived with ringway's request parser and
//! queue one fixed `200` per complete head. The variants differ only in how bytes get into the
//! read buffer and how the answer leaves, which is what the benchmark compares.

use bytes::BytesMut;
use ringway_core::http::{Limits, RequestParser};

/// The answer to every request: a 12-byte body, the same as nginx's `return 200 "hello world\n"`.
pub(crate) const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello world\n";

/// Bytes asked of one read while a head is arriving (the balancer's `HEAD_READ`).
pub(crate) const HEAD_READ: usize = 8 * 1024;

/// What the connection does after [`answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Write what was queued (if anything) and read again.
    Read,
    /// Write what was queued, then close: the client asked to, the head was malformed, or the
    /// request has a body (this server answers heads only).
    Close,
}

/// Parses every complete head at the front of `buf` (pipelined ones included), appends one
/// [`RESPONSE`] to `out` for each, and leaves a partial head in `buf` for the next read.
pub(crate) fn answer(buf: &mut BytesMut, out: &mut BytesMut) -> Next {
    // A parser per call: a fresh one rescans a partial head from its start, so nothing of it has
    // to live while the connection is idle.
    let mut parser = RequestParser::new(Limits::default());
    loop {
        match parser.parse(buf) {
            Ok(Some(head)) => {
                out.extend_from_slice(RESPONSE);
                if !head.keep_alive() || !head.framing().is_empty() {
                    return Next::Close;
                }
            }
            Ok(None) => return Next::Read,
            Err(_) => return Next::Close,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (Next, usize, BytesMut) {
        let mut buf = BytesMut::from(input);
        let mut out = BytesMut::new();
        let next = answer(&mut buf, &mut out);
        assert_eq!(out.len() % RESPONSE.len(), 0);
        (next, out.len() / RESPONSE.len(), buf)
    }

    #[test]
    fn the_response_has_a_twelve_byte_body() {
        let text = std::str::from_utf8(RESPONSE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("Content-Length: 12"));
        assert_eq!(body, "hello world\n");
    }

    #[test]
    fn answers_pipelined_heads_and_keeps_a_partial_one() {
        let (next, answered, rest) =
            run(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HT");
        assert_eq!((next, answered), (Next::Read, 2));
        assert_eq!(&rest[..], b"GET /3 HT");
    }

    #[test]
    fn a_partial_head_completes_on_a_later_call() {
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHo"[..]);
        let mut out = BytesMut::new();
        assert_eq!(answer(&mut buf, &mut out), Next::Read);
        assert!(out.is_empty());
        buf.extend_from_slice(b"st: a\r\n\r\n");
        assert_eq!(answer(&mut buf, &mut out), Next::Read);
        assert_eq!(&out[..], RESPONSE);
        assert!(buf.is_empty());
    }

    #[test]
    fn closes_when_asked_on_bodies_and_on_garbage() {
        let (next, answered, _) = run(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        assert_eq!((next, answered), (Next::Close, 1));
        let (next, answered, _) =
            run(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
        assert_eq!((next, answered), (Next::Close, 1));
        let (next, answered, _) = run(b"\x00\x01 nonsense\r\n\r\n");
        assert_eq!((next, answered), (Next::Close, 0));
    }
}
