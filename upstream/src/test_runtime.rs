//! The runtime the unit tests run their futures on: a single-thread monoio runtime on the
//! portable (epoll) driver with timers, so tests pass where io_uring is unavailable.

use std::future::Future;

/// Runs `f` to completion on a fresh single-thread runtime.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("building a monoio LegacyDriver runtime for a unit test")
        .block_on(f)
}
