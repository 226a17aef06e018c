//! The shared tunnel driver over loopback: the balancer end runs on `drive`, the agent end is
//! a bare state machine the test drives by hand over its socket.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;
use ringway_core::tunnel::pair::test_hello;
use ringway_core::tunnel::{Config, Connection, Event, ResetCode, StreamId};
use ringway_io::read_append;
use ringway_io::runtime::{block_on, IoDriver};
use ringway_io::tunnel::{drive, Exit, Link, Role, StreamEvent, StreamSlot};

const HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
const PUT: &[u8] = b"PUT / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1048576\r\n\r\n";

/// The balancer's role in these tests: it only remembers what it was told.
#[derive(Default)]
struct Recorder(RefCell<Vec<Event>>);

impl Role for Recorder {
    fn on_event(&self, event: Event) -> Result<(), Exit> {
        self.0.borrow_mut().push(event);
        Ok(())
    }
}

/// The agent end: a state machine over a socket, driven by the test.
struct Peer {
    conn: Connection,
    sock: TcpStream,
    inbuf: BytesMut,
    events: Vec<Event>,
    eof: bool,
}

impl Peer {
    /// Writes what the state machine queued (a balancer that closed may not read it).
    async fn flush(&mut self) {
        let mut out = BytesMut::new();
        if self.conn.poll_transmit(&mut out) {
            let _ = self.sock.write_all(out).await;
        }
    }

    /// Reads (flushing what it queued first) until `done` holds for the events seen, or EOF.
    async fn read_until(&mut self, done: impl Fn(&[Event]) -> bool) {
        while !done(&self.events) && !self.eof {
            self.flush().await;
            match read_append(&mut self.sock, &mut self.inbuf, 64 * 1024).await {
                Ok(0) | Err(_) => self.eof = true,
                Ok(_) => {
                    self.conn
                        .handle_input(&mut self.inbuf, Instant::now())
                        .unwrap();
                    while let Some(event) = self.conn.poll_event() {
                        self.events.push(event);
                    }
                }
            }
        }
        self.flush().await;
    }
}

fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

/// A handshaken connection: the balancer end driven by `drive`, the agent end by hand.
async fn connected(config: &Config) -> (Rc<Link>, monoio::task::JoinHandle<Exit>, Peer) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sock = TcpStream::connect_addr(addr).await.unwrap();
    let (accepted, _) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    let mut balancer_sock = TcpStream::from_std(accepted).unwrap();
    let mut peer = Peer {
        conn: Connection::agent(config.clone(), test_hello(), Instant::now()),
        sock,
        inbuf: BytesMut::new(),
        events: Vec::new(),
        eof: false,
    };
    peer.flush().await;
    let mut conn = Connection::balancer(config.clone(), Instant::now());
    let mut buf = BytesMut::new();
    loop {
        assert!(
            read_append(&mut balancer_sock, &mut buf, 4096)
                .await
                .unwrap()
                > 0
        );
        conn.handle_input(&mut buf, Instant::now()).unwrap();
        if matches!(conn.poll_event(), Some(Event::Hello(_))) {
            break;
        }
    }
    conn.accept_hello(1, 0);
    let link = Link::new(conn);
    let exit = monoio::spawn(drive(
        link.clone(),
        balancer_sock,
        buf,
        Rc::new(Recorder::default()),
    ));
    peer.read_until(|e| count(e, |e| matches!(e, Event::HelloAck(_))) == 1)
        .await;
    (link, exit, peer)
}

fn run<F: std::future::Future<Output = ()>>(test: F) {
    block_on(IoDriver::Epoll, 256, |_| async move {
        monoio::time::timeout(Duration::from_secs(20), test)
            .await
            .expect("test timed out");
    });
}

#[test]
fn frames_of_many_streams_leave_in_one_write() {
    run(async {
        let (link, _exit, mut peer) = connected(&Config::default()).await;
        let before = link.stats().writes;
        // Ten streams opened in one turn of this task: the writer wakes once for all of them.
        for _ in 0..10 {
            link.conn()
                .open_stream(Bytes::from_static(HEAD), true)
                .unwrap();
            link.flush();
        }
        peer.read_until(|e| count(e, |e| matches!(e, Event::StreamOpened { .. })) == 10)
            .await;
        assert_eq!(link.stats().writes - before, 1, "one write for ten streams");
    });
}

#[test]
fn closing_cancels_a_write_the_peer_does_not_read() {
    run(async {
        let config = Config {
            stream_window: 256 << 20,
            connection_window: 256 << 20,
            ..Config::default()
        };
        let (link, exit, mut peer) = connected(&config).await;
        let id = link
            .conn()
            .open_stream(Bytes::from_static(PUT), false)
            .unwrap();
        link.flush();
        peer.read_until(|e| count(e, |e| matches!(e, Event::StreamOpened { .. })) == 1)
            .await;
        let want = 32 << 20;
        while link.conn_ref().send_credit(id) < want {
            monoio::time::sleep(Duration::from_millis(5)).await;
        }
        // Far more than the socket buffers hold, and the peer reads nothing more.
        let mut body = Bytes::from(vec![b'x'; want]);
        link.send_data(id, &mut body, false).unwrap();
        assert!(body.is_empty());
        monoio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        link.close(Exit::Dead);
        let exit = exit.await;
        assert!(matches!(exit, Exit::Dead), "{exit}");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "the blocked write held the connection for {:?}",
            started.elapsed()
        );
        drop(peer);
    });
}

#[test]
fn a_protocol_error_is_answered_with_goaway_then_the_socket_closes() {
    run(async {
        let (_link, exit, mut peer) = connected(&Config::default()).await;
        // A frame of an unknown type on stream 0.
        let (res, _) = peer
            .sock
            .write_all(vec![0u8, 0, 0, 0xee, 0, 0, 0, 0, 0])
            .await;
        res.unwrap();
        peer.read_until(|_| false).await;
        assert!(peer.eof);
        assert!(
            peer.events.iter().any(|e| matches!(
                e,
                Event::GoAway {
                    code: ResetCode::Protocol,
                    ..
                }
            )),
            "{:?}",
            peer.events
        );
        assert!(matches!(exit.await, Exit::Protocol(_)));
    });
}

/// The agent end of the full-duplex test: answers the upload with a head and body bytes at
/// once, returns upload credit as the bytes arrive, and ends its body after the upload ended.
async fn echo_peer(mut peer: Peer, id: StreamId) {
    let mut pending = Bytes::new();
    let (mut opened, mut upload_ended) = (false, false);
    loop {
        peer.read_until(|e| !e.is_empty()).await;
        if peer.eof {
            return;
        }
        for event in std::mem::take(&mut peer.events) {
            match event {
                Event::StreamOpened { .. } => {
                    let head = Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n");
                    peer.conn.send_response_head(id, head, false).unwrap();
                    pending = Bytes::from(vec![b'r'; 300 * 1024]);
                    opened = true;
                }
                Event::Data { data, end, .. } => {
                    peer.conn.release(id, data.len());
                    upload_ended |= end;
                }
                _ => {}
            }
        }
        if !opened {
            continue;
        }
        // The body's end goes out only after the upload ended, with its last bytes.
        peer.conn.send_data(id, &mut pending, upload_ended).unwrap();
        if upload_ended && pending.is_empty() {
            peer.flush().await;
            return;
        }
    }
}

#[test]
fn an_upload_waits_for_credit_while_the_response_streams_on_the_same_stream() {
    run(async {
        let (link, _exit, peer) = connected(&Config::default()).await;
        let id = link
            .conn()
            .open_stream(Bytes::from_static(PUT), false)
            .unwrap();
        let slot = Rc::new(StreamSlot::new(id, false));
        link.insert_stream(slot.clone());
        link.flush();
        monoio::spawn(echo_peer(peer, id));
        let upload = {
            let (link, slot) = (link.clone(), slot.clone());
            monoio::spawn(async move {
                let mut body = Bytes::from(vec![b'u'; 1 << 20]);
                while !body.is_empty() {
                    link.send_data(id, &mut body, true).unwrap();
                    if !body.is_empty() {
                        link.writable(&slot).await;
                        assert!(!slot.is_failed());
                    }
                }
            })
        };
        let mut received = 0;
        loop {
            match slot.event().await {
                StreamEvent::Head { .. } => {}
                StreamEvent::Data { data, end } => {
                    received += data.len();
                    link.release(id, data.len());
                    if end {
                        break;
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        upload.await;
        assert_eq!(received, 300 * 1024);
    });
}
