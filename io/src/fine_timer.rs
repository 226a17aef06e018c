//! Sleeps with microsecond resolution on one timerfd per thread.
//!
//! The runtime's timer wheel ([`crate::time`]) has 1 ms slots and a sleep ends on the first
//! tick at or after its deadline, so it is up to a millisecond late. That is fine for timeouts
//! and too coarse for a schedule of requests every 20 µs. A [`FineTimer`] keeps the deadlines of
//! its thread in a heap and one `timerfd` (an hrtimer, no timer slack) armed at the earliest of
//! them; a task spawned with the timer reads the timerfd through the runtime (io_uring `READV`,
//! or readiness and `readv` on epoll) and wakes every sleeper whose deadline has come. A wake-up
//! thus costs one completion and, when a sleeper asks for an earlier deadline than the one
//! armed, one `timerfd_settime`.
//!
//! A [`FineSleep`] that is dropped before its deadline leaves its entry in the heap; when it
//! comes the task it belonged to gets one spurious wake-up, which futures tolerate.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use monoio::io::AsyncReadRent;
use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
};

/// A per-thread timer with µs resolution; clones share the timerfd and the heap.
#[derive(Clone)]
pub struct FineTimer {
    shared: Rc<RefCell<Shared>>,
}

impl std::fmt::Debug for FineTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.shared.borrow();
        f.debug_struct("FineTimer")
            .field("pending", &s.heap.len())
            .field("armed", &s.armed)
            .finish()
    }
}

struct Shared {
    /// The timerfd, for `timerfd_settime` (the reading task holds a second handle to it).
    fd: std::os::fd::OwnedFd,
    /// Deadlines and who to wake, earliest first; `seq` keeps equal deadlines apart.
    heap: BinaryHeap<Reverse<Entry>>,
    /// The deadline the timerfd is armed at, if any.
    armed: Option<Instant>,
    seq: u64,
    /// Set when the reading task failed: sleeps then fall back to the runtime's timer.
    failed: Option<String>,
}

struct Entry {
    at: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

impl FineTimer {
    /// Creates the timerfd and spawns the task that reads it on the current runtime. Call it
    /// inside the runtime of the thread that will sleep on it.
    pub fn new() -> io::Result<Self> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .map_err(|e| io::Error::other(format!("fine timer: timerfd_create: {e}")))?;
        let reader_fd = fd
            .try_clone()
            .map_err(|e| io::Error::new(e.kind(), format!("fine timer: dup of timerfd: {e}")))?;
        // The runtime reads any fd through its stream type; `readv` is a plain
        // `readv` (a `recv` would need a socket).
        let stream =
            monoio::net::UnixStream::from_std(std::os::unix::net::UnixStream::from(reader_fd))
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("fine timer: registering timerfd: {e}"))
                })?;
        let shared = Rc::new(RefCell::new(Shared {
            fd,
            heap: BinaryHeap::new(),
            armed: None,
            seq: 0,
            failed: None,
        }));
        monoio::spawn(run_reader(stream, shared.clone()));
        Ok(Self { shared })
    }

    /// A future that completes at `deadline` (a few µs after it: the timer's wake-up and the
    /// runtime's scheduling), or at once if it has passed.
    pub fn sleep_until(&self, deadline: Instant) -> FineSleep {
        FineSleep {
            timer: self.clone(),
            deadline,
            registered: false,
            coarse: None,
        }
    }

    /// Deadlines waiting (including those of dropped sleeps not yet expired).
    pub fn pending(&self) -> usize {
        self.shared.borrow().heap.len()
    }

    /// Adds a deadline; re-arms the timerfd if it is earlier than the armed one.
    fn register(&self, at: Instant, waker: Waker) -> Result<(), String> {
        let mut s = self.shared.borrow_mut();
        if let Some(e) = &s.failed {
            return Err(e.clone());
        }
        s.seq += 1;
        let seq = s.seq;
        s.heap.push(Reverse(Entry { at, seq, waker }));
        if s.armed.is_none_or(|armed| at < armed) {
            arm(&mut s, at)?;
        }
        Ok(())
    }
}

/// Arms the timerfd (one-shot) at `at`.
fn arm(s: &mut Shared, at: Instant) -> Result<(), String> {
    // A relative time of zero would disarm the timer: a deadline that has passed fires in 1 ns.
    let rel = at
        .saturating_duration_since(Instant::now())
        .max(Duration::from_nanos(1));
    let spec = Itimerspec {
        it_interval: rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: rustix::time::Timespec {
            tv_sec: i64::try_from(rel.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(rel.subsec_nanos()),
        },
    };
    timerfd_settime(&s.fd, TimerfdTimerFlags::empty(), &spec)
        .map_err(|e| format!("fine timer: timerfd_settime: {e}"))?;
    s.armed = Some(at);
    Ok(())
}

/// Reads expirations off the timerfd and wakes the sleepers that are due, forever.
async fn run_reader(mut stream: monoio::net::UnixStream, shared: Rc<RefCell<Shared>>) {
    let mut buf = monoio::buf::VecBuf::from(vec![vec![0u8; 8]]);
    loop {
        let (res, b) = stream.readv(buf).await;
        buf = b;
        if let Err(e) = res {
            // EAGAIN is a wake-up without an expiration (epoll readiness raced a re-arm).
            if e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted {
                let mut s = shared.borrow_mut();
                s.failed = Some(format!("fine timer: reading timerfd: {e}"));
                // Wake everyone: their sleeps fall back to the runtime's timer.
                for Reverse(entry) in std::mem::take(&mut s.heap) {
                    entry.waker.wake();
                }
                return;
            }
        }
        let mut due = Vec::new();
        {
            let mut s = shared.borrow_mut();
            s.armed = None;
            let now = Instant::now();
            while s.heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
                if let Some(Reverse(e)) = s.heap.pop() {
                    due.push(e.waker);
                }
            }
            if let Some(next) = s.heap.peek().map(|Reverse(e)| e.at) {
                if let Err(e) = arm(&mut s, next) {
                    s.failed = Some(e);
                    due.extend(std::mem::take(&mut s.heap).into_iter().map(|r| r.0.waker));
                }
            }
        }
        for w in due {
            w.wake();
        }
    }
}

/// The future of [`FineTimer::sleep_until`].
pub struct FineSleep {
    timer: FineTimer,
    deadline: Instant,
    registered: bool,
    /// The runtime's (1 ms) sleep, used only if the timerfd failed.
    coarse: Option<Pin<Box<monoio::time::Sleep>>>,
}

impl std::fmt::Debug for FineSleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FineSleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.registered)
            .finish_non_exhaustive()
    }
}

impl Future for FineSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        if let Some(coarse) = self.coarse.as_mut() {
            return coarse.as_mut().poll(cx);
        }
        if !self.registered {
            match self.timer.register(self.deadline, cx.waker().clone()) {
                Ok(()) => self.registered = true,
                Err(_) => {
                    let deadline = monoio::time::Instant::from_std(self.deadline);
                    let mut coarse = Box::pin(monoio::time::sleep_until(deadline));
                    let poll = coarse.as_mut().poll(cx);
                    self.coarse = Some(coarse);
                    return poll;
                }
            }
        }
        // Woken early (by another future of the same task) or not yet: the heap entry stays.
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{block_on, IoDriver};

    fn sleeps_are_precise(driver: IoDriver) {
        let lates = block_on(driver, 256, |_| async {
            let timer = FineTimer::new().expect("timerfd");
            let mut lates = Vec::new();
            for i in 0..50u64 {
                let at = Instant::now() + Duration::from_micros(100 + 37 * (i % 7));
                timer.sleep_until(at).await;
                lates.push(Instant::now().duration_since(at));
            }
            // A deadline in the past is ready at once.
            timer.sleep_until(Instant::now()).await;
            lates
        });
        let mut sorted = lates;
        sorted.sort();
        // The runtime's own timer would be ~500 µs late on average; the fine timer is a few
        // µs late. The median keeps a busy test machine from failing the test.
        assert!(
            sorted[sorted.len() / 2] < Duration::from_micros(400),
            "{driver}: median lateness {:?}",
            sorted[sorted.len() / 2]
        );
    }

    #[test]
    fn sleeps_are_precise_on_io_uring_or_epoll() {
        sleeps_are_precise(IoDriver::Auto);
        sleeps_are_precise(IoDriver::Epoll);
    }

    #[test]
    fn many_sleepers_wake_in_order_and_dropped_ones_do_no_harm() {
        let order = block_on(IoDriver::Auto, 256, |_| async {
            let timer = FineTimer::new().expect("timerfd");
            let start = Instant::now();
            let order = Rc::new(RefCell::new(Vec::new()));
            // A sleep that is dropped before its deadline.
            drop(timer.sleep_until(start + Duration::from_micros(300)));
            let tasks: Vec<_> = [5u64, 1, 3, 2, 4]
                .into_iter()
                .map(|k| {
                    let timer = timer.clone();
                    let order = order.clone();
                    monoio::spawn(async move {
                        timer
                            .sleep_until(start + Duration::from_micros(200 * k))
                            .await;
                        order.borrow_mut().push(k);
                    })
                })
                .collect();
            for t in tasks {
                t.await;
            }
            let got = order.borrow().clone();
            got
        });
        assert_eq!(order, vec![1, 2, 3, 4, 5]);
    }
}
