//! The tunnel connections of one runtime thread to one balancer address: one per balancer worker.
//!
//! A *slot* is one wanted connection (balancer address, worker index). The first slot of an address
//! asks for no particular worker; its hello-ack tells how many workers the balancer runs and which
//! one took it, and the agent then opens one slot per remaining worker (spread over its runtime
//! threads, see `agent.rs`). Each slot reconnects on its own with exponential backoff and jitter,
//! asking for the same worker again, so the agent can start before the balancer and survives
//! balancer restarts.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use ringway_core::tunnel::{Connection, Hello, HelloAck, ResetCode, PROTOCOL_VERSION};
use ringway_io::net::TcpStream;
use ringway_io::tls::TlsStream;
use ringway_io::tunnel::{Exit, TunnelSocket};

use crate::backoff::Backoff;
use crate::stream;
use crate::tunnel::{StreamSlot, Tunnel, TunnelHooks};
use crate::worker::Worker;

/// A connection that lived this long counts as healthy: the next reconnect starts the backoff
/// series over (fast first retry).
const STABLE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Opens the probe slot (any balancer worker) of a new balancer address.
pub(crate) fn open_probe(worker: &Rc<Worker>, addr: SocketAddr) {
    if worker.claim_probe(addr) {
        ringway_io::spawn(run_slot(worker.clone(), addr, None));
    }
}

/// Opens the slots of this thread for a balancer running `worker_count` workers, but for the
/// one (`taken`) that has a connection already.
pub(crate) fn open_slots(worker: &Rc<Worker>, addr: SocketAddr, worker_count: u16, taken: u16) {
    let threads = worker.threads();
    for i in 0..worker_count {
        if i == taken || usize::from(i) % threads != worker.index {
            continue;
        }
        if worker.claim_slot(addr, i) {
            tracing::debug!(balancer = %addr, worker = i, thread = worker.index, "opening tunnel connection");
            ringway_io::spawn(run_slot(worker.clone(), addr, Some(i)));
        }
    }
}

/// Keeps one tunnel connection to `addr` alive (asking for balancer worker `want`) until the
/// runtime thread drains or stops, or the address leaves DNS.
async fn run_slot(worker: Rc<Worker>, addr: SocketAddr, mut want: Option<u16>) {
    let probe = want.is_none();
    let mut backoff = Backoff::new(worker.config.backoff);
    let hooks: Rc<dyn TunnelHooks> = Rc::new(SlotHooks {
        worker: worker.clone(),
    });
    while worker.wants(addr) {
        match connect(&worker, addr).await {
            Err(Failed::Tcp(e)) => {
                tracing::debug!(balancer = %addr, error = %e, "cannot reach balancer");
            }
            Err(Failed::Tls(e)) => {
                tracing::warn!(
                    balancer = %addr,
                    error = %e,
                    hint = crate::tls::handshake_hint(&e),
                    "TLS handshake with the balancer failed"
                );
            }
            Ok(socket) => {
                let hello = Hello {
                    version: PROTOCOL_VERSION,
                    agent_id: worker.config.agent_id.clone(),
                    token: worker.config.token.clone(),
                    routes: worker.config.routes.clone(),
                    worker: want,
                };
                let conn = Connection::agent(worker.config.tunnel.clone(), hello, Instant::now());
                let tunnel = Tunnel::new(addr, conn);
                worker.register(&tunnel);
                let started = Instant::now();
                let exit = tunnel.drive(socket, hooks.clone()).await;
                worker.unregister(&tunnel);
                if let Some(ack) = tunnel.ack() {
                    want = Some(ack.worker_index);
                    // A connection that served a while (a balancer restart) retries fast; one
                    // that fails right after the hello keeps backing off.
                    if started.elapsed() >= STABLE_AFTER {
                        backoff.reset();
                    }
                }
                match &exit {
                    Exit::Drained | Exit::Killed => {
                        tracing::info!(balancer = %addr, worker = ?want, "tunnel connection closed");
                    }
                    Exit::Rejected(code) => {
                        tracing::error!(
                            balancer = %addr,
                            %code,
                            routes = ?worker.config.routes,
                            "balancer rejected this agent, nothing registered: {}",
                            why_rejected(*code)
                        );
                    }
                    other if tunnel.ack().is_none() && worker.tls().is_none() => {
                        tracing::error!(
                            balancer = %addr,
                            reason = %other,
                            "the balancer closed the plaintext connection before accepting the \
                             hello: does its agent listener speak TLS? then drop \
                             --insecure-plaintext (and give --ca-file)"
                        );
                    }
                    other => {
                        tracing::warn!(balancer = %addr, worker = ?want, reason = %other, "tunnel connection lost");
                    }
                }
                if matches!(exit, Exit::Killed) {
                    return;
                }
            }
        }
        if !worker.wants(addr) {
            break;
        }
        let delay = backoff.next_delay();
        tracing::debug!(balancer = %addr, ?delay, "reconnecting after backoff");
        ringway_io::time::sleep(delay).await;
    }
    worker.slot_ended(addr, want, probe);
}

/// Why a connection to a balancer could not be made.
enum Failed {
    /// The TCP connect (the balancer is down or unreachable: retried quietly).
    Tcp(std::io::Error),
    /// The TLS handshake (a certificate or a transport mismatch: logged each time).
    Tls(std::io::Error),
}

/// Connects to `addr` and, unless plaintext, runs the TLS handshake (each within the connect
/// timeout).
async fn connect(worker: &Worker, addr: SocketAddr) -> Result<TunnelSocket, Failed> {
    let timeout = worker.config.connect_timeout;
    let timed_out = || {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("timed out after {timeout:?}"),
        )
    };
    let socket = ringway_io::time::timeout(timeout, TcpStream::connect_addr(addr))
        .await
        .map_err(|_| Failed::Tcp(timed_out()))?
        .map_err(Failed::Tcp)?;
    socket.set_nodelay(true).map_err(Failed::Tcp)?;
    let Some(tls) = worker.tls() else {
        return Ok(TunnelSocket::Plain(socket));
    };
    let name = tls.name_for(&worker.host_of(addr)).map_err(Failed::Tls)?;
    let handshake = TlsStream::connect(socket, tls.config.clone(), name);
    match ringway_io::time::timeout(timeout, handshake).await {
        Ok(Ok(stream)) => Ok(stream.into()),
        Ok(Err(e)) => Err(Failed::Tls(e)),
        Err(_) => Err(Failed::Tls(timed_out())),
    }
}

/// Connects the tunnel driver to this thread's worker: acks open sibling slots, streams become
/// stream tasks.
struct SlotHooks {
    worker: Rc<Worker>,
}

impl TunnelHooks for SlotHooks {
    fn on_ack(&self, tunnel: &Rc<Tunnel>, ack: HelloAck) {
        tracing::info!(
            balancer = %tunnel.peer(),
            worker = ack.worker_index,
            workers = ack.worker_count,
            "tunnel connection registered"
        );
        self.worker.acked(tunnel, ack);
    }

    fn on_stream(&self, tunnel: &Rc<Tunnel>, slot: Rc<StreamSlot>, head: Bytes, _end: bool) {
        let worker = self.worker.clone();
        let tunnel = tunnel.clone();
        let env = worker.stream_env();
        worker.stream_started();
        // Boxed: the task then holds a pointer, not the whole request's state, which spawning
        // and finishing it would otherwise copy (several kilobytes per stream).
        ringway_io::spawn(Box::pin(async move {
            stream::serve(tunnel, slot, head, env).await;
            worker.stream_finished();
        }));
    }
}

/// What a rejection of the hello means for the operator, by its code.
fn why_rejected(code: ResetCode) -> &'static str {
    match code {
        ResetCode::Unauthorized => {
            "the balancer does not accept this token (--token) for these routes"
        }
        ResetCode::OutOfScope => {
            "the token is accepted, but one of the routes (--route) is outside the hosts and path \
             prefixes it allows ([[agents.tokens]] on the balancer)"
        }
        ResetCode::BadRoute => "a route is malformed, or served by the balancer's static backends",
        ResetCode::TooManyRoutes => "more routes than the balancer lets one agent register",
        ResetCode::UnsupportedVersion => {
            "the balancer does not speak this agent's protocol version"
        }
        _ => "see the balancer's log",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hello_rejection_is_explained() {
        for code in [
            ResetCode::Unauthorized,
            ResetCode::OutOfScope,
            ResetCode::BadRoute,
            ResetCode::TooManyRoutes,
            ResetCode::UnsupportedVersion,
        ] {
            assert_ne!(
                why_rejected(code),
                why_rejected(ResetCode::Other(0x99)),
                "{code}"
            );
        }
    }
}
