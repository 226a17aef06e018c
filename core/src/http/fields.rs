//! Header fields stored as ranges into the head's bytes, and the field-level rules shared by
//! requests and responses (Content-Length, Transfer-Encoding, Connection tokens).

use std::mem::MaybeUninit;

use bytes::Bytes;

use super::error::HttpError;

/// A byte range inside a head's `Bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    /// The range `part` occupies inside `base`; `part` must be a sub-slice of `base` (httparse
    /// hands out sub-slices of its input). Anything else (an empty `&'static str` httparse returns
    /// for a missing reason phrase) becomes an empty span.
    pub(crate) fn of(base: &[u8], part: &[u8]) -> Self {
        let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        match start.checked_add(part.len()) {
            Some(end) if end <= base.len() => Self::new(start, end),
            _ => Self::default(),
        }
    }

    pub(crate) fn new(start: usize, end: usize) -> Self {
        let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Self {
            start: clamp(start),
            end: clamp(end),
        }
    }

    pub(crate) fn get(self, bytes: &[u8]) -> &[u8] {
        bytes
            .get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    pub(crate) fn len(self) -> usize {
        (self.end - self.start) as usize
    }
}

/// One header field: name and value by range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldSpan {
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// Header slots handed to httparse on the stack; a configuration allowing more headers than
/// this falls back to one heap buffer per parse.
pub(crate) const STACK_HEADERS: usize = 128;

/// Runs `f` with an uninitialised header array able to hold `max` headers.
pub(crate) fn with_header_slots<'b, R>(
    max: usize,
    f: impl FnOnce(&mut [MaybeUninit<httparse::Header<'b>>]) -> R,
) -> R {
    if max <= STACK_HEADERS {
        let mut slots = [const { MaybeUninit::<httparse::Header<'b>>::uninit() }; STACK_HEADERS];
        f(&mut slots[..max])
    } else {
        let mut slots = Vec::with_capacity(max);
        slots.resize_with(max, MaybeUninit::uninit);
        f(&mut slots)
    }
}

/// Records httparse's header slices as ranges of `base`.
pub(crate) fn spans_of(base: &[u8], headers: &[httparse::Header<'_>]) -> Vec<FieldSpan> {
    headers
        .iter()
        .map(|h| FieldSpan {
            name: Span::of(base, h.name.as_bytes()),
            value: Span::of(base, h.value),
        })
        .collect()
}

/// The header fields of a parsed head and the facts derived from them.
#[derive(Debug, Clone)]
pub(crate) struct Fields {
    pub(crate) spans: Vec<FieldSpan>,
}

impl Fields {
    pub(crate) fn iter<'a>(
        &'a self,
        bytes: &'a Bytes,
    ) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        self.spans
            .iter()
            .map(move |f| (f.name.get(bytes), f.value.get(bytes)))
    }

    /// (name, value, line): the line runs from the name to the end of the value, as received.
    /// Should a value's range not follow its name (never for httparse output), the line is empty
    /// and writers fall back to name and value.
    pub(crate) fn lines<'a>(
        &'a self,
        bytes: &'a Bytes,
    ) -> impl Iterator<Item = (&'a [u8], &'a [u8], &'a [u8])> + 'a {
        self.spans.iter().map(move |f| {
            let line = if f.value.end >= f.name.end {
                Span {
                    start: f.name.start,
                    end: f.value.end,
                }
                .get(bytes)
            } else {
                &[]
            };
            (f.name.get(bytes), f.value.get(bytes), line)
        })
    }

    pub(crate) fn get<'a>(&self, bytes: &'a Bytes, name: &str) -> Option<&'a [u8]> {
        self.spans
            .iter()
            .find(|f| f.name.get(bytes).eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| f.value.get(bytes))
    }

    pub(crate) fn all<'a>(
        &'a self,
        bytes: &'a Bytes,
        name: &'a str,
    ) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter(bytes)
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

/// Facts about the framing and connection headers of a head, gathered in one pass.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FramingFields {
    /// The agreed Content-Length, if any.
    pub(crate) content_length: Option<u64>,
    /// Transfer-Encoding present.
    pub(crate) has_te: bool,
    /// The last transfer coding is `chunked`.
    pub(crate) te_chunked_last: bool,
    /// A coding other than a single `chunked` is present.
    pub(crate) te_other: bool,
    /// Connection tokens seen.
    pub(crate) conn_close: bool,
    pub(crate) conn_keep_alive: bool,
    pub(crate) conn_upgrade: bool,
    pub(crate) has_upgrade: bool,
    pub(crate) host_count: u32,
    pub(crate) host_index: Option<usize>,
    pub(crate) expect_continue: bool,
}

impl FramingFields {
    /// Collects the facts; refuses malformed or conflicting Content-Length values.
    pub(crate) fn collect(bytes: &[u8], spans: &[FieldSpan]) -> Result<Self, HttpError> {
        let mut f = Self::default();
        let mut te_codings = 0u32;
        for (index, span) in spans.iter().enumerate() {
            let name = span.name.get(bytes);
            let value = span.value.get(bytes);
            let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
            // Dispatch on the length first: most names then cost no comparison at all.
            match name.len() {
                14 if is(b"content-length") => {
                    for part in value.split(|&b| b == b',') {
                        let n = parse_content_length(trim(part))?;
                        match f.content_length {
                            Some(prev) if prev != n => {
                                return Err(HttpError::ConflictingContentLength)
                            }
                            _ => f.content_length = Some(n),
                        }
                    }
                }
                17 if is(b"transfer-encoding") => {
                    f.has_te = true;
                    for coding in tokens(value) {
                        te_codings += 1;
                        let chunked = coding.eq_ignore_ascii_case(b"chunked");
                        f.te_other |= !chunked || te_codings > 1;
                        f.te_chunked_last = chunked;
                    }
                }
                10 if is(b"connection") => {
                    for token in tokens(value) {
                        f.conn_close |= token.eq_ignore_ascii_case(b"close");
                        f.conn_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                        f.conn_upgrade |= token.eq_ignore_ascii_case(b"upgrade");
                    }
                }
                4 if is(b"host") => {
                    f.host_count += 1;
                    f.host_index.get_or_insert(index);
                }
                7 if is(b"upgrade") => f.has_upgrade = true,
                6 if is(b"expect") => {
                    f.expect_continue |= trim(value).eq_ignore_ascii_case(b"100-continue");
                }
                _ => {}
            }
        }
        if f.has_te && te_codings == 0 {
            // `Transfer-Encoding:` with an empty value: no coding at all, certainly not chunked.
            f.te_other = true;
        }
        Ok(f)
    }
}

/// Parses one Content-Length value: 1*DIGIT, fitting in a u64.
pub(crate) fn parse_content_length(v: &[u8]) -> Result<u64, HttpError> {
    if v.is_empty() {
        return Err(HttpError::InvalidContentLength);
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return Err(HttpError::InvalidContentLength);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(HttpError::InvalidContentLength)?;
    }
    Ok(n)
}

/// Strips optional whitespace (SP / HTAB) around a value.
pub(crate) fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// The non-empty elements of a comma-separated list, trimmed.
pub(crate) fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(trim).filter(|t| !t.is_empty())
}

/// RFC 9110 token characters (`tchar`).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_is_plain_digits_that_fit_in_u64() {
        assert_eq!(parse_content_length(b"0"), Ok(0));
        assert_eq!(parse_content_length(b"007"), Ok(7));
        assert_eq!(parse_content_length(b"18446744073709551615"), Ok(u64::MAX));
        for bad in [
            &b""[..],
            b"18446744073709551616",
            b" 1",
            b"1 ",
            b"+1",
            b"1_000",
            b"\xd9\xa1",
        ] {
            assert_eq!(
                parse_content_length(bad),
                Err(HttpError::InvalidContentLength),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn lists_are_split_on_commas_and_trimmed() {
        let list: Vec<&[u8]> = tokens(b" keep-alive ,, \tUpgrade,close ").collect();
        assert_eq!(list, vec![&b"keep-alive"[..], b"Upgrade", b"close"]);
        assert_eq!(trim(b" \t a b \t"), b"a b");
        assert_eq!(trim(b"   "), b"");
    }

    #[test]
    fn span_of_a_foreign_slice_is_empty() {
        let base = b"hello world";
        assert_eq!(Span::of(base, &base[6..]).get(base), b"world");
        assert_eq!(Span::of(base, b"elsewhere").get(base), b"");
    }
}
