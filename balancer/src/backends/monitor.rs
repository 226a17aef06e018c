//! The static backends' monitor, off the workers: one thread resolves backend host names every
//! `backends.resolve_interval`, another runs the routes' active health checks on its own
//! runtime. Both only write the current [`BackendBook`] (members' addresses and verdicts);
//! workers read it when they pick.

use std::io;
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringway_core::health::{probe_request, probe_verdict, ProbeVerdict};
use ringway_core::proxy_protocol::{self, Command, ProxyHeader};
use ringway_io::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use ringway_io::runtime::{spawn_worker, WorkerSpec};
use ringway_tuning::runtime::IoDriver;
use ringway_upstream::BackendAddr;
use tracing::{info, warn};

use super::book::{BackendBook, Group, Member, StaticRoute};
use super::SharedBook;
use crate::config::{BackendTarget, BackendsConfig, SendProxy};

/// How soon a name that resolved to nothing is tried again.
const RETRY_EMPTY: Duration = Duration::from_secs(1);
/// How often the health-check thread looks for checks that are due.
const TICK: Duration = Duration::from_millis(20);

/// Resolves every backend name once (at start, so the first requests find addresses); a name
/// that does not resolve is logged and left empty (its route answers 503 until it does).
pub(crate) fn resolve_all(book: &BackendBook) {
    for route in &book.routes {
        for group in &route.groups {
            resolve(route, group);
        }
    }
}

/// Resolves the names of a book that no worker reads yet (a reload's): those of entries
/// kept from the running book already have their addresses.
pub(crate) fn resolve_new(book: &BackendBook) {
    for route in &book.routes {
        for group in &route.groups {
            if group.members().is_empty() {
                resolve(route, group);
            }
        }
    }
}

/// Starts the resolver thread and the health-check thread. Both read the current book on
/// every round, so a reload that swaps it is followed at once.
pub(crate) fn start(
    book: &SharedBook,
    config: &BackendsConfig,
    driver: IoDriver,
) -> io::Result<()> {
    let shared = book.clone();
    let interval = config.resolve_interval;
    std::thread::Builder::new()
        .name("ringway-resolve".to_owned())
        .spawn(move || loop {
            let current = shared.load_full();
            let empty = current.named_groups().any(|g| g.members().is_empty());
            drop(current);
            std::thread::sleep(if empty {
                interval.min(RETRY_EMPTY)
            } else {
                interval
            });
            resolve_all(&shared.load_full());
        })
        .map_err(|e| io::Error::new(e.kind(), format!("starting the resolver thread: {e}")))?;
    let shared = book.clone();
    let spec = WorkerSpec {
        name: "ringway-health".to_owned(),
        cpu: None,
        driver,
        ring_entries: 256,
    };
    // The thread runs for the life of the process; its handle is not kept.
    drop(spawn_worker(spec, move |_| check_all(shared))?);
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

/// Runs the health checks of the current book: every `TICK`, each backend of a route with
/// `[route.health]` whose check is due and not under way gets one, in a task of its own (so a
/// backend that does not answer delays no other).
async fn check_all(book: SharedBook) {
    loop {
        let current = book.load_full();
        let now = Instant::now();
        for (r, route) in current.routes.iter().enumerate() {
            let Some(health) = &route.health else {
                continue;
            };
            for (g, group) in route.groups.iter().enumerate() {
                for (m, member) in group.members().iter().enumerate() {
                    let mut schedule = lock(&member.schedule);
                    if schedule.running || schedule.next.is_some_and(|at| at > now) {
                        continue;
                    }
                    schedule.running = true;
                    schedule.next = Some(now + health.interval);
                    drop(schedule);
                    let current = current.clone();
                    drop(ringway_io::spawn(async move {
                        let route = &current.routes[r];
                        let group = &route.groups[g];
                        if let Some(member) = group.members().get(m).cloned() {
                            check_one(route, &member).await;
                        }
                    }));
                }
            }
        }
        drop(current);
        ringway_io::time::sleep(TICK).await;
    }
}

/// One check of one backend, reported.
async fn check_one(route: &StaticRoute, member: &Member) {
    let Some(health) = &route.health else {
        return;
    };
    let host = route
        .check_host
        .clone()
        .unwrap_or_else(|| member.addr.to_string());
    let result = ringway_io::time::timeout(
        health.timeout,
        probe(route, &member.addr, &host, &health.path),
    )
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {:?}", health.timeout)));
    report(route, member, result);
    lock(&member.schedule).running = false;
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// One check: connect, `GET path`, judge the response head. `Ok(status)` when healthy. A
/// backend of a `send_proxy` route expects a PROXY protocol header first: the check sends a
/// `LOCAL` one (v1: `PROXY UNKNOWN`), the command meant for a proxy's own health checks.
async fn probe(
    route: &StaticRoute,
    addr: &BackendAddr,
    host: &str,
    path: &str,
) -> Result<u16, String> {
    let mut request = BytesMut::new();
    let local = ProxyHeader {
        command: Command::Local,
        source: None,
        destination: None,
    };
    match route.send_proxy {
        SendProxy::Off => {}
        SendProxy::V1 => proxy_protocol::write_v1(&local, &mut request),
        SendProxy::V2 => proxy_protocol::write_v2(&local, &mut request),
    }
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
