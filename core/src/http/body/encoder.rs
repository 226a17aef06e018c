//! [`BodyEncoder`]: frames body bytes for the next hop.

use bytes::BytesMut;

use crate::http::error::HttpError;
use crate::http::limits::BodyFraming;

/// Frames a body as `Content-Length` (bytes as they are, count checked), chunked, or raw
/// (close-delimited / upgraded).
#[derive(Debug, Clone)]
pub struct BodyEncoder {
    framing: BodyFraming,
    written: u64,
    /// Bytes the caller offered beyond what the framing allows (dropped, never written).
    overrun: u64,
    finished: bool,
}

impl BodyEncoder {
    /// An encoder for a body framed as `framing`.
    pub fn new(framing: BodyFraming) -> Self {
        Self {
            framing,
            written: 0,
            overrun: 0,
            finished: false,
        }
    }

    /// Appends `data`, framed, to `out`. With `Length(n)` at most `n` bytes in all are written and
    /// any excess is dropped and reported by [`BodyEncoder::check`]; an empty body
    /// ([`BodyFraming::Empty`]) writes nothing. An empty `data` writes nothing (an empty chunk
    /// would end a chunked body).
    pub fn encode(&mut self, data: &[u8], out: &mut BytesMut) {
        if data.is_empty() {
            return;
        }
        match self.framing {
            BodyFraming::Length(total) => {
                let room = total - self.written;
                let n = usize::try_from(room).unwrap_or(usize::MAX).min(data.len());
                out.extend_from_slice(&data[..n]);
                self.written += n as u64;
                self.overrun += (data.len() - n) as u64;
            }
            BodyFraming::Chunked if !self.finished => {
                out.reserve(data.len() + 20);
                put_chunk_size(out, data.len());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
                self.written += data.len() as u64;
            }
            BodyFraming::UntilClose | BodyFraming::Upgrade => {
                out.extend_from_slice(data);
                self.written += data.len() as u64;
            }
            BodyFraming::Empty | BodyFraming::Chunked => self.overrun += data.len() as u64,
        }
    }

    /// Ends the body: for chunked, the last chunk `0\r\n\r\n` (once); nothing otherwise.
    pub fn finish(&mut self, out: &mut BytesMut) {
        if self.framing == BodyFraming::Chunked && !self.finished {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        self.finished = true;
    }

    /// Body bytes written so far (payload, without chunk framing).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Whether the body written so far matches its framing: no bytes beyond a Content-Length
    /// or after `finish`, and, once finished, exactly Content-Length bytes.
    pub fn check(&self) -> Result<(), HttpError> {
        if self.overrun > 0 {
            return Err(HttpError::BodyOverrun);
        }
        match self.framing {
            BodyFraming::Length(total) if self.finished && self.written != total => {
                Err(HttpError::IncompleteBody)
            }
            _ => Ok(()),
        }
    }
}

/// A chunk-size line: `len` in lowercase hex and CRLF, without `fmt`'s machinery.
fn put_chunk_size(out: &mut BytesMut, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 2 * size_of::<usize>()];
    let mut at = digits.len();
    let mut n = len;
    loop {
        at -= 1;
        digits[at] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_are_lowercase_hex() {
        for (len, text) in [
            (1, "1\r\n"),
            (15, "f\r\n"),
            (16, "10\r\n"),
            (0xabc, "abc\r\n"),
            (usize::MAX, "ffffffffffffffff\r\n"),
        ] {
            let mut out = BytesMut::new();
            put_chunk_size(&mut out, len);
            assert_eq!(out, text.as_bytes(), "{len}");
        }
    }
}
