//! The hello backend: a small HTTP/1.1 server for the demo (`ringway-demo`), benchmarks and the
//! end-to-end tests of the balancer and the agent. It is its own crate so that the agent and the
//! balancer need not carry it, and so that their tests can use it without depending on each other.
//!
//! Routes (any method; `HEAD` gets the head only):
//! - `/echo`: the request body streamed back as it arrives (Content-Length when the request had
//!   one, else chunked);
//! - `/bytes/N`: N bytes of [`pattern`] streamed with Content-Length, or chunked with `?chunked`;
//! - `/slow/MS`: the response head is delayed by MS milliseconds;
//! - `/status/CODE`: a response with that status;
//! - anything else: `200` with a short body naming this backend, the method and the target.
//!
//! Every response carries `X-Served-By: hello@ADDR`. Parsing and body framing use `core::http`.
//!
//! - [`spawn`] starts one on its own thread and returns a [`HelloHandle`] (address, request count);
//!   [`spawn_unix`] the same on a unix socket path;
//! - [`run`] serves a bound listener on the current thread (`ringway-demo hello`).
#![forbid(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use ringway_core::http::{
    reason_phrase, write_error_response, BodyDecoder, BodyEncoder, BodyEvent, BodyFraming, Limits,
    RequestHead, RequestParser,
};
use ringway_io::buf::IoBufMut;
use ringway_io::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use ringway_io::net::{TcpListener, UnixListener};
use ringway_tuning::runtime::{spawn_worker, IoDriver, WorkerSpec};

/// Bytes per write when streaming `/bytes/N`.
const CHUNK: usize = 64 * 1024;
/// The `/bytes/N` body is this alphabet repeated.
const ALPHABET: &[u8; 26] = b"abcdefghijklmnopqrstuvwxyz";

/// A hello backend running on its own thread.
#[derive(Debug, Clone)]
pub struct HelloHandle {
    /// The address it listens on (port 0 resolved).
    pub addr: SocketAddr,
    requests: Arc<AtomicU64>,
}

impl HelloHandle {
    /// Requests served so far (counted when their head has been read).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Starts a hello backend on `addr` (port 0 picks a free port) on a new thread; it runs until the
/// process exits.
pub fn spawn(addr: SocketAddr) -> io::Result<HelloHandle> {
    let listener = std::net::TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let requests = Arc::new(AtomicU64::new(0));
    let counter = requests.clone();
    let spec = WorkerSpec {
        name: format!("ringway-hello-{}", addr.port()),
        cpu: None,
        driver: IoDriver::Auto,
        ring_entries: 256,
    };
    spawn_worker(spec, move |_driver| serve(listener, counter))?;
    Ok(HelloHandle { addr, requests })
}

/// A hello backend on a unix socket, running on its own thread.
#[derive(Debug, Clone)]
pub struct HelloUnixHandle {
    /// The socket path it listens on.
    pub path: PathBuf,
    requests: Arc<AtomicU64>,
}

impl HelloUnixHandle {
    /// Requests served so far (counted when their head has been read).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Starts a hello backend listening on the unix socket `path` (which must not exist) on a new
/// thread; it runs until the process exits. It answers as the TCP one does, naming itself
/// `unix:PATH`.
pub fn spawn_unix(path: &Path) -> io::Result<HelloUnixHandle> {
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    let requests = Arc::new(AtomicU64::new(0));
    let counter = requests.clone();
    let spec = WorkerSpec {
        name: "ringway-hello-unix".to_owned(),
        cpu: None,
        driver: IoDriver::Auto,
        ring_entries: 256,
    };
    let me = format!("unix:{}", path.display());
    spawn_worker(spec, move |_driver| serve_unix(listener, me, counter))?;
    Ok(HelloUnixHandle {
        path: path.to_owned(),
        requests,
    })
}

/// Accepts connections on the unix `listener` forever, counting requests in `requests`.
async fn serve_unix(
    listener: std::os::unix::net::UnixListener,
    me: String,
    requests: Arc<AtomicU64>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = UnixListener::from_std(listener)?;
    let me: Rc<str> = me.into();
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => spawn_connection(stream, &me, &requests),
            Err(e) => accept_failed(&e).await,
        }
    }
}

/// Serves one accepted connection on a task of its own.
fn spawn_connection<S: AsyncReadRent + AsyncWriteRent + 'static>(
    stream: S,
    me: &Rc<str>,
    requests: &Arc<AtomicU64>,
) {
    let (me, requests) = (me.clone(), requests.clone());
    ringway_io::spawn(async move {
        if let Err(e) = connection(stream, &me, &requests).await {
            tracing::debug!(error = %e, "hello backend connection ended");
        }
    });
}

/// An accept failed (out of descriptors, say): pause briefly instead of spinning.
async fn accept_failed(e: &io::Error) {
    tracing::warn!(error = %e, "hello backend accept failed");
    ringway_io::time::sleep(Duration::from_millis(10)).await;
}

/// Serves `listener` on the current thread until the process ends (`ringway-demo hello`).
pub fn run(listener: std::net::TcpListener, driver: IoDriver) -> io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "hello backend listening");
    ringway_tuning::runtime::try_block_on(driver, 1024, move |_driver| {
        serve(listener, Arc::new(AtomicU64::new(0)))
    })?
}

/// The `/bytes/N` body byte at `offset`.
pub fn pattern(offset: u64) -> u8 {
    ALPHABET[(offset % 26) as usize]
}

/// Accepts connections on `listener` forever, counting requests in `requests`.
pub async fn serve(listener: std::net::TcpListener, requests: Arc<AtomicU64>) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let me: Rc<str> = listener.local_addr()?.to_string().into();
    let listener = TcpListener::from_std(listener)?;
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let _ = stream.set_nodelay(true);
                spawn_connection(stream, &me, &requests);
            }
            Err(e) => accept_failed(&e).await,
        }
    }
}

async fn connection<S: AsyncReadRent + AsyncWriteRent>(
    mut stream: S,
    me: &str,
    requests: &AtomicU64,
) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = BytesMut::with_capacity(16 * 1024);
    loop {
        let mut parser = RequestParser::new(limits());
        let head = loop {
            match parser.parse(&mut buf) {
                Ok(Some(head)) => break head,
                Ok(None) => {
                    if read_more(&mut stream, &mut buf).await? == 0 {
                        return Ok(());
                    }
                }
                Err(e) => {
                    write_error_response(e.status(), "-", &e.to_string(), None, &mut out);
                    let (res, _) = stream.write_all(out).await;
                    return res.map(drop);
                }
            }
        };
        requests.fetch_add(1, Ordering::Relaxed);
        if head.expects_continue() {
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let keep_alive = head.keep_alive();
        let req = Request {
            head: &head,
            me,
            close: !keep_alive,
        };
        out = req.respond(&mut stream, &mut buf, out).await?;
        if !keep_alive {
            return Ok(());
        }
    }
}

struct Request<'a> {
    head: &'a RequestHead,
    me: &'a str,
    close: bool,
}

impl Request<'_> {
    async fn respond<S: AsyncReadRent + AsyncWriteRent>(
        &self,
        stream: &mut S,
        buf: &mut BytesMut,
        mut out: BytesMut,
    ) -> io::Result<BytesMut> {
        let path = self.head.path();
        let query = self
            .head
            .target()
            .splitn(2, |b| *b == b'?')
            .nth(1)
            .unwrap_or_default();
        let mut decoder = BodyDecoder::new(self.head.framing(), None);
        if path == b"/echo" {
            let framing = match self.head.framing() {
                BodyFraming::Length(n) => BodyFraming::Length(n),
                BodyFraming::Chunked => BodyFraming::Chunked,
                _ => BodyFraming::Length(0),
            };
            self.write_head(200, framing, &mut out);
            let mut encoder = BodyEncoder::new(framing);
            let head_only = self.head.method() == b"HEAD";
            loop {
                match decoder.decode(buf).map_err(invalid)? {
                    BodyEvent::Data(data) if !head_only => encoder.encode(&data, &mut out),
                    BodyEvent::Data(_) => {}
                    BodyEvent::End => break,
                    BodyEvent::NeedMore => {
                        out = flush(stream, out).await?;
                        if read_more(stream, buf).await? == 0 {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "client closed mid-body",
                            ));
                        }
                    }
                }
            }
            if !head_only {
                encoder.finish(&mut out);
            }
            return flush(stream, out).await;
        }
        // Other routes read (and discard) the request body first.
        loop {
            match decoder.decode(buf).map_err(invalid)? {
                BodyEvent::Data(_) => {}
                BodyEvent::End => break,
                BodyEvent::NeedMore => {
                    if read_more(stream, buf).await? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "client closed mid-body",
                        ));
                    }
                }
            }
        }
        let segments: Vec<&[u8]> = path
            .split(|b| *b == b'/')
            .filter(|s| !s.is_empty())
            .collect();
        match segments.as_slice() {
            [b"bytes", n] => match number(n) {
                Some(n) => {
                    self.bytes(stream, n, query.windows(7).any(|w| w == b"chunked"), out)
                        .await
                }
                None => self.text(stream, 400, "bad byte count\n", out).await,
            },
            [b"slow", ms] => match number(ms) {
                Some(ms) => {
                    ringway_io::time::sleep(Duration::from_millis(ms)).await;
                    self.text(stream, 200, &format!("slow {ms}\n"), out).await
                }
                None => self.text(stream, 400, "bad delay\n", out).await,
            },
            [b"status", code] => match number(code)
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| (200..600).contains(c))
            {
                Some(code) => {
                    self.text(stream, code, &format!("status {code}\n"), out)
                        .await
                }
                None => self.text(stream, 400, "bad status\n", out).await,
            },
            _ => {
                let body = format!(
                    "hello from ringway hello backend {}: {} {}\n",
                    self.me,
                    String::from_utf8_lossy(self.head.method()),
                    String::from_utf8_lossy(self.head.target())
                );
                self.text(stream, 200, &body, out).await
            }
        }
    }

    async fn text<S: AsyncReadRent + AsyncWriteRent>(
        &self,
        stream: &mut S,
        status: u16,
        body: &str,
        mut out: BytesMut,
    ) -> io::Result<BytesMut> {
        let no_body = matches!(status, 204 | 304);
        let framing = if no_body {
            BodyFraming::Empty
        } else {
            BodyFraming::Length(body.len() as u64)
        };
        self.write_head(status, framing, &mut out);
        if !no_body && self.head.method() != b"HEAD" {
            out.extend_from_slice(body.as_bytes());
        }
        flush(stream, out).await
    }

    async fn bytes<S: AsyncReadRent + AsyncWriteRent>(
        &self,
        stream: &mut S,
        n: u64,
        chunked: bool,
        mut out: BytesMut,
    ) -> io::Result<BytesMut> {
        let framing = if chunked {
            BodyFraming::Chunked
        } else {
            BodyFraming::Length(n)
        };
        self.write_head(200, framing, &mut out);
        if self.head.method() == b"HEAD" {
            return flush(stream, out).await;
        }
        let block: Vec<u8> = (0..CHUNK as u64 + 26).map(pattern).collect();
        let mut encoder = BodyEncoder::new(framing);
        let mut sent = 0u64;
        while sent < n {
            let len = (n - sent).min(CHUNK as u64) as usize;
            let start = (sent % 26) as usize;
            encoder.encode(&block[start..start + len], &mut out);
            sent += len as u64;
            out = flush(stream, out).await?;
        }
        encoder.finish(&mut out);
        flush(stream, out).await
    }

    fn write_head(&self, status: u16, framing: BodyFraming, out: &mut BytesMut) {
        out.extend_from_slice(
            format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).as_bytes(),
        );
        out.extend_from_slice(
            format!(
                "X-Served-By: hello@{}\r\nContent-Type: text/plain\r\n",
                self.me
            )
            .as_bytes(),
        );
        match framing {
            BodyFraming::Length(n) => {
                out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes());
            }
            BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            _ => {}
        }
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Heads up to 64 KiB (what one tunnel frame carries) and 128 fields.
fn limits() -> Limits {
    Limits {
        max_head_bytes: 64 * 1024,
        max_target_len: 64 * 1024,
        max_headers: 128,
        ..Limits::default()
    }
}

fn number(digits: &[u8]) -> Option<u64> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn invalid(e: ringway_core::http::HttpError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("request body: {e}"))
}

/// Reads once into the spare capacity after the unparsed bytes of `buf`; `Ok(0)` is end of stream.
/// (monoio's `IoBufMut` for `BytesMut` writes at the start of the buffer, so the read goes into a
/// slice past the bytes already there.)
async fn read_more<S: AsyncReadRent>(stream: &mut S, buf: &mut BytesMut) -> io::Result<usize> {
    buf.reserve(CHUNK);
    let filled = buf.len();
    let (res, slice) = stream.read(std::mem::take(buf).slice_mut(filled..)).await;
    *buf = slice.into_inner();
    res
}

async fn flush<S: AsyncWriteRent>(stream: &mut S, out: BytesMut) -> io::Result<BytesMut> {
    if out.is_empty() {
        return Ok(out);
    }
    let (res, mut out) = stream.write_all(out).await;
    res?;
    out.clear();
    Ok(out)
}
