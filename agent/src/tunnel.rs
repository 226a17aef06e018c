//! One tunnel connection to one balancer worker, on the shared driver (`ringway_io::tunnel`).
//!
//! The driver runs the socket: its reader feeds core's state machine and fills the stream slots,
//! its writer sends every queued frame of every stream in one write per wake-up, its heartbeat
//! pings and declares a silent balancer dead. This module is the agent's part:
//! - its [`Role`]: the hello-ack, a stream task per stream the balancer opens (through
//!   [`TunnelHooks`]), the balancer's GOAWAY (or its rejection of the hello);
//! - the stream-side API the stream tasks (`stream.rs`) use: [`Tunnel::recv`],
//!   [`Tunnel::send_response_head`], [`Tunnel::send_data`], [`Tunnel::release`],
//!   [`Tunnel::reset`], [`Tunnel::finish`];
//! - the drain: our GOAWAY, then the connection closes once its streams are done, after a short
//!   linger.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ringway_core::tunnel::{Connection, Event, HelloAck, ResetCode, StreamId};
use ringway_io::tunnel::{drive, Exit, Link, Role, TunnelSocket};

pub(crate) use ringway_io::tunnel::{StreamAborted, StreamSlot};

/// How long an idle connection stays open after our GOAWAY before it closes: requests the
/// balancer sent before it saw the GOAWAY are answered with an explicit Refused (safe to retry
/// elsewhere) instead of a lost connection.
const GOAWAY_LINGER: Duration = Duration::from_millis(200);

/// What the driver tells its owner about the connection's life.
pub(crate) trait TunnelHooks {
    /// The balancer accepted the hello.
    fn on_ack(&self, tunnel: &Rc<Tunnel>, ack: HelloAck);
    /// The balancer opened a stream; the owner spawns its stream task.
    fn on_stream(&self, tunnel: &Rc<Tunnel>, slot: Rc<StreamSlot>, head: Bytes, end: bool);
}

/// One tunnel connection to one balancer worker.
#[derive(Debug)]
pub(crate) struct Tunnel {
    peer: SocketAddr,
    link: Rc<Link>,
    /// We sent GOAWAY (drain), as opposed to receiving one.
    sent_goaway: Cell<bool>,
    acked: Cell<Option<HelloAck>>,
}

impl Tunnel {
    pub(crate) fn new(peer: SocketAddr, conn: Connection) -> Rc<Self> {
        Rc::new(Self {
            peer,
            link: Link::new(conn),
            sent_goaway: Cell::new(false),
            acked: Cell::new(None),
        })
    }

    /// The balancer address.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The hello-ack, once received.
    pub(crate) fn ack(&self) -> Option<HelloAck> {
        self.acked.get()
    }

    /// Streams in flight on this connection.
    pub(crate) fn active_streams(&self) -> usize {
        self.link.stream_count()
    }

    /// Sends GOAWAY (no new streams), lets in-flight streams finish, then closes.
    pub(crate) fn go_away(&self) {
        if !self.sent_goaway.replace(true) {
            self.link.conn().go_away(ResetCode::NoError);
            self.link.close_when_drained(GOAWAY_LINGER);
        }
        self.link.flush();
    }

    /// Closes at once: every stream is aborted, blocked socket operations are cancelled.
    pub(crate) fn kill(&self) {
        self.link.close(Exit::Killed);
    }

    /// Runs the connection over `socket` until it ends.
    pub(crate) async fn drive(
        self: &Rc<Self>,
        socket: TunnelSocket,
        hooks: Rc<dyn TunnelHooks>,
    ) -> Exit {
        let role = Rc::new(AgentRole {
            tunnel: self.clone(),
            hooks,
        });
        drive(self.link.clone(), socket, BytesMut::new(), role).await
    }

    // ---- stream-side API (used by stream tasks) ----

    /// Next inbound body chunk; `None` at the end of the request body.
    pub(crate) async fn recv(&self, slot: &StreamSlot) -> Result<Option<Bytes>, StreamAborted> {
        slot.recv().await
    }

    /// Tells the balancer that `n` received bytes were consumed (credit returns).
    pub(crate) fn release(&self, id: StreamId, n: usize) {
        self.link.release(id, n);
    }

    /// Queues the response head.
    pub(crate) fn send_response_head(
        &self,
        slot: &StreamSlot,
        head: Bytes,
        end: bool,
    ) -> Result<(), StreamAborted> {
        self.check(slot)?;
        let sent = self.link.conn().send_response_head(slot.id(), head, end);
        self.link.flush();
        sent.map_err(|e| {
            // E.g. a head larger than one frame: the balancer must still learn that this stream
            // failed, so reset it here; the stream task then just ends.
            tracing::warn!(stream = %slot.id(), error = %e, "response head refused by the state machine");
            self.link.reset(slot.id(), ResetCode::Internal);
            slot.fail(ResetCode::Internal);
            StreamAborted(ResetCode::Internal)
        })
    }

    /// Queues `data` as DATA frames, waiting for flow-control credit as needed.
    pub(crate) async fn send_data(
        &self,
        slot: &StreamSlot,
        mut data: Bytes,
        end: bool,
    ) -> Result<(), StreamAborted> {
        loop {
            self.check(slot)?;
            if let Err(e) = self.link.send_data(slot.id(), &mut data, end) {
                tracing::debug!(stream = %slot.id(), error = %e, "data refused by the state machine");
                return Err(StreamAborted(ResetCode::StreamClosed));
            }
            if data.is_empty() {
                return Ok(());
            }
            self.link.writable(slot).await;
        }
    }

    /// Resets the stream towards the balancer and forgets it.
    pub(crate) fn reset(&self, slot: &StreamSlot, code: ResetCode) {
        if slot.reset_code().is_none() {
            self.link.reset(slot.id(), code);
        }
        self.finish(slot);
    }

    /// The stream task is done with the stream.
    pub(crate) fn finish(&self, slot: &StreamSlot) {
        let removed = self.link.remove_stream(slot.id());
        // Body bytes that arrived but were never consumed still hold connection credit.
        let unread = slot.take_unread();
        if removed.is_some() && unread > 0 {
            self.release(slot.id(), unread);
        }
    }

    fn check(&self, slot: &StreamSlot) -> Result<(), StreamAborted> {
        match slot.reset_code() {
            Some(code) => Err(StreamAborted(code)),
            None if self.link.is_closed() => Err(StreamAborted(ResetCode::Cancel)),
            None => Ok(()),
        }
    }
}

/// The agent's part of the driver.
struct AgentRole {
    tunnel: Rc<Tunnel>,
    hooks: Rc<dyn TunnelHooks>,
}

impl Role for AgentRole {
    fn on_event(&self, event: Event) -> Result<(), Exit> {
        let tunnel = &self.tunnel;
        match event {
            Event::HelloAck(ack) => {
                tunnel.acked.set(Some(ack));
                self.hooks.on_ack(tunnel, ack);
            }
            Event::StreamOpened { id, head, end } => {
                let slot = Rc::new(StreamSlot::new(id, end));
                tunnel.link.insert_stream(slot.clone());
                self.hooks.on_stream(tunnel, slot, head, end);
            }
            Event::GoAway {
                last_stream_id,
                code,
            } => {
                if tunnel.acked.get().is_none() {
                    return Err(Exit::Rejected(code));
                }
                if matches!(code, ResetCode::Unauthorized | ResetCode::OutOfScope) {
                    tracing::warn!(balancer = %tunnel.peer, %code, "the balancer no longer accepts this agent's token for its routes (a reload removed the token or narrowed its scope): closing");
                } else {
                    tracing::info!(balancer = %tunnel.peer, %last_stream_id, %code, "balancer sent goaway");
                }
                // Nothing new can come: close as soon as the streams are done.
                tunnel.link.close_when_drained(Duration::ZERO);
            }
            other => {
                tracing::debug!(balancer = %tunnel.peer, event = ?other, "event not meant for an agent");
            }
        }
        Ok(())
    }
}
