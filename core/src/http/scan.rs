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
            // Fast path: eight ordinary bytes at a time (most of a head is field text).
            if prev != b'\r' && prev != b'\n' {
                if let Some(word) = buf.get(i..i + 8).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
                    if is_plain(u64::from_le_bytes(word)) {
                        prev = word[7];
                        i += 8;
                        continue;
                    }
                }
            }
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

/// Whether none of the eight bytes in `word` is a control character (below 0x20, or 0x7f).
/// Bytes from 0x80 up (obs-text) count as plain.
fn is_plain(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    // A byte below 0x20 borrows into its high bit when 0x20 is subtracted (exact for n ≤ 0x80).
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH_BITS;
    // A byte equal to 0x7f becomes zero after the XOR.
    let x = word ^ (ONES * 0x7f);
    let del = x.wrapping_sub(ONES) & !x & HIGH_BITS;
    below_space | del == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-by-byte rule the fast path must agree with.
    fn reference(buf: &[u8]) -> Result<Scan, HttpError> {
        let mut lines = 0;
        for (i, &b) in buf.iter().enumerate() {
            let prev = if i == 0 { 0 } else { buf[i - 1] };
            if prev == b'\r' && b != b'\n' {
                return Err(HttpError::BareCr);
            }
            match b {
                b'\n' if prev != b'\r' => return Err(HttpError::BareLf),
                b'\n' => {
                    lines += 1;
                    if lines > 1 && buf[..i].ends_with(b"\r\n\r") {
                        return Ok(Scan::Complete(i + 1));
                    }
                }
                b' ' | b'\t' if prev == b'\n' => return Err(HttpError::ObsFold),
                b'\r' | b'\t' => {}
                0..=0x1f | 0x7f => return Err(HttpError::ControlChar { byte: b }),
                _ => {}
            }
        }
        Ok(Scan::Partial)
    }

    #[test]
    fn is_plain_matches_a_per_byte_check_for_every_byte_in_every_lane() {
        for byte in 0..=255u8 {
            for lane in 0..8 {
                let mut word = *b"abcdefgh";
                word[lane] = byte;
                let expected = byte >= 0x20 && byte != 0x7f;
                assert_eq!(
                    is_plain(u64::from_le_bytes(word)),
                    expected,
                    "byte {byte:#x} lane {lane}"
                );
            }
        }
    }

    #[test]
    fn fast_path_agrees_with_the_reference_for_any_byte_at_any_offset() {
        let base = b"GET /some/longer/path HTTP/1.1\r\nHost: example.com\r\nX-Value: abcdefghijklmnop\r\n\r\n";
        for at in 0..base.len() {
            for byte in [
                0u8, 1, b'\t', b'\n', b'\r', b' ', 0x1f, 0x7f, 0x80, 0xff, b'a',
            ] {
                let mut buf = base.to_vec();
                buf[at] = byte;
                assert_eq!(
                    HeadScanner::default().scan(&buf),
                    reference(&buf),
                    "byte {byte:#x} at {at}"
                );
            }
        }
    }

    #[test]
    fn resumes_where_it_stopped() {
        let mut scanner = HeadScanner::default();
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(scanner.scan(&head[..10]), Ok(Scan::Partial));
        assert_eq!(scanner.scanned, 10);
        assert_eq!(scanner.scan(&head[..20]), Ok(Scan::Partial));
        assert_eq!(scanner.scanned, 20);
        assert_eq!(scanner.start_line_end(), Some(15));
        assert_eq!(scanner.scan(head), Ok(Scan::Complete(head.len())));
    }

    #[test]
    fn a_shorter_buffer_restarts_the_scan() {
        let mut scanner = HeadScanner::default();
        assert_eq!(
            scanner.scan(b"GET / HTTP/1.1\r\nHost: a\r\n"),
            Ok(Scan::Partial)
        );
        assert_eq!(
            scanner.scan(b"GET /\0"),
            Err(HttpError::ControlChar { byte: 0 })
        );
    }
}
