//! The request path of one request: route it, take a slot of a limited route (`limits`),
//! pick its upstream — an agent connection (parking for one when none is here yet) or a static
//! backend — run attempts over a tunnel stream or a backend stream (the same [`AttemptStream`]
//! to `duplex`), and retry once where core's [`Exchange::may_retry`] allows it.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use ringway_core::exchange::{ErrorKind, Exchange, ExchangeConfig, ProxyError};
use ringway_core::http::forward::{self, ForwardInfo};
use ringway_core::http::RequestHead;
use tracing::debug;

use crate::access_log;
use crate::agent_conn::AgentConn;
use crate::answer;
use crate::attempt_stream::AttemptStream;
use crate::backends::{BackendStream, WorkerBackend};
use crate::duplex::{self, AttemptEnd, UserHalves};
use crate::early;
use crate::registry::RouteId;
use crate::user_conn::{Flow, UserConn};
use crate::user_io::write_out;
use crate::worker::{Settings, Worker};

/// What a request ended with, for the worker's counters.
#[derive(Default)]
struct Seen {
    route: Option<RouteId>,
    /// The status the user got (`None`: no response).
    status: Option<u16>,
    /// The upstream of the last attempt.
    upstream: Option<Upstream>,
    /// Body bytes (from the user, to the user).
    bytes: (u64, u64),
}

/// Serves one request to its end, counts it and logs it.
pub(crate) async fn serve(conn: &mut UserConn, head: RequestHead) -> Flow {
    let started = Instant::now();
    let own_id;
    let request_id: &str =
        match forward::request_id(&head).and_then(|id| std::str::from_utf8(id).ok()) {
            Some(id) => id,
            None => {
                own_id = conn.worker.next_request_id();
                own_id.as_str()
            }
        };
    let mut seen = Seen::default();
    let flow = serve_counted(conn, &head, request_id, &mut seen).await;
    let elapsed = started.elapsed();
    let worker = &conn.worker;
    worker
        .stats
        .request_done(seen.route, seen.status, elapsed, seen.bytes);
    if let Some(log) = worker.access() {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let route = seen
            .route
            .map(|r| worker.registry.route_text(r))
            .unwrap_or_default();
        log.record(&access_log::Entry {
            time: access_log::now_text(),
            client: conn.peer.socket_addr(),
            method: &text(head.method()),
            host: &text(head.host().unwrap_or_default()),
            target: &text(head.target()),
            status: seen.status,
            bytes_in: seen.bytes.0,
            bytes_out: seen.bytes.1,
            duration: elapsed.as_secs_f64(),
            route: &route,
            agent: &seen
                .upstream
                .as_ref()
                .map(Upstream::label)
                .unwrap_or_default(),
            request_id,
        });
    }
    flow
}

async fn serve_counted(
    conn: &mut UserConn,
    head: &RequestHead,
    request_id: &str,
    seen: &mut Seen,
) -> Flow {
    let worker = conn.worker.clone();
    // This request's settings to its end, whatever a reload swaps in meanwhile.
    let settings = worker.settings();
    let exchange = RefCell::new(Exchange::new(
        head,
        exchange_config(&settings),
        worker.deadlines.now(),
    ));
    if worker.drain.is_started() {
        exchange.borrow_mut().stop_keep_alive();
    }
    let on_error = exchange.borrow().error_persistence();
    let route = head
        .host()
        .and_then(|host| worker.registry.lookup(host, head.path()));
    // An ACME challenge, or a route's redirect to HTTPS: answered here, nothing proxied.
    if early::answer(conn, head, route, on_error, &mut seen.status) {
        // Boxed in its own statement: the rare answer's write takes no room in this future.
        let send = Box::pin(early::send(conn, on_error));
        return send.await;
    }
    let Some(route) = route else {
        let kind = if head.host().is_some() {
            ErrorKind::UnknownRoute
        } else {
            ErrorKind::Malformed(400)
        };
        let e = ProxyError::new(kind);
        seen.status = Some(e.status());
        return answer::error(conn, e, request_id, on_error, None).await;
    };
    seen.route = Some(route);
    // A limited route's slot, held until this function returns (the response ended or the
    // request failed), whatever the path. A route without a limit has no gate.
    let limits = worker.route_limits();
    let _slot = match limits.gate(route) {
        None => None,
        Some(gate) => match gate.admit(&worker.deadlines).await {
            Ok(slot) => Some(slot),
            Err(e) => {
                seen.status = Some(e.status());
                return answer::error(conn, e, request_id, on_error, Some(route)).await;
            }
        },
    };
    let park = settings.timeouts.park;
    let mut upstream = match first_upstream(&worker, route, park).await {
        Ok(upstream) => upstream,
        Err(e) => {
            seen.status = Some(e.status());
            return answer::error(conn, e, request_id, on_error, Some(route)).await;
        }
    };

    let info = ForwardInfo {
        client_addr: conn.peer.ip(),
        proto: if conn.is_https() { "https" } else { "http" },
        request_id,
        trusted_peer: settings.config.proxy.trusts(conn.peer.ip()),
    };
    let mut forwarded = bytes::BytesMut::new();
    forward::write_request(head, &info, head.framing(), &mut forwarded);
    let forwarded = forwarded.freeze();

    exchange
        .borrow_mut()
        .begin(&mut conn.out, worker.deadlines.now());
    if !conn.out.is_empty() {
        let Some(stream) = conn.stream.as_mut() else {
            return Flow::Close;
        };
        if write_out(
            stream,
            &mut conn.out,
            &worker.deadlines,
            settings.timeouts.body,
        )
        .await
        .is_err()
        {
            return Flow::Close;
        }
    }

    let mut retried = false;
    loop {
        // A retry after the whole body went out opens the stream already ended.
        let ended = exchange.borrow().opens_ended();
        let end = match &upstream {
            Upstream::Agent(agent) => match agent.open_stream(forwarded.clone(), ended) {
                Ok(stream) => attempt(conn, &exchange, &stream, settings.timeouts.body).await,
                Err(e) => AttemptEnd::Failed(e),
            },
            Upstream::Backend(backend) => {
                let config = worker.upstream_config();
                let private = conn.private_for(backend.send_proxy());
                let limits = &settings.limits;
                match BackendStream::open(backend, &forwarded, ended, private, config, limits) {
                    Ok(stream) => attempt(conn, &exchange, &stream, settings.timeouts.body).await,
                    Err(e) => AttemptEnd::Failed(e),
                }
            }
        };
        seen.status = exchange.borrow().final_status();
        seen.upstream = Some(upstream.clone());
        seen.bytes = exchange.borrow().body_bytes();
        let e = match end {
            AttemptEnd::Complete => return Flow::from(exchange.borrow().outcome()),
            AttemptEnd::Failed(e) => e,
        };
        if exchange.borrow().response_started() {
            debug!(request_id, error = %e, "response aborted after it started");
            return Flow::Close;
        }
        if !retried && exchange.borrow().may_retry(&e) {
            retried = true;
            debug!(request_id, error = %e, upstream = %upstream.label(), "retrying on another upstream");
            if let Some(next) = retry_upstream(&worker, route, &upstream, &e, park).await {
                worker.stats.retried();
                upstream = next;
                exchange.borrow_mut().prepare_retry(worker.deadlines.now());
                continue;
            }
        }
        let persistence = exchange.borrow().error_persistence();
        seen.status = Some(e.status());
        let flow = answer::error(conn, e, request_id, persistence, Some(route)).await;
        // The user may still be sending a body nobody will read: a lingering close keeps the
        // kernel from answering it with a reset that would destroy the error answer.
        return match flow {
            Flow::Close if !exchange.borrow().request_read() => Flow::Linger,
            flow => flow,
        };
    }
}

/// Where an attempt goes.
#[derive(Clone)]
enum Upstream {
    Agent(Rc<AgentConn>),
    Backend(Rc<WorkerBackend>),
}

impl Upstream {
    /// The agent id or the backend address (access log, debug lines).
    fn label(&self) -> String {
        match self {
            Self::Agent(agent) => agent.agent_id().to_owned(),
            Self::Backend(backend) => backend.member.addr.to_string(),
        }
    }
}

/// The first upstream of a request: a static backend of a static route, else an agent (waiting
/// up to the park time for one).
async fn first_upstream(
    worker: &Worker,
    route: RouteId,
    park: std::time::Duration,
) -> Result<Upstream, ProxyError> {
    if let Some(picked) = worker.pick_backend(route, None) {
        return picked.map(Upstream::Backend);
    }
    find_agent(worker, route, None, park)
        .await
        .map(Upstream::Agent)
        .ok_or(ProxyError::new(ErrorKind::NoAgent))
}

/// Another upstream after `failed` failed with `e`. An agent that went away may be replaced
/// soon: park for one. A backend error is retried only on an agent that is already here, and
/// a static backend on another backend of the route.
async fn retry_upstream(
    worker: &Worker,
    route: RouteId,
    failed: &Upstream,
    e: &ProxyError,
    park: std::time::Duration,
) -> Option<Upstream> {
    match failed {
        Upstream::Backend(backend) => worker
            .pick_backend(route, Some(backend.key))
            .and_then(Result::ok)
            .map(Upstream::Backend),
        Upstream::Agent(agent) => {
            let exclude = Some(agent.key());
            let next = if matches!(e.kind, ErrorKind::AgentLost | ErrorKind::AgentRefused) {
                find_agent(worker, route, exclude, park).await
            } else {
                worker.pick(route, exclude)
            };
            next.map(Upstream::Agent)
        }
    }
}

/// One attempt over `stream`: with the user's socket split in its two halves for the time when
/// the request side has work to do, over the whole socket when it has none.
async fn attempt<S: AttemptStream>(
    conn: &mut UserConn,
    exchange: &RefCell<Exchange>,
    stream: &S,
    limit: std::time::Duration,
) -> AttemptEnd {
    let end = drive(conn, exchange, stream, limit).await;
    if matches!(end, AttemptEnd::Complete) {
        stream.finish();
    }
    end
}

/// [`attempt`]'s IO: the response loop alone, or both loops over the split socket.
async fn drive<S: AttemptStream>(
    conn: &mut UserConn,
    exchange: &RefCell<Exchange>,
    stream: &S,
    limit: std::time::Duration,
) -> AttemptEnd {
    let worker = conn.worker.clone();
    if exchange.borrow().opens_ended() {
        let Some(socket) = conn.stream.as_mut() else {
            return AttemptEnd::Failed(ProxyError::new(ErrorKind::ClientIo));
        };
        return duplex::respond_only(
            socket,
            &mut conn.out,
            limit,
            (&worker.deadlines, &worker.drain),
            exchange,
            stream,
        )
        .await;
    }
    let Some(socket) = conn.stream.take() else {
        return AttemptEnd::Failed(ProxyError::new(ErrorKind::ClientIo));
    };
    let (mut rd, mut wr) = socket.into_split();
    let halves = UserHalves {
        rd: &mut rd,
        wr: &mut wr,
        buf: &mut conn.buf,
        out: &mut conn.out,
        write_limit: limit,
        deadlines: &worker.deadlines,
        drain: &worker.drain,
    };
    let end = duplex::run(halves, exchange, stream).await;
    match rd.reunite(wr) {
        Some(socket) => conn.stream = Some(socket),
        // Both halves came from this socket; should this ever fail, the connection closes.
        None => return AttemptEnd::Failed(ProxyError::new(ErrorKind::ClientIo)),
    }
    end
}

/// The exchange settings of a request.
fn exchange_config(settings: &Settings) -> ExchangeConfig {
    ExchangeConfig {
        max_body: settings.limits.max_body_bytes,
        response_head_timeout: settings.timeouts.response_head,
        body_timeout: settings.timeouts.body,
        upgrade_idle_timeout: settings.timeouts.upgrade_idle,
        // The tunnel already resets a stream past this many heads; the same bound here.
        max_interim_heads: settings.tunnel.max_response_heads,
    }
}

/// An agent for `route` on this worker, waiting up to the park time for one to connect.
async fn find_agent(
    worker: &Worker,
    route: RouteId,
    exclude: Option<u64>,
    park: std::time::Duration,
) -> Option<Rc<AgentConn>> {
    if let Some(agent) = worker.pick(route, exclude) {
        return Some(agent);
    }
    worker.stats.parked();
    let wait = worker.wait_for_agent(route, exclude);
    worker.deadlines.timeout_after(park, wait).await
}
