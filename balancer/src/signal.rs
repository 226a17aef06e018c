//! Wake-ups between tasks of one worker thread: no locks, no atomics, no allocation per signal.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// A single-waiter notification: `notify` sets a flag and wakes the waiter; `wait` resolves once
/// the flag is set and clears it. Notifications before the wait are not lost.
#[derive(Default)]
pub(crate) struct Signal {
    set: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Signal {
    pub(crate) fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    pub(crate) async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.replace(false) {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
    }
}

/// Many waiters woken together (requests parked until an agent for their route appears).
#[derive(Default)]
pub(crate) struct WakerSet {
    wakers: RefCell<Vec<Waker>>,
}

impl WakerSet {
    pub(crate) fn register(&self, waker: &Waker) {
        let mut wakers = self.wakers.borrow_mut();
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }

    pub(crate) fn wake_all(&self) {
        if self.wakers.borrow().is_empty() {
            return;
        }
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for w in wakers {
            w.wake();
        }
    }
}

/// A hasher for small integer keys (stream ids, route ids): the key itself, spread by one
/// multiplication. Maps on the request path use it instead of SipHash; the keys come from the
/// balancer itself, not from the network.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A `HashMap` keyed by small integers, hashed with [`IdHasher`].
pub(crate) type IdMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::hash::{BuildHasher, BuildHasherDefault};
    use std::rc::Rc;
    use std::time::Duration;

    use ringway_tuning::runtime::{block_on, IoDriver};

    use super::*;

    #[test]
    fn a_notify_before_the_wait_is_not_lost() {
        block_on(IoDriver::Epoll, 256, |_| async {
            let s = Signal::default();
            s.notify();
            s.notify();
            s.wait().await;
            // Two notifies before one wait count once: the next wait blocks until a new notify.
            let s = Rc::new(s);
            let waited = monoio::time::timeout(Duration::from_millis(20), s.wait()).await;
            assert!(waited.is_err());
            let notifier = s.clone();
            monoio::spawn(async move { notifier.notify() });
            s.wait().await;
        });
    }

    #[test]
    fn waker_set_wakes_every_waiter() {
        block_on(IoDriver::Epoll, 256, |_| async {
            let set = Rc::new(WakerSet::default());
            let ready = Rc::new(Cell::new(false));
            let woken = Rc::new(Cell::new(0));
            let mut tasks = Vec::new();
            for _ in 0..3 {
                let (set, ready, woken) = (set.clone(), ready.clone(), woken.clone());
                tasks.push(monoio::spawn(async move {
                    poll_fn(|cx| {
                        if ready.get() {
                            Poll::Ready(())
                        } else {
                            set.register(cx.waker());
                            Poll::Pending
                        }
                    })
                    .await;
                    woken.set(woken.get() + 1);
                }));
            }
            monoio::time::sleep(Duration::from_millis(5)).await;
            ready.set(true);
            set.wake_all();
            for t in tasks {
                t.await;
            }
            assert_eq!(woken.get(), 3);
        });
    }

    #[test]
    fn id_hasher_spreads_sequential_ids() {
        let b = BuildHasherDefault::<IdHasher>::default();
        let hashes: std::collections::HashSet<u64> = (0u32..1000).map(|i| b.hash_one(i)).collect();
        assert_eq!(hashes.len(), 1000);
    }
}
