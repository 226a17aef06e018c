//! The connection state machine: one per tunnel connection, on either side.
//!
//! Sans-IO, in the style of quinn-proto: the driver feeds received bytes to
//! [`Connection::handle_input`], takes [`Event`]s from [`Connection::poll_event`], makes calls
//! (open streams, send heads and data, release consumed bytes), then encodes everything pending
//! with one [`Connection::poll_transmit`] into its write buffer and writes it with one write.
//! Timers: [`Connection::poll_timeout`] says when to call [`Connection::handle_timeout`].
//!
//! Inbound frame handling lives in `inbound.rs`; this file holds the public API and the calls
//! the local application makes.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::codec::{encode, encoded_len, FrameDecoder};
use super::config::{Config, MIN_FRAME_PAYLOAD};
use super::error::{ProtocolError, StreamError};
use super::event::Event;
use super::flow::{RecvCredit, SendCredit, INITIAL_CONNECTION_WINDOW};
use super::frame::{Frame, Hello, HelloAck, ResetCode, StreamId, MAX_STREAM_ID};
use super::heartbeat::Heartbeat;
use super::stream::{open_for_sending, ResetGrace, Stream, StreamMap};

/// How many recently reset stream ids are remembered: frames the peer had in flight for them
/// are dropped quietly instead of failing the connection.
const MIN_RESET_GRACE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Balancer,
    Agent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Balancer: waiting for the HELLO.
    AwaitHello,
    /// Balancer: HELLO received, the application decides.
    HelloReceived { version: u16 },
    /// Agent: HELLO sent, waiting for HELLO_ACK.
    AwaitAck,
    /// Handshake done.
    Open,
    /// Rejected, failed with a protocol error, or dead: nothing more happens.
    Closed,
}

/// One side of a tunnel connection.
#[derive(Debug)]
pub struct Connection {
    pub(crate) role: Role,
    pub(crate) config: Config,
    pub(crate) state: State,
    pub(crate) decoder: FrameDecoder,
    pub(crate) streams: StreamMap,
    /// Balancer: the next id to open. Agent: one above the highest id the balancer opened.
    pub(crate) next_id: u32,
    pub(crate) recently_reset: ResetGrace,
    pub(crate) send_credit: SendCredit,
    pub(crate) recv_credit: RecvCredit,
    pub(crate) pending: VecDeque<Frame>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) heartbeat: Heartbeat,
    /// The last stream id of the GOAWAY this side sent.
    pub(crate) goaway_sent: Option<StreamId>,
    pub(crate) goaway_received: bool,
    /// Streams with data waiting for credit.
    pub(crate) blocked: Vec<StreamId>,
    /// PONGs in `pending` (answers not yet taken by `poll_transmit`), capped by
    /// `config.max_queued_pongs`.
    pub(crate) queued_pongs: u32,
}

impl Connection {
    /// The agent side; the HELLO is queued for the first [`Self::poll_transmit`].
    pub fn agent(config: Config, hello: Hello, now: Instant) -> Self {
        let mut conn = Self::new(Role::Agent, config, State::AwaitAck, now);
        conn.pending.push_back(Frame::Hello(hello));
        conn
    }

    /// The balancer side, waiting for the agent's HELLO.
    pub fn balancer(config: Config, now: Instant) -> Self {
        Self::new(Role::Balancer, config, State::AwaitHello, now)
    }

    fn new(role: Role, mut config: Config, state: State, now: Instant) -> Self {
        config.max_frame_payload = config
            .max_frame_payload
            .clamp(MIN_FRAME_PAYLOAD, super::frame::MAX_PAYLOAD_FIELD);
        config.max_queued_pongs = config.max_queued_pongs.max(1);
        config.max_response_heads = config.max_response_heads.max(1);
        let (recv_credit, _) = RecvCredit::new(INITIAL_CONNECTION_WINDOW, config.connection_window);
        Self {
            role,
            decoder: FrameDecoder::new(config.max_frame_payload)
                .with_max_hello_routes(config.max_routes_per_hello),
            heartbeat: Heartbeat::new(config.ping_interval, config.dead_after_missed_pings, now),
            config,
            state,
            streams: StreamMap::default(),
            next_id: 1,
            recently_reset: ResetGrace::default(),
            send_credit: SendCredit::new(INITIAL_CONNECTION_WINDOW),
            recv_credit,
            pending: VecDeque::new(),
            events: VecDeque::new(),
            goaway_sent: None,
            goaway_received: false,
            blocked: Vec::new(),
            queued_pongs: 0,
        }
    }

    /// Consumes every complete frame at the front of `buf` (a partial frame stays in `buf`).
    /// On `Err` the connection is closed: a GOAWAY with [`ProtocolError::code`] is queued; flush
    /// [`Self::poll_transmit`] once and close the socket.
    pub fn handle_input(&mut self, buf: &mut BytesMut, now: Instant) -> Result<(), ProtocolError> {
        if self.state == State::Closed {
            return Err(ProtocolError::Closed);
        }
        loop {
            let frame = match self.decoder.decode(buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(err) => return Err(self.fail(err)),
            };
            self.heartbeat.on_inbound(now);
            if let Err(err) = self.handle_frame(frame) {
                return Err(self.fail(err));
            }
            if self.state == State::Closed {
                return Ok(());
            }
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Balancer: accept the agent's hello, pinning the connection to `worker_index` of
    /// `worker_count` workers. Ignored unless a hello is waiting for an answer.
    pub fn accept_hello(&mut self, worker_count: u16, worker_index: u16) {
        let State::HelloReceived { version } = self.state else {
            return;
        };
        self.state = State::Open;
        self.pending.push_back(Frame::HelloAck(HelloAck {
            version,
            worker_count,
            worker_index,
        }));
        self.announce_connection_window();
    }

    /// Balancer: reject the agent's hello with `code` (a GOAWAY); the connection is closed.
    pub fn reject_hello(&mut self, code: ResetCode) {
        if matches!(self.state, State::HelloReceived { .. } | State::AwaitHello) {
            self.pending.push_back(Frame::GoAway {
                last_stream_id: StreamId::CONNECTION,
                code,
            });
            self.goaway_sent = Some(StreamId::CONNECTION);
            self.state = State::Closed;
        }
    }

    /// Balancer: open a stream carrying the request `head` (`end`: no body follows).
    pub fn open_stream(&mut self, head: Bytes, end: bool) -> Result<StreamId, StreamError> {
        if self.role != Role::Balancer {
            return Err(StreamError::WrongSide("opening a stream"));
        }
        self.check_open()?;
        if self.is_draining() {
            return Err(StreamError::Draining);
        }
        if self.streams.len() >= self.config.max_streams as usize {
            return Err(StreamError::TooManyStreams(self.config.max_streams));
        }
        if self.next_id > MAX_STREAM_ID {
            return Err(StreamError::IdsExhausted);
        }
        self.check_head(&head)?;
        let id = StreamId(self.next_id);
        self.next_id += 2;
        let (mut stream, bump) = Stream::new(self.config.stream_window);
        stream.head_sent = true;
        stream.head_received = false;
        stream.send_closed = end;
        self.streams.insert(id, stream);
        self.pending.push_back(Frame::RequestHead { id, head, end });
        if let Some(increment) = bump {
            self.pending
                .push_back(Frame::WindowUpdate { id, increment });
        }
        Ok(id)
    }

    /// Agent: send a response head on stream `id` (interim 1xx heads first, then the final one;
    /// `end`: no body follows).
    pub fn send_response_head(
        &mut self,
        id: StreamId,
        head: Bytes,
        end: bool,
    ) -> Result<(), StreamError> {
        if self.role != Role::Agent {
            return Err(StreamError::WrongSide("sending a response head"));
        }
        self.check_open()?;
        self.check_head(&head)?;
        let stream = open_for_sending(&mut self.streams, id)?;
        stream.head_sent = true;
        stream.send_closed = end;
        self.pending
            .push_back(Frame::ResponseHead { id, head, end });
        self.forget_if_closed(id);
        Ok(())
    }

    /// Sends as much of the front of `data` as stream and connection credit allow, in frames of
    /// at most [`MIN_FRAME_PAYLOAD`] bytes; `end` goes with the last frame once all of `data` is
    /// sent. What stays in `data` waits for [`Event::Writable`] and a new call.
    pub fn send_data(
        &mut self,
        id: StreamId,
        data: &mut Bytes,
        end: bool,
    ) -> Result<(), StreamError> {
        self.check_open()?;
        let is_agent = self.role == Role::Agent;
        let stream = open_for_sending(&mut self.streams, id)?;
        if is_agent && !stream.head_sent {
            return Err(StreamError::HeadNotSent(id));
        }
        loop {
            if data.is_empty() {
                if end {
                    stream.send_closed = true;
                    self.pending.push_back(Frame::Data {
                        id,
                        data: Bytes::new(),
                        end: true,
                    });
                }
                break;
            }
            let credit = stream.send.available().min(self.send_credit.available());
            if credit == 0 {
                if !stream.blocked {
                    stream.blocked = true;
                    self.blocked.push(id);
                }
                break;
            }
            let n = credit.min(data.len()).min(MIN_FRAME_PAYLOAD as usize);
            let chunk = data.split_to(n);
            stream.send.consume(n);
            self.send_credit.consume(n);
            let last = end && data.is_empty();
            stream.send_closed = last;
            self.pending.push_back(Frame::Data {
                id,
                data: chunk,
                end: last,
            });
            if last {
                break;
            }
        }
        self.forget_if_closed(id);
        Ok(())
    }

    /// Send credit of stream `id`: the smaller of its window and the connection's (0 when the
    /// stream is not open).
    pub fn send_credit(&self, id: StreamId) -> usize {
        self.streams
            .get(&id)
            .map_or(0, |s| s.send.available().min(self.send_credit.available()))
    }

    /// The application consumed `n` bytes received on stream `id`: credit goes back to the
    /// peer in batched WINDOW_UPDATEs. Bytes of a stream that finished normally still return
    /// to the connection window; for a reset stream they already did (and this is a no-op).
    pub fn release(&mut self, id: StreamId, n: usize) {
        if n == 0 || self.recently_reset.contains(id) {
            return;
        }
        let n = match self.streams.get_mut(&id) {
            Some(stream) => {
                let n = n.min(stream.unreleased());
                if let Some(increment) = stream.recv.release(n) {
                    if !stream.recv_closed {
                        self.pending
                            .push_back(Frame::WindowUpdate { id, increment });
                    }
                }
                n
            }
            // Finished normally: the connection window still holds its bytes.
            None => n,
        };
        self.release_connection(n);
    }

    /// Ends stream `id` with a RESET carrying `code`; late frames the peer had in flight are
    /// ignored. No-op for a stream that is not open.
    ///
    /// While this side is still sending, the RESET aborts the stream: its queued frames are
    /// dropped. Once this side's direction has ended (END_STREAM queued), what it queued is a
    /// complete message and still goes out, the RESET after it: the RESET then only stops the
    /// peer's direction (with `NoError`, "stop sending, nothing went wrong": a backend that
    /// answered before reading the whole request body).
    pub fn reset(&mut self, id: StreamId, code: ResetCode) {
        if self.state == State::Closed {
            return;
        }
        let Some(stream) = self.streams.remove(&id) else {
            return;
        };
        self.release_connection(stream.unreleased());
        let keep_queued = stream.send_closed && !self.opening_pending(id);
        // A stream whose REQUEST_HEAD never left is unknown to the peer: no RESET then.
        if keep_queued || !self.drop_pending(id) {
            self.pending.push_back(Frame::Reset { id, code });
        }
        self.remember_reset(id);
    }

    /// Start draining: a GOAWAY tells the peer the highest stream this side processes; no new
    /// streams are opened or accepted above it, existing ones finish. Sent once.
    pub fn go_away(&mut self, code: ResetCode) {
        if self.goaway_sent.is_some() || self.state == State::Closed {
            return;
        }
        let last_stream_id = self.last_stream_id();
        self.goaway_sent = Some(last_stream_id);
        self.pending.push_back(Frame::GoAway {
            last_stream_id,
            code,
        });
    }

    /// A GOAWAY was sent or received: no new streams.
    pub fn is_draining(&self) -> bool {
        self.goaway_sent.is_some() || self.goaway_received
    }

    /// The connection is over: rejected, failed, dead, or drained with no stream left. Flush
    /// [`Self::poll_transmit`] once more and close the socket.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed || (self.is_draining() && self.streams.is_empty())
    }

    /// The handshake completed and the connection is usable.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Streams open now (not yet finished in both directions, not reset).
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Encodes every pending frame of every stream into `out`; true when anything was written.
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> bool {
        let wrote = !self.pending.is_empty();
        out.reserve(self.pending.iter().map(encoded_len).sum());
        for frame in self.pending.drain(..) {
            encode(&frame, out);
        }
        self.queued_pongs = 0;
        wrote
    }

    /// When [`Self::handle_timeout`] should be called next (`None` once closed).
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.state != State::Closed)
            .then(|| self.heartbeat.poll_timeout(self.state == State::Open))
    }

    /// Timers: sends a PING after an interval of inbound silence; after
    /// `dead_after_missed_pings` intervals the connection is closed with [`Event::Dead`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        let beat = self.heartbeat.on_timeout(now, self.state == State::Open);
        if beat.dead {
            self.state = State::Closed;
            self.events.push_back(Event::Dead);
        } else if let Some(opaque) = beat.ping {
            self.pending.push_back(Frame::Ping(opaque));
        }
    }

    fn check_open(&self) -> Result<(), StreamError> {
        match self.state {
            State::Open => Ok(()),
            State::Closed => Err(StreamError::ConnectionClosed),
            _ => Err(StreamError::NotReady),
        }
    }

    fn check_head(&self, head: &Bytes) -> Result<(), StreamError> {
        let max = self.config.max_frame_payload;
        if head.len() > max as usize {
            return Err(StreamError::HeadTooLarge {
                len: head.len(),
                max,
            });
        }
        Ok(())
    }

    /// The highest stream id this side has seen or opened.
    pub(crate) const fn last_stream_id(&self) -> StreamId {
        StreamId(
            self.next_id
                .saturating_sub(if matches!(self.role, Role::Balancer) {
                    2
                } else {
                    1
                }),
        )
    }

    /// Closes the connection for a peer's protocol error: a GOAWAY with its code is all that
    /// remains to send.
    pub(crate) fn fail(&mut self, err: ProtocolError) -> ProtocolError {
        self.pending.clear();
        self.queued_pongs = 0;
        self.pending.push_back(Frame::GoAway {
            last_stream_id: self.last_stream_id(),
            code: err.code(),
        });
        self.state = State::Closed;
        err
    }

    pub(crate) fn announce_connection_window(&mut self) {
        let target = self.config.connection_window.max(INITIAL_CONNECTION_WINDOW);
        if let Some(increment) = target
            .checked_sub(INITIAL_CONNECTION_WINDOW)
            .filter(|&i| i > 0)
        {
            self.pending.push_back(Frame::WindowUpdate {
                id: StreamId::CONNECTION,
                increment,
            });
        }
    }

    pub(crate) fn release_connection(&mut self, n: usize) {
        if let Some(increment) = self.recv_credit.release(n) {
            self.pending.push_back(Frame::WindowUpdate {
                id: StreamId::CONNECTION,
                increment,
            });
        }
    }

    pub(crate) fn remember_reset(&mut self, id: StreamId) {
        let grace = (self.config.max_streams as usize * 2).max(MIN_RESET_GRACE);
        self.recently_reset.insert(id, grace);
        self.blocked.retain(|&b| b != id);
    }

    /// Drops queued frames of a stream that ended abruptly; connection credit taken by its
    /// unsent DATA comes back. True when the stream's REQUEST_HEAD was among them.
    pub(crate) fn drop_pending(&mut self, id: StreamId) -> bool {
        let mut refund = 0;
        let mut opening = false;
        self.pending.retain(|frame| {
            if frame.stream_id() != id {
                return true;
            }
            match frame {
                Frame::Data { data, .. } => refund += data.len(),
                Frame::RequestHead { .. } => opening = true,
                _ => {}
            }
            false
        });
        if refund > 0 {
            // Cannot overflow: the credit was taken from this window moments ago.
            let _ = self.send_credit.grant(refund as u32);
            self.wake_blocked();
        }
        opening
    }

    /// The balancer's REQUEST_HEAD of stream `id` is still queued (the agent never heard of it).
    fn opening_pending(&self, id: StreamId) -> bool {
        self.role == Role::Balancer
            && self.pending.iter().any(
                |frame| matches!(frame, Frame::RequestHead { id: opened, .. } if *opened == id),
            )
    }

    pub(crate) fn forget_if_closed(&mut self, id: StreamId) {
        if self.streams.get(&id).is_some_and(Stream::is_closed) {
            self.streams.remove(&id);
            self.blocked.retain(|&b| b != id);
        }
    }

    /// Connection credit came back: every blocked stream that has stream credit is writable.
    pub(crate) fn wake_blocked(&mut self) {
        if self.send_credit.available() == 0 {
            return;
        }
        let streams = &mut self.streams;
        let events = &mut self.events;
        self.blocked.retain(|id| {
            let Some(stream) = streams.get_mut(id) else {
                return false;
            };
            if stream.send.available() == 0 {
                return true;
            }
            stream.blocked = false;
            events.push_back(Event::Writable { id: *id });
            false
        });
    }
}
