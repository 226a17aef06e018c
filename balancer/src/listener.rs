//! A worker's main task and its accept loops: the user listener and the agent listener (each an
//! SO_REUSEPORT member of its port's group, so the kernel spreads connections over workers), and
//! the agent connections other workers hand over (`handoff.rs`).

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use monoio::net::TcpStream;
use ringway_io::runtime::DriverKind;
use tracing::{info, info_span, warn, Instrument};

use crate::handoff::HandoffRx;
use crate::worker::{Worker, WorkerSetup};
use crate::{agent_accept, client};

/// Runs a worker to completion on the current thread's runtime: builds its state, then serves
/// its listeners and hand-offs.
pub(crate) async fn run(setup: WorkerSetup, driver: DriverKind) {
    let span = info_span!("worker", index = setup.index);
    async move {
        info!(driver = %driver, "worker started");
        let worker = Worker::new(&setup);
        let WorkerSetup {
            users,
            agents,
            handoff_rx,
            ..
        } = setup;
        monoio::spawn(receive_handoffs(worker.clone(), handoff_rx).in_current_span());
        monoio::spawn(accept_agents(worker.clone(), agents).in_current_span());
        let ticking = worker.clone();
        monoio::spawn(async move { ticking.deadlines.run().await });
        let summing = worker.clone();
        monoio::spawn(async move { summing.peer_log.run().await }.in_current_span());
        accept_users(worker, users).await;
    }
    .instrument(span)
    .await;
}

/// Accepts user connections until the listener fails; each is served on this worker.
pub(crate) async fn accept_users(worker: Rc<Worker>, listener: std::net::TcpListener) {
    accept_loop(listener, "user", |stream, peer| {
        monoio::spawn(client::serve(worker.clone(), stream, peer));
    })
    .await;
}

/// Accepts agent connections; each reads its hello and stays here or moves to its worker.
pub(crate) async fn accept_agents(worker: Rc<Worker>, listener: std::net::TcpListener) {
    accept_loop(listener, "agent", |stream, peer| {
        let span = info_span!("agent", %peer);
        monoio::spawn(
            agent_accept::accept(worker.clone(), stream, peer, Bytes::new(), false)
                .instrument(span),
        );
    })
    .await;
}

/// Receives agent connections other workers handed to this one and serves them.
pub(crate) async fn receive_handoffs(worker: Rc<Worker>, rx: HandoffRx) {
    while let Ok(h) = rx.recv_async().await {
        match TcpStream::from_std(h.stream) {
            Ok(stream) => {
                let span = info_span!("agent", peer = %h.peer);
                monoio::spawn(
                    agent_accept::accept(worker.clone(), stream, h.peer, h.received, true)
                        .instrument(span),
                );
            }
            Err(e) => {
                warn!(peer = %h.peer, error = %e, "registering a handed-off connection failed");
            }
        }
    }
}

/// Registers `listener` with this worker's runtime and hands every accepted connection, with
/// Nagle off, to `serve`. `which` names the listener in logs.
async fn accept_loop(
    listener: std::net::TcpListener,
    which: &'static str,
    mut serve: impl FnMut(TcpStream, SocketAddr),
) {
    let listener = match monoio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, listener = which, "{which} listener could not be registered");
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                serve(stream, peer);
            }
            Err(e) => accept_failed(&e, which).await,
        }
    }
}

/// Out of descriptors or memory: back off briefly instead of spinning.
async fn accept_failed(e: &std::io::Error, which: &str) {
    warn!(error = %e, listener = which, "accept failed");
    monoio::time::sleep(Duration::from_millis(20)).await;
}
