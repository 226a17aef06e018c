//! Inbound frames: the handshake, stream-id rules, credit checks and events.

use bytes::Bytes;

use super::connection::{Connection, Role, State};
use super::error::ProtocolError;
use super::event::Event;
use super::frame::{kind, Frame, Hello, HelloAck, ResetCode, StreamId, SUPPORTED_VERSIONS};
use super::stream::Stream;

impl Connection {
    /// Applies one decoded frame. `Err` is a protocol error of the peer.
    pub(crate) fn handle_frame(&mut self, frame: Frame) -> Result<(), ProtocolError> {
        let name = Frame::kind_name(frame.kind());
        match (self.state, frame) {
            (State::Closed, _) => Ok(()),
            (State::AwaitHello, Frame::Hello(hello)) => self.on_hello(hello),
            (State::AwaitAck, Frame::HelloAck(ack)) => self.on_hello_ack(ack),
            (
                State::AwaitAck,
                Frame::GoAway {
                    last_stream_id,
                    code,
                },
            ) => {
                // The balancer rejected the hello.
                self.state = State::Closed;
                self.events.push_back(Event::GoAway {
                    last_stream_id,
                    code,
                });
                Ok(())
            }
            (_, Frame::Hello(_) | Frame::HelloAck(_)) => {
                Err(ProtocolError::UnexpectedHandshake { kind: name })
            }
            (State::AwaitHello | State::HelloReceived { .. } | State::AwaitAck, _) => {
                Err(ProtocolError::BeforeHandshake { kind: name })
            }
            (State::Open, frame) => self.on_open_frame(frame),
        }
    }

    fn on_hello(&mut self, hello: Hello) -> Result<(), ProtocolError> {
        if !SUPPORTED_VERSIONS.contains(&hello.version) {
            return Err(ProtocolError::UnsupportedVersion(hello.version));
        }
        self.state = State::HelloReceived {
            version: hello.version,
        };
        self.events.push_back(Event::Hello(hello));
        Ok(())
    }

    fn on_hello_ack(&mut self, ack: HelloAck) -> Result<(), ProtocolError> {
        if !SUPPORTED_VERSIONS.contains(&ack.version) {
            return Err(ProtocolError::UnsupportedVersion(ack.version));
        }
        self.state = State::Open;
        self.announce_connection_window();
        self.events.push_back(Event::HelloAck(ack));
        Ok(())
    }

    fn on_open_frame(&mut self, frame: Frame) -> Result<(), ProtocolError> {
        match frame {
            Frame::RequestHead { id, head, end } => self.on_request_head(id, head, end),
            Frame::ResponseHead { id, head, end } => self.on_response_head(id, head, end),
            Frame::Data { id, data, end } => self.on_data(id, data, end),
            Frame::Reset { id, code } => self.on_reset(id, code),
            Frame::WindowUpdate { id, increment } => self.on_window_update(id, increment),
            Frame::Ping(opaque) => self.on_ping(opaque),
            Frame::Pong(_) => Ok(()),
            Frame::GoAway {
                last_stream_id,
                code,
            } => {
                self.on_go_away(last_stream_id, code);
                Ok(())
            }
            Frame::Hello(_) | Frame::HelloAck(_) => Err(ProtocolError::UnexpectedHandshake {
                kind: Frame::kind_name(frame.kind()),
            }),
        }
    }

    /// Answers a PING, unless `max_queued_pongs` answers are already waiting for the driver to
    /// write them: a peer that pings faster than it reads is flooding (docs/PROTOCOL.md §6).
    fn on_ping(&mut self, opaque: u64) -> Result<(), ProtocolError> {
        let max = self.config.max_queued_pongs;
        if self.queued_pongs >= max {
            return Err(ProtocolError::PingFlood { max });
        }
        self.queued_pongs += 1;
        self.pending.push_back(Frame::Pong(opaque));
        Ok(())
    }

    fn on_request_head(
        &mut self,
        id: StreamId,
        head: Bytes,
        end: bool,
    ) -> Result<(), ProtocolError> {
        if self.role != Role::Agent {
            return Err(ProtocolError::WrongDirection {
                kind: "REQUEST_HEAD",
                id,
            });
        }
        if id.0 < self.next_id || id.0 % 2 == 0 {
            return Err(ProtocolError::StreamIdNotIncreasing {
                id,
                last: self.last_stream_id(),
            });
        }
        self.next_id = id.0 + 1;
        let over_goaway = self.goaway_sent.is_some_and(|last| id > last);
        if over_goaway || self.streams.len() >= self.config.max_streams as usize {
            // Not processed: the balancer may retry it elsewhere.
            self.pending.push_back(Frame::Reset {
                id,
                code: ResetCode::Refused,
            });
            self.remember_reset(id);
            return Ok(());
        }
        let (mut stream, bump) = Stream::new(self.config.stream_window);
        stream.head_received = true;
        stream.recv_closed = end;
        self.streams.insert(id, stream);
        if let Some(increment) = bump.filter(|_| !end) {
            self.pending
                .push_back(Frame::WindowUpdate { id, increment });
        }
        self.events.push_back(Event::StreamOpened { id, head, end });
        Ok(())
    }

    fn on_response_head(
        &mut self,
        id: StreamId,
        head: Bytes,
        end: bool,
    ) -> Result<(), ProtocolError> {
        if self.role != Role::Balancer {
            return Err(ProtocolError::WrongDirection {
                kind: "RESPONSE_HEAD",
                id,
            });
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            return self.on_closed_stream(id, kind::RESPONSE_HEAD);
        };
        if stream.recv_closed {
            return Err(ProtocolError::StreamClosed {
                kind: "RESPONSE_HEAD",
                id,
            });
        }
        stream.heads_received = stream.heads_received.saturating_add(1);
        if stream.heads_received > self.config.max_response_heads {
            // Heads are not flow-controlled: a stream may not pile up interim heads without end.
            self.reset(id, ResetCode::TooManyHeads);
            self.events.push_back(Event::Reset {
                id,
                code: ResetCode::TooManyHeads,
            });
            return Ok(());
        }
        stream.head_received = true;
        stream.recv_closed = end;
        self.events.push_back(Event::ResponseHead { id, head, end });
        self.forget_if_closed(id);
        Ok(())
    }

    fn on_data(&mut self, id: StreamId, data: Bytes, end: bool) -> Result<(), ProtocolError> {
        let conn_credit = self.recv_credit.remaining();
        let Some(stream) = self.streams.get_mut(&id) else {
            self.on_closed_stream(id, kind::DATA)?;
            // In flight before our RESET reached the peer: it still used connection credit.
            self.recv_credit.receive(data.len()).map_err(|credit| {
                ProtocolError::CreditOverrun {
                    id,
                    len: data.len(),
                    credit,
                }
            })?;
            self.release_connection(data.len());
            return Ok(());
        };
        if stream.recv_closed {
            return Err(ProtocolError::StreamClosed { kind: "DATA", id });
        }
        if !stream.head_received {
            return Err(ProtocolError::DataBeforeHead(id));
        }
        let credit = stream.recv.remaining().min(conn_credit);
        if data.len() > credit {
            return Err(ProtocolError::CreditOverrun {
                id,
                len: data.len(),
                credit,
            });
        }
        // Both checked above.
        let _ = stream.recv.receive(data.len());
        let _ = self.recv_credit.receive(data.len());
        stream.recv_closed = end;
        self.events.push_back(Event::Data { id, data, end });
        self.forget_if_closed(id);
        Ok(())
    }

    fn on_reset(&mut self, id: StreamId, code: ResetCode) -> Result<(), ProtocolError> {
        let Some(stream) = self.streams.remove(&id) else {
            // A RESET crossing our own RESET or END_STREAM is normal.
            return if self.was_opened(id) {
                Ok(())
            } else {
                Err(ProtocolError::UnknownStream { kind: "RESET", id })
            };
        };
        self.release_connection(stream.unreleased());
        let _ = self.drop_pending(id);
        self.remember_reset(id);
        self.events.push_back(Event::Reset { id, code });
        Ok(())
    }

    fn on_window_update(&mut self, id: StreamId, increment: u32) -> Result<(), ProtocolError> {
        let bad = ProtocolError::BadWindowUpdate { id, increment };
        if id.is_connection() {
            self.send_credit.grant(increment).map_err(|()| bad)?;
            self.wake_blocked();
            return Ok(());
        }
        let conn_credit = self.send_credit.available();
        let Some(stream) = self.streams.get_mut(&id) else {
            // Updates for streams that just finished are normal.
            return if self.was_opened(id) {
                Ok(())
            } else {
                Err(ProtocolError::UnknownStream {
                    kind: "WINDOW_UPDATE",
                    id,
                })
            };
        };
        stream.send.grant(increment).map_err(|()| bad)?;
        if stream.blocked && conn_credit > 0 {
            stream.blocked = false;
            self.blocked.retain(|&b| b != id);
            self.events.push_back(Event::Writable { id });
        }
        Ok(())
    }

    fn on_go_away(&mut self, last_stream_id: StreamId, code: ResetCode) {
        self.goaway_received = true;
        self.events.push_back(Event::GoAway {
            last_stream_id,
            code,
        });
        if self.role != Role::Balancer {
            return;
        }
        // Streams above the agent's last id were never processed: safe to retry elsewhere.
        let mut refused: Vec<StreamId> = self
            .streams
            .keys()
            .copied()
            .filter(|&id| id > last_stream_id)
            .collect();
        refused.sort_unstable();
        for id in refused {
            if let Some(stream) = self.streams.remove(&id) {
                self.release_connection(stream.unreleased());
            }
            self.drop_pending(id);
            self.remember_reset(id);
            self.events.push_back(Event::Reset {
                id,
                code: ResetCode::Refused,
            });
        }
    }

    /// A DATA or head frame for a stream not in the table: quietly dropped when we reset the
    /// stream recently (the peer sent it before our RESET arrived), else a protocol error.
    fn on_closed_stream(&self, id: StreamId, frame_kind: u8) -> Result<(), ProtocolError> {
        let name = Frame::kind_name(frame_kind);
        if !self.was_opened(id) {
            Err(ProtocolError::UnknownStream { kind: name, id })
        } else if self.recently_reset.contains(id) {
            Ok(())
        } else {
            Err(ProtocolError::StreamClosed { kind: name, id })
        }
    }

    /// The stream was opened at some point (it may be finished now).
    fn was_opened(&self, id: StreamId) -> bool {
        let odd = id.0 % 2 == 1;
        odd && id.0 < self.next_id
    }
}
