//! [`BodyDecoder`]: Content-Length, chunked, close-delimited and upgraded bodies.

use bytes::{Bytes, BytesMut};

use super::chunked::ChunkedDecoder;
use crate::http::error::HttpError;
use crate::http::limits::BodyFraming;

/// What one call to [`BodyDecoder::decode`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEvent {
    /// Body bytes, split off the front of the read buffer without copying.
    Data(Bytes),
    /// The body is complete; bytes left in the buffer belong to the next message.
    End,
    /// Every byte in the buffer was consumed; read more and call again.
    NeedMore,
}

/// Decodes one message body from a read buffer, incrementally.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
    max_body: Option<u64>,
    received: u64,
}

#[derive(Debug, Clone)]
enum State {
    Length {
        remaining: u64,
    },
    Chunked(ChunkedDecoder),
    /// Until close (also after an upgrade: opaque bytes).
    Eof,
    Done,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`; `max_body` bounds the decoded size (413).
    pub fn new(framing: BodyFraming, max_body: Option<u64>) -> Self {
        let state = match framing {
            BodyFraming::Empty | BodyFraming::Length(0) => State::Done,
            BodyFraming::Length(n) => State::Length { remaining: n },
            BodyFraming::Chunked => State::Chunked(ChunkedDecoder::new(max_body)),
            BodyFraming::UntilClose | BodyFraming::Upgrade => State::Eof,
        };
        Self {
            state,
            max_body,
            received: 0,
        }
    }

    /// Consumes framing bytes from the front of `buf` and returns the next piece of body.
    ///
    /// Call until it returns [`BodyEvent::NeedMore`] (read more, call again) or
    /// [`BodyEvent::End`] (the rest of `buf` is the next message).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<BodyEvent, HttpError> {
        match &mut self.state {
            State::Done => Ok(BodyEvent::End),
            State::Length { remaining } => {
                if let Some(limit) = self.max_body {
                    if self.received + *remaining > limit {
                        return Err(HttpError::BodyTooLarge { limit });
                    }
                }
                if buf.is_empty() {
                    return Ok(BodyEvent::NeedMore);
                }
                let n = usize::try_from(*remaining)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                *remaining -= n as u64;
                if *remaining == 0 {
                    self.state = State::Done;
                }
                self.count(n)?;
                Ok(BodyEvent::Data(buf.split_to(n).freeze()))
            }
            State::Chunked(chunked) => match chunked.decode(buf)? {
                Some(len) => {
                    self.count(len)?;
                    Ok(BodyEvent::Data(buf.split_to(len).freeze()))
                }
                None if chunked.is_done() => {
                    self.state = State::Done;
                    Ok(BodyEvent::End)
                }
                None => Ok(BodyEvent::NeedMore),
            },
            State::Eof => {
                if buf.is_empty() {
                    return Ok(BodyEvent::NeedMore);
                }
                let n = buf.len();
                self.count(n)?;
                Ok(BodyEvent::Data(buf.split_to(n).freeze()))
            }
        }
    }

    /// The peer closed the connection. `Ok` when that ends the body (close-delimited or upgraded
    /// bodies, or a body already complete); otherwise the body was cut short.
    pub fn finish_on_eof(&mut self) -> Result<(), HttpError> {
        match self.state {
            State::Done => Ok(()),
            State::Eof => {
                self.state = State::Done;
                Ok(())
            }
            State::Length { .. } | State::Chunked(_) => Err(HttpError::IncompleteBody),
        }
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Body bytes decoded so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    fn count(&mut self, n: usize) -> Result<(), HttpError> {
        self.received += n as u64;
        match self.max_body {
            Some(limit) if self.received > limit => Err(HttpError::BodyTooLarge { limit }),
            _ => Ok(()),
        }
    }
}
