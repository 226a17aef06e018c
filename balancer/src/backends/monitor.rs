//! The static backends' monitor, off the workers: one thread resolves backend host names every
//! `backends.resolve_interval`, another runs the routes' active health checks on its own
//! runtime. Both only write the [`BackendBook`]; workers read it when they pick.

use std::io;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use ringway_core::health::{probe_request, probe_verdict, ProbeVerdict};
use ringway_io::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use ringway_io::runtime::{spawn_worker, WorkerSpec};
use ringway_tuning::runtime::IoDriver;
use ringway_upstream::BackendAddr;
use tracing::{info, warn};

use super::book::{BackendBook, Group, Member, StaticRoute};
use crate::config::{BackendTarget, BackendsConfig};

/// How soon a name that resolved to nothing is tried again.
const RETRY_EMPTY: Duration = Duration::from_secs(1);

/// Resolves every backend name once (at start, so the first requests find addresses); a name
/// that does not resolve is logged and left empty (its route answers 503 until it does).
pub(crate) fn resolve_all(book: &BackendBook) {
    for route in &book.routes {
        for group in &route.groups {
            resolve(route, group);
        }
    }
}

/// Starts the resolver thread (when some backend is a name) and the health-check thread (when
/// some route has `[route.health]`).
pub(crate) fn start(
    book: &Arc<BackendBook>,
    config: &BackendsConfig,
    driver: IoDriver,
) -> io::Result<()> {
    if book.named_groups().next().is_some() {
        let book = book.clone();
        let interval = config.resolve_interval;
        std::thread::Builder::new()
            .name("ringway-resolve".to_owned())
            .spawn(move || loop {
                let empty = book.named_groups().any(|g| g.members().is_empty());
                std::thread::sleep(if empty {
                    interval.min(RETRY_EMPTY)
                } else {
                    interval
                });
                resolve_all(&book);
            })
            .map_err(|e| io::Error::new(e.kind(), format!("starting the resolver thread: {e}")))?;
    }
    if book.routes.iter().any(|r| r.health.is_some()) {
        let book = book.clone();
        let spec = WorkerSpec {
            name: "ringway-health".to_owned(),
            cpu: None,
            driver,
            ring_entries: 256,
        };
        // The thread runs for the life of the process; its handle is not kept.
        drop(spawn_worker(spec, move |_| check_all(book))?);
    }
    Ok(())
}

/// Resolves one group's name, if it is one, and publishes what changed.
fn resolve(route: &StaticRoute, group: &Group) {
    let BackendTarget::Name { host, port } = &group.spec.target else {
        return;
    };
    let rise_fall = route.health.as_ref().map_or((1, 1), |h| (h.rise, h.fall));
    match (host.as_str(), *port).to_socket_addrs() {
        Ok(found) => {
            let mut addrs: Vec<BackendAddr> = found.map(BackendAddr::Tcp).collect();
            addrs.sort_by_key(ToString::to_string);
            addrs.dedup();
            if addrs.is_empty() {
                warn!(route = %route.text, backend = %group.spec.target, "backend name resolved to no address; keeping the addresses it had");
                return;
            }
            if group.set_addresses(&addrs, rise_fall) {
                let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                info!(route = %route.text, backend = %group.spec.target, addresses = ?list, "backend name resolved");
            }
        }
        Err(e) => {
            warn!(route = %route.text, backend = %group.spec.target, error = %e, "resolving backend name failed; keeping the addresses it had");
        }
    }
}

/// Runs every route's health checks, one task per backend entry.
async fn check_all(book: Arc<BackendBook>) {
    let mut tasks = Vec::new();
    for (r, route) in book.routes.iter().enumerate() {
        if route.health.is_none() {
            continue;
        }
        for g in 0..route.groups.len() {
            let book = book.clone();
            tasks.push(ringway_io::spawn(async move {
                check_group(&book.routes[r], &book.routes[r].groups[g]).await;
            }));
        }
    }
    for task in tasks {
        task.await;
    }
}

/// Checks one entry's addresses every interval, forever.
async fn check_group(route: &StaticRoute, group: &Group) {
    let Some(health) = &route.health else {
        return;
    };
    loop {
        let members = group.members().clone();
        for member in members.iter() {
            let host = route
                .check_host
                .clone()
                .unwrap_or_else(|| member.addr.to_string());
            let result =
                ringway_io::time::timeout(health.timeout, probe(&member.addr, &host, &health.path))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {:?}", health.timeout)));
            report(route, member, result);
        }
        ringway_io::time::sleep(health.interval).await;
    }
}

fn report(route: &StaticRoute, member: &Member, result: Result<u16, String>) {
    let healthy = result.is_ok();
    match member.record_check(healthy) {
        Some(false) => {
            let reason = result.err().unwrap_or_default();
            warn!(route = %route.text, backend = %member.addr, %reason, "backend is down (health check)");
        }
        Some(true) => {
            info!(route = %route.text, backend = %member.addr, "backend is up again (health check)");
        }
        None => {}
    }
}

/// One check: connect, `GET path`, judge the response head. `Ok(status)` when healthy.
async fn probe(addr: &BackendAddr, host: &str, path: &str) -> Result<u16, String> {
    let mut request = BytesMut::new();
    probe_request(host, path, &mut request);
    match addr {
        BackendAddr::Tcp(a) => {
            let stream = ringway_io::net::TcpStream::connect(*a)
                .await
                .map_err(|e| format!("connecting: {e}"))?;
            exchange(stream, request).await
        }
        BackendAddr::Unix(p) => {
            let stream = ringway_io::net::UnixStream::connect(p)
                .await
                .map_err(|e| format!("connecting: {e}"))?;
            exchange(stream, request).await
        }
    }
}

async fn exchange<S: AsyncReadRent + AsyncWriteRent>(
    mut stream: S,
    request: BytesMut,
) -> Result<u16, String> {
    let (written, _) = stream.write_all(request).await;
    written.map_err(|e| format!("writing the check: {e}"))?;
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let n = ringway_io::read_append(&mut stream, &mut buf, 4096)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        let mut parsing = buf.clone();
        match probe_verdict(&mut parsing) {
            ProbeVerdict::Healthy(status) => return Ok(status),
            ProbeVerdict::Unhealthy(status) => return Err(format!("answered {status}")),
            ProbeVerdict::Malformed => return Err("answered something that is not HTTP".into()),
            ProbeVerdict::NeedMore if n == 0 => {
                return Err("closed before a whole response head".into())
            }
            ProbeVerdict::NeedMore if buf.len() > 64 * 1024 => {
                return Err("response head too large".into())
            }
            ProbeVerdict::NeedMore => {}
        }
    }
}
