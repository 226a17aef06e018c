//! One connection's request loop: connect, write requests on schedule (or as fast as responses
//! return), read responses with core's parser, and record every request in the thread's
//! [`Recorder`].
//!
//! Timing of a request: `intended` is its place on the schedule (open loop) or the moment it is
//! written (closed loop); `sent` is when its bytes were handed to the socket; `done` is when its
//! response was complete. Corrected latency is `done - intended`, uncorrected `done - sent`,
//! send-lag `sent - intended`. A request is measured when `intended` falls after the warm-up.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringway_io::io::Canceller;
use ringway_io::time::Sleep;

use crate::dispatch::{Seat, Ticket};
use crate::histo::{ErrorClass, Recorder};
use crate::response::ResponseReader;
use crate::tls::TlsClient;
use crate::wire::Wire;

/// The time frame of one phase of a run (shared by all connections of all threads).
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Schedule offsets count from here.
    pub start: Instant,
    /// Requests intended before this are warm-up: counted apart, latencies not kept.
    pub warmup_end: Instant,
    /// No request is started at or after this; those in flight are still awaited.
    pub end: Instant,
}

/// What one connection does.
#[derive(Debug, Clone)]
pub struct ConnSpec {
    /// Where to connect.
    pub addr: SocketAddr,
    /// TLS over the connection (`https://`): every connection a full handshake.
    pub tls: Option<TlsClient>,
    /// The complete bytes of one request.
    pub request: Bytes,
    /// The request method (a HEAD response has no body).
    pub method: Bytes,
    /// Abort a request not answered within this.
    pub timeout: Duration,
    /// Requests in flight at most (pipelining depth).
    pub depth: usize,
    /// The phase's time frame.
    pub phase: Phase,
}

/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;
/// Pause after a failed connect in closed loop, so a dead target does not spin the CPU.
const CONNECT_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// A request written and not yet answered.
#[derive(Debug, Clone, Copy)]
struct Pending {
    intended: Instant,
    sent: Instant,
}

/// Runs one connection (reconnecting as needed) until the phase ends and nothing is in flight.
/// Open loop (`seat`): each request is one the thread's pacer handed to this connection when
/// it was due ([`crate::dispatch`]), written at once with a direct `send`; closed loop (no
/// seat): the next request is written as soon as the previous response is complete.
pub async fn run_connection(spec: ConnSpec, seat: Option<Seat>, rec: Rc<RefCell<Recorder>>) {
    let phase = spec.phase;
    let mut stream: Option<Wire> = None;
    let mut reader = ResponseReader::new(&spec.method);
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut inflight: VecDeque<Pending> = VecDeque::with_capacity(spec.depth);
    // One timeout timer for the connection's life, moved to the front request's deadline as
    // requests come and go: a later deadline only updates the entry (the wheel re-files it when
    // its old slot comes), so a request costs no timer insert and removal of its own.
    let mut watchdog = pin!(ringway_io::time::sleep_until(to_rt(
        phase.end + spec.timeout
    )));
    let measured = |p: &Pending| p.intended >= phase.warmup_end;
    if seat.is_none() {
        // Closed loop starts with the phase too: nothing before `start` belongs to the run.
        // (Open loop: the pacer hands nothing out before it.)
        ringway_io::time::sleep_until(to_rt(phase.start)).await;
    }
    // The last clock reading; closed loop reuses the end of the previous read instead of reading
    // the clock again (one clock read per request: when its response is complete, which is
    // also when the next request is written).
    let mut last_done: Option<Instant> = None;
    // Open loop: the request handed to this connection and not yet written.
    let mut held: Option<Instant> = None;

    loop {
        if held.is_none() {
            held = match &seat {
                Some(seat) if inflight.is_empty() => match seat.next().await {
                    Some(t) => Some(t),
                    None => break,
                },
                Some(seat) if inflight.len() < spec.depth => match seat.poll_ticket(None) {
                    Ticket::Write(t) => Some(t),
                    Ticket::Waiting | Ticket::Closed => None,
                },
                _ => None,
            };
        }
        let now = match (seat.is_some(), last_done.take()) {
            (false, Some(done)) => done,
            _ => Instant::now(),
        };
        // Closed loop: a request is due now while the phase lasts.
        let closed_due = seat.is_none() && now < phase.end;
        if inflight.is_empty() && held.is_none() && !closed_due {
            break;
        }

        let Some(conn) = stream.as_mut() else {
            // Every request in flight was failed when the last connection was dropped.
            let intended = held.unwrap_or(now);
            match connect(spec.addr, spec.tls.as_ref(), intended + spec.timeout).await {
                Ok(s) => {
                    rec.borrow_mut()
                        .tally_mut(intended >= phase.warmup_end)
                        .connects += 1;
                    stream = Some(s);
                    reader = ResponseReader::new(&spec.method);
                    rbuf.clear();
                }
                Err(_) => {
                    // The request this connection was for fails; the schedule moves on.
                    rec.borrow_mut()
                        .fail(intended >= phase.warmup_end, ErrorClass::Connect, None);
                    if held.take().is_none() {
                        ringway_io::time::sleep(CONNECT_RETRY_PAUSE).await;
                    }
                }
            }
            continue;
        };

        // Open loop: the request handed over; closed loop: as many as the pipeline takes, in
        // one write.
        let first_new = inflight.len();
        let count = match held {
            Some(_) => 1,
            None if closed_due => spec.depth - inflight.len(),
            None => 0,
        };
        if count > 0 {
            let (sent, written) = match held.take() {
                Some(intended) => {
                    // Open loop: the bytes go out now, not when the runtime next enters its ring.
                    let sent = Instant::now();
                    inflight.push_back(Pending { intended, sent });
                    (sent, conn.send_now(&spec.request))
                }
                None => {
                    // Closed loop: `now` is when the previous response completed, microseconds
                    // ago at most (only its parsing came in between); a request is due the
                    // moment it is written (as in wrk).
                    for _ in 0..count {
                        inflight.push_back(Pending {
                            intended: now,
                            sent: now,
                        });
                    }
                    (now, Ok(0))
                }
            };
            {
                let mut r = rec.borrow_mut();
                for p in inflight.iter().skip(first_new) {
                    r.tally_mut(p.intended >= phase.warmup_end).sent += 1;
                }
            }
            let rest = match written {
                Ok(n) if count == 1 && n >= spec.request.len() => None,
                Ok(n) if count == 1 => Some(Ok(spec.request.slice(n..))),
                Ok(_) => {
                    let mut b = BytesMut::with_capacity(spec.request.len() * count);
                    for _ in 0..count {
                        b.extend_from_slice(&spec.request);
                    }
                    Some(Ok(b.freeze()))
                }
                Err(_) => Some(Err(ErrorClass::Write)),
            };
            let front_sent = inflight.front().map_or(sent, |p| p.sent);
            arm(watchdog.as_mut(), front_sent + spec.timeout);
            let outcome = match rest {
                None => Ok(()),
                Some(Ok(bytes)) => write_all(conn, bytes, watchdog.as_mut()).await,
                Some(Err(class)) => Err(class),
            };
            if let Err(class) = outcome {
                // A write that timed out is a timeout like any other: recorded when given up.
                let at = Instant::now();
                let mut r = rec.borrow_mut();
                for p in inflight.drain(..) {
                    let lat = (class == ErrorClass::Timeout).then(|| latencies(&p, at));
                    r.fail(measured(&p), class, lat);
                }
                drop(r);
                stream = None;
                continue;
            }
        }
        let Some(front) = inflight.front().copied() else {
            continue;
        };

        // Read until a response completes, the front request times out, or (open loop, room in
        // the pipeline) the pacer hands this connection another request.
        let deadline = front.sent + spec.timeout;
        let handout = seat
            .as_ref()
            .filter(|s| inflight.len() < spec.depth && !s.is_closed());
        rbuf.reserve(READ_CHUNK);
        arm(watchdog.as_mut(), deadline);
        let outcome = read_until(conn, &mut rbuf, handout, watchdog.as_mut()).await;
        let done = Instant::now();
        last_done = Some(done);
        match outcome {
            ReadOutcome::Data(n) => {
                rec.borrow_mut().tally_mut(measured(&front)).bytes_read += n as u64;
                loop {
                    match reader.next(&mut rbuf) {
                        Ok(Some(resp)) => {
                            let Some(p) = inflight.pop_front() else {
                                // A response nobody asked for: the server is broken.
                                rec.borrow_mut().fail(true, ErrorClass::Parse, None);
                                stream = None;
                                break;
                            };
                            rec.borrow_mut().complete(
                                measured(&p),
                                resp.status,
                                latencies(&p, done),
                            );
                            if !resp.keep_alive {
                                fail_all(&rec, &mut inflight, ErrorClass::Read, &phase);
                                stream = None;
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(_) => {
                            fail_all(&rec, &mut inflight, ErrorClass::Parse, &phase);
                            stream = None;
                            break;
                        }
                    }
                }
            }
            ReadOutcome::Eof => {
                // A body delimited by the close is complete now; anything else in flight failed.
                if let Ok(Some(resp)) = reader.on_eof() {
                    if let Some(p) = inflight.pop_front() {
                        rec.borrow_mut()
                            .complete(measured(&p), resp.status, latencies(&p, done));
                    }
                }
                fail_all(&rec, &mut inflight, ErrorClass::Read, &phase);
                stream = None;
            }
            ReadOutcome::Failed => {
                fail_all(&rec, &mut inflight, ErrorClass::Read, &phase);
                stream = None;
            }
            // Without a hand-out to wait for, the read was dropped at the deadline: whatever the
            // clock says, the connection is done.
            ReadOutcome::Woken if done >= deadline || handout.is_none() => {
                // Timeouts are recorded at the moment the request was given up.
                let mut r = rec.borrow_mut();
                for p in inflight.drain(..) {
                    r.fail(measured(&p), ErrorClass::Timeout, Some(latencies(&p, done)));
                }
                drop(r);
                stream = None;
            }
            ReadOutcome::Woken => {}
        }
    }
}

/// Corrected, uncorrected and send-lag of a request. A request written up to
/// [`crate::pacer::EARLY`] before
/// its intended start is measured from when it was written.
fn latencies(p: &Pending, done: Instant) -> [Duration; 3] {
    let from = p.intended.min(p.sent);
    [
        done.saturating_duration_since(from),
        done.saturating_duration_since(p.sent),
        p.sent.saturating_duration_since(p.intended),
    ]
}

fn fail_all(
    rec: &RefCell<Recorder>,
    inflight: &mut VecDeque<Pending>,
    class: ErrorClass,
    phase: &Phase,
) {
    let mut r = rec.borrow_mut();
    for p in inflight.drain(..) {
        r.fail(p.intended >= phase.warmup_end, class, None);
    }
}

fn to_rt(t: Instant) -> ringway_io::time::Instant {
    ringway_io::time::Instant::from_std(t)
}

/// Moves the connection's timeout timer to `deadline` (nothing to do if it is there already).
fn arm(watchdog: Pin<&mut Sleep>, deadline: Instant) {
    let deadline = to_rt(deadline);
    if watchdog.deadline() != deadline {
        watchdog.reset(deadline);
    }
}

/// TCP connect and, for `https://`, the TLS handshake, both within `deadline`.
async fn connect(addr: SocketAddr, tls: Option<&TlsClient>, deadline: Instant) -> io::Result<Wire> {
    race(Wire::connect(addr, tls), deadline)
        .await
        .unwrap_or_else(|| Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")))
}

async fn write_all(
    conn: &mut Wire,
    bytes: Bytes,
    watchdog: Pin<&mut Sleep>,
) -> Result<(), ErrorClass> {
    match race_timer(conn.write_all(bytes), watchdog).await {
        Some(Ok(())) => Ok(()),
        Some(Err(_)) => Err(ErrorClass::Write),
        None => Err(ErrorClass::Timeout),
    }
}

/// How a read ended.
enum ReadOutcome {
    Data(usize),
    Eof,
    Failed,
    Woken,
}

/// Reads once into `buf`, or gives up when `watchdog` fires (the front request's deadline) or,
/// with `handout`, when the pacer hands this connection a request. With `handout` the read is
/// cancelled (not dropped) when that comes, so bytes that arrived meanwhile are kept; without
/// it the connection is about to be closed and the buffer may be lost (left empty).
async fn read_until(
    conn: &mut Wire,
    buf: &mut BytesMut,
    handout: Option<&Seat>,
    mut watchdog: Pin<&mut Sleep>,
) -> ReadOutcome {
    let from = |res: io::Result<usize>| match res {
        Ok(0) => ReadOutcome::Eof,
        Ok(n) => ReadOutcome::Data(n),
        Err(_) => ReadOutcome::Failed,
    };
    // Read into the spare capacity after the bytes already held.
    let want = buf.capacity() - buf.len();
    let Some(seat) = handout else {
        return match race_timer(conn.read(buf, want), watchdog).await {
            Some(res) => from(res),
            None => ReadOutcome::Woken,
        };
    };
    let canceller = Canceller::new();
    let mut read = pin!(conn.read_cancelable(buf, want, canceller.handle()));
    let mut ready = pin!(seat.ready());
    let first = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = read.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        if ready.as_mut().poll(cx).is_ready() || watchdog.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await;
    match first {
        Some(res) => from(res),
        None => {
            canceller.cancel();
            match read.await {
                Err(_) => ReadOutcome::Woken,
                res => from(res),
            }
        }
    }
}

/// `fut`'s output, or `None` if `deadline` comes first (then `fut` is dropped).
async fn race<F: Future>(fut: F, deadline: Instant) -> Option<F::Output> {
    race_timer(fut, pin!(ringway_io::time::sleep_until(to_rt(deadline)))).await
}

/// `fut`'s output, or `None` if `timer` fires first (then `fut` is dropped).
async fn race_timer<F: Future>(fut: F, mut timer: Pin<&mut Sleep>) -> Option<F::Output> {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}
