//! Parked requests of one worker thread, woken in arrival order: no locks, no atomics. (The
//! one-waiter doorbell between tasks is `ringway_io::Doorbell`.)

use std::cell::{Cell, RefCell};
use std::task::Waker;

use ringway_io::IdMap;

/// Tasks waiting for something keyed by `K` (requests parked for a route), in arrival order.
/// A freed stream wakes only the longest-waiting request of its routes, not every parked one; a
/// new agent wakes all of its routes' requests. Each waiter holds a ticket: it re-registers under
/// it when polled again, and removes it when it stops waiting, so a waiter woken but gone can
/// pass the wake-up on (see `Worker::wait_for_agent`).
///
/// Every operation but `wake_all` is O(1): waiters live in a map by ticket and are linked, per
/// key, into a FIFO list (oldest at the head), so a waiter that leaves is unlinked where it is.
pub(crate) struct WaitQueue<K> {
    next_ticket: Cell<u64>,
    lists: RefCell<Lists<K>>,
}

/// The waiters by ticket and, per key, the ends of its list.
struct Lists<K> {
    waiters: IdMap<u64, Waiter<K>>,
    ends: IdMap<K, Ends>,
}

struct Waiter<K> {
    key: K,
    waker: Waker,
    /// The next older waiter of the same key.
    prev: Option<u64>,
    /// The next newer waiter of the same key.
    next: Option<u64>,
}

/// The oldest and the newest waiter of one key.
#[derive(Clone, Copy)]
struct Ends {
    head: u64,
    tail: u64,
}

impl<K> Default for WaitQueue<K> {
    fn default() -> Self {
        Self {
            next_ticket: Cell::new(0),
            lists: RefCell::new(Lists {
                waiters: IdMap::default(),
                ends: IdMap::default(),
            }),
        }
    }
}

impl<K: Copy + Eq + std::hash::Hash> WaitQueue<K> {
    /// A ticket for a new waiter.
    pub(crate) fn ticket(&self) -> u64 {
        let t = self.next_ticket.get();
        self.next_ticket.set(t + 1);
        t
    }

    /// Queues waiter `ticket` for `key` at the back (or refreshes its waker, keeping its place).
    pub(crate) fn register(&self, ticket: u64, key: K, waker: &Waker) {
        let mut lists = self.lists.borrow_mut();
        if let Some(w) = lists.waiters.get_mut(&ticket) {
            if !w.waker.will_wake(waker) {
                w.waker = waker.clone();
            }
            return;
        }
        let prev = match lists.ends.get_mut(&key) {
            Some(ends) => {
                let old_tail = std::mem::replace(&mut ends.tail, ticket);
                if let Some(w) = lists.waiters.get_mut(&old_tail) {
                    w.next = Some(ticket);
                }
                Some(old_tail)
            }
            None => {
                lists.ends.insert(
                    key,
                    Ends {
                        head: ticket,
                        tail: ticket,
                    },
                );
                None
            }
        };
        lists.waiters.insert(
            ticket,
            Waiter {
                key,
                waker: waker.clone(),
                prev,
                next: None,
            },
        );
    }

    /// Takes waiter `ticket` out of the queue; false when it was not queued (woken already).
    pub(crate) fn remove(&self, ticket: u64) -> bool {
        self.lists.borrow_mut().unlink(ticket).is_some()
    }

    /// Whether waiter `ticket` is queued (registered and neither woken nor removed since).
    pub(crate) fn is_queued(&self, ticket: u64) -> bool {
        self.lists.borrow().waiters.contains_key(&ticket)
    }

    /// Wakes the longest-waiting waiter for `key`, if any; true when one was woken.
    pub(crate) fn wake_one(&self, key: K) -> bool {
        let woken = {
            let mut lists = self.lists.borrow_mut();
            let head = lists.ends.get(&key).map(|e| e.head);
            head.and_then(|t| lists.unlink(t))
        };
        match woken {
            Some(w) => {
                w.waker.wake();
                true
            }
            None => false,
        }
    }

    /// Wakes every waiter for `key`, oldest first.
    pub(crate) fn wake_all(&self, key: K) {
        let woken: Vec<Waker> = {
            let mut lists = self.lists.borrow_mut();
            let Some(ends) = lists.ends.remove(&key) else {
                return;
            };
            let mut woken = Vec::new();
            let mut at = Some(ends.head);
            while let Some(ticket) = at {
                let Some(w) = lists.waiters.remove(&ticket) else {
                    break;
                };
                at = w.next;
                woken.push(w.waker);
            }
            woken
        };
        for w in woken {
            w.wake();
        }
    }

    /// Waiters queued now (all keys).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lists.borrow().waiters.len()
    }
}

impl<K: Copy + Eq + std::hash::Hash> Lists<K> {
    /// Takes waiter `ticket` out of its key's list, joining its neighbours.
    fn unlink(&mut self, ticket: u64) -> Option<Waiter<K>> {
        let w = self.waiters.remove(&ticket)?;
        match w.prev {
            Some(p) => {
                if let Some(prev) = self.waiters.get_mut(&p) {
                    prev.next = w.next;
                }
            }
            None => {
                if let (Some(ends), Some(n)) = (self.ends.get_mut(&w.key), w.next) {
                    ends.head = n;
                }
            }
        }
        match w.next {
            Some(n) => {
                if let Some(next) = self.waiters.get_mut(&n) {
                    next.prev = w.prev;
                }
            }
            None => match w.prev {
                Some(p) => {
                    if let Some(ends) = self.ends.get_mut(&w.key) {
                        ends.tail = p;
                    }
                }
                // It was the only waiter of its key.
                None => {
                    self.ends.remove(&w.key);
                }
            },
        }
        Some(w)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::future::poll_fn;
    use std::rc::Rc;
    use std::sync::{Arc, Mutex};
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
    ) -> ringway_io::task::JoinHandle<()> {
        let (queue, ready, woken) = (queue.clone(), ready.clone(), woken.clone());
        ringway_io::spawn(async move {
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
            ringway_io::time::sleep(Duration::from_millis(5)).await;
            ready.set(true);
            queue.wake_one(1);
            ringway_io::time::sleep(Duration::from_millis(5)).await;
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
        assert!(queue.wake_one(7));
        // `a` came first and was woken; `b` still waits.
        assert!(!queue.is_queued(a));
        assert!(queue.is_queued(b));
        assert!(!queue.remove(a));
        assert!(queue.remove(b));
        assert!(!queue.remove(b));
        assert!(!queue.wake_one(7), "nobody left to wake");
    }

    /// A waker that appends `id` to `log` when woken.
    fn logging_waker(id: u64, log: &Arc<Mutex<Vec<u64>>>) -> Waker {
        struct Logger(u64, Arc<Mutex<Vec<u64>>>);
        impl std::task::Wake for Logger {
            fn wake(self: Arc<Self>) {
                self.1.lock().unwrap().push(self.0);
            }
        }
        Waker::from(Arc::new(Logger(id, log.clone())))
    }

    #[test]
    fn wait_queue_keeps_fifo_order_when_waiters_leave_from_anywhere() {
        let queue = WaitQueue::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let tickets: Vec<u64> = (0..6).map(|_| queue.ticket()).collect();
        // Key 1 gets 0, 2, 3, 5; key 2 gets 1 and 4, interleaved.
        for &t in &tickets {
            let key = if t == 1 || t == 4 { 2u32 } else { 1 };
            queue.register(t, key, &logging_waker(t, &log));
        }
        // Leaving from the middle, the head and the tail of key 1's list.
        assert!(queue.remove(2));
        assert!(queue.remove(0));
        assert!(!queue.remove(0), "a removed waiter is gone");
        assert!(queue.remove(5));
        // Re-registering a removed ticket queues it at the back.
        queue.register(0, 1, &logging_waker(0, &log));
        // Refreshing a queued waiter keeps its place.
        queue.register(3, 1, &logging_waker(3, &log));
        for _ in 0..3 {
            queue.wake_one(1);
        }
        assert_eq!(*log.lock().unwrap(), vec![3, 0], "key 1 in arrival order");
        queue.wake_all(2);
        assert_eq!(*log.lock().unwrap(), vec![3, 0, 1, 4]);
        assert_eq!(queue.len(), 0);
        queue.wake_one(1);
        queue.wake_all(2);
        assert_eq!(log.lock().unwrap().len(), 4, "nothing left to wake");
    }

    #[test]
    fn wait_queue_operations_do_not_scan_other_waiters() {
        // 100,000 waiters of one key, each leaving in turn from the middle of the list: linear
        // removal would take seconds, linked removal takes milliseconds.
        let queue = WaitQueue::default();
        let waker = Waker::noop();
        let n = 100_000u64;
        for _ in 0..n {
            let t = queue.ticket();
            queue.register(t, 7u32, waker);
        }
        let started = std::time::Instant::now();
        for t in (0..n).step_by(2).chain((1..n).step_by(2)) {
            assert!(queue.remove(t));
        }
        assert_eq!(queue.len(), 0);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
