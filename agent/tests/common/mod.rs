//! Test helpers: a fake balancer built on core's `tunnel::Connection` (balancer role) over a
//! blocking loopback socket, and a tiny blocking HTTP/1.1 client for the hello backend.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod setup;

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringway_core::http::{Limits, ResponseHead, ResponseParser};
use ringway_core::tunnel::{
    Config, Connection, Event, Frame, FrameDecoder, Hello, ResetCode, StreamId,
};

/// Generous bound for anything that should happen "at once" on loopback.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The balancer side of tunnel connections, accepting on a loopback port.
pub struct FakeBalancer {
    listener: TcpListener,
}

impl FakeBalancer {
    pub fn bind() -> Self {
        init_logs();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Self { listener }
    }

    /// Listens on a given address again (a balancer restart).
    pub fn bind_at(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        Self { listener }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap()
    }

    /// Waits for the next agent connection (its socket only, no hello read yet).
    pub fn accept_socket(&self, within: Duration) -> Option<TcpStream> {
        let deadline = Instant::now() + within;
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    sock.set_nonblocking(false).unwrap();
                    sock.set_nodelay(true).unwrap();
                    sock.set_read_timeout(Some(Duration::from_millis(2)))
                        .unwrap();
                    return Some(sock);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    /// Accepts a connection, reads its hello and acks it as worker `index(&hello)` of `count`.
    pub fn accept(&self, count: u16, index: impl FnOnce(&Hello) -> u16) -> FakeConn {
        let sock = self.accept_socket(PATIENCE).expect("no agent connection");
        let mut conn = FakeConn::new(sock);
        let hello = conn.wait_hello();
        conn.conn.accept_hello(count, index(&hello));
        conn.flush();
        conn.hello = Some(hello);
        conn
    }
}

/// One tunnel connection, balancer side.
pub struct FakeConn {
    sock: TcpStream,
    pub conn: Connection,
    inbuf: BytesMut,
    events: VecDeque<Event>,
    pub hello: Option<Hello>,
    pub eof: bool,
}

/// What came back on one stream.
#[derive(Debug, Default)]
pub struct Reply {
    pub heads: Vec<Bytes>,
    pub body: Vec<u8>,
    pub reset: Option<ResetCode>,
}

impl Reply {
    /// The final response head, parsed.
    pub fn head(&self) -> ResponseHead {
        let last = self.heads.last().expect("no response head");
        let mut buf = BytesMut::from(&last[..]);
        let limits = Limits {
            max_head_bytes: 64 * 1024,
            ..Limits::default()
        };
        ResponseParser::new(limits)
            .parse(&mut buf)
            .unwrap()
            .expect("incomplete head")
    }

    pub fn status(&self) -> u16 {
        self.head().status()
    }
}

impl FakeConn {
    pub fn new(sock: TcpStream) -> Self {
        Self {
            sock,
            conn: Connection::balancer(Config::default(), Instant::now()),
            inbuf: BytesMut::with_capacity(64 * 1024),
            events: VecDeque::new(),
            hello: None,
            eof: false,
        }
    }

    pub fn wait_hello(&mut self) -> Hello {
        match self.next_event(PATIENCE) {
            Some(Event::Hello(hello)) => hello,
            other => panic!("expected a hello, got {other:?}"),
        }
    }

    /// Writes whatever the state machine has queued.
    pub fn flush(&mut self) {
        let mut out = BytesMut::new();
        if self.conn.poll_transmit(&mut out) && !out.is_empty() {
            // The agent may be gone already; tests look at events, not at this error.
            let _ = self.sock.write_all(&out);
        }
    }

    /// One IO turn: timers, transmit, one short read, input.
    pub fn turn(&mut self) {
        self.conn.handle_timeout(Instant::now());
        self.flush();
        if self.eof {
            std::thread::sleep(Duration::from_millis(2));
        } else {
            let mut chunk = [0u8; 64 * 1024];
            match self.sock.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    self.conn
                        .handle_input(&mut self.inbuf, Instant::now())
                        .unwrap();
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => self.eof = true,
                Err(e) => panic!("tunnel read: {e}"),
            }
        }
        while let Some(event) = self.conn.poll_event() {
            self.events.push_back(event);
        }
    }

    pub fn next_event(&mut self, within: Duration) -> Option<Event> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            if Instant::now() >= deadline || (self.eof && self.events.is_empty()) {
                return None;
            }
            self.turn();
        }
    }

    /// Opens a stream with `head` and sends `body` in the given pieces.
    pub fn open(&mut self, head: &str, body: &[&[u8]]) -> StreamId {
        let id = self
            .conn
            .open_stream(Bytes::copy_from_slice(head.as_bytes()), body.is_empty())
            .unwrap();
        for (i, piece) in body.iter().enumerate() {
            let last = i + 1 == body.len();
            let mut data = Bytes::copy_from_slice(piece);
            self.conn.send_data(id, &mut data, last).unwrap();
            let deadline = Instant::now() + PATIENCE;
            while !data.is_empty() {
                assert!(Instant::now() < deadline, "no send credit from the agent");
                self.turn();
                self.conn.send_data(id, &mut data, last).unwrap();
            }
        }
        self.flush();
        id
    }

    /// Collects the reply of stream `id` until its end or reset. Events of other streams and
    /// connection events are kept in `others`.
    pub fn reply(&mut self, id: StreamId, others: &mut Vec<Event>) -> Reply {
        let mut reply = Reply::default();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(event) = self.next_event(left) else {
                panic!("stream {id} did not finish: {reply:?}, eof={}", self.eof);
            };
            match event {
                Event::ResponseHead { id: sid, head, end } if sid == id => {
                    reply.heads.push(head);
                    if end {
                        return reply;
                    }
                }
                Event::Data { id: sid, data, end } if sid == id => {
                    reply.body.extend_from_slice(&data);
                    self.conn.release(id, data.len());
                    if end {
                        return reply;
                    }
                }
                Event::Reset { id: sid, code } if sid == id => {
                    reply.reset = Some(code);
                    return reply;
                }
                other => others.push(other),
            }
        }
    }

    /// Collects the replies of several concurrent streams.
    pub fn replies(&mut self, ids: Vec<StreamId>) -> std::collections::HashMap<StreamId, Reply> {
        let mut open: std::collections::HashSet<StreamId> = ids.iter().copied().collect();
        let mut replies: std::collections::HashMap<StreamId, Reply> =
            ids.into_iter().map(|id| (id, Reply::default())).collect();
        let deadline = Instant::now() + PATIENCE;
        while !open.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(event) = self.next_event(left) else {
                panic!("streams {open:?} did not finish, eof={}", self.eof);
            };
            match event {
                Event::ResponseHead { id, head, end } if open.contains(&id) => {
                    replies.get_mut(&id).unwrap().heads.push(head);
                    if end {
                        open.remove(&id);
                    }
                }
                Event::Data { id, data, end } if open.contains(&id) => {
                    replies.get_mut(&id).unwrap().body.extend_from_slice(&data);
                    self.conn.release(id, data.len());
                    if end {
                        open.remove(&id);
                    }
                }
                Event::Reset { id, code } if open.contains(&id) => {
                    replies.get_mut(&id).unwrap().reset = Some(code);
                    open.remove(&id);
                }
                _ => {}
            }
        }
        replies
    }

    /// `open` then `reply`.
    pub fn request(&mut self, head: &str, body: &[&[u8]]) -> Reply {
        let id = self.open(head, body);
        let mut others = Vec::new();
        let reply = self.reply(id, &mut others);
        assert!(
            others.iter().all(|e| matches!(e, Event::Writable { .. })),
            "unexpected events: {others:?}"
        );
        reply
    }

    /// Waits until a frame matching `want` has arrived but is not read yet: it sits in the
    /// socket's receive buffer, unseen by the state machine (a frame in flight, for tests that
    /// race something against it). False when none arrives `within`, or at EOF.
    pub fn wait_unread(&self, within: Duration, want: impl Fn(&Frame) -> bool) -> bool {
        let deadline = Instant::now() + within;
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            match self.sock.peek(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    // `inbuf` holds the start of a frame the state machine has not had whole.
                    let mut unread = BytesMut::from(&self.inbuf[..]);
                    unread.extend_from_slice(&chunk[..n]);
                    let mut decoder = FrameDecoder::new(1 << 24);
                    while let Ok(Some(frame)) = decoder.decode(&mut unread) {
                        if want(&frame) {
                            return true;
                        }
                    }
                }
                // The read timeout (2 ms) passed with nothing to read.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("tunnel peek: {e}"),
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Closes the socket (the agent sees EOF).
    pub fn close(self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}

fn read_into(sock: &mut TcpStream, buf: &mut BytesMut) -> usize {
    let mut chunk = [0u8; 64 * 1024];
    let n = sock.read(&mut chunk).unwrap();
    buf.extend_from_slice(&chunk[..n]);
    n
}

/// A loopback port with nothing listening.
pub fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Agent logs in test output (`RUST_LOG` to change the level; default warn).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
