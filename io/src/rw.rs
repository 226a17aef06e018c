//! Socket reads that append to a `BytesMut`, and writes bounded by a deadline.
//!
//! monoio's `IoBufMut` for `BytesMut` writes at the *start* of the buffer (its `write_ptr` is
//! `as_mut_ptr()`), so reading straight into a buffer that still holds unparsed bytes would
//! overwrite them. Every read goes through [`read_append`] (or [`read_append_cancelable`]),
//! which reads into the spare capacity after the bytes already there.

use std::io;
use std::time::Instant;

use bytes::BytesMut;
use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, CancelHandle};

/// Reads once into the spare capacity of `buf` (reserving `want` bytes first) and returns the
/// count; `Ok(0)` is end of stream.
pub async fn read_append<R: AsyncReadRent>(
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

/// [`read_append`] that fails with `ECANCELED` once `cancel`'s canceller fires (at once if it
/// already has): how a connection that closes stops its reader.
pub async fn read_append_cancelable<R: monoio::io::CancelableAsyncReadRent>(
    reader: &mut R,
    buf: &mut BytesMut,
    want: usize,
    cancel: CancelHandle,
) -> io::Result<usize> {
    buf.reserve(want);
    let filled = buf.len();
    let (res, slice) = reader
        .cancelable_read(std::mem::take(buf).slice_mut(filled..), cancel)
        .await;
    *buf = slice.into_inner();
    res
}

/// Writes all of `buf` unless `deadline` passes first, and hands the buffer back for reuse. A
/// write that timed out (`ErrorKind::TimedOut`) or failed loses the buffer: the caller closes
/// the connection then.
pub async fn write_all_by<W: AsyncWriteRent, B: IoBuf + 'static>(
    writer: &mut W,
    buf: B,
    deadline: Instant,
) -> io::Result<B> {
    let at = monoio::time::Instant::from_std(deadline);
    match monoio::time::timeout_at(at, writer.write_all(buf)).await {
        Ok((Ok(_), buf)) => Ok(buf),
        Ok((Err(e), _)) => Err(e),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "write did not complete before its deadline",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use monoio::io::Splitable;

    use super::*;
    use crate::runtime::{block_on, IoDriver};

    #[test]
    fn appends_after_unparsed_bytes() {
        block_on(IoDriver::Epoll, 256, |_| async {
            let mut source: &[u8] = b"world";
            let mut buf = BytesMut::from(&b"hello "[..]);
            let n = read_append(&mut source, &mut buf, 16).await.unwrap();
            assert_eq!(n, 5);
            assert_eq!(&buf[..], b"hello world");
        });
    }

    #[test]
    fn a_cancelled_read_fails_at_once() {
        block_on(IoDriver::Epoll, 256, |_| async {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let stream = monoio::net::TcpStream::connect_addr(addr).await.unwrap();
            let (_peer, _) = listener.accept().unwrap();
            let (mut rd, _wr) = stream.into_split();
            let canceller = monoio::io::Canceller::new();
            let handle = canceller.handle();
            drop(canceller.cancel());
            let mut buf = BytesMut::from(&b"kept"[..]);
            let res = read_append_cancelable(&mut rd, &mut buf, 16, handle).await;
            assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
            assert_eq!(&buf[..], b"kept");
        });
    }

    #[test]
    fn a_write_to_a_peer_that_does_not_read_times_out() {
        block_on(IoDriver::Epoll, 256, |_| async {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut stream = monoio::net::TcpStream::connect_addr(addr).await.unwrap();
            let (_peer, _) = listener.accept().unwrap();
            // Far more than the socket buffers hold: the write blocks until the deadline.
            let big = vec![0u8; 64 << 20];
            let deadline = Instant::now() + Duration::from_millis(50);
            let err = write_all_by(&mut stream, big, deadline).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        });
    }
}
