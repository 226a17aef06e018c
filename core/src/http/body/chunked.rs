//! The chunked transfer coding (RFC 9112 §7.1) as a byte-level state machine.
//!
//! Framing bytes (sizes, extensions, CRLFs, trailers) are consumed from the buffer; chunk data is
//! left at the front for the caller to split off without copying. Extensions are skipped after
//! checking they hold no control characters; trailer fields are validated and dropped.

use bytes::{Buf, BytesMut};

use crate::http::error::HttpError;
use crate::http::fields::is_tchar;

/// Longest chunk-size line (size, extensions, CRLF) accepted.
pub(crate) const MAX_CHUNK_LINE: usize = 4096;
/// Largest trailer section accepted.
pub(crate) const MAX_TRAILER_BYTES: usize = 16384;

#[derive(Debug, Clone, Default)]
pub(crate) struct ChunkedDecoder {
    state: State,
    /// Bytes of the current chunk-size line, or of the whole trailer section.
    line_len: usize,
    /// Sum of the chunk sizes announced so far.
    declared: u64,
    /// Refuse a body whose announced chunks add up to more than this (413).
    max_body: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits; `digits` counts them.
    Size {
        size: u64,
        digits: u32,
    },
    /// Whitespace after the size, before `;` or CR.
    SizeWs {
        size: u64,
    },
    /// Inside chunk extensions, until CR.
    Ext {
        size: u64,
    },
    /// Expecting LF after the chunk-size line.
    SizeLf {
        size: u64,
    },
    /// Chunk data left to hand out.
    Data {
        remaining: u64,
    },
    /// Expecting the CR, then the LF that end the chunk data.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    TrailerName {
        empty: bool,
    },
    TrailerValue,
    TrailerLf,
    /// Expecting the LF of the final empty line.
    EndLf,
    Done,
}

impl Default for State {
    fn default() -> Self {
        Self::Size { size: 0, digits: 0 }
    }
}

impl ChunkedDecoder {
    pub(crate) fn new(max_body: Option<u64>) -> Self {
        Self {
            max_body,
            ..Self::default()
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes framing from the front of `buf`. `Some(n)`: the first `n` bytes of `buf` are
    /// chunk data for the caller to take. `None`: `buf` is used up, or the body is done.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, HttpError> {
        let mut i = 0;
        let result = loop {
            if let State::Data { remaining } = self.state {
                if i == buf.len() {
                    break None;
                }
                let n = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(buf.len() - i);
                let left = remaining - n as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data { remaining: left }
                };
                buf.advance(i);
                return Ok(Some(n));
            }
            if self.state == State::Done || i == buf.len() {
                break None;
            }
            self.step(buf[i])?;
            i += 1;
        };
        buf.advance(i);
        Ok(result)
    }

    fn step(&mut self, b: u8) -> Result<(), HttpError> {
        self.state = match self.state {
            State::Size { size, digits } => {
                self.size_line_byte()?;
                match hex_value(b) {
                    Some(v) => {
                        let size = size
                            .checked_mul(16)
                            .map(|s| s | u64::from(v))
                            .ok_or(HttpError::ChunkSizeOverflow)?;
                        State::Size {
                            size,
                            digits: digits + 1,
                        }
                    }
                    None if digits == 0 => return Err(HttpError::InvalidChunkSize),
                    None => after_size(b, size)?,
                }
            }
            State::SizeWs { size } => {
                self.size_line_byte()?;
                after_size(b, size)?
            }
            State::Ext { size } => {
                self.size_line_byte()?;
                match b {
                    b'\r' => State::SizeLf { size },
                    b'\t' => State::Ext { size },
                    0..=0x1f | 0x7f => return Err(HttpError::InvalidChunkSize),
                    _ => State::Ext { size },
                }
            }
            State::SizeLf { size } => {
                if b != b'\n' {
                    return Err(HttpError::MissingChunkCrlf);
                }
                self.line_len = 0;
                self.declared = self.declared.saturating_add(size);
                if let Some(limit) = self.max_body {
                    if self.declared > limit {
                        return Err(HttpError::BodyTooLarge { limit });
                    }
                }
                if size == 0 {
                    State::TrailerStart
                } else {
                    State::Data { remaining: size }
                }
            }
            State::DataCr if b == b'\r' => State::DataLf,
            State::DataLf if b == b'\n' => State::Size { size: 0, digits: 0 },
            State::DataCr | State::DataLf => return Err(HttpError::MissingChunkCrlf),
            State::TrailerStart => {
                self.trailer_byte()?;
                match b {
                    b'\r' => State::EndLf,
                    _ if is_tchar(b) => State::TrailerName { empty: false },
                    _ => return Err(HttpError::InvalidTrailer),
                }
            }
            State::TrailerName { empty } => {
                self.trailer_byte()?;
                match b {
                    b':' if !empty => State::TrailerValue,
                    _ if is_tchar(b) => State::TrailerName { empty: false },
                    _ => return Err(HttpError::InvalidTrailer),
                }
            }
            State::TrailerValue => {
                self.trailer_byte()?;
                match b {
                    b'\r' => State::TrailerLf,
                    b'\t' => State::TrailerValue,
                    0..=0x1f | 0x7f => return Err(HttpError::InvalidTrailer),
                    _ => State::TrailerValue,
                }
            }
            State::TrailerLf => {
                self.trailer_byte()?;
                if b != b'\n' {
                    return Err(HttpError::InvalidTrailer);
                }
                State::TrailerStart
            }
            State::EndLf => {
                if b != b'\n' {
                    return Err(HttpError::MissingChunkCrlf);
                }
                State::Done
            }
            State::Data { .. } | State::Done => self.state,
        };
        Ok(())
    }

    fn size_line_byte(&mut self) -> Result<(), HttpError> {
        self.line_len += 1;
        if self.line_len > MAX_CHUNK_LINE {
            return Err(HttpError::ChunkLineTooLong);
        }
        Ok(())
    }

    fn trailer_byte(&mut self) -> Result<(), HttpError> {
        self.line_len += 1;
        if self.line_len > MAX_TRAILER_BYTES {
            return Err(HttpError::TrailersTooLarge);
        }
        Ok(())
    }
}

/// The byte after the last hex digit (or after whitespace following it).
fn after_size(b: u8, size: u64) -> Result<State, HttpError> {
    match b {
        b' ' | b'\t' => Ok(State::SizeWs { size }),
        b';' => Ok(State::Ext { size }),
        b'\r' => Ok(State::SizeLf { size }),
        b'\n' => Err(HttpError::MissingChunkCrlf),
        _ => Err(HttpError::InvalidChunkSize),
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
