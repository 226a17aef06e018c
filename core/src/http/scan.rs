//! Incremental search for the end of a head, with the byte-level rules checked on the way.
//!
//! The scanner remembers how far it has looked, so a head that arrives in many small reads is
//! scanned exactly once: each call starts where the previous one stopped. While scanning it
//! refuses what httparse would accept or report vaguely: bare LF line endings, bare CR, control
//! characters (NUL included) and obs-fold continuation lines.

use super::error::HttpError;

/// Where an incremental scan of a head stands.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeadScanner {
    /// Bytes `[0, scanned)` are checked and hold no complete head.
    scanned: usize,
    /// Offset of the first LF, i.e. the end of the start line, once seen.
    start_line_end: Option<usize>,
}

/// What one scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The head ends at this offset (just past CRLF CRLF).
    Complete(usize),
    /// No end yet; every byte so far is valid.
    Partial,
}

impl HeadScanner {
    /// Resets for the next head.
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }

    /// Offset of the LF ending the start line, if it was seen.
    pub(crate) fn start_line_end(&self) -> Option<usize> {
        self.start_line_end
    }

    /// Continues scanning `buf` (which must be the same bytes as before, possibly extended).
    pub(crate) fn scan(&mut self, buf: &[u8]) -> Result<Scan, HttpError> {
        if buf.len() < self.scanned {
            // The caller replaced the buffer: start over rather than trust stale state.
            self.reset();
        }
        let mut i = self.scanned;
        let mut prev = if i == 0 { 0 } else { buf[i - 1] };
        while i < buf.len() {
            let b = buf[i];
            if prev == b'\r' && b != b'\n' {
                return Err(HttpError::BareCr);
            }
            match b {
                b'\n' => {
                    if prev != b'\r' {
                        return Err(HttpError::BareLf);
                    }
                    if self.start_line_end.is_none() {
                        self.start_line_end = Some(i);
                    } else if i >= 3 && buf[i - 3..i] == *b"\r\n\r" {
                        self.scanned = i + 1;
                        return Ok(Scan::Complete(i + 1));
                    }
                }
                b' ' | b'\t' if prev == b'\n' => return Err(HttpError::ObsFold),
                b'\r' | b'\t' => {}
                0..=0x1f | 0x7f => return Err(HttpError::ControlChar { byte: b }),
                _ => {}
            }
            prev = b;
            i += 1;
        }
        self.scanned = i;
        Ok(Scan::Partial)
    }
}
