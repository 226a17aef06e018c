//! The tasks that drive one tunnel connection, the same at both ends.
//!
//! - The **reader** (the task that calls [`drive`]) reads into one buffer, feeds every complete
//!   frame to `handle_input` and hands each event to its stream's slot, or to the [`Role`].
//! - The **writer** sleeps on the link's doorbell until something is queued (a stream task sent
//!   bytes or released credit, the reader got a ping), then encodes every pending frame of every
//!   stream with one `poll_transmit` into one buffer and writes it with **one write per
//!   wake-up**: many requests' frames share one syscall. It runs in its own task, woken after
//!   the stream tasks the reader woke, so their answers join the same write.
//! - The **heartbeat** sleeps until the state machine's next timer and lets it ping or declare
//!   the connection `Dead`. It is apart from the writer so that a write blocked on a peer that
//!   stopped reading cannot keep a dead connection alive.
//!
//! Closing ([`Link::close`]) cancels the blocked read and write, so a dead peer that stopped
//! reading does not keep the socket; what is queued then (a GOAWAY after a protocol error) gets
//! one last write bounded by [`FINAL_FLUSH`] (none when the owner killed the connection). After
//! a GOAWAY the writer closes the connection once no stream is left and the linger asked for
//! has passed.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::io::{CancelHandle, Canceller};
use ringway_core::tunnel::Event;

use super::link::{Exit, Link, READ_CHUNK};
use super::socket::{SocketRead, SocketWrite, TunnelSocket};

/// How long the last write of a closed connection (its GOAWAY) may take.
pub const FINAL_FLUSH: Duration = Duration::from_secs(1);

/// What one end does with the events the driver does not hand to a stream itself.
pub trait Role {
    /// Handles `Hello`/`HelloAck` (the handshake), `StreamOpened` (agent: insert a slot and
    /// start its task) and `GoAway`. Data, heads, resets and credit go to the streams' slots;
    /// `Dead` closes the connection. An `Err` closes it with that exit.
    fn on_event(&self, event: Event) -> Result<(), Exit>;
}

/// Drives `link` over `socket` (plain TCP or TLS) until it closes and returns why. `received`
/// holds bytes already read (after a hello the accepting side parsed). Returns once the reader
/// and the writer are done (the final flush included); the heartbeat ends on its own right
/// after.
pub async fn drive<R: Role + 'static>(
    link: Rc<Link>,
    socket: impl Into<TunnelSocket>,
    received: BytesMut,
    role: Rc<R>,
) -> Exit {
    if link.is_closed() {
        return link.take_exit().unwrap_or(Exit::Killed);
    }
    let (rd, wr) = socket.into().into_split();
    let canceller = Canceller::new();
    let cancel = canceller.handle();
    *link.canceller.borrow_mut() = Some(canceller);
    // Events that came in with the handshake.
    dispatch(&link, &*role);
    let writer = monoio::spawn(write_loop(link.clone(), role.clone(), wr, cancel.clone()));
    monoio::spawn(heartbeat(link.clone(), role.clone()));
    read_loop(&link, &*role, rd, received, cancel).await;
    writer.await;
    link.take_exit().unwrap_or(Exit::Killed)
}

async fn read_loop<R: Role>(
    link: &Link,
    role: &R,
    mut rd: SocketRead,
    mut buf: BytesMut,
    cancel: CancelHandle,
) {
    loop {
        if !buf.is_empty() {
            let fed = link.conn().handle_input(&mut buf, Instant::now());
            if let Err(e) = fed {
                // The state machine queued a GOAWAY saying why: the writer flushes it and
                // shuts the socket down.
                link.close(Exit::Protocol(e));
                break;
            }
            dispatch(link, role);
            link.flush();
        }
        if link.is_closed() {
            break;
        }
        if buf.is_empty() && buf.capacity() < READ_CHUNK {
            // The allocation went out in `Bytes` slices of DATA frames: start a fresh one.
            buf = link.bufs.take();
        }
        let res = rd.read(&mut buf, READ_CHUNK, cancel.clone()).await;
        link.reads.set(link.reads.get() + 1);
        match res {
            Ok(0) => {
                link.close(Exit::Eof);
                break;
            }
            Ok(_) => {}
            // ECANCELED when the connection closed under the read: `close` keeps that reason.
            Err(e) => {
                link.close(Exit::Read(e));
                break;
            }
        }
    }
    buf.clear();
    link.bufs.give(buf);
}

async fn write_loop<R: Role>(
    link: Rc<Link>,
    role: Rc<R>,
    mut wr: SocketWrite,
    cancel: CancelHandle,
) {
    let mut out = link.bufs.take();
    let mut drained_since: Option<Instant> = None;
    loop {
        // Events queued outside the reader and the heartbeat, should there be any.
        dispatch(&link, &*role);
        let closed = link.is_closed();
        out.clear();
        if link.conn().poll_transmit(&mut out) {
            link.writes.set(link.writes.get() + 1);
            if closed {
                if !link.killed() {
                    wr.write_all_by(out, Instant::now() + FINAL_FLUSH).await;
                }
                wr.shutdown().await;
                return;
            }
            let (res, buf) = wr.write_all(out, cancel.clone()).await;
            out = buf;
            if let Err(e) = res {
                link.close(Exit::Write(e));
            }
            // More may have been queued while the write was in flight.
            continue;
        }
        if closed {
            wr.shutdown().await;
            out.clear();
            link.bufs.give(out);
            return;
        }
        let deadline = match link.drain_linger() {
            Some(linger) if link.stream_count() == 0 => {
                // Drained: after our GOAWAY linger briefly, so that streams the peer opened
                // before it saw the GOAWAY are refused explicitly (safe to retry elsewhere)
                // instead of lost with the connection.
                let now = Instant::now();
                let until = *drained_since.get_or_insert(now + linger);
                if now >= until {
                    link.close(Exit::Drained);
                    continue;
                }
                Some(until)
            }
            _ => None,
        };
        match deadline {
            Some(at) => {
                let at = monoio::time::Instant::from_std(at);
                monoio::select! {
                    () = link.writer.wait() => {}
                    () = monoio::time::sleep_until(at) => {}
                }
            }
            None => link.writer.wait().await,
        }
    }
}

async fn heartbeat<R: Role>(link: Rc<Link>, role: Rc<R>) {
    loop {
        if link.is_closed() {
            return;
        }
        let next = link.conn_ref().poll_timeout();
        let Some(at) = next else {
            return;
        };
        let at = monoio::time::Instant::from_std(at);
        monoio::select! {
            () = monoio::time::sleep_until(at) => {}
            () = link.closing.wait() => return,
        }
        if link.is_closed() {
            return;
        }
        link.conn().handle_timeout(Instant::now());
        dispatch(&link, &*role);
        link.flush();
    }
}

/// Hands every pending event of the state machine to its stream, or to the role.
fn dispatch<R: Role>(link: &Link, role: &R) {
    loop {
        let Some(event) = link.conn().poll_event() else {
            return;
        };
        match event {
            Event::ResponseHead { id, head, end } => {
                if let Some(slot) = link.stream(id) {
                    slot.deliver_head(head, end);
                }
            }
            Event::Data { id, data, end } => match link.stream(id) {
                Some(slot) => slot.deliver(data, end),
                // The stream's task is gone (a backend that answered before reading the whole
                // upload, a user that left): the bytes are dropped and their credit returned,
                // so the connection window lives on.
                None => link.conn().release(id, data.len()),
            },
            Event::Reset { id, code } => {
                if let Some(slot) = link.remove_stream(id) {
                    slot.fail(code);
                }
            }
            Event::Writable { id } => {
                if let Some(slot) = link.stream(id) {
                    slot.credit_arrived();
                }
            }
            Event::Dead => link.close(Exit::Dead),
            other => {
                if let Err(exit) = role.on_event(other) {
                    link.close(exit);
                }
            }
        }
    }
}
