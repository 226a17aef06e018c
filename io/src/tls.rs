//! TLS on a server-side TCP stream: rustls' `ServerConnection` driven sans-IO (`read_tls`,
//! `process_new_packets`, `reader`, `writer`, `write_tls`) over the runtime's owned-buffer
//! socket IO.
//!
//! rustls does no IO: this driver moves ciphertext between the socket and the connection and
//! plaintext between the connection and the caller's `BytesMut`. Reads append decrypted bytes
//! to the caller's buffer ([`TlsStream::read_more`], like [`crate::read_append`]); writes take a
//! buffer and hand it back ([`TlsStream::write_all`]). Like a plain TCP stream it splits into a
//! read half and a write half ([`TlsStream::into_split`], [`TlsReadHalf::reunite`]) for a
//! request that streams both ways: the halves share the connection state behind a `RefCell`
//! that is never borrowed across an await, so either half may be suspended in its socket IO
//! while the other runs.
//!
//! An idle TLS connection holds no ciphertext buffer: the one a read takes is dropped when its
//! bytes are all handed to rustls (what rustls itself keeps is its business).
//!
//! Alerts or key updates that processing incoming records queues are sent with the next write
//! (by the write half when split, at once when not); a handshake's are sent before it returns.
//!
//! Why not the `monoio-rustls` crate: it keeps two 16 KiB buffers per connection for the
//! connection's whole life (an idle connection here holds none), has no cancelable read (the
//! balancer's upload loop stops a read without losing a byte), and splits by aliasing the whole
//! stream from both halves. What it offers, the runtime's IO traits, cannot be implemented for
//! a new type without `unsafe` (their buffers are raw pointers), which this crate forbids; so
//! this driver offers the narrow calls the balancer's user path makes instead.

use std::cell::RefCell;
use std::io::{self, BufRead, Write};
use std::rc::Rc;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use monoio::io::{
    AsyncWriteRent, AsyncWriteRentExt, CancelHandle, CancelableAsyncReadRent, OwnedReadHalf,
    OwnedWriteHalf, Splitable,
};
use monoio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

use crate::rw::{read_append, read_append_cancelable};

/// Ciphertext asked of one socket read: a whole TLS record (16 KiB of plaintext and its
/// overhead) and then some.
const CIPHERTEXT_READ: usize = 18 * 1024;

/// A TLS server connection over a TCP stream, past its handshake.
pub struct TlsStream {
    tcp: TcpStream,
    session: Rc<RefCell<Session>>,
}

/// The read half of a split [`TlsStream`].
pub struct TlsReadHalf {
    tcp: OwnedReadHalf<TcpStream>,
    session: Rc<RefCell<Session>>,
}

/// The write half of a split [`TlsStream`].
pub struct TlsWriteHalf {
    tcp: OwnedWriteHalf<TcpStream>,
    session: Rc<RefCell<Session>>,
}

/// What both halves share: rustls' state and the ciphertext read but not yet handed to it.
struct Session {
    conn: ServerConnection,
    /// Ciphertext from the socket that rustls has not taken yet (it takes what its buffers hold
    /// room for). Empty, with no allocation, between reads.
    wire: BytesMut,
}

impl TlsStream {
    /// Runs the server handshake over `tcp` with `config` (its certificate resolver, ALPN,
    /// versions, resumption). Fails on a peer's TLS error (after sending rustls' alert) or an
    /// end of stream before the handshake completed; the caller bounds it in time.
    pub async fn accept(mut tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<Self> {
        let conn = ServerConnection::new(config).map_err(tls_error)?;
        let session = Rc::new(RefCell::new(Session {
            conn,
            wire: BytesMut::new(),
        }));
        loop {
            flush(&mut tcp, &session).await?;
            if !session.borrow().conn.is_handshaking() {
                break;
            }
            match pull(&mut tcp, &session, None).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "tls: peer closed during the handshake",
                    ))
                }
                Err(e) => {
                    // The alert rustls queued tells the peer why.
                    let _ = flush(&mut tcp, &session).await;
                    return Err(e);
                }
            }
        }
        Ok(Self { tcp, session })
    }

    /// The TCP stream underneath, for a readiness wait (see [`Self::has_buffered`]).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Whether a read would find bytes without the socket: decrypted plaintext, or ciphertext
    /// that rustls has not taken yet. An idle wait on the socket's readiness must not start
    /// then.
    pub fn has_buffered(&self) -> bool {
        let mut s = self.session.borrow_mut();
        if !s.wire.is_empty() {
            return true;
        }
        s.conn
            .process_new_packets()
            .map_or(true, |state| state.plaintext_bytes_to_read() > 0)
    }

    /// The application protocol agreed by ALPN, if any.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.session
            .borrow()
            .conn
            .alpn_protocol()
            .map(<[u8]>::to_vec)
    }

    /// The SNI host name the client asked for, if it sent one.
    pub fn server_name(&self) -> Option<String> {
        self.session.borrow().conn.server_name().map(str::to_owned)
    }

    /// Reads decrypted bytes into the spare capacity of `buf` (at most `want`); `Ok(0)` is the
    /// end of stream (the peer's `close_notify`, or its TCP end).
    pub async fn read_more(&mut self, buf: &mut BytesMut, want: usize) -> io::Result<usize> {
        let n = read_plain(&mut self.tcp, &self.session, buf, want, None).await;
        // Not split: what the reading queued (an alert, a key update) goes out now.
        if self.session.borrow().conn.wants_write() {
            flush(&mut self.tcp, &self.session).await?;
        }
        n
    }

    /// Encrypts and writes all of `data`, and hands the buffer back (cleared of nothing: the
    /// caller clears it).
    pub async fn write_all(&mut self, data: BytesMut) -> (io::Result<()>, BytesMut) {
        write_plain(&mut self.tcp, &self.session, data).await
    }

    /// Sends `close_notify` and shuts the socket's write side.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.session.borrow_mut().conn.send_close_notify();
        flush(&mut self.tcp, &self.session).await?;
        self.tcp.shutdown().await
    }

    /// Splits the stream in a read half and a write half that run concurrently.
    pub fn into_split(self) -> (TlsReadHalf, TlsWriteHalf) {
        let (rd, wr) = self.tcp.into_split();
        (
            TlsReadHalf {
                tcp: rd,
                session: self.session.clone(),
            },
            TlsWriteHalf {
                tcp: wr,
                session: self.session,
            },
        )
    }
}

impl TlsReadHalf {
    /// [`TlsStream::read_more`] on the read half. What reading queues for the peer goes out
    /// with the write half's next write.
    pub async fn read_more(&mut self, buf: &mut BytesMut, want: usize) -> io::Result<usize> {
        read_plain(&mut self.tcp, &self.session, buf, want, None).await
    }

    /// [`Self::read_more`] that `handle` cancels without losing bytes: the socket read it
    /// cancels completes with an error (or with the bytes it got, which stay for the next read).
    pub async fn read_more_cancelable(
        &mut self,
        buf: &mut BytesMut,
        want: usize,
        handle: CancelHandle,
    ) -> io::Result<usize> {
        read_plain(&mut self.tcp, &self.session, buf, want, Some(handle)).await
    }

    /// Puts the halves back together; fails (handing both back) if they are not of one stream.
    pub fn reunite(self, wr: TlsWriteHalf) -> Result<TlsStream, (Self, TlsWriteHalf)> {
        if !Rc::ptr_eq(&self.session, &wr.session) {
            return Err((self, wr));
        }
        match self.tcp.reunite(wr.tcp) {
            Ok(tcp) => Ok(TlsStream {
                tcp,
                session: self.session,
            }),
            Err(e) => Err((
                Self {
                    tcp: e.0,
                    session: self.session,
                },
                TlsWriteHalf {
                    tcp: e.1,
                    session: wr.session,
                },
            )),
        }
    }
}

impl TlsWriteHalf {
    /// [`TlsStream::write_all`] on the write half.
    pub async fn write_all(&mut self, data: BytesMut) -> (io::Result<()>, BytesMut) {
        write_plain(&mut self.tcp, &self.session, data).await
    }

    /// [`TlsStream::shutdown`] on the write half.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.session.borrow_mut().conn.send_close_notify();
        flush(&mut self.tcp, &self.session).await?;
        self.tcp.shutdown().await
    }
}

/// Appends up to `want` decrypted bytes to `buf`, reading ciphertext from `tcp` as needed.
async fn read_plain<R: CancelableAsyncReadRent>(
    tcp: &mut R,
    session: &RefCell<Session>,
    buf: &mut BytesMut,
    want: usize,
    cancel: Option<CancelHandle>,
) -> io::Result<usize> {
    loop {
        if let Some(n) = take_plaintext(&mut session.borrow_mut(), buf, want)? {
            return Ok(n);
        }
        if !pull(tcp, session, cancel.clone()).await? {
            // The TCP end without close_notify: an end of stream all the same (HTTP's own
            // framing tells a truncated message).
            return Ok(0);
        }
    }
}

/// Hands ciphertext to rustls and moves plaintext out: `Some(n)` when `n` bytes were appended
/// (`Some(0)` at the peer's `close_notify`), `None` when more ciphertext is needed.
fn take_plaintext(s: &mut Session, buf: &mut BytesMut, want: usize) -> io::Result<Option<usize>> {
    loop {
        let state = s.conn.process_new_packets().map_err(tls_error)?;
        if state.plaintext_bytes_to_read() > 0 {
            let mut reader = s.conn.reader();
            let chunk = reader.fill_buf()?;
            let n = chunk.len().min(want.max(1));
            buf.extend_from_slice(&chunk[..n]);
            reader.consume(n);
            return Ok(Some(n));
        }
        if state.peer_has_closed() {
            return Ok(Some(0));
        }
        if s.wire.is_empty() {
            // Nothing held: no allocation while idle.
            s.wire = BytesMut::new();
            return Ok(None);
        }
        let Session { conn, wire } = s;
        let mut src: &[u8] = wire;
        let taken = conn.read_tls(&mut src)?;
        if taken == 0 {
            return Err(io::Error::other("tls: rustls took no ciphertext"));
        }
        wire.advance(taken);
    }
}

/// Reads ciphertext from `tcp` into the session's wire buffer (rustls takes it on the next
/// [`take_plaintext`]) and processes it; `false` at the end of stream.
async fn pull<R: CancelableAsyncReadRent>(
    tcp: &mut R,
    session: &RefCell<Session>,
    cancel: Option<CancelHandle>,
) -> io::Result<bool> {
    let mut wire = std::mem::take(&mut session.borrow_mut().wire);
    let read = match cancel {
        Some(handle) => read_append_cancelable(tcp, &mut wire, CIPHERTEXT_READ, handle).await,
        None => read_append(tcp, &mut wire, CIPHERTEXT_READ).await,
    };
    let mut s = session.borrow_mut();
    s.wire = wire;
    let n = read?;
    if n == 0 {
        return Ok(false);
    }
    // Handshake messages are processed here too, so that the handshake loop sees its state.
    while !s.wire.is_empty() {
        let Session { conn, wire } = &mut *s;
        let mut src: &[u8] = wire;
        let taken = conn.read_tls(&mut src)?;
        wire.advance(taken);
        let state = conn.process_new_packets().map_err(tls_error)?;
        if taken == 0 || state.plaintext_bytes_to_read() > 0 {
            // Plaintext must be read out before rustls takes more (its buffer is bounded):
            // `take_plaintext` hands it the rest after.
            break;
        }
    }
    Ok(true)
}

/// Encrypts all of `data` and writes the records, as rustls' send buffer allows.
async fn write_plain<W: AsyncWriteRent>(
    tcp: &mut W,
    session: &RefCell<Session>,
    data: BytesMut,
) -> (io::Result<()>, BytesMut) {
    let mut at = 0;
    while at < data.len() {
        let wrote = session.borrow_mut().conn.writer().write(&data[at..]);
        match wrote {
            Ok(n) => at += n,
            Err(e) => return (Err(e), data),
        }
        if let Err(e) = flush(tcp, session).await {
            return (Err(e), data);
        }
    }
    (Ok(()), data)
}

/// Writes every record rustls has queued (handshake, alerts, application data).
async fn flush<W: AsyncWriteRent>(tcp: &mut W, session: &RefCell<Session>) -> io::Result<()> {
    loop {
        let mut records = Vec::new();
        {
            let mut s = session.borrow_mut();
            while s.conn.wants_write() {
                s.conn.write_tls(&mut records)?;
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        let (res, _) = tcp.write_all(records).await;
        res?;
    }
}

#[allow(clippy::needless_pass_by_value)]
fn tls_error(e: rustls::Error) -> io::Error {
    // By value: the `map_err` adaptor form. Only its message is kept.
    io::Error::new(io::ErrorKind::InvalidData, format!("tls: {e}"))
}

#[cfg(test)]
mod tests;
