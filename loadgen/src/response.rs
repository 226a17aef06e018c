//! Reading responses off one connection: core's [`ResponseParser`] for heads and [`BodyDecoder`]
//! for bodies, driven over the connection's read buffer. No IO here: the connection loop reads
//! bytes into the buffer and asks [`ResponseReader::next`] for complete responses.
//!
//! A load test gets the same response head over and over (nginx's changes once a second, with
//! its `Date`). Parsing a head is a function of its bytes (and of the request method, fixed per
//! reader), so the reader keeps the bytes of the last final head it parsed together with what
//! the parser made of them; a head byte-for-byte equal to it is split off without parsing it
//! again — a comparison of ~150 bytes instead of the parser's few thousand instructions, the
//! largest part of the generator's own work per request (results/loadgen-vs-wrk-oha.md).

use bytes::{Bytes, BytesMut};
use ringway_core::http::{BodyDecoder, BodyEvent, BodyFraming, HttpError, Limits, ResponseParser};

/// A complete response, as far as the load generator cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Status code of the final (non-1xx) head.
    pub status: u16,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
}

/// Where the reader is within the current response.
#[derive(Debug)]
enum State {
    Head,
    Body {
        decoder: BodyDecoder,
        status: u16,
        keep_alive: bool,
    },
}

/// The last final head the parser accepted and what it made of it.
#[derive(Debug)]
struct KnownHead {
    bytes: Bytes,
    status: u16,
    keep_alive: bool,
    framing: BodyFraming,
}

/// Heads longer than this are not remembered (comparing them would cost more than it saves).
const KNOWN_HEAD_MAX: usize = 1024;

/// Turns the bytes of one connection into a sequence of complete responses.
#[derive(Debug)]
pub struct ResponseReader {
    parser: ResponseParser,
    state: State,
    method: Vec<u8>,
    known: Option<KnownHead>,
    /// The parser holds scan state of a partial head (its last call returned `None`).
    partial: bool,
}

impl ResponseReader {
    /// A reader for responses to requests with the given method (HEAD responses have no body).
    pub fn new(method: &[u8]) -> Self {
        Self {
            parser: ResponseParser::new(Limits::default()),
            state: State::Head,
            method: method.to_vec(),
            known: None,
            partial: false,
        }
    }

    /// The head at the front of `buf` if it is byte-for-byte the last one parsed: split off,
    /// with what the parser made of it.
    fn known_head(&mut self, buf: &mut BytesMut) -> Option<(u16, bool, BodyFraming)> {
        let known = self.known.as_ref()?;
        if !buf.starts_with(&known.bytes) {
            return None;
        }
        let _ = buf.split_to(known.bytes.len());
        if self.partial {
            // The parser had scanned part of this head: start it afresh for the next one.
            self.parser = ResponseParser::new(Limits::default());
            self.partial = false;
        }
        Some((known.status, known.keep_alive, known.framing))
    }

    /// The next complete response in `buf`, consuming its bytes; `Ok(None)` when more bytes are
    /// needed. Interim 1xx heads are skipped.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Response>, HttpError> {
        loop {
            match &mut self.state {
                State::Head => {
                    let (status, keep_alive, framing) = match self.known_head(buf) {
                        Some(known) => known,
                        None => {
                            let Some(head) = self.parser.parse(buf)? else {
                                self.partial = true;
                                return Ok(None);
                            };
                            self.partial = false;
                            if head.is_interim() {
                                continue;
                            }
                            let framing = head.framing(&self.method);
                            let status = head.status();
                            let keep_alive = head.keep_alive()
                                && !matches!(
                                    framing,
                                    BodyFraming::UntilClose | BodyFraming::Upgrade
                                );
                            let bytes = head.as_bytes();
                            self.known = (bytes.len() <= KNOWN_HEAD_MAX).then(|| KnownHead {
                                // A copy: a slice would keep the whole read buffer alive.
                                bytes: Bytes::copy_from_slice(bytes),
                                status,
                                keep_alive,
                                framing,
                            });
                            (status, keep_alive, framing)
                        }
                    };
                    if matches!(framing, BodyFraming::Empty) {
                        return Ok(Some(Response { status, keep_alive }));
                    }
                    self.state = State::Body {
                        decoder: BodyDecoder::new(framing, None),
                        status,
                        keep_alive,
                    };
                }
                State::Body {
                    decoder,
                    status,
                    keep_alive,
                } => {
                    let response = Response {
                        status: *status,
                        keep_alive: *keep_alive,
                    };
                    loop {
                        match decoder.decode(buf)? {
                            // The load generator does not keep bodies: drop the zero-copy slice.
                            BodyEvent::Data(_) => {}
                            BodyEvent::End => {
                                self.state = State::Head;
                                return Ok(Some(response));
                            }
                            BodyEvent::NeedMore => return Ok(None),
                        }
                    }
                }
            }
        }
    }

    /// The peer closed the connection: a body delimited by the close is complete now.
    pub fn on_eof(&mut self) -> Result<Option<Response>, HttpError> {
        match &mut self.state {
            State::Body {
                decoder,
                status,
                keep_alive,
            } => {
                decoder.finish_on_eof()?;
                let response = Response {
                    status: *status,
                    keep_alive: *keep_alive,
                };
                self.state = State::Head;
                Ok(Some(response))
            }
            State::Head => Ok(None),
        }
    }

    /// Whether the reader is between responses (nothing partial held).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(reader: &mut ResponseReader, bytes: &[u8]) -> Vec<Response> {
        // Byte by byte: every split of the stream must give the same responses.
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for b in bytes {
            buf.extend_from_slice(&[*b]);
            while let Some(r) = reader.next(&mut buf).unwrap() {
                out.push(r);
            }
        }
        out
    }

    #[test]
    fn pipelined_length_chunked_and_interim() {
        let stream = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\
HTTP/1.1 100 Continue\r\n\r\n\
HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
        let mut reader = ResponseReader::new(b"GET");
        let got = feed(&mut reader, stream);
        assert_eq!(
            got,
            vec![
                Response {
                    status: 200,
                    keep_alive: true
                },
                Response {
                    status: 404,
                    keep_alive: true
                },
                Response {
                    status: 204,
                    keep_alive: false
                },
            ]
        );
        assert!(reader.is_idle());
    }

    #[test]
    fn a_repeated_head_is_recognised_and_a_changed_one_parsed_again() {
        let same = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let mut stream = Vec::new();
        for _ in 0..3 {
            stream.extend_from_slice(same);
        }
        // Same status line, other framing: must not be taken for the remembered head.
        stream.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
        stream.extend_from_slice(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        );
        let ok = |keep_alive| Response {
            status: 200,
            keep_alive,
        };
        // All at once (heads found in the buffer whole) and byte by byte (partial heads first).
        let mut reader = ResponseReader::new(b"GET");
        let mut buf = BytesMut::from(&stream[..]);
        let mut whole = Vec::new();
        while let Some(r) = reader.next(&mut buf).unwrap() {
            whole.push(r);
        }
        assert!(buf.is_empty());
        let expected = vec![ok(true), ok(true), ok(true), ok(true), ok(false)];
        assert_eq!(whole, expected);
        assert_eq!(feed(&mut ResponseReader::new(b"GET"), &stream), expected);
        // A remembered head followed by garbage is still an error.
        let mut reader = ResponseReader::new(b"GET");
        let mut buf = BytesMut::from(&same[..]);
        buf.extend_from_slice(same);
        buf.extend_from_slice(b"HTTP/1.1 2x0 OK\r\n\r\n");
        assert_eq!(reader.next(&mut buf).unwrap(), Some(ok(true)));
        assert_eq!(reader.next(&mut buf).unwrap(), Some(ok(true)));
        assert!(reader.next(&mut buf).is_err());
    }

    #[test]
    fn head_responses_have_no_body_and_close_delimited_ends_at_eof() {
        let mut reader = ResponseReader::new(b"HEAD");
        let got = feed(
            &mut reader,
            b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
        );
        assert_eq!(
            got,
            vec![Response {
                status: 200,
                keep_alive: true
            }]
        );

        let mut reader = ResponseReader::new(b"GET");
        assert!(feed(&mut reader, b"HTTP/1.1 200 OK\r\n\r\nsome body").is_empty());
        assert_eq!(
            reader.on_eof().unwrap(),
            Some(Response {
                status: 200,
                keep_alive: false
            })
        );
    }

    #[test]
    fn garbage_is_a_parse_error_and_short_body_at_eof_too() {
        let mut reader = ResponseReader::new(b"GET");
        let mut buf = BytesMut::from(&b"NOT HTTP AT ALL\r\n\r\n"[..]);
        assert!(reader.next(&mut buf).is_err());

        let mut reader = ResponseReader::new(b"GET");
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"[..]);
        assert_eq!(reader.next(&mut buf).unwrap(), None);
        assert!(reader.on_eof().is_err());
    }
}
