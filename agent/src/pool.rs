//! The keep-alive pool of backend connections of one runtime thread.
//!
//! Bounded: at most `max_idle` idle connections are kept; a connection returned to a full pool is
//! closed. An idle connection older than `idle_timeout` is closed instead of reused (backends close
//! idle keep-alive connections themselves after a while). A reused connection may still turn out
//! stale (the backend closed it while it sat idle); the stream driver then retries once on a fresh
//! connection, which [`BackendPool::connect_fresh`] provides.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

/// A backend connection checked out of the pool.
#[derive(Debug)]
pub(crate) struct BackendConn {
    pub(crate) stream: TcpStream,
    /// It served an earlier request (so it may be stale).
    pub(crate) reused: bool,
}

/// Why no backend connection could be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The backend refused or could not be reached.
    #[error("connecting to backend {addr}: {source}")]
    Io { addr: SocketAddr, source: io::Error },
    /// The connect did not finish in time.
    #[error("connecting to backend {addr}: timed out after {after:?}")]
    Timeout { addr: SocketAddr, after: Duration },
}

#[derive(Debug)]
struct Idle {
    stream: TcpStream,
    since: Instant,
}

/// Keep-alive connections to one backend address, for one thread.
#[derive(Debug)]
pub(crate) struct BackendPool {
    addr: SocketAddr,
    max_idle: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
    idle: RefCell<VecDeque<Idle>>,
    opened: Cell<u64>,
}

impl BackendPool {
    pub(crate) fn new(
        addr: SocketAddr,
        max_idle: usize,
        idle_timeout: Duration,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            addr,
            max_idle,
            idle_timeout,
            connect_timeout,
            idle: RefCell::new(VecDeque::new()),
            opened: Cell::new(0),
        }
    }

    /// The most recently returned idle connection that is young enough, else a new one.
    pub(crate) async fn checkout(&self) -> Result<BackendConn, ConnectError> {
        let now = Instant::now();
        loop {
            // Most recently used first: the warmest connection is the least likely to be stale.
            let idle = self.idle.borrow_mut().pop_back();
            let Some(idle) = idle else { break };
            if now.duration_since(idle.since) < self.idle_timeout {
                return Ok(BackendConn {
                    stream: idle.stream,
                    reused: true,
                });
            }
        }
        self.connect_fresh().await
    }

    /// A new connection, bypassing the idle list.
    pub(crate) async fn connect_fresh(&self) -> Result<BackendConn, ConnectError> {
        let addr = self.addr;
        let stream = match monoio::time::timeout(
            self.connect_timeout,
            TcpStream::connect_addr(addr),
        )
        .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err(ConnectError::Io { addr, source }),
            Err(_) => {
                return Err(ConnectError::Timeout {
                    addr,
                    after: self.connect_timeout,
                })
            }
        };
        // Request heads and small responses go out at once; latency matters more than packets.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(backend = %addr, error = %e, "set_nodelay failed");
        }
        self.opened.set(self.opened.get() + 1);
        Ok(BackendConn {
            stream,
            reused: false,
        })
    }

    /// Returns a connection that finished a response cleanly and may serve another request.
    pub(crate) fn checkin(&self, stream: TcpStream) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() >= self.max_idle {
            // Full: drop the oldest, keep the warm one.
            idle.pop_front();
        }
        if self.max_idle > 0 {
            idle.push_back(Idle {
                stream,
                since: Instant::now(),
            });
        }
    }

    /// Idle connections now held.
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.borrow().len()
    }

    /// Connections opened so far (fresh connects).
    #[cfg(test)]
    pub(crate) fn opened(&self) -> u64 {
        self.opened.get()
    }

    /// Closes every idle connection.
    pub(crate) fn clear(&self) {
        self.idle.borrow_mut().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn reuses_checked_in_connections_and_bounds_the_idle_list() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = std::thread::spawn(move || {
            let mut held = Vec::new();
            for _ in 0..3 {
                held.push(listener.accept().unwrap().0);
            }
            held
        });
        block_on(async move {
            let pool = BackendPool::new(addr, 2, Duration::from_secs(10), Duration::from_secs(1));
            let a = pool.checkout().await.unwrap();
            let b = pool.checkout().await.unwrap();
            let c = pool.checkout().await.unwrap();
            assert!(!a.reused && !b.reused && !c.reused);
            assert_eq!(pool.opened(), 3);
            pool.checkin(a.stream);
            pool.checkin(b.stream);
            pool.checkin(c.stream);
            assert_eq!(pool.idle_count(), 2, "bounded by max_idle");
            let d = pool.checkout().await.unwrap();
            assert!(d.reused);
            assert_eq!(pool.opened(), 3, "no new connect for a pooled connection");
        });
        accept.join().unwrap();
    }

    #[test]
    fn refused_connect_is_an_io_error() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        block_on(async move {
            let pool = BackendPool::new(addr, 2, Duration::from_secs(10), Duration::from_secs(1));
            match pool.checkout().await {
                Err(ConnectError::Io { source, .. }) => {
                    assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused);
                }
                other => panic!("{other:?}"),
            }
        });
    }

    #[test]
    fn expired_idle_connections_are_not_reused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = std::thread::spawn(move || {
            (listener.accept().unwrap().0, listener.accept().unwrap().0)
        });
        block_on(async move {
            let pool = BackendPool::new(addr, 4, Duration::from_millis(1), Duration::from_secs(1));
            let a = pool.checkout().await.unwrap();
            pool.checkin(a.stream);
            monoio::time::sleep(Duration::from_millis(5)).await;
            let b = pool.checkout().await.unwrap();
            assert!(!b.reused);
            assert_eq!(pool.idle_count(), 0);
        });
        accept.join().unwrap();
    }
}
