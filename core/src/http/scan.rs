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
    ///
    /// Works a line at a time: plain bytes are skipped in words (see [`plain_prefix_len`]) up to
    /// the next control byte, which must be the CR of a CRLF (or an HTAB inside a line).
    pub(crate) fn scan(&mut self, buf: &[u8]) -> Result<Scan, HttpError> {
        if buf.len() < self.scanned {
            // The caller replaced the buffer: start over rather than trust stale state.
            self.reset();
        }
        let mut i = self.scanned;
        let mut at_line_start = i > 0 && buf[i - 1] == b'\n';
        loop {
            if at_line_start {
                at_line_start = false;
                match buf.get(i) {
                    None => break,
                    Some(b' ' | b'\t') => return Err(HttpError::ObsFold),
                    Some(b'\r') if self.start_line_end.is_some() => match buf.get(i + 1) {
                        None => break,
                        Some(b'\n') => {
                            self.scanned = i + 2;
                            return Ok(Scan::Complete(i + 2));
                        }
                        Some(_) => return Err(HttpError::BareCr),
                    },
                    Some(_) => {}
                }
            }
            i += plain_prefix_len(&buf[i..]);
            let Some(&b) = buf.get(i) else { break };
            match b {
                b'\r' => match buf.get(i + 1) {
                    // Keep the CR unscanned until its LF arrives.
                    None => break,
                    Some(b'\n') => {
                        self.start_line_end.get_or_insert(i + 1);
                        i += 2;
                        at_line_start = true;
                    }
                    Some(_) => return Err(HttpError::BareCr),
                },
                b'\n' => return Err(HttpError::BareLf),
                b'\t' => i += 1,
                _ => return Err(HttpError::ControlChar { byte: b }),
            }
        }
        self.scanned = i.min(buf.len());
        Ok(Scan::Partial)
    }
}

/// How many bytes at the front of `bytes` are plain: no control character (below 0x20, or
/// 0x7f). Bytes from 0x80 up (obs-text) count as plain.
fn plain_prefix_len(bytes: &[u8]) -> usize {
    let mut n = 0;
    // Sixteen bytes per step while the text is plain (one branch per step), then eight.
    for pair in bytes.chunks_exact(16) {
        let (a, b) = (load(&pair[..8]), load(&pair[8..]));
        if control_mask(a) | control_mask(b) != 0 {
            break;
        }
        n += 16;
    }
    for chunk in bytes[n..].chunks_exact(8) {
        let mask = control_mask(load(chunk));
        if mask != 0 {
            // The lowest flagged byte is exact (see `control_mask`).
            return n + (mask.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + bytes[n..]
        .iter()
        .take_while(|&&b| b >= 0x20 && b != 0x7f)
        .count()
}

/// Eight bytes as a little-endian word (`chunk` is exactly eight bytes long).
fn load(chunk: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    u64::from_le_bytes(word)
}

/// Sets the high bit of each byte of `word` that is a control character. Borrows can also flag
/// bytes above the first control byte, never below it, so the lowest flagged byte is exact.
fn control_mask(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    // A byte below 0x20 borrows into its high bit when 0x20 is subtracted (exact for n ≤ 0x80).
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH_BITS;
    // A byte equal to 0x7f becomes zero after the XOR.
    let x = word ^ (ONES * 0x7f);
    let del = x.wrapping_sub(ONES) & !x & HIGH_BITS;
    below_space | del
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
    fn plain_prefix_stops_exactly_at_the_first_control_byte() {
        let plain = |b: u8| b >= 0x20 && b != 0x7f;
        for byte in 0..=255u8 {
            for second in [0u8, b'\r', 0x7f, 0x80, b'z'] {
                for lane in 0..19 {
                    let mut text = *b"abcdefgh\x80\xffijklmnopqrstu";
                    text[lane] = byte;
                    text[lane + 1] = second;
                    let expected = text.iter().take_while(|&&b| plain(b)).count();
                    assert_eq!(
                        plain_prefix_len(&text),
                        expected,
                        "{byte:#x} then {second:#x} at {lane}"
                    );
                }
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
