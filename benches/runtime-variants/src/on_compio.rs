//! Variants (b)–(d): compio 0.19 on io_uring, the ring set up like ringway-io's (COOP_TASKRUN),
//! or on compio's polling (epoll) driver, with three ways to wait for and read a request:
//!
//! - [`Read::Managed`]: `read_managed` over the runtime's buffer pool
//!   (IORING_REGISTER_PBUF_RING): the recv waits in the ring with no buffer; the kernel picks one
//!   from the pool when bytes arrive. The bytes are copied into a pooled `BytesMut` for the
//!   parser and the kernel's buffer goes back to the ring at once.
//! - [`Read::Multishot`]: the same pool, one multishot recv armed per connection for its whole
//!   life (no submission per request).
//! - [`Read::Owned`]: a plain recv into the connection's own 8 KiB buffer, pending while idle.
//!
//! On the polling driver there is no kernel-picked buffer: a managed read takes a buffer from the
//! pool when it is submitted and holds it while it waits (compio-driver 0.12
//! `sys/op/managed/fallback.rs`), so an idle connection holds one pool buffer and the pool's size
//! bounds how many connections can wait at once.

use std::future::Future;
use std::io;
use std::num::NonZero;
use std::pin::pin;
use std::rc::Rc;

use bytes::BytesMut;
use compio::buf::{BufResult, IntoInner};
use compio::driver::{DriverType, ProactorBuilder};
use compio::io::{AsyncRead, AsyncReadManaged, AsyncReadMulti, AsyncWrite, AsyncWriteExt};
use compio::net::{TcpListener, TcpStream};
use compio::runtime::RuntimeBuilder;
use futures_util::StreamExt;
use ringway_io::BufPool;

use crate::answer::{answer, Next, HEAD_READ};
use crate::buffers::{ensure, release, POOLED, SPARE};
use crate::RING_ENTRIES;

/// Buffers in the kernel-shared pool, and the room of each. A fixed cost per worker, not per
/// connection: only connections whose bytes have arrived and are not yet copied out hold one.
pub(crate) const POOL_BUFS: u16 = 256;
/// Room of each buffer of the kernel-shared pool.
pub(crate) const POOL_BUF_LEN: usize = 4 * 1024;

/// How a connection waits for and reads its next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// One `read_managed` (kernel-picked buffer) per read.
    Managed,
    /// One multishot recv (kernel-picked buffers) per connection.
    Multishot,
    /// One recv into the connection's own buffer per read.
    Owned,
}

/// Serves `listener` on this thread until accepting fails.
pub(crate) fn run(listener: std::net::TcpListener, read: Read, poll: bool) -> io::Result<()> {
    let mut proactor = ProactorBuilder::new();
    proactor
        .capacity(RING_ENTRIES)
        .coop_taskrun(true)
        .driver_type(if poll {
            DriverType::Poll
        } else {
            DriverType::IoUring
        })
        .buffer_pool_size(NonZero::<u16>::MIN.saturating_add(POOL_BUFS - 1))
        .buffer_pool_buffer_len(POOL_BUF_LEN);
    let rt = RuntimeBuilder::new()
        .with_proactor(proactor)
        .build()
        .map_err(|e| io::Error::new(e.kind(), format!("building the compio runtime: {e}")))?;
    rt.block_on(async move {
        let listener = TcpListener::from_std(listener)
            .map_err(|e| io::Error::new(e.kind(), format!("compio listener: {e}")))?;
        let driver = compio::runtime::Runtime::with_current(|rt| rt.driver_type());
        eprintln!("runtime-variants: compio on {driver:?}, {read:?} reads, ready");
        let pool = Rc::new(BufPool::new(POOLED, SPARE));
        let mut reported = false;
        loop {
            let (stream, _) = listener
                .accept()
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("compio accept: {e}")))?;
            let _ = stream.set_nodelay(true);
            let pool = pool.clone();
            // Each arm spawns its own future type; the first connection reports its size.
            match read {
                Read::Managed => spawn(managed(stream, pool), &mut reported),
                Read::Multishot => spawn(multishot(stream, pool), &mut reported),
                Read::Owned => spawn(owned(stream, pool), &mut reported),
            }
        }
    })
}

fn spawn<F: Future<Output = ()> + 'static>(conn: F, reported: &mut bool) {
    if !*reported {
        crate::report_task_size(&conn);
        *reported = true;
    }
    compio::runtime::spawn(conn).detach();
}

/// Parses `buf`, writes the answers from `out`, and gives both buffers back when they are empty.
/// Returns false when the connection must close.
async fn answer_and_write<W: AsyncWrite>(
    stream: &mut W,
    buf: &mut BytesMut,
    out: &mut BytesMut,
    pool: &BufPool,
) -> bool {
    ensure(out, pool);
    let next = answer(buf, out);
    if !out.is_empty() {
        let BufResult(res, written) = stream.write_all(std::mem::take(out)).await;
        if res.is_err() {
            return false;
        }
        *out = written;
        out.clear();
    }
    if next == Next::Close {
        return false;
    }
    release(buf, pool);
    release(out, pool);
    true
}

fn managed(stream: TcpStream, pool: Rc<BufPool>) -> impl Future<Output = ()> {
    let mut stream = stream;
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    async move {
        loop {
            // Waits with no buffer; `0`: up to the pool buffer's room.
            let Ok(Some(got)) = stream.read_managed(0).await else {
                return;
            };
            ensure(&mut buf, &pool);
            buf.extend_from_slice(&got);
            drop(got); // back to the ring before the answer is written
            if !answer_and_write(&mut stream, &mut buf, &mut out, &pool).await {
                return;
            }
        }
    }
}

fn multishot(stream: TcpStream, pool: Rc<BufPool>) -> impl Future<Output = ()> {
    let stream = stream;
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    async move {
        // Reads and writes go through two `&TcpStream`s, so the writer stays free while the
        // multishot recv is armed.
        let mut reader = &stream;
        let mut writer = &stream;
        let mut chunks = pin!(reader.read_multi(0));
        while let Some(Ok(got)) = chunks.next().await {
            ensure(&mut buf, &pool);
            buf.extend_from_slice(&got);
            drop(got);
            if !answer_and_write(&mut writer, &mut buf, &mut out, &pool).await {
                return;
            }
        }
    }
}

fn owned(stream: TcpStream, pool: Rc<BufPool>) -> impl Future<Output = ()> {
    let mut stream = stream;
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    async move {
        // Here only: its `is_empty` would shadow `BytesMut`'s elsewhere.
        use compio::buf::IoBuf;
        loop {
            // The read buffer is lent to the kernel for as long as the connection waits.
            ensure(&mut buf, &pool);
            buf.reserve(HEAD_READ);
            let filled = buf.len();
            let BufResult(res, slice) = stream.read(std::mem::take(&mut buf).slice(filled..)).await;
            buf = slice.into_inner();
            match res {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if !answer_and_write(&mut stream, &mut buf, &mut out, &pool).await {
                return;
            }
        }
    }
}
