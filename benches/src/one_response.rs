//! Reading one whole HTTP/1.1 response from a blocking stream, with core's parser: what the small
//! benchmark clients (`idle-clients`, `floor-gen`) need before they do their own thing.

use std::io::{self, Read};

use bytes::BytesMut;
use ringway_core::http::{BodyDecoder, BodyEvent, Limits, ResponseParser};

/// One response, read whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneResponse {
    /// Its status (interim 1xx responses before it are skipped).
    pub status: u16,
    /// Whether the connection stays open after it.
    pub keep_alive: bool,
    /// Bytes read from the stream for it, head and body (and any interim responses).
    pub bytes: usize,
    /// Bytes read past its end (a server that sent more than was asked).
    pub extra: usize,
}

/// Reads one response to a `GET` from `stream` (the request already written).
pub fn read_response(stream: &mut impl Read) -> io::Result<OneResponse> {
    let mut buf = BytesMut::with_capacity(4096);
    let mut bytes = 0;
    let mut parser = ResponseParser::new(Limits::default());
    let head = loop {
        match parser.parse(&mut buf).map_err(invalid)? {
            Some(head) if head.is_interim() => parser = ResponseParser::new(Limits::default()),
            Some(head) => break head,
            None => bytes += fill(stream, &mut buf)?,
        }
    };
    let mut decoder = BodyDecoder::new(head.framing(b"GET"), None);
    loop {
        match decoder.decode(&mut buf).map_err(invalid)? {
            BodyEvent::Data(_) => {}
            BodyEvent::End => break,
            BodyEvent::NeedMore => bytes += fill(stream, &mut buf)?,
        }
    }
    Ok(OneResponse {
        status: head.status(),
        keep_alive: head.keep_alive(),
        bytes: bytes - buf.len(),
        extra: buf.len(),
    })
}

/// Appends one read to `buf` and returns its length; the end of the stream is an error.
fn fill(stream: &mut impl Read, buf: &mut BytesMut) -> io::Result<usize> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before the whole response",
        ));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn invalid(e: ringway_core::http::HttpError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_whole_response_and_counts_its_bytes() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let mut more = resp.to_vec();
        more.extend_from_slice(b"HTTP/1.1");
        let r = read_response(&mut &more[..]).unwrap();
        assert_eq!(
            r,
            OneResponse {
                status: 200,
                keep_alive: true,
                bytes: resp.len(),
                extra: 8
            }
        );
    }

    #[test]
    fn interim_responses_are_skipped_and_close_is_seen() {
        let resp = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        let r = read_response(&mut &resp[..]).unwrap();
        assert_eq!(
            (r.status, r.keep_alive, r.bytes, r.extra),
            (404, false, resp.len(), 0)
        );
    }

    #[test]
    fn a_short_body_is_an_error() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel";
        let e = read_response(&mut &resp[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
