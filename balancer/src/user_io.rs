//! Socket IO on a user's connection: reads into the spare room of a buffer that exists only while
//! bytes are in flight, writes bounded by a deadline, and the lingering close.
//!
//! An idle keep-alive connection holds no buffer at all: between requests it waits for
//! readiness (no buffer pending in the ring), and its read and write buffers are taken only when
//! bytes arrive and dropped when the connection is idle again.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use ringway_io::buf::IoBufMut;
use ringway_io::io::{AsyncReadRent, CancelHandle, CancelableAsyncReadRent};
use ringway_io::BufPool;

use crate::deadlines::Deadlines;
use crate::user_stream::{UserRead, UserWrite};

/// Bytes asked of one read while a request head is arriving.
pub(crate) const HEAD_READ: usize = 8 * 1024;
/// Bytes asked of one read while a request body (or an upgraded stream) is arriving.
pub(crate) const BODY_READ: usize = 64 * 1024;
/// Most bytes a lingering close reads and drops before it gives up.
const LINGER_MAX_BYTES: usize = 16 * 1024 * 1024;
/// Bytes asked of one read during a lingering close.
const LINGER_READ: usize = 16 * 1024;

/// Reads into the spare capacity of `buf` (at least `want` bytes of room): a plain socket's
/// read (`UserRead` is this over plain TCP).
pub(crate) async fn read_more<R: AsyncReadRent>(
    rd: &mut R,
    buf: &mut BytesMut,
    want: usize,
) -> io::Result<usize> {
    let mut owned = std::mem::take(buf);
    owned.reserve(want);
    let (len, cap) = (owned.len(), owned.capacity());
    let (res, slice) = rd.read(owned.slice_mut(len..cap)).await;
    *buf = slice.into_inner();
    res
}

/// [`read_more`] that `handle` can cancel without losing bytes: a cancelled read completes
/// with an error (or with the bytes it already got) and gives the buffer back.
pub(crate) async fn read_more_cancelable<R: CancelableAsyncReadRent>(
    rd: &mut R,
    buf: &mut BytesMut,
    want: usize,
    handle: CancelHandle,
) -> io::Result<usize> {
    let mut owned = std::mem::take(buf);
    owned.reserve(want);
    let (len, cap) = (owned.len(), owned.capacity());
    let (res, slice) = rd.cancelable_read(owned.slice_mut(len..cap), handle).await;
    *buf = slice.into_inner();
    res
}

/// Writes all of `out` within `limit` (a user that stops reading cannot hold the connection
/// forever), then clears it. A timed-out write loses the buffer; the caller closes.
pub(crate) async fn write_out<W: UserWrite>(
    wr: &mut W,
    out: &mut BytesMut,
    deadlines: &Deadlines,
    limit: Duration,
) -> io::Result<()> {
    let owned = std::mem::take(out);
    // The worker's coarse deadlines, not a runtime timer: the limit is seconds long, and a
    // runtime timer would put 640 cache-aligned bytes in every request's future.
    let Some((res, mut owned)) = deadlines
        .timeout_after(limit, wr.write_all_buf(owned))
        .await
    else {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "user write timed out",
        ));
    };
    owned.clear();
    *out = owned;
    res
}

/// Gives a buffer that holds no bytes back to the worker's pool (its whole allocation, once
/// the heads split off it are gone), so an idle connection keeps no allocation and the next
/// request's reads need none.
pub(crate) fn release_if_empty(buf: &mut BytesMut, pool: &BufPool) {
    if !buf.is_empty() || buf.capacity() == 0 {
        return;
    }
    let mut owned = std::mem::take(buf);
    if owned.try_reclaim(pool.buf_size()) {
        pool.give(owned);
    }
}

/// Takes a buffer from the worker's pool when `buf` has none (a connection that was idle).
pub(crate) fn ensure_buffer(buf: &mut BytesMut, pool: &BufPool) {
    if buf.capacity() == 0 {
        *buf = pool.take();
    }
}

/// nginx's lingering close: the response is out and the write side shut; what the user still
/// sends (the rest of a body nobody reads) is read and dropped until the user closes, `limit`
/// passes, or [`LINGER_MAX_BYTES`] were dropped. Closing at once instead would make the kernel
/// answer those bytes with a reset, which can destroy the response before the user read it.
pub(crate) async fn linger<R: UserRead>(rd: &mut R, deadlines: &Deadlines, limit: Duration) {
    let at = deadlines.after(limit);
    let mut buf = BytesMut::with_capacity(LINGER_READ);
    let mut dropped = 0;
    while dropped < LINGER_MAX_BYTES {
        buf.clear();
        match deadlines
            .timeout_at(at, rd.read_more(&mut buf, LINGER_READ))
            .await
        {
            Some(Ok(n)) if n > 0 => dropped += n,
            _ => return,
        }
    }
}
