//! The admin listener (loopback by default): `GET /metrics`, `/healthz`, `/readyz`, `/routes`,
//! `/agents`, and `POST /reload` (see `reload`).
//!
//! It runs on a thread of its own with blocking sockets, one connection at a time: its traffic is
//! a scrape every few seconds, and nothing of it may slow a worker. Workers never share their
//! counters; the admin thread asks each worker for a snapshot over a channel (the worker answers
//! from a task of its own, between requests) and merges the answers. A worker that does not
//! answer within [`SCRAPE_WAIT`] is left out of that scrape and counted as missing, and makes
//! `/readyz` fail.
//!
//! Requests are parsed with core's HTTP/1.1 parser; every answer closes the connection.

mod backend_metrics;
mod metrics;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use ringway_core::http::{Limits, RequestParser};
use serde::Serialize;
use tracing::{debug, warn};

use crate::backends::SharedBook;
use crate::control::{Command, CommandTx};
use crate::registry::Registry;
use crate::reload::{AdminListener, ReloadError, Reloader};
use crate::stats::{AgentInfo, WorkerSnapshot};

/// How long a scrape waits for each worker's snapshot.
const SCRAPE_WAIT: Duration = Duration::from_secs(1);
/// How long an admin client may take to send its request head.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest admin request head.
const MAX_HEAD: usize = 16 * 1024;

/// What the admin thread needs.
struct Admin {
    workers: Vec<CommandTx>,
    registry: Arc<Registry>,
    backends: SharedBook,
    reloader: Arc<Reloader>,
    stop: Arc<AtomicBool>,
}

/// Starts the admin thread on `listener`.
pub(crate) fn start(
    listener: TcpListener,
    workers: Vec<CommandTx>,
    registry: Arc<Registry>,
    backends: SharedBook,
    reloader: Arc<Reloader>,
) -> io::Result<AdminListener> {
    let stop = Arc::new(AtomicBool::new(false));
    let control = listener.try_clone()?;
    let admin = Admin {
        workers,
        registry,
        backends,
        reloader,
        stop: stop.clone(),
    };
    std::thread::Builder::new()
        .name("ringway-admin".into())
        .spawn(move || admin.run(&listener))?;
    Ok(AdminListener { control, stop })
}

impl Admin {
    fn run(&self, listener: &TcpListener) {
        for conn in listener.incoming() {
            if self.stop.load(Ordering::Relaxed) {
                debug!("admin listener closed (moved by a reload)");
                return;
            }
            match conn {
                Ok(stream) => {
                    if let Err(e) = self.serve(stream) {
                        debug!(error = %e, "admin connection failed");
                    }
                }
                Err(e) => {
                    warn!(error = %e, "admin listener: accept failed");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    fn serve(&self, mut stream: TcpStream) -> io::Result<()> {
        stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        let limits = Limits {
            max_head_bytes: MAX_HEAD,
            ..Limits::default()
        };
        let mut parser = RequestParser::new(limits);
        let mut buf = BytesMut::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        let head = loop {
            match parser.parse(&mut buf) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(e) => {
                    let body = format!("bad request: {e}\n");
                    return respond(&mut stream, 400, "text/plain; charset=utf-8", &body);
                }
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let path = head.path();
        let path = path.split(|&b| b == b'?').next().unwrap_or_default();
        if path == b"/reload" {
            if head.method() != b"POST" {
                return respond(&mut stream, 405, "text/plain; charset=utf-8", "POST only\n");
            }
            return self.reload(&mut stream);
        }
        if head.method() != b"GET" {
            return respond(&mut stream, 405, "text/plain; charset=utf-8", "GET only\n");
        }
        match path {
            b"/metrics" => {
                let (snapshots, missing) = self.scrape();
                let text = metrics::render(
                    &snapshots,
                    missing,
                    &self.backends.load_full(),
                    self.reloader.counts(),
                );
                respond(
                    &mut stream,
                    200,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    &text,
                )
            }
            b"/healthz" => respond(&mut stream, 200, "text/plain; charset=utf-8", "ok\n"),
            b"/readyz" => {
                let (_, missing) = self.scrape();
                if missing == 0 {
                    respond(&mut stream, 200, "text/plain; charset=utf-8", "ready\n")
                } else {
                    let body = format!("not ready: {missing} worker(s) did not answer\n");
                    respond(&mut stream, 503, "text/plain; charset=utf-8", &body)
                }
            }
            b"/routes" => {
                let (snapshots, _) = self.scrape();
                json(&mut stream, &self.routes(&snapshots))
            }
            b"/agents" => {
                let (snapshots, _) = self.scrape();
                let agents: Vec<&AgentInfo> = snapshots.iter().flat_map(|s| &s.agents).collect();
                json(&mut stream, &agents)
            }
            _ => respond(
                &mut stream,
                404,
                "text/plain; charset=utf-8",
                "not found: try /metrics, /healthz, /readyz, /routes, /agents or POST /reload\n",
            ),
        }
    }

    /// `POST /reload`: 200 with a JSON report of what changed, or 422 with why nothing did.
    fn reload(&self, stream: &mut TcpStream) -> io::Result<()> {
        match self.reloader.reload() {
            Ok(report) => json(stream, &report),
            Err(e) => {
                let body = match &e {
                    ReloadError::Config(_) => {
                        format!("reload failed: invalid configuration: {e}\n")
                    }
                    _ => format!("reload failed: {e}\n"),
                };
                let body = format!("{body}the running configuration is unchanged\n");
                respond(stream, 422, "text/plain; charset=utf-8", &body)
            }
        }
    }

    /// Every worker's snapshot, and how many workers did not answer in time.
    fn scrape(&self) -> (Vec<WorkerSnapshot>, usize) {
        let replies: Vec<_> = self
            .workers
            .iter()
            .map(|w| {
                let (tx, rx) = flume::bounded(1);
                w.try_send(Command::Scrape(tx)).ok().map(|()| rx)
            })
            .collect();
        let mut snapshots = Vec::with_capacity(replies.len());
        let mut missing = 0;
        for rx in replies {
            match rx.and_then(|rx| rx.recv_timeout(SCRAPE_WAIT).ok()) {
                Some(s) => snapshots.push(s),
                None => missing += 1,
            }
        }
        (snapshots, missing)
    }

    /// `GET /routes`: every known route with its agent connections and requests so far.
    fn routes(&self, snapshots: &[WorkerSnapshot]) -> Vec<RouteInfo> {
        self.registry
            .known_routes()
            .into_iter()
            .map(|route| {
                let agent_connections = snapshots
                    .iter()
                    .flat_map(|s| &s.agents)
                    .filter(|a| a.routes.contains(&route))
                    .count();
                let requests = snapshots
                    .iter()
                    .flat_map(|s| &s.counters.routes)
                    .filter(|(r, _)| *r == route)
                    .map(|(_, c)| c.total())
                    .sum();
                let book = self.backends.load_full();
                let backends = book
                    .routes
                    .iter()
                    .filter(|r| r.text == route)
                    .flat_map(|r| &r.groups)
                    .flat_map(|g| g.members().iter().cloned().collect::<Vec<_>>())
                    .map(|m| BackendInfo {
                        addr: m.addr.to_string(),
                        up: m.is_up(),
                        ejections: m.ejections(),
                    })
                    .collect();
                RouteInfo {
                    route,
                    agent_connections,
                    requests,
                    backends,
                }
            })
            .collect()
    }
}

/// One route as `GET /routes` shows it.
#[derive(Debug, Serialize)]
struct RouteInfo {
    route: String,
    agent_connections: usize,
    requests: u64,
    /// A static route's backends (classic mode).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    backends: Vec<BackendInfo>,
}

/// One static backend as `GET /routes` shows it.
#[derive(Debug, Serialize)]
struct BackendInfo {
    addr: String,
    /// The active health checks' verdict.
    up: bool,
    /// Times a worker took it out (passive checks).
    ejections: u64,
}

fn json<T: Serialize>(stream: &mut TcpStream, value: &T) -> io::Result<()> {
    let mut body = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    body.push('\n');
    respond(stream, 200, "application/json", &body)
}

fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &str) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        422 => "Unprocessable Content",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}
