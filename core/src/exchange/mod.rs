//! One proxied HTTP/1.1 request, sans-IO: the request body going up and the response coming down
//! *at the same time* (full duplex), as the entrance proxy (the balancer) sees it.
//!
//! The exchange owns every decision a driver used to make about one request: how the request
//! body is decoded and paced (one piece at a time, the unsent rest kept until credit returns),
//! which interim (1xx) heads reach the user, how the final head and body are re-framed for the
//! user's connection, what an early final response does to an upload that is still arriving
//! (the rest is read and discarded by a lingering close, so the user sees the 413 instead of a
//! reset), whether a failed attempt may be retried elsewhere, whether the user's connection is
//! kept, Upgrade (after a 101 the stream carries opaque bytes both ways until either side ends),
//! and the request's timers.
//!
//! A driver calls, in any order as events happen (the model is quinn-proto: events in, actions
//! out, time passed in):
//! - [`Exchange::begin`] once, when an upstream was chosen: writes `100 Continue` if asked for;
//! - [`Exchange::poll_upload`] with the user connection's read buffer: what to do next for the
//!   request side ([`UploadStep`]); after sending, [`Exchange::upload_sent`] with what was left;
//!   [`Exchange::handle_client_eof`] when the user closed its sending side;
//! - [`Exchange::handle_response_head`], [`Exchange::handle_response_data`],
//!   [`Exchange::handle_upstream_reset`] for what the upstream sent: bytes for the user are
//!   appended to the caller's output buffer;
//! - [`Exchange::poll_timeout`] / [`Exchange::handle_timeout`] for the timers;
//! - [`Exchange::is_complete`] and [`Exchange::outcome`] at the end, [`Exchange::may_retry`] and
//!   [`Exchange::prepare_retry`] after a failed attempt.

mod error;
pub mod replay;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

pub use error::{from_reset, ErrorKind, ErrorSource, ProxyError};

use crate::http::forward::{self, Persistence};
use crate::http::{
    BodyDecoder, BodyEncoder, BodyEvent, BodyFraming, RequestHead, ResponseHead, Version,
};
use crate::tunnel::ResetCode;

/// Settings of one exchange (from the balancer's limits and timeouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeConfig {
    /// Largest request body (413 beyond it), `None` for no limit.
    pub max_body: Option<u64>,
    /// How long the final response head may take once the request was sent.
    pub response_head_timeout: Duration,
    /// How long either body may make no progress (user not sending, upstream not taking the
    /// body, upstream not sending the response body).
    pub body_timeout: Duration,
    /// How long an upgraded connection may carry no byte in either direction.
    pub upgrade_idle_timeout: Duration,
    /// Most interim (1xx) heads accepted for one request; more is an upstream protocol error.
    pub max_interim_heads: u32,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        Self {
            max_body: None,
            response_head_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            upgrade_idle_timeout: Duration::from_secs(600),
            max_interim_heads: 8,
        }
    }
}

/// What the request side should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadStep {
    /// Send these bytes upstream (`end`: the request side ends with them), as far as credit
    /// allows, then report with [`Exchange::upload_sent`].
    Send {
        /// Body bytes (decoded: no chunk framing), possibly empty when only `end` is news.
        data: Bytes,
        /// The request side ends after `data`.
        end: bool,
    },
    /// Read more bytes from the user into the buffer, then poll again.
    Read,
    /// Nothing to do until the response side moves (an Upgrade waits for its 101).
    Wait,
    /// The request side is complete, or the upstream stopped taking it: read no more.
    Done,
}

/// How the user's connection goes on after a complete exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Serve the next request on it.
    KeepAlive,
    /// Close it (the response said so, or the connection carried an upgraded protocol).
    Close,
    /// Close it after a lingering close: shut the write side, then read and drop what the user
    /// is still sending (the rest of a body nobody reads) for a bounded time, so that the
    /// kernel does not answer those bytes with a reset that destroys the response in flight.
    LingeringClose,
}

/// Which method the response's framing depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Head,
    Connect,
    Other,
}

impl Method {
    fn of(method: &[u8]) -> Self {
        match method {
            b"HEAD" => Self::Head,
            b"CONNECT" => Self::Connect,
            _ => Self::Other,
        }
    }

    fn as_bytes(self) -> &'static [u8] {
        match self {
            Self::Head => b"HEAD",
            Self::Connect => b"CONNECT",
            Self::Other => b"GET",
        }
    }
}

/// The request side.
#[derive(Debug)]
enum Up {
    /// Decoding the user's body; `pending` was decoded but not yet taken by the upstream.
    Body {
        decoder: BodyDecoder,
        pending: Option<(Bytes, bool)>,
    },
    /// An Upgrade request without a body: the request side stays open until the 101 (or a
    /// final response, after which it ends).
    AwaitUpgrade,
    /// After a 101: opaque bytes from the user, `eof` once the user closed its side.
    Raw {
        pending: Option<(Bytes, bool)>,
        eof: bool,
    },
    /// Only the end of the request side is left to send.
    End,
    /// Complete: the end was sent.
    Done,
    /// The upstream stopped taking the body (it answered without reading it all).
    Stopped,
}

/// The response side.
#[derive(Debug)]
enum Down {
    AwaitHead,
    Body(BodyEncoder),
    /// After a 101; `eof` once the upstream ended its side.
    Upgraded {
        eof: bool,
    },
    Done,
}

/// What the request side is waiting for (which timeout applies, and its error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpWait {
    Nothing,
    User,
    Credit,
}

/// One proxied request. See the module documentation for the order of calls.
#[derive(Debug)]
pub struct Exchange {
    config: ExchangeConfig,
    version: Version,
    method: Method,
    keep_alive: bool,
    idempotent: bool,
    expects_continue: bool,
    up: Up,
    down: Down,
    /// Body bytes were taken from the user (they cannot be replayed to another upstream).
    streamed: bool,
    /// Bytes of a response were queued for the user (after that nothing is retried).
    started: bool,
    interim: u32,
    persistence: Persistence,
    up_wait: UpWait,
    up_progress: Instant,
    down_progress: Instant,
    /// When the request side completed (the response-head timer runs from here).
    sent_at: Option<Instant>,
    /// The status of the final (or 101) head passed on to the user.
    status: Option<u16>,
    /// Request body bytes taken from the user (decoded; opaque bytes once upgraded).
    body_in: u64,
    /// Response body bytes passed on to the user (before re-framing).
    body_out: u64,
}

impl Exchange {
    /// An exchange for `head`, whose body (if any) follows in the user's read buffer.
    pub fn new(head: &RequestHead, config: ExchangeConfig, now: Instant) -> Self {
        let framing = head.framing();
        let upgrade = head.wants_upgrade() && framing.is_empty();
        let up = if upgrade {
            Up::AwaitUpgrade
        } else if framing.is_empty() {
            Up::Done
        } else {
            Up::Body {
                decoder: BodyDecoder::new(framing, config.max_body),
                pending: None,
            }
        };
        let sent_at = matches!(up, Up::Done | Up::AwaitUpgrade).then_some(now);
        Self {
            config,
            version: head.version(),
            method: Method::of(head.method()),
            keep_alive: head.keep_alive(),
            idempotent: head.is_idempotent(),
            expects_continue: head.expects_continue() && !framing.is_empty(),
            up,
            down: Down::AwaitHead,
            streamed: false,
            started: false,
            interim: 0,
            persistence: Persistence::Close,
            up_wait: UpWait::Nothing,
            up_progress: now,
            down_progress: now,
            sent_at,
            status: None,
            body_in: 0,
            body_out: 0,
        }
    }

    /// Whether the upstream stream opens with its request side already ended (no body, or a
    /// body whose end was already sent by an earlier attempt).
    pub fn opens_ended(&self) -> bool {
        matches!(self.up, Up::Done)
    }

    /// An upstream was chosen and the request is about to go: answers `Expect: 100-continue`
    /// into `out` (the proxy answers it itself; the next hop never sees the Expect).
    pub fn begin(&mut self, out: &mut BytesMut, now: Instant) {
        self.up_progress = now;
        self.down_progress = now;
        if std::mem::take(&mut self.expects_continue) {
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
    }

    // ---- request side ----

    /// The next step of the request side, decoding from `buf` (the user connection's read
    /// buffer; what is left in it after the body belongs to the next request).
    pub fn poll_upload(
        &mut self,
        buf: &mut BytesMut,
        now: Instant,
    ) -> Result<UploadStep, ProxyError> {
        let step = match &mut self.up {
            Up::Body { decoder, pending } => {
                if let Some((data, end)) = pending.take() {
                    return Ok(UploadStep::Send { data, end });
                }
                match decoder.decode(buf).map_err(|e| ProxyError::from(&e))? {
                    BodyEvent::Data(data) => {
                        self.streamed = true;
                        self.up_progress = now;
                        self.body_in += data.len() as u64;
                        UploadStep::Send {
                            end: decoder.is_done(),
                            data,
                        }
                    }
                    BodyEvent::End => UploadStep::Send {
                        data: Bytes::new(),
                        end: true,
                    },
                    BodyEvent::NeedMore => {
                        self.up_wait = UpWait::User;
                        UploadStep::Read
                    }
                }
            }
            Up::Raw { pending, eof } => {
                if let Some((data, end)) = pending.take() {
                    return Ok(UploadStep::Send { data, end });
                }
                if !buf.is_empty() {
                    self.up_progress = now;
                    self.body_in += buf.len() as u64;
                    UploadStep::Send {
                        data: buf.split().freeze(),
                        end: false,
                    }
                } else if *eof {
                    UploadStep::Send {
                        data: Bytes::new(),
                        end: true,
                    }
                } else {
                    self.up_wait = UpWait::Nothing;
                    UploadStep::Read
                }
            }
            Up::End => UploadStep::Send {
                data: Bytes::new(),
                end: true,
            },
            Up::AwaitUpgrade => UploadStep::Wait,
            Up::Done | Up::Stopped => UploadStep::Done,
        };
        Ok(step)
    }

    /// The driver sent what [`UploadStep::Send`] asked for, except `rest` (no credit for it);
    /// `end` is the flag that step carried.
    pub fn upload_sent(&mut self, rest: Bytes, end: bool, now: Instant) {
        if rest.is_empty() {
            self.up_wait = UpWait::Nothing;
            self.up_progress = now;
            if end && !matches!(self.up, Up::Stopped) {
                self.up = Up::Done;
                self.sent_at = Some(now);
            }
            return;
        }
        self.up_wait = UpWait::Credit;
        if let Up::Body { pending, .. } | Up::Raw { pending, .. } = &mut self.up {
            *pending = Some((rest, end));
        }
    }

    /// The user closed its sending side. Within a framed body that cuts the request short
    /// (an error); after an upgrade it ends the request side; otherwise nothing is lost.
    pub fn handle_client_eof(&mut self) -> Result<(), ProxyError> {
        match &mut self.up {
            Up::Body { decoder, pending } => {
                if pending.is_none() && decoder.finish_on_eof().is_ok() {
                    self.up = Up::End;
                    return Ok(());
                }
                Err(ProxyError::new(ErrorKind::ClientIo))
            }
            Up::Raw { eof, .. } => {
                *eof = true;
                Ok(())
            }
            Up::AwaitUpgrade => {
                self.up = Up::End;
                Ok(())
            }
            Up::End | Up::Done | Up::Stopped => Ok(()),
        }
    }

    // ---- response side ----

    /// A response head from the upstream (`end`: no body follows). Interim heads other than
    /// 100 go to HTTP/1.1 users; a 101 answers an Upgrade; the final head is re-framed for the
    /// user's connection and says whether it stays open.
    pub fn handle_response_head(
        &mut self,
        head: &ResponseHead,
        end: bool,
        out: &mut BytesMut,
        now: Instant,
    ) -> Result<(), ProxyError> {
        if !matches!(self.down, Down::AwaitHead) {
            return Err(ProxyError::new(ErrorKind::AgentProtocol));
        }
        self.down_progress = now;
        if head.is_interim() {
            self.interim += 1;
            if self.interim > self.config.max_interim_heads || end {
                return Err(ProxyError::new(ErrorKind::AgentProtocol));
            }
            // A 100 is the proxy's to send (it answered Expect itself); HTTP/1.0 has no 1xx.
            if head.status() != 100 && self.version == Version::Http11 {
                out.extend_from_slice(head.as_bytes());
            }
            return Ok(());
        }
        let framing = head.framing(self.method.as_bytes());
        self.status = Some(head.status());
        if framing == BodyFraming::Upgrade {
            if !matches!(self.up, Up::AwaitUpgrade) || head.status() != 101 {
                return Err(ProxyError::new(ErrorKind::AgentProtocol));
            }
            forward::write_response(head, framing, Persistence::Close, out);
            self.started = true;
            self.persistence = Persistence::Close;
            self.up = Up::Raw {
                pending: None,
                eof: false,
            };
            self.up_progress = now;
            self.down = Down::Upgraded { eof: end };
            return Ok(());
        }
        if matches!(self.up, Up::AwaitUpgrade) {
            // The upstream declined the upgrade: the request had no body, so it ends here.
            self.up = Up::End;
        }
        let framing = framing.reframe_for(self.version);
        // A response that starts while the body still arrives (an echo, a streaming upload) may
        // keep the connection: it is closed later if the body ends up unread. An error answer
        // before the body was read (a 413, a 401) usually means the upstream will not read it:
        // the user is told at once that the connection closes.
        let request_done = matches!(self.up, Up::Done | Up::End);
        let early_error = !request_done && head.status() >= 400;
        let keep = self.keep_alive && !early_error && !framing.ends_connection();
        self.persistence = Persistence::for_peer(self.version, keep);
        forward::write_response(head, framing, self.persistence, out);
        self.started = true;
        let mut encoder = BodyEncoder::new(framing);
        if end || framing.is_empty() {
            encoder.finish(out);
            self.down = Down::Done;
        } else {
            self.down = Down::Body(encoder);
        }
        Ok(())
    }

    /// Response body bytes from the upstream (`end`: the response ends with them), framed for
    /// the user into `out`.
    pub fn handle_response_data(
        &mut self,
        data: &[u8],
        end: bool,
        out: &mut BytesMut,
        now: Instant,
    ) -> Result<(), ProxyError> {
        self.down_progress = now;
        self.body_out += data.len() as u64;
        match &mut self.down {
            Down::Body(encoder) => {
                encoder.encode(data, out);
                if end {
                    encoder.finish(out);
                    let checked = encoder.check();
                    self.down = Down::Done;
                    checked.map_err(|_| ProxyError::new(ErrorKind::AgentProtocol))?;
                }
                Ok(())
            }
            Down::Upgraded { eof: false } => {
                out.extend_from_slice(data);
                if end {
                    self.down = Down::Upgraded { eof: true };
                }
                Ok(())
            }
            Down::AwaitHead | Down::Upgraded { eof: true } | Down::Done => {
                Err(ProxyError::new(ErrorKind::AgentProtocol))
            }
        }
    }

    /// The upstream reset the stream. After a complete response a `NoError` reset means "stop
    /// sending" (the upstream answered without reading the whole body): the rest of the body
    /// is not forwarded. An upgraded stream simply ends. Anything else is the attempt's error
    /// (`draining`: the upstream connection is going away, which makes `Refused` safe to retry).
    pub fn handle_upstream_reset(
        &mut self,
        code: ResetCode,
        draining: bool,
    ) -> Result<(), ProxyError> {
        match self.down {
            Down::Done if code == ResetCode::NoError => {
                if !matches!(self.up, Up::Done) {
                    self.up = Up::Stopped;
                }
                Ok(())
            }
            Down::Upgraded { .. } if code == ResetCode::NoError => {
                self.down = Down::Done;
                self.up = Up::Stopped;
                Ok(())
            }
            _ => Err(from_reset(code, draining)),
        }
    }

    // ---- state and decisions ----

    /// Whether the upgrade succeeded (the user's connection now carries opaque bytes).
    pub fn is_upgraded(&self) -> bool {
        matches!(self.down, Down::Upgraded { .. }) || matches!(self.up, Up::Raw { .. })
    }

    /// Whether the upstream ended its side of an upgraded connection: the driver may shut the
    /// user connection's write side.
    pub fn upstream_ended(&self) -> bool {
        matches!(self.down, Down::Upgraded { eof: true } | Down::Done)
    }

    /// Whether response bytes were queued for the user: from then on a failure closes the
    /// connection instead of answering with an error, and nothing is retried.
    pub fn response_started(&self) -> bool {
        self.started
    }

    /// The proxy is shutting down: the user's connection closes after this response (which says
    /// so, unless its head already went out).
    pub fn stop_keep_alive(&mut self) {
        self.keep_alive = false;
    }

    /// Body bytes so far: (taken from the user, passed on to the user), for the access log.
    pub fn body_bytes(&self) -> (u64, u64) {
        (self.body_in, self.body_out)
    }

    /// The status of the final head (or the 101) the upstream sent, once it did.
    pub fn final_status(&self) -> Option<u16> {
        self.status
    }

    /// Whether the whole response went out (or the upgraded stream ended).
    pub fn response_done(&self) -> bool {
        matches!(self.down, Down::Done)
    }

    /// Whether both directions are finished.
    pub fn is_complete(&self) -> bool {
        let up = matches!(self.up, Up::Done | Up::Stopped);
        match self.down {
            Down::Done => up,
            Down::Upgraded { eof } => eof && up,
            Down::AwaitHead | Down::Body(_) => false,
        }
    }

    /// How the user's connection goes on once [`Exchange::is_complete`].
    pub fn outcome(&self) -> Outcome {
        if self.is_upgraded() || !self.started {
            Outcome::Close
        } else if matches!(self.up, Up::Stopped) {
            Outcome::LingeringClose
        } else if self.persistence.closes() {
            Outcome::Close
        } else {
            Outcome::KeepAlive
        }
    }

    /// How an error answer (sent instead of a response) leaves the connection: open only when
    /// the request was read whole and the user keeps it.
    pub fn error_persistence(&self) -> Persistence {
        let request_read = matches!(self.up, Up::Done | Up::End | Up::AwaitUpgrade);
        Persistence::for_peer(self.version, self.keep_alive && request_read)
    }

    /// Whether the request was read whole from the user (nothing of it is left unread).
    pub fn request_read(&self) -> bool {
        matches!(self.up, Up::Done | Up::End | Up::AwaitUpgrade)
    }

    /// Whether the failed attempt that ended with `e` may be retried on another upstream:
    /// nothing of a response reached the user, no body byte was taken from the user (it
    /// cannot be replayed), and the error allows it for this method.
    pub fn may_retry(&self, e: &ProxyError) -> bool {
        !self.started && e.may_retry(self.idempotent, self.streamed)
    }

    /// Starts another attempt after a failure [`Exchange::may_retry`] allowed.
    pub fn prepare_retry(&mut self, now: Instant) {
        self.down = Down::AwaitHead;
        self.interim = 0;
        self.status = None;
        self.down_progress = now;
        self.up_progress = now;
        if self.sent_at.is_some() {
            self.sent_at = Some(now);
        }
    }

    // ---- timers ----

    /// When [`Exchange::handle_timeout`] must be called next, if a timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let c = &self.config;
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if self.is_upgraded() {
            at(self.up_progress.max(self.down_progress) + c.upgrade_idle_timeout);
            return next;
        }
        if self.upload_active() {
            at(self.up_progress + c.body_timeout);
        }
        match self.down {
            Down::AwaitHead => {
                if let Some(sent) = self.sent_at {
                    at(sent.max(self.down_progress) + c.response_head_timeout);
                }
            }
            Down::Body(_) => at(self.down_progress + c.body_timeout),
            Down::Upgraded { .. } | Down::Done => {}
        }
        next
    }

    /// Checks the timers at `now`; an `Err` is the exchange's failure (before the response
    /// started, the user gets its status; after, the connection closes).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ProxyError> {
        let c = self.config;
        if self.is_upgraded() {
            if now >= self.up_progress.max(self.down_progress) + c.upgrade_idle_timeout {
                return Err(ProxyError::new(ErrorKind::ResponseTimeout));
            }
            return Ok(());
        }
        if self.upload_active() && now >= self.up_progress + c.body_timeout {
            let kind = match self.up_wait {
                // The upstream took no body bytes in time: as good as silent.
                UpWait::Credit => ErrorKind::ResponseTimeout,
                UpWait::User | UpWait::Nothing => ErrorKind::ClientTimeout,
            };
            return Err(ProxyError::new(kind));
        }
        match self.down {
            Down::AwaitHead => {
                if let Some(sent) = self.sent_at {
                    if now >= sent.max(self.down_progress) + c.response_head_timeout {
                        return Err(ProxyError::new(ErrorKind::ResponseTimeout));
                    }
                }
            }
            Down::Body(_) if now >= self.down_progress + c.body_timeout => {
                return Err(ProxyError::new(ErrorKind::ResponseTimeout));
            }
            _ => {}
        }
        Ok(())
    }

    fn upload_active(&self) -> bool {
        matches!(self.up, Up::Body { .. } | Up::End)
    }
}
