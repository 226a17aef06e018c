//! One user connection: read a request head, route it, pick an agent, stream the request out and
//! the response back, repeat (keep-alive; pipelined requests are served one after the other, in
//! order, from the same buffer).
//!
//! Everything the user can see going wrong becomes one `ProxyError` and one short error response
//! carrying the request's `X-Request-Id`, which also appears in the log line.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable,
};
use monoio::net::TcpStream;
use ringway_core::http::forward::{self, ForwardInfo, Persistence};
use ringway_core::http::{
    BodyDecoder, BodyEncoder, BodyEvent, BodyFraming, ErrorResponse, Limits, RequestHead,
    RequestParser, ResponseHead, ResponseParser, Version,
};
use tracing::{debug, info, info_span, Instrument};

use crate::agent_conn::AgentConn;
use crate::errors::{from_reset, ErrorKind, ProxyError};
use crate::registry::RouteId;
use crate::timeouts::deadline_after;
use crate::tunnel_stream::{StreamEvent, TunnelStream};
use crate::worker::Worker;

/// Bytes asked of one read from a user.
const READ_CHUNK: usize = 64 * 1024;

/// Whether the connection serves another request after this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    KeepAlive,
    Close,
}

/// Serves one user connection to the end.
pub(crate) async fn serve(worker: Rc<Worker>, stream: TcpStream, peer: SocketAddr) {
    let span = info_span!("client", %peer);
    let (rd, wr) = stream.into_split();
    let mut client = Client {
        parser: RequestParser::new(worker.limits),
        worker,
        peer,
        rd,
        wr,
        buf: BytesMut::with_capacity(8 * 1024),
        out: BytesMut::with_capacity(16 * 1024),
        heads: BytesMut::with_capacity(8 * 1024),
    };
    client.run().instrument(span).await;
}

struct Client {
    worker: Rc<Worker>,
    peer: SocketAddr,
    rd: OwnedReadHalf<TcpStream>,
    wr: OwnedWriteHalf<TcpStream>,
    /// Bytes read from the user and not yet consumed (a partial head, body bytes, pipelined requests).
    buf: BytesMut,
    /// Bytes to write to the user.
    out: BytesMut,
    /// Room for the rewritten request heads sent to agents.
    heads: BytesMut,
    parser: RequestParser,
}

/// How reading the next request head ended.
enum HeadRead {
    Head(RequestHead),
    /// The user closed or went idle between requests.
    Gone,
    /// The head was malformed or too slow: answered and the connection must close.
    Failed(ProxyError),
}

impl Client {
    async fn run(&mut self) {
        let mut first = true;
        loop {
            let head = match self.read_head(first).await {
                HeadRead::Head(head) => head,
                HeadRead::Gone => break,
                HeadRead::Failed(e) => {
                    let id = self.worker.next_request_id();
                    self.respond_error(e, id.as_str(), Persistence::Close, None)
                        .await;
                    break;
                }
            };
            first = false;
            if self.exchange(head).await == Flow::Close {
                break;
            }
        }
        let _ = self.wr.shutdown().await;
    }

    /// Reads until a whole head is parsed. The head deadline runs from the accept (first request)
    /// or from the first byte of the head; between requests the idle timeout applies.
    async fn read_head(&mut self, first: bool) -> HeadRead {
        let timeouts = self.worker.timeouts;
        let mut started = !self.buf.is_empty();
        let mut deadline = if first {
            Some(deadline_after(timeouts.head))
        } else {
            None
        };
        loop {
            if !self.buf.is_empty() {
                match self.parser.parse(&mut self.buf) {
                    Ok(Some(head)) => return HeadRead::Head(head),
                    Ok(None) => {}
                    Err(e) => return HeadRead::Failed(ProxyError::from(&e)),
                }
                if deadline.is_none() {
                    deadline = Some(deadline_after(timeouts.head));
                }
            }
            let (at, idle) = match deadline {
                Some(at) => (at, false),
                None => (deadline_after(timeouts.idle), true),
            };
            match monoio::time::timeout_at(at, self.read_more()).await {
                Ok(Ok(0)) | Ok(Err(_)) => return HeadRead::Gone,
                Ok(Ok(_)) => started = true,
                // Nothing of a request arrived: close quietly (an idle or preconnected client).
                // (The buffer itself went with the cancelled read.)
                Err(_) if idle || !started => return HeadRead::Gone,
                Err(_) => {
                    info!(peer = %self.peer, "request head deadline passed; closing");
                    return HeadRead::Failed(ProxyError::new(ErrorKind::Malformed(408)));
                }
            }
        }
    }

    async fn read_more(&mut self) -> std::io::Result<usize> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.reserve(READ_CHUNK);
        let (len, cap) = (buf.len(), buf.capacity());
        let (res, slice) = self.rd.read(buf.slice_mut(len..cap)).await;
        self.buf = slice.into_inner();
        res
    }

    /// Writes `out` to the user within the body timeout: a user that stops reading cannot hold
    /// the connection, its stream and a backend connection forever. A timed-out write loses the
    /// buffer; the caller closes the connection.
    async fn write_out(&mut self) -> std::io::Result<()> {
        let out = std::mem::take(&mut self.out);
        let at = deadline_after(self.worker.timeouts.body);
        let Ok((res, mut out)) = monoio::time::timeout_at(at, self.wr.write_all(out)).await else {
            info!(peer = %self.peer, "user stopped reading; closing");
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "user write timed out",
            ));
        };
        out.clear();
        self.out = out;
        res.map(drop)
    }

    /// One request: route, pick, forward (retrying once where allowed), answer.
    async fn exchange(&mut self, head: RequestHead) -> Flow {
        let own_id;
        let request_id: &str =
            match forward::request_id(&head).and_then(|id| std::str::from_utf8(id).ok()) {
                Some(id) => id,
                None => {
                    own_id = self.worker.next_request_id();
                    own_id.as_str()
                }
            };
        let framing = head.framing();
        let body_pending = !framing.is_empty();
        // An error answer ends the connection when the body was not read or the client asked to
        // close (`Connection: close`, or HTTP/1.0 without keep-alive).
        let on_error = Persistence::for_peer(head.version(), !body_pending && head.keep_alive());
        if head.wants_upgrade() {
            let e = ProxyError::new(ErrorKind::Malformed(501));
            return self
                .respond_error(e, request_id, Persistence::Close, None)
                .await;
        }
        let route = head
            .host()
            .and_then(|host| self.worker.registry.lookup(host, head.path()));
        let Some(route) = route else {
            let kind = if head.host().is_some() {
                ErrorKind::UnknownRoute
            } else {
                ErrorKind::Malformed(400)
            };
            return self
                .respond_error(ProxyError::new(kind), request_id, on_error, None)
                .await;
        };
        let Some(mut agent) = self.find_agent(route, None).await else {
            let e = ProxyError::new(ErrorKind::NoAgent);
            return self
                .respond_error(e, request_id, on_error, Some(route))
                .await;
        };

        let info = ForwardInfo {
            client_addr: self.peer.ip(),
            proto: "http",
            request_id,
        };
        // Heads are written one after another into the same allocation (split off, frozen).
        forward::write_request(&head, &info, framing, &mut self.heads);
        let forwarded = self.heads.split().freeze();
        if head.expects_continue() && body_pending {
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            if self.write_out().await.is_err() {
                return Flow::Close;
            }
        }

        let mut upload = Upload {
            decoder: BodyDecoder::new(framing, self.worker.limits.max_body_bytes),
            done: !body_pending,
            streamed: false,
        };
        let mut retried = false;
        loop {
            // A retry after the whole body went out opens the stream already ended.
            let result = match agent.open_stream(forwarded.clone(), upload.done) {
                Ok(stream) => self.forward(&stream, &head, &mut upload).await,
                Err(e) => Err(e),
            };
            let e = match result {
                Ok(flow) => return flow,
                Err(e) => e,
            };
            if !retried && e.may_retry(head.is_idempotent(), upload.streamed) {
                retried = true;
                debug!(request_id, error = %e, agent = agent.agent_id(), "retrying on another agent");
                // An agent that went away may be replaced soon: park for one. A backend error
                // is retried only on an agent that is already here.
                let exclude = Some(agent.key());
                let next = if matches!(e.kind, ErrorKind::AgentLost | ErrorKind::AgentRefused) {
                    self.find_agent(route, exclude).await
                } else {
                    self.worker.pick(route, exclude)
                };
                if let Some(next) = next {
                    agent = next;
                    continue;
                }
            }
            let keep = upload.done && head.keep_alive();
            let persistence = Persistence::for_peer(head.version(), keep);
            return self
                .respond_error(e, request_id, persistence, Some(route))
                .await;
        }
    }

    /// An agent for `route` on this worker, waiting up to the park time for one to connect.
    async fn find_agent(&self, route: RouteId, exclude: Option<u64>) -> Option<Rc<AgentConn>> {
        if let Some(agent) = self.worker.pick(route, exclude) {
            return Some(agent);
        }
        let wait = self.worker.wait_for_agent(route, exclude);
        monoio::time::timeout_at(deadline_after(self.worker.timeouts.park), wait)
            .await
            .ok()
    }

    /// Streams the request body out and the response back. An `Err` means nothing was written to
    /// the user yet (the caller may retry or answer with an error); once the response started,
    /// failures end the connection instead.
    async fn forward(
        &mut self,
        stream: &TunnelStream,
        head: &RequestHead,
        upload: &mut Upload,
    ) -> Result<Flow, ProxyError> {
        let mut early = None;
        if !upload.done {
            early = self.upload(stream, head, upload).await?;
        }
        let (response, end) = self.response_head(stream, head, early).await?;
        stream.head_received();

        let client_framing = response.framing(head.method()).reframe_for(head.version());
        let keep = head.keep_alive() && upload.done && !client_framing.ends_connection();
        // An HTTP/1.0 client that asked to keep the connection is told so; it closes otherwise.
        let persistence = Persistence::for_peer(head.version(), keep);
        forward::write_response(&response, client_framing, persistence, &mut self.out);
        let flow = if keep { Flow::KeepAlive } else { Flow::Close };
        let complete = if end || client_framing == BodyFraming::Empty {
            self.write_out().await.is_ok()
        } else {
            self.download(stream, client_framing).await
        };
        if complete && upload.done {
            stream.finish();
            Ok(flow)
        } else {
            Ok(Flow::Close)
        }
    }

    /// Sends the request body, pacing on the stream's credit. Interim heads that arrive while
    /// waiting for credit are forwarded (a 100 is dropped: the balancer answered `Expect`
    /// itself) and the upload goes on. Returns an event that ends the upload early (a final
    /// response, a reset) for the response phase.
    async fn upload(
        &mut self,
        stream: &TunnelStream,
        head: &RequestHead,
        upload: &mut Upload,
    ) -> Result<Option<StreamEvent>, ProxyError> {
        loop {
            let event = upload.decoder.decode(&mut self.buf);
            match event {
                Ok(BodyEvent::Data(mut data)) => {
                    upload.streamed = true;
                    if let Some(early) = send(stream, &mut data, false)? {
                        return Ok(Some(early));
                    }
                    while !data.is_empty() {
                        // An agent that takes no body bytes for this long is as good as silent.
                        let at = deadline_after(self.worker.timeouts.body);
                        let Ok(event) = monoio::time::timeout_at(at, stream.event()).await else {
                            info!(stream = %stream.id(), "backend took no request body in time");
                            return Err(ProxyError::new(ErrorKind::ResponseTimeout));
                        };
                        match event {
                            StreamEvent::Writable => {
                                if let Some(early) = send(stream, &mut data, false)? {
                                    return Ok(Some(early));
                                }
                            }
                            StreamEvent::Head { head: bytes, end } => {
                                let response = parse_response(bytes.clone())?;
                                if !response.is_interim() {
                                    return Ok(Some(StreamEvent::Head { head: bytes, end }));
                                }
                                self.interim(&response, head).await?;
                            }
                            other => return Ok(Some(other)),
                        }
                    }
                }
                Ok(BodyEvent::End) => {
                    if let Some(early) = send(stream, &mut Bytes::new(), true)? {
                        return Ok(Some(early));
                    }
                    upload.done = true;
                    return Ok(None);
                }
                Ok(BodyEvent::NeedMore) => {
                    let at = deadline_after(self.worker.timeouts.body);
                    match monoio::time::timeout_at(at, self.read_more()).await {
                        Ok(Ok(n)) if n > 0 => {}
                        Ok(_) => return Err(ProxyError::new(ErrorKind::ClientIo)),
                        Err(_) => return Err(ProxyError::new(ErrorKind::ClientTimeout)),
                    }
                }
                Err(e) => return Err(ProxyError::from(&e)),
            }
        }
    }

    /// Forwards an interim (1xx) response head to an HTTP/1.1 user; a 100 is dropped (the
    /// balancer answered `Expect: 100-continue` itself) and HTTP/1.0 users get none.
    async fn interim(
        &mut self,
        response: &ResponseHead,
        head: &RequestHead,
    ) -> Result<(), ProxyError> {
        if response.status() != 100 && head.version() == Version::Http11 {
            self.out.extend_from_slice(response.as_bytes());
            self.write_out()
                .await
                .map_err(|_| ProxyError::new(ErrorKind::ClientIo))?;
        }
        Ok(())
    }

    /// Waits for the final response head, forwarding interim (1xx) heads other than 100.
    async fn response_head(
        &mut self,
        stream: &TunnelStream,
        head: &RequestHead,
        mut early: Option<StreamEvent>,
    ) -> Result<(ResponseHead, bool), ProxyError> {
        let at = deadline_after(self.worker.timeouts.response_head);
        loop {
            let event = match early.take() {
                Some(event) => event,
                None => monoio::time::timeout_at(at, stream.event())
                    .await
                    .map_err(|_| ProxyError::new(ErrorKind::ResponseTimeout))?,
            };
            match event {
                StreamEvent::Head { head: bytes, end } => {
                    let response = parse_response(bytes)?;
                    if !response.is_interim() {
                        return Ok((response, end));
                    }
                    self.interim(&response, head).await?;
                }
                StreamEvent::Writable => {}
                StreamEvent::Data { .. } => return Err(ProxyError::new(ErrorKind::AgentProtocol)),
                StreamEvent::Reset(code) => return Err(from_reset(code, stream.draining())),
                StreamEvent::Lost => return Err(ProxyError::new(ErrorKind::AgentLost)),
            }
        }
    }

    /// Streams the response body to the user, coalescing every queued DATA frame into one write
    /// and releasing credit only once those bytes are written. Returns whether it completed.
    async fn download(&mut self, stream: &TunnelStream, framing: BodyFraming) -> bool {
        let mut encoder = BodyEncoder::new(framing);
        loop {
            let at = deadline_after(self.worker.timeouts.body);
            let Ok(mut event) = monoio::time::timeout_at(at, stream.event()).await else {
                info!(stream = %stream.id(), "response body stalled; closing");
                return false;
            };
            let mut taken = 0;
            let mut ended = false;
            loop {
                match event {
                    StreamEvent::Data { data, end } => {
                        taken += data.len();
                        encoder.encode(&data, &mut self.out);
                        ended = end;
                    }
                    StreamEvent::Writable => {}
                    StreamEvent::Head { .. } | StreamEvent::Reset(_) | StreamEvent::Lost => {
                        // Mid-body failure: the user sees the connection close before the body ends.
                        debug!(stream = %stream.id(), ?event, "response aborted mid-body");
                        let _ = self.write_out().await;
                        return false;
                    }
                }
                if ended {
                    break;
                }
                match stream.try_event() {
                    Some(next) => event = next,
                    None => break,
                }
            }
            if ended {
                encoder.finish(&mut self.out);
            }
            if self.write_out().await.is_err() {
                return false;
            }
            stream.release(taken);
            if ended {
                return true;
            }
        }
    }

    /// Answers with an error response saying what `persistence` says about the connection
    /// (close for an unread request body or a client that asked to close; keep-alive for an
    /// HTTP/1.0 client that keeps it); closes too when the error demands it.
    async fn respond_error(
        &mut self,
        e: ProxyError,
        request_id: &str,
        persistence: Persistence,
        route: Option<RouteId>,
    ) -> Flow {
        let status = e.status();
        let route_text = route
            .map(|r| self.worker.registry.route_text(r))
            .unwrap_or_default();
        info!(
            request_id,
            status,
            kind = ?e.kind,
            source = ?e.source,
            route = %route_text,
            peer = %self.peer,
            "request failed: {}",
            e.message()
        );
        let retry_after =
            (e.kind == ErrorKind::NoAgent).then(|| self.worker.timeouts.retry_after_secs());
        let message = format!("{} (request id {request_id})", e.message());
        let response = ErrorResponse {
            status,
            request_id,
            message: &message,
            retry_after,
            persistence: if e.closes_connection() {
                Persistence::Close
            } else {
                persistence
            },
        };
        response.write(&mut self.out);
        let close = response.closes();
        if self.write_out().await.is_err() || close {
            Flow::Close
        } else {
            Flow::KeepAlive
        }
    }
}

/// The request body's progress, kept across a retry.
struct Upload {
    decoder: BodyDecoder,
    /// Every body byte was sent.
    done: bool,
    /// Some body bytes were taken from the user (a retry can no longer replay them).
    streamed: bool,
}

/// Sends body bytes; when the stream is already gone, an event the agent sent before it went
/// (an early response, a reset) is returned instead of an error, so that an early answer such as
/// a 413 reaches the user instead of a 502.
fn send(
    stream: &TunnelStream,
    data: &mut Bytes,
    end: bool,
) -> Result<Option<StreamEvent>, ProxyError> {
    match stream.send(data, end) {
        Ok(()) => Ok(None),
        Err(e) => stream.try_event().map(Some).ok_or(e),
    }
}

/// Parses a tunnelled response head. The agent wrote it with `forward::write_response` from a
/// head it accepted under the forwarded limits, so the same limits apply here; its size is
/// bounded by the tunnel's frame size already.
fn parse_response(bytes: Bytes) -> Result<ResponseHead, ProxyError> {
    let limits = Limits {
        max_head_bytes: usize::MAX,
        ..Limits::default().forwarded()
    };
    let mut buf = BytesMut::from(bytes);
    match ResponseParser::new(limits).parse(&mut buf) {
        Ok(Some(head)) => Ok(head),
        _ => Err(ProxyError::new(ErrorKind::AgentProtocol)),
    }
}
