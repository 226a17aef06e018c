//! Variant (a): monoio through ringway-io's runtime builder (io_uring set up with COOP_TASKRUN,
//! or the epoll driver), with the balancer's idle strategy: an idle connection waits for
//! readiness (`TcpStream::readable`, a PollAdd on io_uring: no buffer lent to the kernel), then
//! takes a pooled buffer, reads, answers, and gives the buffer back.

use std::future::Future;
use std::io;
use std::rc::Rc;

use bytes::BytesMut;
use monoio::io::AsyncWriteRentExt;
use monoio::net::{TcpListener, TcpStream};
use ringway_io::runtime::{try_block_on, IoDriver};
use ringway_io::{read_append, BufPool};

use crate::answer::{answer, Next, HEAD_READ};
use crate::buffers::{ensure, release, POOLED, SPARE};
use crate::RING_ENTRIES;

/// Serves `listener` on this thread until accepting fails.
pub(crate) fn run(listener: std::net::TcpListener, driver: IoDriver) -> io::Result<()> {
    try_block_on(driver, RING_ENTRIES, |kind| async move {
        let listener = TcpListener::from_std(listener)
            .map_err(|e| io::Error::new(e.kind(), format!("monoio listener: {e}")))?;
        eprintln!("runtime-variants: monoio on {kind}, ready");
        let pool = Rc::new(BufPool::new(POOLED, SPARE));
        let mut reported = false;
        loop {
            let (stream, _) = listener
                .accept()
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("monoio accept: {e}")))?;
            let _ = stream.set_nodelay(true);
            let conn = connection(stream, pool.clone());
            if !reported {
                crate::report_task_size(&conn);
                reported = true;
            }
            monoio::spawn(conn);
        }
    })?
}

/// One keep-alive connection. Not an `async fn`: its state is captured once by the block.
fn connection(stream: TcpStream, pool: Rc<BufPool>) -> impl Future<Output = ()> {
    let mut stream = stream;
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    async move {
        loop {
            if buf.is_empty() && stream.readable(false).await.is_err() {
                return;
            }
            ensure(&mut buf, &pool);
            match read_append(&mut stream, &mut buf, HEAD_READ).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            ensure(&mut out, &pool);
            let next = answer(&mut buf, &mut out);
            if !out.is_empty() {
                let (res, written) = stream.write_all(std::mem::take(&mut out)).await;
                if res.is_err() {
                    return;
                }
                out = written;
                out.clear();
            }
            if next == Next::Close {
                return;
            }
            release(&mut buf, &pool);
            release(&mut out, &pool);
        }
    }
}
