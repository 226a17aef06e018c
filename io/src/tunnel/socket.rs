//! The transport under a tunnel connection: a plain TCP stream or TLS over one (the default;
//! plaintext only when both ends were told so). The driver sees one read half and one write
//! half whatever the transport; everything TLS is `crate::tls`.

use std::io;
use std::time::Instant;

use bytes::BytesMut;
use monoio::io::{
    AsyncWriteRent, CancelHandle, CancelableAsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf,
    Splitable,
};
use monoio::net::TcpStream;

use super::driver::FINAL_FLUSH;
use super::link::READ_CHUNK;
use crate::tls::{TlsReadHalf, TlsState, TlsStream, TlsWriteHalf};
use crate::{read_append, read_append_cancelable, write_all_by};

/// One tunnel connection's socket.
pub enum TunnelSocket {
    /// Plaintext TCP (`--insecure-plaintext` at both ends).
    Plain(TcpStream),
    /// TLS over TCP, past its handshake (boxed: rustls' state is large).
    Tls(Box<TlsStream>),
}

/// A [`TunnelSocket`] taken apart to move it to another thread: the TCP stream (the caller
/// turns it into a std socket, `ringway_tuning::socket::into_std`), and the TLS state when
/// there is TLS (`Send`).
pub struct DetachedSocket {
    /// The TCP stream, with no IO in flight.
    pub tcp: TcpStream,
    /// Its TLS state, for a TLS connection.
    pub tls: Option<TlsState>,
}

impl std::fmt::Debug for TunnelSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain(_) => "TunnelSocket::Plain",
            Self::Tls(_) => "TunnelSocket::Tls",
        })
    }
}

impl From<TcpStream> for TunnelSocket {
    fn from(tcp: TcpStream) -> Self {
        Self::Plain(tcp)
    }
}

impl From<TlsStream> for TunnelSocket {
    fn from(mut tls: TlsStream) -> Self {
        // Bulk transfer: read several records per socket read.
        tls.set_read_size(READ_CHUNK);
        Self::Tls(Box::new(tls))
    }
}

impl TunnelSocket {
    /// Whether the transport is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    /// The TLS stream, if the transport is TLS (its peer certificate, ALPN).
    pub fn tls(&self) -> Option<&TlsStream> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(tls) => Some(tls),
        }
    }

    /// Reads (decrypted) bytes into the spare capacity of `buf`, at most `want` (see
    /// [`read_append`]); `Ok(0)` is the end of stream.
    pub async fn read_more(&mut self, buf: &mut BytesMut, want: usize) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => read_append(tcp, buf, want).await,
            Self::Tls(tls) => tls.read_more(buf, want).await,
        }
    }

    /// Writes all of `data` (encrypted) unless `deadline` passes first (see [`write_all_by`]).
    pub async fn write_all_by(&mut self, data: BytesMut, deadline: Instant) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => write_all_by(tcp, data, deadline).await.map(drop),
            Self::Tls(tls) => {
                let at = monoio::time::Instant::from_std(deadline);
                match monoio::time::timeout_at(at, tls.write_all(data)).await {
                    Ok((res, _)) => res,
                    Err(_) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "write did not complete before its deadline",
                    )),
                }
            }
        }
    }

    /// Shuts the write side down (after `close_notify` for TLS).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.shutdown().await,
            Self::Tls(tls) => tls.shutdown().await,
        }
    }

    /// The socket taken apart, to hand it to another thread.
    pub fn detach(self) -> io::Result<DetachedSocket> {
        match self {
            Self::Plain(tcp) => Ok(DetachedSocket { tcp, tls: None }),
            Self::Tls(tls) => match tls.into_parts() {
                Ok((tcp, state)) => Ok(DetachedSocket {
                    tcp,
                    tls: Some(state),
                }),
                Err(_) => Err(io::Error::other(
                    "tls: the connection's state is shared and cannot move",
                )),
            },
        }
    }

    /// A socket from `tcp` (registered with this thread's runtime) and the TLS state
    /// [`Self::detach`] gave, if any.
    pub fn attach(tcp: TcpStream, tls: Option<TlsState>) -> Self {
        match tls {
            None => Self::Plain(tcp),
            Some(state) => TlsStream::from_parts(tcp, state).into(),
        }
    }

    pub(super) fn into_split(self) -> (SocketRead, SocketWrite) {
        match self {
            Self::Plain(tcp) => {
                let (rd, wr) = tcp.into_split();
                (SocketRead::Plain(rd), SocketWrite::Plain(wr))
            }
            Self::Tls(tls) => {
                let (rd, wr) = tls.into_split();
                (SocketRead::Tls(rd), SocketWrite::Tls(wr))
            }
        }
    }
}

/// The driver's read half.
pub(super) enum SocketRead {
    Plain(OwnedReadHalf<TcpStream>),
    Tls(TlsReadHalf),
}

impl SocketRead {
    /// One read (of decrypted bytes) into the spare capacity of `buf`, that `cancel` stops.
    pub(super) async fn read(
        &mut self,
        buf: &mut BytesMut,
        want: usize,
        cancel: CancelHandle,
    ) -> io::Result<usize> {
        match self {
            Self::Plain(rd) => read_append_cancelable(rd, buf, want, cancel).await,
            Self::Tls(rd) => rd.read_more_cancelable(buf, want, cancel).await,
        }
    }
}

/// The driver's write half.
pub(super) enum SocketWrite {
    Plain(OwnedWriteHalf<TcpStream>),
    Tls(TlsWriteHalf),
}

impl SocketWrite {
    /// Writes all of `data`, unless `cancel` stops it; hands the buffer back.
    pub(super) async fn write_all(
        &mut self,
        data: BytesMut,
        cancel: CancelHandle,
    ) -> (io::Result<()>, BytesMut) {
        match self {
            Self::Plain(wr) => {
                let (res, data) = wr.write_all(data, cancel).await;
                (res.map(drop), data)
            }
            Self::Tls(wr) => wr.write_all_cancelable(data, cancel).await,
        }
    }

    /// The last write of a closed connection, bounded by `deadline`.
    pub(super) async fn write_all_by(&mut self, data: BytesMut, deadline: Instant) {
        match self {
            Self::Plain(wr) => {
                let _ = write_all_by(wr, data, deadline).await;
            }
            Self::Tls(wr) => {
                let at = monoio::time::Instant::from_std(deadline);
                let _ = monoio::time::timeout_at(at, wr.write_all(data)).await;
            }
        }
    }

    /// Shuts the write side down; TLS sends `close_notify` first, within [`FINAL_FLUSH`] (a
    /// peer that stopped reading does not hold the connection).
    pub(super) async fn shutdown(&mut self) {
        match self {
            Self::Plain(wr) => {
                let _ = wr.shutdown().await;
            }
            Self::Tls(wr) => {
                let _ = monoio::time::timeout(FINAL_FLUSH, wr.shutdown()).await;
            }
        }
    }
}
