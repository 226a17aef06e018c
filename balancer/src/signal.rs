//! Parked requests of one worker thread, woken in arrival order: no locks, no atomics. (The
//! one-waiter doorbell between tasks is `ringway_io::Doorbell`.)

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::task::Waker;

/// Tasks waiting for something keyed by `K` (requests parked for a route), in arrival order.
/// A freed stream wakes only the longest-waiting request of its routes, not every parked one; a
/// new agent wakes all of its routes' requests. Each waiter holds a ticket: it re-registers under
/// it when polled again, and removes it when it stops waiting, so a waiter woken but gone can
/// pass the wake-up on (see `Worker::wait_for_agent`).
pub(crate) struct WaitQueue<K> {
    next_ticket: Cell<u64>,
    waiters: RefCell<VecDeque<Waiter<K>>>,
}

struct Waiter<K> {
    ticket: u64,
    key: K,
    waker: Waker,
}

impl<K> Default for WaitQueue<K> {
    fn default() -> Self {
        Self {
            next_ticket: Cell::new(0),
            waiters: RefCell::new(VecDeque::new()),
        }
    }
}

impl<K: Copy + Eq> WaitQueue<K> {
    /// A ticket for a new waiter.
    pub(crate) fn ticket(&self) -> u64 {
        let t = self.next_ticket.get();
        self.next_ticket.set(t + 1);
        t
    }

    /// Queues waiter `ticket` for `key` (or refreshes its waker, keeping its place).
    pub(crate) fn register(&self, ticket: u64, key: K, waker: &Waker) {
        let mut waiters = self.waiters.borrow_mut();
        if let Some(w) = waiters.iter_mut().find(|w| w.ticket == ticket) {
            if !w.waker.will_wake(waker) {
                w.waker = waker.clone();
            }
            return;
        }
        waiters.push_back(Waiter {
            ticket,
            key,
            waker: waker.clone(),
        });
    }

    /// Takes waiter `ticket` out of the queue; false when it was not queued (woken already).
    pub(crate) fn remove(&self, ticket: u64) -> bool {
        let mut waiters = self.waiters.borrow_mut();
        match waiters.iter().position(|w| w.ticket == ticket) {
            Some(i) => {
                waiters.remove(i);
                true
            }
            None => false,
        }
    }

    /// Wakes the longest-waiting waiter for `key`, if any.
    pub(crate) fn wake_one(&self, key: K) {
        let woken = {
            let mut waiters = self.waiters.borrow_mut();
            let i = waiters.iter().position(|w| w.key == key);
            i.and_then(|i| waiters.remove(i))
        };
        if let Some(w) = woken {
            w.waker.wake();
        }
    }

    /// Wakes every waiter for `key`.
    pub(crate) fn wake_all(&self, key: K) {
        let woken: VecDeque<Waiter<K>> = {
            let mut waiters = self.waiters.borrow_mut();
            if !waiters.iter().any(|w| w.key == key) {
                return;
            }
            let (woken, kept) = std::mem::take(&mut *waiters)
                .into_iter()
                .partition(|w| w.key == key);
            *waiters = kept;
            woken
        };
        for w in woken {
            w.waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::future::poll_fn;
    use std::rc::Rc;
    use std::task::Poll;
    use std::time::Duration;

    use ringway_tuning::runtime::{block_on, IoDriver};

    use super::*;

    /// A task waiting in `queue` under `key` until `ready`; counts itself in `woken`.
    fn waiter(
        queue: &Rc<WaitQueue<u32>>,
        key: u32,
        ready: &Rc<Cell<bool>>,
        woken: &Rc<Cell<u32>>,
    ) -> monoio::task::JoinHandle<()> {
        let (queue, ready, woken) = (queue.clone(), ready.clone(), woken.clone());
        monoio::spawn(async move {
            let ticket = queue.ticket();
            poll_fn(|cx| {
                if ready.get() {
                    Poll::Ready(())
                } else {
                    queue.register(ticket, key, cx.waker());
                    Poll::Pending
                }
            })
            .await;
            woken.set(woken.get() + 1);
        })
    }

    #[test]
    fn wait_queue_wakes_one_waiter_of_a_key_or_all_of_them() {
        block_on(IoDriver::Epoll, 256, |_| async {
            let queue = Rc::new(WaitQueue::default());
            let ready = Rc::new(Cell::new(false));
            let (woken, other) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
            let tasks: Vec<_> = (0..3).map(|_| waiter(&queue, 1, &ready, &woken)).collect();
            let _elsewhere = waiter(&queue, 2, &ready, &other);
            monoio::time::sleep(Duration::from_millis(5)).await;
            ready.set(true);
            queue.wake_one(1);
            monoio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(woken.get(), 1, "one waiter of key 1");
            assert_eq!(other.get(), 0, "key 2 is not woken");
            queue.wake_all(1);
            for t in tasks {
                t.await;
            }
            assert_eq!(woken.get(), 3);
            assert_eq!(other.get(), 0);
        });
    }

    #[test]
    fn wait_queue_remove_tells_whether_the_waiter_was_woken() {
        let queue = WaitQueue::default();
        let waker = Waker::noop();
        let (a, b) = (queue.ticket(), queue.ticket());
        queue.register(a, 7u32, waker);
        queue.register(b, 7, waker);
        queue.register(a, 7, waker);
        queue.wake_one(7);
        // `a` came first and was woken; `b` still waits.
        assert!(!queue.remove(a));
        assert!(queue.remove(b));
        assert!(!queue.remove(b));
    }
}
