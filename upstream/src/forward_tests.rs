//! The driver against real backend sockets on loopback, with an in-memory downstream: credit of
//! a failed write goes back, a stale pooled connection is retried on a fresh one when the
//! request allows it, and not otherwise.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream as StdTcpStream};
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ringway_core::http::{Limits, RequestHead, RequestParser};
use ringway_core::tunnel::ResetCode;
use ringway_core::upstream::{UpstreamConfig, UpstreamExchange};
use ringway_io::io::AsyncReadRent;
use ringway_io::net::TcpStream;

use super::{attempt, forward, Failure};
use crate::downstream::{BodyPiece, Downstream};
use crate::pool::{BackendPool, PoolConfig, Private};
use crate::test_runtime::block_on;

/// A downstream whose request body is queued up front and which records what it was sent.
#[derive(Default)]
struct Recorder {
    body: RefCell<VecDeque<BodyPiece>>,
    released: Cell<usize>,
    heads: RefCell<Vec<Bytes>>,
    data: RefCell<Vec<u8>>,
    ended: Cell<bool>,
    stopped: Cell<bool>,
}

impl Recorder {
    fn with_body(pieces: Vec<BodyPiece>) -> Self {
        Self {
            body: RefCell::new(pieces.into()),
            ..Self::default()
        }
    }
}

impl Downstream for Recorder {
    type Gone = &'static str;

    async fn recv_body(&self) -> Result<BodyPiece, Self::Gone> {
        let piece = self.body.borrow_mut().pop_front();
        match piece {
            Some(piece) => Ok(piece),
            None => std::future::pending().await,
        }
    }

    fn try_recv_body(&self) -> Result<Option<BodyPiece>, Self::Gone> {
        Ok(self.body.borrow_mut().pop_front())
    }

    fn release(&self, n: usize) {
        self.released.set(self.released.get() + n);
    }

    fn send_head(&self, head: Bytes, end: bool) -> Result<(), Self::Gone> {
        self.heads.borrow_mut().push(head);
        self.ended.set(self.ended.get() || end);
        Ok(())
    }

    async fn send_data(&self, data: Bytes, end: bool) -> Result<(), Self::Gone> {
        self.data.borrow_mut().extend_from_slice(&data);
        self.ended.set(self.ended.get() || end);
        Ok(())
    }

    fn stop_request(&self) {
        self.stopped.set(true);
    }

    async fn gone(&self) -> Self::Gone {
        std::future::pending().await
    }
}

fn request(head: &str) -> RequestHead {
    RequestParser::new(Limits::default())
        .parse(&mut BytesMut::from(head.as_bytes()))
        .unwrap()
        .unwrap()
}

fn config() -> UpstreamConfig {
    UpstreamConfig {
        response_timeout: Duration::from_secs(10),
        ..UpstreamConfig::default()
    }
}

fn pool_config() -> PoolConfig {
    PoolConfig {
        max_open: 4,
        max_idle: 4,
        idle_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
    }
}

/// Reads one request head (and nothing after it) from a backend connection.
fn read_head(conn: &mut StdTcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    head
}

const PIECE: usize = 16 * 1024;

#[test]
fn credit_of_a_failed_write_is_released() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    block_on(async move {
        let mut stream = TcpStream::connect_addr(addr).await.unwrap();
        let (peer, _) = listener.accept().unwrap();
        // Closing with a zero linger resets the connection: every later write to it fails.
        socket2::SockRef::from(&peer)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(peer);
        // Wait for the reset itself (not a guess of how long it takes): a read reports it.
        let (res, _) = stream.read(vec![0u8; 16]).await;
        assert!(res.is_err() || res.is_ok_and(|n| n == 0), "the peer reset");
        let down = Recorder::with_body(vec![BodyPiece::Data(Bytes::from(vec![b'b'; PIECE]))]);
        let exchange = RefCell::new(UpstreamExchange::new(
            request("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 32768\r\n\r\n"),
            true,
            config(),
        ));
        let result = attempt(&down, &exchange, stream, &mut BytesMut::new()).await;
        let Err(Failure::Upstream(e)) = result else {
            panic!("the attempt on a reset connection fails: {result:?}");
        };
        assert!(e.before_response, "{e}");
        assert_eq!(
            down.released.get(),
            PIECE,
            "the bytes taken for the failed write went back"
        );
    });
}

/// A backend that answers one request on its first connection, reads the next one there and
/// closes without answering (the close crossed it), then answers `answers` more requests on
/// one new connection each. Returns the request heads it saw.
fn stale_backend(answers: usize) -> (std::net::SocketAddr, std::thread::JoinHandle<Vec<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let backend = std::thread::spawn(move || {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let mut seen = Vec::new();
        let (mut first, _) = listener.accept().unwrap();
        seen.push(read_head(&mut first));
        first.write_all(ok).unwrap();
        seen.push(read_head(&mut first));
        drop(first);
        for _ in 0..answers {
            let (mut conn, _) = listener.accept().unwrap();
            seen.push(read_head(&mut conn));
            conn.write_all(ok).unwrap();
            // Keep the connection until the client is done with it.
            let _ = conn.read(&mut [0u8; 1]);
        }
        seen
    });
    (addr, backend)
}

#[test]
fn an_idempotent_request_on_a_stale_pooled_connection_is_retried_on_a_fresh_one() {
    let (addr, backend) = stale_backend(1);
    block_on(async move {
        let pool = BackendPool::new(addr.into(), pool_config());
        let get = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
        let first = Recorder::default();
        forward(&first, request(get), &pool, None, config())
            .await
            .unwrap();
        assert_eq!(&first.data.borrow()[..], b"ok");
        assert_eq!(pool.idle_count(), 1, "the keep-alive connection went back");
        let second = Recorder::default();
        forward(&second, request(get), &pool, None, config())
            .await
            .unwrap();
        assert_eq!(
            &second.data.borrow()[..],
            b"ok",
            "answered on the fresh connection"
        );
        assert!(second.ended.get());
        assert_eq!(pool.opened(), 2);
        pool.clear();
    });
    let seen = backend.join().unwrap();
    assert_eq!(
        seen.len(),
        3,
        "the GET ran twice: once on the stale connection"
    );
}

#[test]
fn a_sent_post_on_a_stale_pooled_connection_is_not_run_again() {
    let (addr, backend) = stale_backend(0);
    block_on(async move {
        let pool = BackendPool::new(addr.into(), pool_config());
        let first = Recorder::default();
        forward(
            &first,
            request("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            &pool,
            None,
            config(),
        )
        .await
        .unwrap();
        let post = Recorder::with_body(vec![
            BodyPiece::Data(Bytes::from_static(b"abc")),
            BodyPiece::End,
        ]);
        let result = forward(
            &post,
            request("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"),
            &pool,
            None,
            config(),
        )
        .await;
        let Err(Failure::Upstream(e)) = result else {
            panic!("the POST fails: {result:?}");
        };
        assert_eq!(e.reset_code(), ResetCode::BackendReset);
        assert_eq!(
            pool.opened(),
            1,
            "no second connection for a POST that was sent"
        );
        assert_eq!(post.released.get(), 3, "its body credit went back");
        assert!(post.heads.borrow().is_empty());
    });
    backend.join().unwrap();
}

#[test]
fn an_early_answer_stops_the_request_and_closes_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let backend = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        read_head(&mut conn);
        conn.write_all(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        let _ = conn.read(&mut [0u8; 64]);
    });
    block_on(async move {
        let pool = BackendPool::new(addr.into(), pool_config());
        // The body never ends: the backend answers without it.
        let down = Recorder::with_body(vec![BodyPiece::Data(Bytes::from_static(b"part"))]);
        let head = "PUT /big HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n";
        forward(&down, request(head), &Rc::clone(&pool), None, config())
            .await
            .unwrap();
        assert!(down.heads.borrow()[0].starts_with(b"HTTP/1.1 413"));
        assert!(down.stopped.get(), "the sender is told to stop");
        assert_eq!(
            pool.idle_count(),
            0,
            "a connection with a half-sent body is not reused"
        );
    });
    backend.join().unwrap();
}

#[test]
fn a_private_request_writes_the_preamble_first_on_every_fresh_connection_the_retry_too() {
    let (addr, backend) = stale_backend(1);
    let mut preamble = BytesMut::new();
    let header = ringway_core::proxy_protocol::ProxyHeader {
        command: ringway_core::proxy_protocol::Command::Proxy,
        source: Some("192.0.2.1:40000".parse().unwrap()),
        destination: Some("192.0.2.2:80".parse().unwrap()),
    };
    ringway_core::proxy_protocol::write_v1(&header, &mut preamble);
    let private = Private {
        owner: 7,
        preamble: preamble.freeze(),
    };
    let line = private.preamble.clone();
    block_on(async move {
        let pool = BackendPool::new(addr.into(), pool_config());
        let get = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
        for _ in 0..2 {
            let down = Recorder::default();
            forward(&down, request(get), &pool, Some(&private), config())
                .await
                .unwrap();
            assert_eq!(&down.data.borrow()[..], b"ok");
        }
        assert_eq!(pool.opened(), 2, "the stale connection was replaced once");
        pool.clear();
    });
    let seen = backend.join().unwrap();
    let starts_with_header = |head: &[u8]| {
        head.strip_prefix(&line[..])
            .is_some_and(|rest| rest.starts_with(b"GET /a "))
    };
    assert!(
        starts_with_header(&seen[0]),
        "the first connection: {seen:?}"
    );
    assert!(
        seen[1].starts_with(b"GET /a "),
        "a reused connection gets no second header: {seen:?}"
    );
    assert!(
        starts_with_header(&seen[2]),
        "the retry's fresh connection: {seen:?}"
    );
}
