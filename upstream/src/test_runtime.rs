//! The runtime the unit tests run their futures on: a single-thread runtime on the portable
//! (epoll) driver, so tests pass where io_uring is unavailable.

use std::future::Future;

use ringway_io::runtime::IoDriver;

/// Runs `f` to completion on a fresh single-thread runtime.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    ringway_io::runtime::block_on(IoDriver::Epoll, 256, |_| f)
}
