//! Accept loops: the user listener and the agent listener of one worker (each an SO_REUSEPORT
//! member of its port's group, so the kernel spreads connections over workers).

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use monoio::net::TcpStream;
use tracing::{info_span, warn, Instrument};

use crate::worker::Worker;
use crate::{agent_conn, client};

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
            agent_conn::accept(worker.clone(), stream, peer, Bytes::new(), false).instrument(span),
        );
    })
    .await;
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
