//! A small per-thread pool of read buffers.
//!
//! A connection takes a buffer of the pool's size when bytes are about to arrive and gives it
//! back once it is idle with nothing left in it, so that connections opened and closed in turn
//! (or idle between requests) reuse a few allocations instead of making a fresh one each. The
//! pool keeps at most a bounded number of buffers; the rest are freed. One pool per worker
//! thread (`Rc`, no locks): a buffer never crosses threads.

use std::cell::RefCell;

use bytes::BytesMut;

/// Buffers of one size, reused on one thread.
#[derive(Debug)]
pub struct BufPool {
    size: usize,
    max_kept: usize,
    free: RefCell<Vec<BytesMut>>,
}

impl BufPool {
    /// A pool of buffers with room for `size` bytes, keeping at most `max_kept` spare ones.
    pub fn new(size: usize, max_kept: usize) -> Self {
        Self {
            size,
            max_kept,
            free: RefCell::new(Vec::with_capacity(max_kept)),
        }
    }

    /// The room of each buffer.
    pub fn buf_size(&self) -> usize {
        self.size
    }

    /// An empty buffer with room for at least [`Self::buf_size`] bytes: a kept one if there
    /// is one, else a new allocation.
    pub fn take(&self) -> BytesMut {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(self.size))
    }

    /// Gives `buf` back. It is kept only when it is empty (nothing unparsed is thrown away),
    /// still has room for a whole buffer (its allocation was not split off into `Bytes` that
    /// are still alive) and fewer than `max_kept` are kept; otherwise it is freed.
    pub fn give(&self, buf: BytesMut) {
        if !buf.is_empty() || buf.capacity() < self.size {
            return;
        }
        let mut free = self.free.borrow_mut();
        if free.len() < self.max_kept {
            free.push(buf);
        }
    }

    /// How many spare buffers the pool holds now.
    pub fn kept(&self) -> usize {
        self.free.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again() {
        let pool = BufPool::new(4096, 2);
        let buf = pool.take();
        assert!(buf.capacity() >= 4096 && buf.is_empty());
        let ptr = buf.as_ptr();
        pool.give(buf);
        assert_eq!(pool.kept(), 1);
        let again = pool.take();
        assert_eq!(again.as_ptr(), ptr, "the same allocation comes back");
        assert_eq!(pool.kept(), 0);
    }

    #[test]
    fn keeps_a_bounded_number() {
        let pool = BufPool::new(1024, 2);
        for _ in 0..5 {
            pool.give(BytesMut::with_capacity(1024));
        }
        assert_eq!(pool.kept(), 2);
    }

    #[test]
    fn refuses_buffers_with_bytes_or_too_little_room() {
        let pool = BufPool::new(1024, 4);
        let mut unparsed = pool.take();
        unparsed.extend_from_slice(b"partial frame");
        pool.give(unparsed);
        assert_eq!(pool.kept(), 0, "a buffer holding bytes is not reused");

        let mut split = BytesMut::with_capacity(1024);
        split.extend_from_slice(&[7; 600]);
        let _handed_out = split.split().freeze();
        pool.give(split);
        assert_eq!(
            pool.kept(),
            0,
            "a tail too small for a whole buffer is freed"
        );
    }
}
