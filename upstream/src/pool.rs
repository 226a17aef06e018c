//! The keep-alive pool of backend connections of one runtime thread, to one backend address (a
//! TCP address or a unix socket path).
//!
//! Bounded twice: at most `max_open` connections to the backend exist at once (in use or idle; a
//! stream that finds none free waits for one to come back), and at most `max_idle` of them are
//! kept idle (a connection returned to a full idle list closes the oldest). An idle connection
//! older than `idle_timeout` is closed instead of reused (backends close idle keep-alive
//! connections themselves after a while), and so is one that became readable while idle (the
//! backend closed it). A reused connection may still turn out stale (the close crossed the
//! request); the driver (`forward`) then retries once on a fresh connection, which
//! [`BackendPool::connect_fresh`] provides, when core's `UpstreamExchange` allows it.
//!
//! A connection may be [`Private`] to one owner (a user connection whose client a PROXY
//! protocol header names, as HAProxy's `send-proxy` servers are): it starts with the owner's
//! preamble, is handed only to that owner's later requests, and is closed when the owner says
//! it is gone ([`BackendPool::close_owned`]). Shared connections (no owner) take the path they
//! always took.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringway_io::io::AsyncWriteRentExt;
use ringway_io::net::{TcpStream, UnixStream};
use ringway_io::BufPool;

/// Bytes of a backend read buffer (what one read asks for, see `forward.rs`).
const READ_BUF: usize = 32 * 1024;
/// Spare read buffers a pool keeps for the next requests.
const SPARE_BUFS: usize = 64;

/// Pool sizes and timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Connections that may exist at once (in use or idle).
    pub max_open: usize,
    /// Idle connections kept.
    pub max_idle: usize,
    /// An idle connection older than this is closed instead of reused.
    pub idle_timeout: Duration,
    /// How long a connect may take.
    pub connect_timeout: Duration,
}

/// Where a backend listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BackendAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix stream socket path (the common case next to the backend: no TCP stack, no port).
    Unix(PathBuf),
}

impl From<SocketAddr> for BackendAddr {
    fn from(addr: SocketAddr) -> Self {
        Self::Tcp(addr)
    }
}

impl std::fmt::Display for BackendAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(addr) => addr.fmt(f),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A backend address that is neither `IP:PORT` nor `unix:/path`.
#[derive(Debug, thiserror::Error)]
#[error("backend address {0:?}: expected IP:PORT or unix:/path/to.sock")]
pub struct BadBackendAddr(String);

impl std::str::FromStr for BackendAddr {
    type Err = BadBackendAddr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(BadBackendAddr(s.to_owned()));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        s.parse()
            .map(Self::Tcp)
            .map_err(|_| BadBackendAddr(s.to_owned()))
    }
}

/// Whose a private connection is, and what it says first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Private {
    /// The owner: unique among the owners of this thread (a user connection).
    pub owner: u64,
    /// Written on each new connection before any request byte (a PROXY protocol header).
    pub preamble: Bytes,
}

/// A connection to a backend, over TCP or a unix socket.
#[derive(Debug)]
pub enum BackendStream {
    /// Over TCP.
    Tcp(TcpStream),
    /// Over a unix stream socket.
    Unix(UnixStream),
}

impl AsRawFd for BackendStream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Self::Tcp(s) => s.as_raw_fd(),
            Self::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// A backend connection checked out of the pool. Dropping it (with or without its stream)
/// frees its place in the pool; [`BackendConn::checkin`] returns it for reuse.
#[derive(Debug)]
pub struct BackendConn {
    stream: Option<BackendStream>,
    /// The read buffer for this request, from the pool's buffers; an idle connection holds none.
    read_buf: BytesMut,
    /// It served an earlier request (so it may be stale).
    pub reused: bool,
    /// The owner of a private connection.
    owner: Option<u64>,
    lease: Lease,
}

impl BackendConn {
    /// The socket, for the exchange (the place in the pool stays taken).
    pub fn take_stream(&mut self) -> Option<BackendStream> {
        self.stream.take()
    }

    /// The read buffer, for the exchange (empty, taken from the pool's spare buffers).
    pub fn take_read_buf(&mut self) -> BytesMut {
        std::mem::take(&mut self.read_buf)
    }

    /// Returns a connection that finished a response cleanly and may serve another request;
    /// its (emptied) read buffer goes back to the pool's spare buffers, not with it.
    pub fn checkin(mut self, stream: BackendStream, mut read_buf: BytesMut) {
        let pool = self.lease.pool.clone();
        self.lease.held = false;
        read_buf.clear();
        pool.bufs.give(read_buf);
        pool.put_idle(stream, self.owner);
    }
}

/// Why no backend connection could be had.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The backend refused or could not be reached.
    #[error("connecting to backend {addr}: {source}")]
    Io {
        /// The backend.
        addr: BackendAddr,
        /// What the connect said.
        source: io::Error,
    },
    /// The preamble of a private connection could not be written.
    #[error("writing the preamble (PROXY protocol header) to backend {addr}: {source}")]
    Preamble {
        /// The backend.
        addr: BackendAddr,
        /// What the write said.
        source: io::Error,
    },
    /// The connect did not finish in time.
    #[error("connecting to backend {addr}: timed out after {after:?}")]
    Timeout {
        /// The backend.
        addr: BackendAddr,
        /// The connect timeout.
        after: Duration,
    },
}

#[derive(Debug)]
struct Idle {
    stream: BackendStream,
    since: Instant,
    /// The owner of a private connection.
    owner: Option<u64>,
}

/// Keep-alive connections to one backend address, for one thread.
#[derive(Debug)]
pub struct BackendPool {
    addr: BackendAddr,
    config: PoolConfig,
    idle: RefCell<VecDeque<Idle>>,
    /// Connections that exist: checked out (or being connected) plus idle.
    open: Cell<usize>,
    /// Streams waiting for `open` to drop below `max_open`.
    waiters: RefCell<Vec<Waker>>,
    opened: Cell<u64>,
    /// Read buffers between requests: a connection takes one for a request and gives it back
    /// after, so idle connections hold no buffer.
    bufs: BufPool,
}

impl BackendPool {
    /// An empty pool for `addr`.
    pub fn new(addr: BackendAddr, config: PoolConfig) -> Rc<Self> {
        Rc::new(Self {
            addr,
            config,
            idle: RefCell::new(VecDeque::new()),
            open: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
            opened: Cell::new(0),
            bufs: BufPool::new(READ_BUF, SPARE_BUFS),
        })
    }

    /// The most recently returned idle connection that is young enough, else a new one (waiting
    /// while `max_open` connections exist). With `private`, only a connection of the same owner
    /// is reused, and a new one starts with its preamble.
    pub async fn checkout(
        self: &Rc<Self>,
        private: Option<&Private>,
    ) -> Result<BackendConn, ConnectError> {
        let owner = private.map(|p| p.owner);
        loop {
            if let Some(conn) = self.take_idle(owner) {
                return Ok(conn);
            }
            if let Some(lease) = self.try_lease() {
                return self.connect(lease, private).await;
            }
            // At the bound, the idle connections left are other owners': one makes room.
            if owner.is_some() && self.close_oldest_idle() {
                continue;
            }
            self.freed().await;
        }
    }

    /// A new connection, bypassing the idle list (still within `max_open`); with `private`, it
    /// starts with its preamble.
    pub async fn connect_fresh(
        self: &Rc<Self>,
        private: Option<&Private>,
    ) -> Result<BackendConn, ConnectError> {
        loop {
            if let Some(lease) = self.try_lease() {
                return self.connect(lease, private).await;
            }
            // At the bound: an idle connection is closed to make room.
            if self.close_oldest_idle() {
                continue;
            }
            self.freed().await;
        }
    }

    /// The backend this pool connects to.
    pub fn addr(&self) -> &BackendAddr {
        &self.addr
    }

    /// Idle connections now held.
    pub fn idle_count(&self) -> usize {
        self.idle.borrow().len()
    }

    /// Connections that exist now (checked out plus idle).
    pub fn open_count(&self) -> usize {
        self.open.get()
    }

    /// Connections opened so far (fresh connects).
    pub fn opened(&self) -> u64 {
        self.opened.get()
    }

    /// Streams waiting for a connection to be returned or closed.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiters.borrow().len()
    }

    /// Closes every idle connection.
    pub fn clear(&self) {
        while self.close_oldest_idle() {}
    }

    /// Closes the idle connections private to `owner` (it is gone: no request of its will come).
    pub fn close_owned(&self, owner: u64) {
        let before = self.idle.borrow().len();
        self.idle
            .borrow_mut()
            .retain(|idle| idle.owner != Some(owner));
        let closed = before - self.idle.borrow().len();
        for _ in 0..closed {
            self.closed_one();
        }
    }

    fn take_idle(self: &Rc<Self>, owner: Option<u64>) -> Option<BackendConn> {
        let now = Instant::now();
        loop {
            // Most recently used first: the warmest connection is the least likely to be stale.
            // (A shared pool's last entry is always a match; a private one's may be further in.)
            let idle = {
                let mut idle = self.idle.borrow_mut();
                let at = idle.iter().rposition(|i| i.owner == owner)?;
                idle.remove(at)?
            };
            if now.duration_since(idle.since) < self.config.idle_timeout && is_quiet(&idle.stream) {
                let lease = Lease {
                    pool: self.clone(),
                    held: true,
                };
                return Some(BackendConn {
                    stream: Some(idle.stream),
                    read_buf: self.bufs.take(),
                    reused: true,
                    owner,
                    lease,
                });
            }
            self.closed_one();
        }
    }

    fn try_lease(self: &Rc<Self>) -> Option<Lease> {
        if self.open.get() >= self.config.max_open.max(1) {
            return None;
        }
        self.open.set(self.open.get() + 1);
        Some(Lease {
            pool: self.clone(),
            held: true,
        })
    }

    async fn connect(
        &self,
        lease: Lease,
        private: Option<&Private>,
    ) -> Result<BackendConn, ConnectError> {
        let after = self.config.connect_timeout;
        // On an error the lease drops here and frees its place.
        let connected = match &self.addr {
            BackendAddr::Tcp(addr) => {
                ringway_io::time::timeout(after, TcpStream::connect_addr(*addr))
                    .await
                    .map(|r| r.map(BackendStream::Tcp))
            }
            BackendAddr::Unix(path) => ringway_io::time::timeout(after, UnixStream::connect(path))
                .await
                .map(|r| r.map(BackendStream::Unix)),
        };
        let stream = match connected {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(ConnectError::Io {
                    addr: self.addr.clone(),
                    source,
                })
            }
            Err(_) => {
                return Err(ConnectError::Timeout {
                    addr: self.addr.clone(),
                    after,
                })
            }
        };
        if let BackendStream::Tcp(tcp) = &stream {
            // Request heads and small responses go out at once; latency matters more than
            // packets.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(backend = %self.addr, error = %e, "set_nodelay failed");
            }
        }
        let stream = match private {
            None => stream,
            Some(private) => self.write_preamble(stream, private).await?,
        };
        self.opened.set(self.opened.get() + 1);
        Ok(BackendConn {
            stream: Some(stream),
            read_buf: self.bufs.take(),
            reused: false,
            owner: private.map(|p| p.owner),
            lease,
        })
    }

    /// Writes a private connection's preamble, within the connect timeout, before any request
    /// byte can be.
    async fn write_preamble(
        &self,
        mut stream: BackendStream,
        private: &Private,
    ) -> Result<BackendStream, ConnectError> {
        let after = self.config.connect_timeout;
        let preamble = private.preamble.clone();
        let written = match &mut stream {
            BackendStream::Tcp(s) => ringway_io::time::timeout(after, s.write_all(preamble)).await,
            BackendStream::Unix(s) => ringway_io::time::timeout(after, s.write_all(preamble)).await,
        };
        match written {
            Ok((Ok(_), _)) => Ok(stream),
            Ok((Err(source), _)) => Err(ConnectError::Preamble {
                addr: self.addr.clone(),
                source,
            }),
            Err(_) => Err(ConnectError::Timeout {
                addr: self.addr.clone(),
                after,
            }),
        }
    }

    fn put_idle(&self, stream: BackendStream, owner: Option<u64>) {
        if self.config.max_idle == 0 {
            drop(stream);
            self.closed_one();
            return;
        }
        if self.idle.borrow().len() >= self.config.max_idle {
            // Full: close the oldest, keep the warm one.
            self.close_oldest_idle();
        }
        self.idle.borrow_mut().push_back(Idle {
            stream,
            since: Instant::now(),
            owner,
        });
        self.wake_waiters();
    }

    fn close_oldest_idle(&self) -> bool {
        let oldest = self.idle.borrow_mut().pop_front();
        match oldest {
            Some(idle) => {
                drop(idle);
                self.closed_one();
                true
            }
            None => false,
        }
    }

    /// One connection ceased to exist.
    fn closed_one(&self) {
        self.open.set(self.open.get().saturating_sub(1));
        self.wake_waiters();
    }

    fn wake_waiters(&self) {
        // Every waiter re-checks; a stale waker (its stream gave up) costs one empty poll.
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Completes after the next time a connection was returned or closed.
    fn freed(&self) -> Freed<'_> {
        Freed {
            pool: self,
            registered: false,
        }
    }
}

/// An idle HTTP/1.1 connection has nothing to say: a readable one holds the backend's FIN or RST
/// (it closed the connection while it sat idle) or stray bytes, and is not reused. Checked before
/// each reuse with one `poll(2)` that does not wait, so that the common stale case is caught
/// before a request is written to it (a request that was written is retried only when it is
/// idempotent). An error of the check counts as not quiet.
fn is_quiet(stream: &BackendStream) -> bool {
    use nix::poll::{poll, PollFd, PollFlags};

    let mut fds = [PollFd::new(stream.as_raw_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, 0), Ok(0))
}

/// One place among the `max_open` connections; freed on drop unless handed to the idle list.
#[derive(Debug)]
struct Lease {
    pool: Rc<BackendPool>,
    held: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.held {
            self.pool.closed_one();
        }
    }
}

struct Freed<'a> {
    pool: &'a BackendPool,
    registered: bool,
}

impl Future for Freed<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.registered {
            return Poll::Ready(());
        }
        self.registered = true;
        self.pool.waiters.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_runtime::block_on;

    fn config(max_open: usize, max_idle: usize, idle_timeout: Duration) -> PoolConfig {
        PoolConfig {
            max_open,
            max_idle,
            idle_timeout,
            connect_timeout: Duration::from_secs(1),
        }
    }

    /// A listener that accepts and holds `n` connections.
    fn backend(
        n: usize,
    ) -> (
        BackendAddr,
        std::thread::JoinHandle<Vec<std::net::TcpStream>>,
    ) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accept =
            std::thread::spawn(move || (0..n).map(|_| listener.accept().unwrap().0).collect());
        (BackendAddr::Tcp(addr), accept)
    }

    fn checkin(mut conn: BackendConn) {
        let stream = conn.take_stream().unwrap();
        let read_buf = conn.take_read_buf();
        conn.checkin(stream, read_buf);
    }

    /// Blocks until `fd` is readable (the peer's FIN arrived), at most 10 s.
    fn wait_readable(fd: RawFd) {
        use nix::poll::{poll, PollFd, PollFlags};
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        assert_eq!(
            poll(&mut fds, 10_000),
            Ok(1),
            "the peer's close never arrived"
        );
    }

    #[test]
    fn reuses_checked_in_connections_and_bounds_the_idle_list() {
        let (addr, accept) = backend(3);
        block_on(async move {
            let pool = BackendPool::new(addr, config(10, 2, Duration::from_secs(10)));
            let a = pool.checkout(None).await.unwrap();
            let b = pool.checkout(None).await.unwrap();
            let c = pool.checkout(None).await.unwrap();
            assert!(!a.reused && !b.reused && !c.reused);
            assert_eq!((pool.opened(), pool.open_count()), (3, 3));
            checkin(a);
            checkin(b);
            checkin(c);
            assert_eq!(pool.idle_count(), 2, "bounded by max_idle");
            assert_eq!(pool.open_count(), 2, "the third was closed");
            let d = pool.checkout(None).await.unwrap();
            assert!(d.reused);
            assert_eq!(pool.opened(), 3, "no new connect for a pooled connection");
            drop(d);
            assert_eq!(pool.open_count(), 1, "a dropped connection frees its place");
        });
        accept.join().unwrap();
    }

    #[test]
    fn at_most_max_open_connections_and_waiters_get_the_next_one() {
        let (addr, accept) = backend(2);
        block_on(async move {
            let pool = BackendPool::new(addr, config(2, 2, Duration::from_secs(10)));
            let a = pool.checkout(None).await.unwrap();
            let b = pool.checkout(None).await.unwrap();
            let waiter = {
                let pool = pool.clone();
                ringway_io::spawn(async move { pool.checkout(None).await.unwrap().reused })
            };
            // Until the waiter waits for a place (it cannot connect: two are open).
            let deadline = Instant::now() + Duration::from_secs(10);
            while pool.waiting() == 0 {
                assert!(Instant::now() < deadline, "the third checkout never waited");
                ringway_io::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(
                (pool.open_count(), pool.opened()),
                (2, 2),
                "the third stream waits instead of connecting"
            );
            checkin(a);
            assert!(waiter.await, "the waiter took the returned connection");
            drop(b);
            assert_eq!(pool.opened(), 2);
        });
        accept.join().unwrap();
    }

    #[test]
    fn fresh_connect_at_the_bound_closes_an_idle_connection() {
        let (addr, accept) = backend(2);
        block_on(async move {
            let pool = BackendPool::new(addr, config(1, 1, Duration::from_secs(10)));
            checkin(pool.checkout(None).await.unwrap());
            let fresh = pool.connect_fresh(None).await.unwrap();
            assert!(!fresh.reused);
            assert_eq!((pool.idle_count(), pool.open_count()), (0, 1));
        });
        accept.join().unwrap();
    }

    #[test]
    fn refused_connect_is_an_io_error_and_frees_its_place() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        block_on(async move {
            let pool = BackendPool::new(addr.into(), config(1, 2, Duration::from_secs(10)));
            for _ in 0..2 {
                match pool.checkout(None).await {
                    Err(ConnectError::Io { source, .. }) => {
                        assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused);
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(pool.open_count(), 0);
        });
    }

    #[test]
    fn an_idle_connection_the_backend_closed_is_not_reused() {
        let (addr, accept) = backend(2);
        block_on(async move {
            let pool = BackendPool::new(addr, config(10, 4, Duration::from_secs(10)));
            let first = pool.checkout(None).await.unwrap();
            let mut second = pool.checkout(None).await.unwrap();
            let warm = second.stream.as_ref().unwrap().as_raw_fd();
            checkin(first);
            // The backend closes the warmer connection (handed out first); the other stays open.
            let mut held = accept.join().unwrap();
            let peer_of_second = {
                let local = match second.stream.as_ref().unwrap() {
                    BackendStream::Tcp(s) => s.local_addr().unwrap(),
                    BackendStream::Unix(_) => unreachable!("a TCP backend"),
                };
                held.iter()
                    .position(|p| p.peer_addr().unwrap() == local)
                    .unwrap()
            };
            let stream = second.take_stream().unwrap();
            let read_buf = second.take_read_buf();
            second.checkin(stream, read_buf);
            drop(held.remove(peer_of_second));
            wait_readable(warm);
            let open = pool.checkout(None).await.unwrap();
            assert!(open.reused);
            assert_eq!(
                (pool.idle_count(), pool.open_count(), pool.opened()),
                (0, 1, 2),
                "the closed one was dropped, not handed out"
            );
            drop(held);
        });
    }

    #[test]
    fn an_idle_connection_holds_no_buffer_and_the_next_request_reuses_the_allocation() {
        let (addr, accept) = backend(1);
        block_on(async move {
            let pool = BackendPool::new(addr, config(10, 4, Duration::from_secs(10)));
            let mut conn = pool.checkout(None).await.unwrap();
            let stream = conn.take_stream().unwrap();
            let mut read_buf = conn.take_read_buf();
            read_buf.reserve(32 * 1024);
            read_buf.extend_from_slice(b"a response, consumed");
            let allocation = read_buf.as_ptr();
            conn.checkin(stream, read_buf);
            let mut again = pool.checkout(None).await.unwrap();
            assert!(again.reused);
            let read_buf = again.take_read_buf();
            assert!(read_buf.is_empty());
            assert!(read_buf.capacity() >= 32 * 1024);
            assert_eq!(read_buf.as_ptr(), allocation, "the same allocation");
        });
        accept.join().unwrap();
    }

    #[test]
    fn expired_idle_connections_are_not_reused() {
        let (addr, accept) = backend(2);
        block_on(async move {
            // An idle timeout of zero: every idle connection has expired when it is next asked for.
            let pool = BackendPool::new(addr, config(10, 4, Duration::ZERO));
            checkin(pool.checkout(None).await.unwrap());
            assert_eq!(pool.idle_count(), 1);
            let b = pool.checkout(None).await.unwrap();
            assert!(!b.reused);
            assert_eq!(
                (pool.idle_count(), pool.open_count(), pool.opened()),
                (0, 1, 2)
            );
        });
        accept.join().unwrap();
    }

    #[test]
    fn a_unix_socket_backend_is_pooled_like_a_tcp_one() {
        let dir = std::env::temp_dir().join(format!("ringway-pool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("backend.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let accept = std::thread::spawn(move || listener.accept().unwrap().0);
        let addr: BackendAddr = format!("unix:{}", path.display()).parse().unwrap();
        assert_eq!(addr, BackendAddr::Unix(path));
        block_on(async move {
            let pool = BackendPool::new(addr, config(10, 4, Duration::from_secs(10)));
            let conn = pool.checkout(None).await.unwrap();
            assert!(!conn.reused);
            checkin(conn);
            let again = pool.checkout(None).await.unwrap();
            assert!(again.reused, "the idle unix connection is reused");
            assert_eq!(pool.opened(), 1);
        });
        drop(accept.join().unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn private(owner: u64, preamble: &'static [u8]) -> Private {
        Private {
            owner,
            preamble: Bytes::from_static(preamble),
        }
    }

    /// The bytes `conn` received so far, without waiting for more.
    fn received(conn: &mut std::net::TcpStream) -> Vec<u8> {
        use std::io::Read;
        conn.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return got,
                Err(e) => panic!("reading what the pool wrote: {e}"),
            }
        }
    }

    #[test]
    fn a_private_connection_serves_its_owner_only_and_starts_with_its_preamble() {
        let (addr, accept) = backend(3);
        block_on(async move {
            let pool = BackendPool::new(addr, config(10, 4, Duration::from_secs(10)));
            let (one, two) = (private(1, b"one\n"), private(2, b"two\n"));
            let a = pool.checkout(Some(&one)).await.unwrap();
            assert!(!a.reused);
            checkin(a);
            let b = pool.checkout(Some(&two)).await.unwrap();
            assert!(!b.reused, "owner 2 never gets owner 1's connection");
            let shared = pool.checkout(None).await.unwrap();
            assert!(!shared.reused, "nor does a shared request");
            checkin(b);
            checkin(shared);
            let again = pool.checkout(Some(&one)).await.unwrap();
            assert!(again.reused, "owner 1's next request reuses its connection");
            checkin(again);
            assert_eq!((pool.opened(), pool.idle_count()), (3, 3));
            pool.close_owned(1);
            assert_eq!(
                (pool.idle_count(), pool.open_count()),
                (2, 2),
                "a gone owner's idle connections close"
            );
            assert!(pool.checkout(None).await.unwrap().reused);
        });
        let mut held = accept.join().unwrap();
        // Accepted in the order connected: each starts with its owner's preamble, the shared one
        // with nothing.
        assert_eq!(received(&mut held[0]), b"one\n");
        assert_eq!(received(&mut held[1]), b"two\n");
        assert_eq!(received(&mut held[2]), b"");
    }

    #[test]
    fn at_the_bound_a_private_checkout_closes_another_owners_idle_connection() {
        let (addr, accept) = backend(2);
        block_on(async move {
            let pool = BackendPool::new(addr, config(1, 1, Duration::from_secs(10)));
            checkin(pool.checkout(Some(&private(1, b"1"))).await.unwrap());
            let two = pool.checkout(Some(&private(2, b"2"))).await.unwrap();
            assert!(!two.reused);
            assert_eq!(
                (pool.idle_count(), pool.open_count(), pool.opened()),
                (0, 1, 2)
            );
        });
        accept.join().unwrap();
    }

    #[test]
    fn backend_addresses_parse_as_tcp_or_unix() {
        assert_eq!(
            "127.0.0.1:8080".parse::<BackendAddr>().unwrap(),
            BackendAddr::Tcp("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            "unix:/run/app.sock"
                .parse::<BackendAddr>()
                .unwrap()
                .to_string(),
            "unix:/run/app.sock"
        );
        assert!("unix:".parse::<BackendAddr>().is_err());
        assert!("localhost".parse::<BackendAddr>().is_err());
    }
}
