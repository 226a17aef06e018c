//! An in-memory balancer/agent pair: moves bytes between two [`Connection`]s with a fake clock
//! and a hook that may split, delay, drop or alter the bytes on the way. Used by the tests and
//! the fuzz target; not part of the stable API.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::config::Config;
use super::connection::Connection;
use super::error::ProtocolError;
use super::event::Event;
use super::frame::{Hello, PROTOCOL_VERSION};

pub mod ops;

/// Which way bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Balancer → agent.
    ToAgent,
    /// Agent → balancer.
    ToBalancer,
}

/// Called with each (non-empty) batch one side transmits, before it goes in flight: alter, truncate or
/// clear it.
pub type Hook = Box<dyn FnMut(Direction, &mut BytesMut)>;

/// Both ends of a tunnel connection and the bytes in flight between them.
pub struct Pair {
    /// The balancer side.
    pub balancer: Connection,
    /// The agent side.
    pub agent: Connection,
    /// The fake clock both sides see.
    pub clock: Instant,
    /// Bytes sent by the balancer, not yet read by the agent.
    pub to_agent: BytesMut,
    /// Bytes sent by the agent, not yet read by the balancer.
    pub to_balancer: BytesMut,
    /// At most this many bytes are handed over per delivery (splits frames); `None` = all.
    pub max_delivery: Option<usize>,
    /// Events the balancer produced, in order.
    pub balancer_events: Vec<Event>,
    /// Events the agent produced, in order.
    pub agent_events: Vec<Event>,
    /// The protocol error the balancer reported, if any.
    pub balancer_error: Option<ProtocolError>,
    /// The protocol error the agent reported, if any.
    pub agent_error: Option<ProtocolError>,
    /// The agent's read buffer (a partial frame waits here).
    pub agent_read: BytesMut,
    /// The balancer's read buffer (a partial frame waits here).
    pub balancer_read: BytesMut,
    hook: Option<Hook>,
}

impl Pair {
    /// A pair with the same config on both sides and a default hello.
    pub fn new(config: &Config) -> Self {
        Self::with_hello(config, config, test_hello())
    }

    /// A pair with separate configs and the given hello.
    pub fn with_hello(balancer: &Config, agent: &Config, hello: Hello) -> Self {
        let clock = Instant::now();
        Self {
            balancer: Connection::balancer(balancer.clone(), clock),
            agent: Connection::agent(agent.clone(), hello, clock),
            clock,
            to_agent: BytesMut::new(),
            to_balancer: BytesMut::new(),
            max_delivery: None,
            balancer_events: Vec::new(),
            agent_events: Vec::new(),
            balancer_error: None,
            agent_error: None,
            agent_read: BytesMut::new(),
            balancer_read: BytesMut::new(),
            hook: None,
        }
    }

    /// Installs the byte hook.
    pub fn set_hook(&mut self, hook: impl FnMut(Direction, &mut BytesMut) + 'static) {
        self.hook = Some(Box::new(hook));
    }

    /// Removes the byte hook.
    pub fn clear_hook(&mut self) {
        self.hook = None;
    }

    /// Runs the handshake: the balancer accepts with `worker_count` workers, pinning to
    /// `worker_index`. Returns false when either side did not get there.
    pub fn handshake(&mut self, worker_count: u16, worker_index: u16) -> bool {
        self.drive();
        if !self
            .balancer_events
            .iter()
            .any(|e| matches!(e, Event::Hello(_)))
        {
            return false;
        }
        self.balancer.accept_hello(worker_count, worker_index);
        self.drive();
        self.balancer.is_open() && self.agent.is_open()
    }

    /// Transmits from the balancer into flight (through the hook); true when bytes moved.
    pub fn transmit_balancer(&mut self) -> bool {
        let mut batch = BytesMut::new();
        self.balancer.poll_transmit(&mut batch);
        if let Some(hook) = self.hook.as_mut().filter(|_| !batch.is_empty()) {
            hook(Direction::ToAgent, &mut batch);
        }
        let moved = !batch.is_empty();
        self.to_agent.extend_from_slice(&batch);
        moved
    }

    /// Transmits from the agent into flight (through the hook); true when bytes moved.
    pub fn transmit_agent(&mut self) -> bool {
        let mut batch = BytesMut::new();
        self.agent.poll_transmit(&mut batch);
        if let Some(hook) = self.hook.as_mut().filter(|_| !batch.is_empty()) {
            hook(Direction::ToBalancer, &mut batch);
        }
        let moved = !batch.is_empty();
        self.to_balancer.extend_from_slice(&batch);
        moved
    }

    /// Hands bytes in flight to the agent (at most `max_delivery`); true when any were read.
    pub fn deliver_to_agent(&mut self) -> bool {
        let mut side = Side {
            conn: &mut self.agent,
            read_buf: &mut self.agent_read,
            error: &mut self.agent_error,
            events: &mut self.agent_events,
        };
        deliver(&mut self.to_agent, self.max_delivery, &mut side, self.clock)
    }

    /// Hands bytes in flight to the balancer (at most `max_delivery`); true when any were read.
    pub fn deliver_to_balancer(&mut self) -> bool {
        let mut side = Side {
            conn: &mut self.balancer,
            read_buf: &mut self.balancer_read,
            error: &mut self.balancer_error,
            events: &mut self.balancer_events,
        };
        deliver(
            &mut self.to_balancer,
            self.max_delivery,
            &mut side,
            self.clock,
        )
    }

    /// Moves bytes both ways until nothing moves (or a bounded number of rounds passed).
    pub fn drive(&mut self) {
        for _ in 0..(1 << 24) {
            let mut moved = self.transmit_balancer();
            moved |= self.transmit_agent();
            moved |= self.deliver_to_agent();
            moved |= self.deliver_to_balancer();
            if !moved {
                return;
            }
        }
    }

    /// Advances the clock by `by`, fires due timers on both sides, and drives.
    pub fn advance(&mut self, by: Duration) {
        self.clock += by;
        for conn in [&mut self.balancer, &mut self.agent] {
            if conn.poll_timeout().is_some_and(|t| t <= self.clock) {
                conn.handle_timeout(self.clock);
            }
        }
        collect(&mut self.balancer, &mut self.balancer_events);
        collect(&mut self.agent, &mut self.agent_events);
        self.drive();
    }

    /// Takes the balancer's events so far.
    pub fn take_balancer_events(&mut self) -> Vec<Event> {
        collect(&mut self.balancer, &mut self.balancer_events);
        std::mem::take(&mut self.balancer_events)
    }

    /// Takes the agent's events so far.
    pub fn take_agent_events(&mut self) -> Vec<Event> {
        collect(&mut self.agent, &mut self.agent_events);
        std::mem::take(&mut self.agent_events)
    }
}

/// The hello a [`Pair`] uses unless told otherwise.
pub fn test_hello() -> Hello {
    Hello {
        version: PROTOCOL_VERSION,
        agent_id: "agent-1".into(),
        token: "token".into(),
        routes: vec!["example.com/".into()],
        worker: None,
    }
}

fn collect(conn: &mut Connection, events: &mut Vec<Event>) {
    while let Some(event) = conn.poll_event() {
        events.push(event);
    }
}

fn deliver(
    in_flight: &mut BytesMut,
    max: Option<usize>,
    side: &mut Side<'_>,
    now: Instant,
) -> bool {
    if in_flight.is_empty() || side.error.is_some() {
        return false;
    }
    let n = max.unwrap_or(usize::MAX).clamp(1, in_flight.len());
    side.read_buf.extend_from_slice(&in_flight.split_to(n));
    if let Err(err) = side.conn.handle_input(side.read_buf, now) {
        *side.error = Some(err);
    }
    collect(side.conn, side.events);
    true
}

struct Side<'a> {
    conn: &'a mut Connection,
    read_buf: &'a mut BytesMut,
    error: &'a mut Option<ProtocolError>,
    events: &'a mut Vec<Event>,
}
