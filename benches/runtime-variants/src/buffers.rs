//! The balancer's buffer strategy, in the two calls a connection makes: take a buffer from the
//! worker's [`BufPool`] when bytes are about to arrive, give it back once nothing is left in it
//! (what `balancer/src/user_io.rs` does between requests).

use bytes::BytesMut;
use ringway_io::BufPool;

/// Room of each pooled buffer (the balancer's `USER_BUF`).
pub(crate) const POOLED: usize = 8 * 1024;
/// Spare buffers a worker keeps (the balancer's `SPARE_USER_BUFS`).
pub(crate) const SPARE: usize = 64;

/// A buffer from the pool when `buf` has none (the connection was idle).
pub(crate) fn ensure(buf: &mut BytesMut, pool: &BufPool) {
    if buf.capacity() == 0 {
        *buf = pool.take();
    }
}

/// Gives an empty `buf` back to the pool (its whole allocation, once the heads split off it are
/// gone), so an idle connection holds none.
pub(crate) fn release(buf: &mut BytesMut, pool: &BufPool) {
    if !buf.is_empty() || buf.capacity() == 0 {
        return;
    }
    let mut owned = std::mem::take(buf);
    if owned.try_reclaim(pool.buf_size()) {
        pool.give(owned);
    }
}
