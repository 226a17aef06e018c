//! Listener groups on one port, and handing a live connection to another worker thread.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringway_io::io::{AsyncReadRentExt, AsyncWriteRentExt};
use ringway_tuning::runtime::{spawn_worker, WorkerSpec};
use ringway_tuning::socket::{into_std, listener, listener_group};

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn port_zero_resolves_to_one_port_for_the_whole_group() {
    let group = listener_group(any_port(), 64, 4).unwrap();
    assert_eq!(group.len(), 4);
    let port = group[0].local_addr().unwrap().port();
    assert_ne!(port, 0);
    for l in &group {
        assert_eq!(l.local_addr().unwrap().port(), port);
    }
    // The port is held by the group (reuseport sockets) and refuses a plain listener.
    let addr = group[0].local_addr().unwrap();
    assert_eq!(listener(addr, 16).unwrap_err().kind(), ErrorKind::AddrInUse);
}

#[test]
fn every_connection_to_the_port_is_accepted_by_one_of_the_group() {
    let group = listener_group(any_port(), 64, 3).unwrap();
    let addr = group[0].local_addr().unwrap();
    let clients: Vec<TcpStream> = (0..12).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut accepted = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while accepted < clients.len() && Instant::now() < deadline {
        for l in &group {
            match l.accept() {
                Ok(_) => accepted += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept: {e}"),
            }
        }
    }
    assert_eq!(accepted, clients.len());
}

#[test]
fn group_listeners_serve_on_both_drivers() {
    for (driver, _) in common::drivers() {
        let mut group = listener_group(any_port(), 64, 1).unwrap();
        let addr = group[0].local_addr().unwrap();
        let std_listener = group.pop().unwrap();
        let spec = WorkerSpec {
            name: format!("echo-{driver}"),
            cpu: None,
            driver,
            ring_entries: 256,
        };
        let server = spawn_worker(spec, move |_| async move {
            let l = ringway_io::net::TcpListener::from_std(std_listener).unwrap();
            common::echo_one(l).await
        })
        .unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        client.write_all(b"hello group").unwrap();
        let mut back = [0u8; 11];
        client.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"hello group");
        drop(client);
        assert_eq!(server.join().unwrap(), 11);
    }
}

/// Worker A accepts and reads the first message, then hands the connection to worker B, which
/// reads what the client had already sent and answers on the same connection.
#[test]
fn into_std_hands_a_connection_to_another_thread() {
    for (driver, _) in common::drivers() {
        let l = listener(any_port(), 16).unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = mpsc::channel::<TcpStream>();

        let a = WorkerSpec {
            name: format!("accept-{driver}"),
            cpu: None,
            driver,
            ring_entries: 256,
        };
        let acceptor = spawn_worker(a, move |_| async move {
            let l = ringway_io::net::TcpListener::from_std(l).unwrap();
            let (mut conn, _) = l.accept().await.unwrap();
            let (res, first) = conn.read_exact(vec![0u8; 4]).await;
            res.unwrap();
            tx.send(into_std(conn).unwrap()).unwrap();
            first
        })
        .unwrap();

        let b = WorkerSpec {
            name: format!("owner-{driver}"),
            cpu: None,
            driver,
            ring_entries: 256,
        };
        let owner = spawn_worker(b, move |_| async move {
            let std_conn = rx.recv().unwrap();
            let mut conn = ringway_io::net::TcpStream::from_std(std_conn).unwrap();
            let (res, rest) = conn.read_exact(vec![0u8; 5]).await;
            res.unwrap();
            let (res, _) = conn.write_all(b"pong".to_vec()).await;
            res.unwrap();
            rest
        })
        .unwrap();

        let mut client = TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.write_all(b"pingagain").unwrap();
        let mut reply = [0u8; 4];
        client.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"pong", "driver {driver}");
        assert_eq!(acceptor.join().unwrap(), b"ping");
        assert_eq!(owner.join().unwrap(), b"again");
        // The owner dropped the connection: the client sees a clean close, not a reset.
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).unwrap(), 0);
    }
}
