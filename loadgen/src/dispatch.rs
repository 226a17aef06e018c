//! Open loop: one schedule per load thread and one pacer task that hands each request, when it
//! is due, to a connection of the thread that is free to write it.
//!
//! Before this, every connection kept a slice of the schedule and slept on the timer for its
//! own next slot: 50 connections meant 50 sleepers in the fine timer's heap, a timerfd re-arm per
//! request, each of them waiting with its own spin window, and a request whose connection was
//! still busy with the previous response waited for that connection although others were free.
//! Now one pacer per thread waits for the thread's next due time (sleeping on the fine timer,
//! spinning only in the last `--spin-us` before it), and hands the request to the connection
//! that has waited longest for one ([`Seat`]). A request that finds no free connection waits for
//! the first one that becomes free; that wait is send-lag and counts in full.
//!
//! [`step`] is the whole policy, a function of the schedule, the clock reading and whether a
//! connection waits, so it is tested without time passing; [`run_pacer`] and [`Seat`] are the
//! thin driver around it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::conn::Phase;
use crate::pacer::{Pacer, EARLY};
use crate::schedule::Schedule;

/// How late after the end a request due before the end may still be handed out.
pub const LATE_GRACE: Duration = Duration::from_millis(20);

/// What the pacer does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The request intended at this instant is due and a connection waits: hand it over.
    Hand(Instant),
    /// The next request is due at this instant: wait for it (sleep, then spin; [`Pacer`]).
    Pace(Instant),
    /// A request is due and no connection is free: wait until one is.
    WaitForSeat,
    /// The phase is over: nothing more is handed out.
    Done,
}

/// The pacing policy. `next` is the next intended start on the schedule; nothing intended at or
/// after the phase's end is handed out, and a generator that fell behind does not catch up after
/// the end (as in wrk2): only requests a little late ([`LATE_GRACE`]) still go out.
pub fn step(next: Instant, phase: &Phase, now: Instant, seat_waiting: bool) -> Step {
    if next >= phase.end || now >= phase.end + LATE_GRACE {
        Step::Done
    } else if next > now + EARLY {
        Step::Pace(next)
    } else if seat_waiting {
        Step::Hand(next)
    } else {
        Step::WaitForSeat
    }
}

/// The state one thread's pacer and connections share.
#[derive(Debug)]
pub struct Dispatch {
    inner: RefCell<Inner>,
}

#[derive(Debug)]
struct Inner {
    schedule: Schedule,
    phase: Phase,
    /// Seats waiting for a request, longest-waiting first.
    queue: VecDeque<usize>,
    seats: Vec<SeatState>,
    /// The pacer, while it waits for a seat.
    pacer: Option<Waker>,
    /// The pacer has finished: seats without a request get none any more.
    closed: bool,
}

#[derive(Debug, Default)]
struct SeatState {
    /// The intended start of the request handed to this seat and not yet taken.
    ticket: Option<Instant>,
    /// In `queue`.
    queued: bool,
    /// The connection's task, while it waits for a ticket.
    waker: Option<Waker>,
}

impl Dispatch {
    /// The dispatch of one thread: its share of the run's schedule, for `seats` connections.
    pub fn new(schedule: Schedule, phase: Phase, seats: usize) -> Rc<Self> {
        Rc::new(Self {
            inner: RefCell::new(Inner {
                schedule,
                phase,
                queue: VecDeque::with_capacity(seats),
                seats: (0..seats).map(|_| SeatState::default()).collect(),
                pacer: None,
                closed: false,
            }),
        })
    }

    /// The seat of connection `index` (below the `seats` given to [`Dispatch::new`]).
    pub fn seat(self: &Rc<Self>, index: usize) -> Seat {
        Seat {
            dispatch: self.clone(),
            index,
        }
    }

    /// What the pacer does next, by [`step`].
    fn step(&self, now: Instant) -> Step {
        let s = self.inner.borrow();
        let next = s.phase.start + s.schedule.peek();
        step(next, &s.phase, now, !s.queue.is_empty())
    }

    /// Hands the request intended at `intended` to the longest-waiting seat and moves the
    /// schedule on.
    fn hand(&self, intended: Instant) {
        let mut s = self.inner.borrow_mut();
        let Some(index) = s.queue.pop_front() else {
            return;
        };
        s.schedule.advance();
        let seat = &mut s.seats[index];
        seat.queued = false;
        seat.ticket = Some(intended);
        if let Some(w) = seat.waker.take() {
            w.wake();
        }
    }

    fn close(&self) {
        let mut s = self.inner.borrow_mut();
        s.closed = true;
        for seat in &mut s.seats {
            if let Some(w) = seat.waker.take() {
                w.wake();
            }
        }
    }
}

/// Runs the pacer of `dispatch` until the phase ends: waits for each due time with `pacer` and
/// hands the request to a waiting connection.
pub async fn run_pacer(dispatch: Rc<Dispatch>, pacer: Pacer) {
    // Whether the pacer waited for the request it hands out next (else it was already due).
    let mut waited = false;
    loop {
        match dispatch.step(Instant::now()) {
            Step::Hand(intended) => {
                if !std::mem::take(&mut waited) {
                    pacer.behind();
                }
                dispatch.hand(intended);
            }
            Step::Pace(due) => {
                pacer.until(due).await;
                waited = true;
            }
            Step::WaitForSeat => {
                std::future::poll_fn(|cx| {
                    let mut s = dispatch.inner.borrow_mut();
                    if s.queue.is_empty() {
                        s.pacer = Some(cx.waker().clone());
                        Poll::Pending
                    } else {
                        Poll::Ready(())
                    }
                })
                .await;
            }
            Step::Done => {
                dispatch.close();
                return;
            }
        }
    }
}

/// One connection's place at its thread's [`Dispatch`].
#[derive(Debug, Clone)]
pub struct Seat {
    dispatch: Rc<Dispatch>,
    index: usize,
}

/// What a seat sees when it asks for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticket {
    /// A request intended at this instant, now this connection's to write.
    Write(Instant),
    /// None yet; the seat waits in the queue.
    Waiting,
    /// The phase is over.
    Closed,
}

impl Seat {
    /// Takes the request handed to this seat, if any; otherwise queues the seat (once) so the
    /// pacer hands it the next one, and remembers `waker` to say when.
    pub fn poll_ticket(&self, waker: Option<&Waker>) -> Ticket {
        self.look(waker, true)
    }

    /// The next request for this connection: its intended start, or `None` once the phase is
    /// over.
    pub async fn next(&self) -> Option<Instant> {
        std::future::poll_fn(|cx| match self.poll_ticket(Some(cx.waker())) {
            Ticket::Write(t) => Poll::Ready(Some(t)),
            Ticket::Closed => Poll::Ready(None),
            Ticket::Waiting => Poll::Pending,
        })
        .await
    }

    /// Whether the pacer has finished (no request will be handed out any more).
    pub fn is_closed(&self) -> bool {
        self.dispatch.inner.borrow().closed
    }

    /// A future that completes when a request has been handed to this seat (or the phase is
    /// over), without taking it; it queues the seat.
    pub fn ready(&self) -> SeatReady<'_> {
        SeatReady { seat: self }
    }

    /// The seat's ticket (taken with `take`), or queues the seat and keeps `waker`.
    fn look(&self, waker: Option<&Waker>, take: bool) -> Ticket {
        let mut guard = self.dispatch.inner.borrow_mut();
        let s = &mut *guard;
        let seat = &mut s.seats[self.index];
        let ticket = if take {
            seat.ticket.take()
        } else {
            seat.ticket
        };
        if let Some(t) = ticket {
            return Ticket::Write(t);
        }
        if s.closed {
            return Ticket::Closed;
        }
        if let Some(w) = waker {
            seat.waker = Some(w.clone());
        }
        if !seat.queued {
            seat.queued = true;
            s.queue.push_back(self.index);
            if let Some(p) = s.pacer.take() {
                p.wake();
            }
        }
        Ticket::Waiting
    }
}

/// The future of [`Seat::ready`].
#[derive(Debug)]
pub struct SeatReady<'a> {
    seat: &'a Seat,
}

impl Future for SeatReady<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.seat.look(Some(cx.waker()), false) {
            Ticket::Waiting => Poll::Pending,
            Ticket::Write(_) | Ticket::Closed => Poll::Ready(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ArrivalsArg;

    const US: Duration = Duration::from_micros(1);

    fn phase(now: Instant) -> Phase {
        Phase {
            start: now,
            warmup_end: now,
            end: now + Duration::from_secs(1),
        }
    }

    #[test]
    fn a_due_request_goes_to_a_waiting_seat_or_waits_for_one() {
        let now = Instant::now();
        let p = phase(now);
        assert_eq!(step(now, &p, now, true), Step::Hand(now));
        assert_eq!(step(now, &p, now + 300 * US, true), Step::Hand(now));
        assert_eq!(step(now + EARLY, &p, now, true), Step::Hand(now + EARLY));
        assert_eq!(step(now, &p, now + 300 * US, false), Step::WaitForSeat);
    }

    #[test]
    fn a_future_request_is_paced_whether_or_not_a_seat_waits() {
        let now = Instant::now();
        let p = phase(now);
        let due = now + 40 * US;
        assert_eq!(step(due, &p, now, true), Step::Pace(due));
        assert_eq!(step(due, &p, now, false), Step::Pace(due));
    }

    #[test]
    fn nothing_at_or_after_the_end_and_no_catching_up_after_it() {
        let now = Instant::now();
        let p = phase(now);
        assert_eq!(step(p.end, &p, now, true), Step::Done);
        // Due just before the end, a little late: still handed out.
        let last = p.end - US;
        assert_eq!(step(last, &p, p.end + US, true), Step::Hand(last));
        // Far behind: the rest is dropped (the achieved rate shows it).
        assert_eq!(step(last, &p, p.end + LATE_GRACE, true), Step::Done);
    }

    #[test]
    fn seats_are_served_longest_waiting_first_and_closed_at_the_end() {
        let now = Instant::now();
        let schedule = Schedule::new(ArrivalsArg::Even, 1000.0, 1, 0, 1);
        let d = Dispatch::new(schedule, phase(now), 3);
        let (a, b, c) = (d.seat(0), d.seat(1), d.seat(2));
        assert_eq!(d.step(now), Step::WaitForSeat);
        assert_eq!(b.poll_ticket(None), Ticket::Waiting);
        assert_eq!(a.poll_ticket(None), Ticket::Waiting);
        // Asking again does not queue a seat twice.
        assert_eq!(b.poll_ticket(None), Ticket::Waiting);
        assert_eq!(d.step(now), Step::Hand(now));
        d.hand(now);
        assert_eq!(b.poll_ticket(None), Ticket::Write(now));
        // The next request (1 ms later) is paced, then goes to `a`, which waited next.
        let second = now + Duration::from_millis(1);
        assert_eq!(d.step(now), Step::Pace(second));
        assert_eq!(d.step(second), Step::Hand(second));
        d.hand(second);
        assert_eq!(c.poll_ticket(None), Ticket::Waiting);
        assert_eq!(a.poll_ticket(None), Ticket::Write(second));
        d.close();
        // A ticket handed out before the end is still taken; then the seat is told it is over.
        assert_eq!(c.poll_ticket(None), Ticket::Closed);
    }
}
