//! `[limits] max_connections_per_worker`: a worker's bound on its open user connections, as
//! nginx's `worker_connections` and HAProxy's `maxconn`. At the bound the accept loop stops
//! accepting (nothing is refused: new connections wait, handshake done, in the kernel's accept
//! queue of this worker's listener, and SYNs past its backlog are retried by the client) and
//! resumes when one of the worker's connections closes.

use std::cell::Cell;

use ringway_io::Doorbell;

/// One worker's bound on open user connections and the wake-up of its accept loop.
#[derive(Debug)]
pub(crate) struct ConnLimit {
    /// 0: no bound.
    max: Cell<u64>,
    /// Rung when a connection closes below the bound.
    room: Doorbell,
}

impl ConnLimit {
    /// A bound of `max` connections (0: none).
    pub(crate) fn new(max: u32) -> Self {
        Self {
            max: Cell::new(u64::from(max)),
            room: Doorbell::new(),
        }
    }

    /// A reload changed the bound: a paused accept loop looks again.
    pub(crate) fn set_max(&self, max: u32) {
        self.max.set(u64::from(max));
        self.room.ring();
    }

    /// Whether a worker with `open` connections must stop accepting.
    pub(crate) fn is_full(&self, open: u64) -> bool {
        let max = self.max.get();
        max != 0 && open >= max
    }

    /// A connection closed, leaving `open`: wakes a paused accept loop when there is room.
    pub(crate) fn closed(&self, open: u64) {
        let max = self.max.get();
        if max != 0 && open < max {
            self.room.ring();
        }
    }

    /// Returns once `open()` is below the bound (at once when it is).
    pub(crate) async fn room(&self, open: impl Fn() -> u64) {
        while self.is_full(open()) {
            self.room.wait().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    use ringway_tuning::runtime::{block_on, IoDriver};

    use super::*;

    #[test]
    fn zero_is_no_bound() {
        let limit = ConnLimit::new(0);
        assert!(!limit.is_full(u64::MAX));
        let limit = ConnLimit::new(2);
        assert!(!limit.is_full(1));
        assert!(limit.is_full(2));
    }

    #[test]
    fn a_paused_accept_loop_resumes_when_a_connection_closes() {
        block_on(IoDriver::Epoll, 256, |_| async {
            let limit = Rc::new(ConnLimit::new(2));
            let open = Rc::new(Cell::new(2u64));
            let resumed = Rc::new(Cell::new(false));
            let waiting = {
                let (limit, open, resumed) = (limit.clone(), open.clone(), resumed.clone());
                ringway_io::spawn(async move {
                    limit.room(|| open.get()).await;
                    resumed.set(true);
                })
            };
            ringway_io::time::sleep(Duration::from_millis(5)).await;
            assert!(!resumed.get(), "full: it waits");
            // A stale ring (a close while nobody was full) does not let it through either.
            limit.closed(2);
            ringway_io::time::sleep(Duration::from_millis(5)).await;
            assert!(!resumed.get());
            open.set(1);
            limit.closed(1);
            waiting.await;
            assert!(resumed.get());
        });
    }
}
