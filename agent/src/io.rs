//! Socket reads that append to a `BytesMut`.
//!
//! monoio's `IoBufMut` for `BytesMut` writes at the *start* of the buffer (its `write_ptr` is
//! `as_mut_ptr()`), so reading straight into a buffer that still holds unparsed bytes would
//! overwrite them. Every read in the agent goes through [`read_append`], which reads into the
//! spare capacity after the bytes already there.

use std::io;

use bytes::BytesMut;
use monoio::buf::IoBufMut;
use monoio::io::AsyncReadRent;

/// Reads once into the spare capacity of `buf` (reserving `want` bytes first) and returns the
/// count; `Ok(0)` is end of stream.
pub(crate) async fn read_append<R: AsyncReadRent>(
    reader: &mut R,
    buf: &mut BytesMut,
    want: usize,
) -> io::Result<usize> {
    buf.reserve(want);
    let filled = buf.len();
    let (res, slice) = reader.read(std::mem::take(buf).slice_mut(filled..)).await;
    *buf = slice.into_inner();
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_after_unparsed_bytes() {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .unwrap()
            .block_on(async {
                let mut source: &[u8] = b"world";
                let mut buf = BytesMut::from(&b"hello "[..]);
                let n = read_append(&mut source, &mut buf, 16).await.unwrap();
                assert_eq!(n, 5);
                assert_eq!(&buf[..], b"hello world");
            });
    }
}
