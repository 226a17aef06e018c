//! Replays an arbitrary sequence of operations against a [`Pair`] and checks invariants; the
//! body of the `tunnel_frames` fuzz target's state-machine mode (after quinn's
//! `fuzz/fuzz_targets/streams.rs`), also run by a proptest.
//!
//! Invariants: nothing panics; unless a byte was corrupted on the way, neither side reports a
//! protocol error; every body byte arrives in order and unaltered; no side holds more streams
//! than allowed.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use super::{Direction, Pair};
use crate::tunnel::{Config, Event, ResetCode, StreamId};

/// Runs the operations encoded in `input` (each op is a few bytes; missing bytes read as 0).
pub fn run(input: &[u8]) {
    let config = Config {
        max_streams: 8,
        stream_window: 16 * 1024,
        connection_window: 64 * 1024,
        ..Config::default()
    };
    let mut run = Run {
        pair: Pair::new(&config),
        input,
        pos: 0,
        corrupted: false,
        ids: Vec::new(),
        seen: HashMap::new(),
        sent: HashMap::new(),
        corrupt: Rc::default(),
    };
    run.corrupt_hook();
    if !run.pair.handshake(2, 1) {
        assert!(run.corrupted(), "handshake failed without corruption");
        return;
    }
    while run.pos < input.len() {
        run.step();
    }
    run.pair.drive();
    run.check();
}

struct Run<'a> {
    pair: Pair,
    input: &'a [u8],
    pos: usize,
    corrupted: bool,
    /// Streams opened so far (the balancer's ids).
    ids: Vec<StreamId>,
    /// Body bytes received per (receiver is the agent, stream).
    seen: HashMap<(bool, StreamId), usize>,
    /// Body bytes sent per (sender is the agent, stream).
    sent: HashMap<(bool, StreamId), usize>,
    /// Where the hook flips the next byte: (position, value, towards the agent).
    corrupt: Rc<Cell<Option<(usize, u8, bool)>>>,
}

impl Run<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.input.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn stream(&mut self) -> StreamId {
        let pick = usize::from(self.byte());
        self.ids
            .get(pick % self.ids.len().max(1))
            .copied()
            .unwrap_or(StreamId(1))
    }

    fn corrupted(&self) -> bool {
        self.corrupted
    }

    fn corrupt_hook(&mut self) {
        let corrupt = Rc::clone(&self.corrupt);
        self.pair.set_hook(move |direction, bytes| {
            if let Some((at, value, to_agent)) = corrupt.get() {
                if to_agent == (direction == Direction::ToAgent) {
                    let i = at % bytes.len();
                    bytes[i] = value;
                    corrupt.set(None);
                }
            }
        });
    }

    fn step(&mut self) {
        let op = self.byte();
        let side_agent = op & 0x80 != 0;
        match op & 0x0F {
            0 => {
                let end = self.byte() & 1 == 1;
                let head = Bytes::from(format!("GET /{} HTTP/1.1\r\n\r\n", self.ids.len()));
                if let Ok(id) = self.pair.balancer.open_stream(head, end) {
                    self.ids.push(id);
                }
            }
            1 => {
                let id = self.stream();
                let end = self.byte() & 1 == 1;
                let _ = self.pair.agent.send_response_head(
                    id,
                    Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n"),
                    end,
                );
            }
            2 => {
                let id = self.stream();
                let len = usize::from(self.byte()) * 97;
                let end = self.byte() & 1 == 1;
                let sender = if side_agent {
                    &mut self.pair.agent
                } else {
                    &mut self.pair.balancer
                };
                let offset = self.sent.entry((side_agent, id)).or_default();
                let mut data = pattern(id, *offset, len);
                if sender.send_data(id, &mut data, end).is_ok() {
                    *offset += len - data.len();
                }
            }
            3 => {
                let id = self.stream();
                let n = usize::from(self.byte()) * 257;
                let conn = if side_agent {
                    &mut self.pair.agent
                } else {
                    &mut self.pair.balancer
                };
                conn.release(id, n);
            }
            4 => {
                let id = self.stream();
                let code = ResetCode::from_wire(u32::from(self.byte() % 16));
                let conn = if side_agent {
                    &mut self.pair.agent
                } else {
                    &mut self.pair.balancer
                };
                conn.reset(id, code);
            }
            5 => {
                let conn = if side_agent {
                    &mut self.pair.agent
                } else {
                    &mut self.pair.balancer
                };
                conn.go_away(ResetCode::Shutdown);
            }
            6 => {
                self.pair.max_delivery = Some(usize::from(self.byte()) + 1);
                if side_agent {
                    self.pair.transmit_agent();
                    self.pair.deliver_to_balancer();
                } else {
                    self.pair.transmit_balancer();
                    self.pair.deliver_to_agent();
                }
                self.pair.max_delivery = None;
            }
            7 => {
                let secs = u64::from(self.byte() % 8);
                self.pair.advance(Duration::from_secs(secs));
            }
            8 => {
                let at = usize::from(self.byte());
                let value = self.byte();
                self.corrupt.set(Some((at, value, !side_agent)));
                self.corrupted = true;
            }
            _ => self.pair.drive(),
        }
        self.check();
    }

    fn check(&mut self) {
        if !self.corrupted {
            assert_eq!(
                self.pair.balancer_error, None,
                "balancer failed without corruption"
            );
            assert_eq!(
                self.pair.agent_error, None,
                "agent failed without corruption"
            );
        }
        assert!(self.pair.balancer.stream_count() <= 8);
        assert!(self.pair.agent.stream_count() <= 8);
        let events: Vec<(bool, Event)> = self
            .pair
            .take_agent_events()
            .into_iter()
            .map(|e| (true, e))
            .chain(
                self.pair
                    .take_balancer_events()
                    .into_iter()
                    .map(|e| (false, e)),
            )
            .collect();
        for (at_agent, event) in events {
            match event {
                Event::Data { id, data, .. } => {
                    let offset = self.seen.entry((at_agent, id)).or_default();
                    if !self.corrupted {
                        assert_eq!(
                            data,
                            pattern(id, *offset, data.len()),
                            "body bytes of stream {id}"
                        );
                    }
                    *offset += data.len();
                    // Release half of the time so some streams stall.
                    if id.0 % 4 == 1 {
                        let conn = if at_agent {
                            &mut self.pair.agent
                        } else {
                            &mut self.pair.balancer
                        };
                        conn.release(id, data.len());
                    }
                }
                Event::Dead => {
                    // Only the fake clock's long jumps without traffic get here; fine.
                }
                _ => {}
            }
        }
    }
}

/// `len` body bytes of stream `id` starting at `offset`: each byte says where it belongs.
fn pattern(id: StreamId, offset: usize, len: usize) -> Bytes {
    (offset..offset + len)
        .map(|i| ((i + id.0 as usize * 7) % 251) as u8)
        .collect()
}
