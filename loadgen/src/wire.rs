//! One connection's bytes on the wire: a plain TCP stream, or TLS over one (`https://`
//! targets; `ringway_io::tls` drives rustls sans-IO). The request loop in [`crate::conn`]
//! sees only these calls, so both kinds run the same schedule, timers and accounting.

use std::io;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use ringway_io::io::{AsyncWriteRentExt, CancelHandle};
use ringway_io::net::TcpStream;
use ringway_io::tls::{TlsReadHalf, TlsStream, TlsWriteHalf};
use ringway_io::{read_append, read_append_cancelable};

use crate::tls::TlsClient;

/// A connected stream, past its TLS handshake if it has one.
pub enum Wire {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, split so that a read can be cancelled without losing bytes.
    Tls {
        /// Decrypts into the caller's buffer.
        rd: TlsReadHalf,
        /// Encrypts what the caller writes.
        wr: TlsWriteHalf,
        /// The plaintext of the write in progress (the TLS writer takes a `BytesMut`; kept
        /// for the connection's life, so a request costs no allocation).
        out: BytesMut,
    },
}

impl Wire {
    /// Connects to `addr` (TCP_NODELAY) and, with `tls`, runs a full client handshake.
    pub async fn connect(addr: SocketAddr, tls: Option<&TlsClient>) -> io::Result<Self> {
        let tcp = TcpStream::connect_addr(addr).await?;
        tcp.set_nodelay(true)?;
        let Some(tls) = tls else {
            return Ok(Self::Plain(tcp));
        };
        let stream = TlsStream::connect(tcp, tls.config.clone(), tls.name.clone()).await?;
        let (rd, wr) = stream.into_split();
        Ok(Self::Tls {
            rd,
            wr,
            out: BytesMut::new(),
        })
    }

    /// Writes all of `bytes`.
    pub async fn write_all(&mut self, bytes: Bytes) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.write_all(bytes).await.0.map(drop),
            Self::Tls { wr, out, .. } => {
                let mut plain = std::mem::take(out);
                plain.clear();
                plain.extend_from_slice(&bytes);
                let (res, back) = wr.write_all(plain).await;
                *out = back;
                res
            }
        }
    }

    /// Writes what the socket takes of `bytes` at once, outside the runtime (plain TCP only;
    /// see `ringway_tuning::socket::send_now`), and returns the count; the rest is for
    /// [`Self::write_all`]. TLS writes nothing here (its records go through the runtime).
    pub fn send_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => ringway_tuning::socket::send_now(tcp, bytes),
            Self::Tls { .. } => Ok(0),
        }
    }

    /// Appends what one read brings (decrypted) to `buf`, up to `want` bytes; `Ok(0)` is the
    /// end of stream. Dropped before it completes, `buf` may be lost (left empty).
    pub async fn read(&mut self, buf: &mut BytesMut, want: usize) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => read_append(tcp, buf, want).await,
            Self::Tls { rd, .. } => rd.read_more(buf, want).await,
        }
    }

    /// [`Self::read`] that `handle` cancels without losing a byte: cancelled, it fails (or
    /// returns what it got), and bytes that arrive later stay for the next read.
    pub async fn read_cancelable(
        &mut self,
        buf: &mut BytesMut,
        want: usize,
        handle: CancelHandle,
    ) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => read_append_cancelable(tcp, buf, want, handle).await,
            Self::Tls { rd, .. } => rd.read_more_cancelable(buf, want, handle).await,
        }
    }
}
