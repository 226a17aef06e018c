//! Listening sockets for the workers and moving a connection between worker threads.
//!
//! Every worker owns its own listener on the same port (SO_REUSEPORT): the kernel spreads
//! incoming connections over them by a hash of the 4-tuple, so no accept lock is shared and no
//! connection crosses threads on the way in. Sockets are nonblocking, as monoio's epoll driver
//! needs for `TcpListener::from_std` / `TcpStream::from_std` (its io_uring driver accepts both).

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::sys;

/// A listener on `addr` with SO_REUSEADDR and the given accept `backlog` (the kernel caps it at
/// `net.core.somaxconn`). Not shared with other sockets: no SO_REUSEPORT.
pub fn listener(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    bind(addr, backlog, false)
}

/// `n` listeners on one port with SO_REUSEADDR + SO_REUSEPORT, one per worker, each ready for
/// `ringway_io::net::TcpListener::from_std` on its worker thread.
///
/// With port 0 the first socket's bind picks the port and the others bind to that same port,
/// so all `n` share it.
pub fn listener_group(addr: SocketAddr, backlog: i32, n: usize) -> io::Result<Vec<TcpListener>> {
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("listener group on {addr}: zero listeners requested"),
        ));
    }
    let first = bind(addr, backlog, true)?;
    let bound = first
        .local_addr()
        .map_err(|e| context(&e, "local_addr of listener", addr))?;
    let mut group = Vec::with_capacity(n);
    group.push(first);
    for _ in 1..n {
        group.push(bind(bound, backlog, true)?);
    }
    Ok(group)
}

/// Sends what the socket takes of `bytes` now, with one nonblocking `send` outside the runtime,
/// and returns the count (0 if the socket buffer is full). With io_uring the runtime's own write
/// is only submitted when its thread next enters the ring (after every task that is ready has
/// run); this puts the bytes on the wire at the moment of the call, which is what a load
/// generator's schedule needs. The rest, if any, is for the runtime's write.
pub fn send_now(stream: &ringway_io::net::TcpStream, bytes: &[u8]) -> io::Result<usize> {
    sys::send_dontwait(stream.as_raw_fd(), bytes)
}

/// Turns a monoio stream into a std stream that another thread can register with its own
/// runtime (`ringway_io::net::TcpStream::from_std`). The connection stays open and keeps its
/// buffered kernel data; the result is nonblocking.
///
/// Call it with no read or write of `stream` in flight: an io_uring operation that was
/// cancelled but had not completed could still consume bytes of the connection.
pub fn into_std(stream: ringway_io::net::TcpStream) -> io::Result<TcpStream> {
    // A second descriptor for the socket, then the runtime's one is closed through the runtime
    // (deregistered from epoll first, or closed by an io_uring op), which leaves the socket
    // itself open through the new descriptor.
    let fd = sys::dup_owned(stream.as_raw_fd()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("duplicating connection descriptor for hand-off: {e}"),
        )
    })?;
    drop(stream);
    let std_stream = TcpStream::from(fd);
    std_stream.set_nonblocking(true).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("making handed-off connection nonblocking: {e}"),
        )
    })?;
    Ok(std_stream)
}

/// Makes a listening socket queue no new connections: listen(2) again with a backlog of 0, so
/// that SYNs arriving now are dropped (the client retransmits, reaching whoever listens on the
/// port next) rather than completing handshakes that the coming close would reset. What is
/// already queued stays, to be accepted.
pub fn stop_queueing(listener: &impl std::os::fd::AsFd) -> io::Result<()> {
    SockRef::from(listener).listen(0)
}

/// Shuts a listening socket down: it stops listening (what its accept queue still holds is
/// reset) and a pending accept on it ends with an error.
pub fn shut_down_listener(listener: &impl std::os::fd::AsFd) -> io::Result<()> {
    SockRef::from(listener).shutdown(std::net::Shutdown::Read)
}

/// Sets TCP_NODELAY on any socket (std or one borrowed from a `socket2`/raw owner).
/// monoio streams have their own `set_nodelay`.
pub fn set_nodelay(socket: &impl std::os::fd::AsFd, on: bool) -> io::Result<()> {
    SockRef::from(socket).set_nodelay(on)
}

fn bind(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| context(&e, "socket", addr))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| context(&e, "SO_REUSEADDR", addr))?;
    if reuse_port {
        socket
            .set_reuse_port(true)
            .map_err(|e| context(&e, "SO_REUSEPORT", addr))?;
    }
    socket
        .set_nonblocking(true)
        .map_err(|e| context(&e, "O_NONBLOCK", addr))?;
    socket
        .bind(&addr.into())
        .map_err(|e| context(&e, "bind", addr))?;
    socket
        .listen(backlog)
        .map_err(|e| context(&e, "listen", addr))?;
    Ok(socket.into())
}

fn context(e: &io::Error, what: &str, addr: SocketAddr) -> io::Error {
    io::Error::new(e.kind(), format!("{what} on {addr}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_listeners_is_an_error() {
        let err = listener_group("127.0.0.1:0".parse().unwrap(), 16, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn plain_listener_refuses_a_second_bind() {
        let a = listener("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let err = listener(a.local_addr().unwrap(), 16).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains("bind on 127.0.0.1:"), "{err}");
    }

    #[test]
    fn nodelay_on_std_stream() {
        let l = listener("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        set_nodelay(&s, true).unwrap();
        assert!(s.nodelay().unwrap());
    }

    #[test]
    fn send_now_puts_the_bytes_on_the_wire_at_once() {
        use std::io::Read;
        // A blocking listener: the peer thread waits in accept.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = [0u8; 5];
            s.read_exact(&mut got).unwrap();
            got
        });
        let n = ringway_io::runtime::block_on(
            ringway_io::runtime::IoDriver::Auto,
            256,
            |_| async move {
                let s = ringway_io::net::TcpStream::connect_addr(addr)
                    .await
                    .unwrap();
                // Read by the peer without this thread entering the runtime again.
                let n = send_now(&s, b"hello").unwrap();
                let got = peer.join().unwrap();
                assert_eq!(&got, b"hello");
                n
            },
        );
        assert_eq!(n, 5);
    }
}
