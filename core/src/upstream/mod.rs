//! One request over one backend HTTP/1.1 connection, sans-IO: the *upstream* side of a proxied
//! request, as the hop next to the backend (the agent; the balancer's static backends next)
//! sees it.
//!
//! [`UpstreamExchange`] owns every decision about that connection: the request head goes out as
//! the entrance framed it and the decoded body is re-framed with core's `BodyEncoder`; body credit
//! is released only once its bytes were written; the backend's response head is parsed and
//! rewritten for the next hop (`forward::write_response`: hop-by-hop removed, framing rebuilt),
//! its body decoded piece by piece; an early response while the body still flows ends the
//! exchange and stops the request side; after a 101 both directions carry opaque bytes; a
//! pooled connection that failed before any response byte may be retried once on a fresh one
//! when the request can be replayed (the body sent so far is kept while small, and the request
//! is idempotent or never reached the backend); afterwards it says whether the connection may
//! go back to the pool. The response timeout runs through [`UpstreamExchange::poll_timeout`]
//! and [`UpstreamExchange::handle_timeout`].
//!
//! A driver runs two loops at once over one exchange (events in, actions out, time passed in):
//! - the **request** loop calls [`UpstreamExchange::poll_request`] ([`RequestStep`]): it writes
//!   what that produced and reports with [`UpstreamExchange::handle_written`] or
//!   [`UpstreamExchange::handle_write_failed`] (both return the body credit to release), or it
//!   waits for body pieces and hands them over with [`UpstreamExchange::push_body`] (while
//!   [`UpstreamExchange::wants_body`]);
//! - the **response** loop calls [`UpstreamExchange::poll_response`] with the connection's read
//!   buffer ([`ResponseStep`]): it passes heads and body on (then
//!   [`UpstreamExchange::response_forwarded`]), or reads from the backend and reports with
//!   [`UpstreamExchange::handle_read`] / [`UpstreamExchange::handle_read_failed`];
//! - at [`ResponseStep::Done`], [`UpstreamExchange::outcome`] says what becomes of the
//!   connection; after an error, [`UpstreamExchange::may_retry`] and
//!   [`UpstreamExchange::retry`] start over on a fresh connection.

mod error;
pub mod replay;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

pub use error::{UpstreamError, UpstreamErrorKind};

use crate::http::forward::{self, Persistence};
use crate::http::{
    BodyDecoder, BodyEncoder, BodyEvent, BodyFraming, Limits, RequestHead, ResponseParser,
};

/// Settings of one backend exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// Limits for parsing the backend's response heads.
    pub head_limits: Limits,
    /// How long the response head may take once the request was sent, and how long the next
    /// hop may take to accept one piece of the response.
    pub response_timeout: Duration,
    /// Request-body bytes kept for a replay on a fresh connection (beyond it a stale pooled
    /// connection is reported instead of retried).
    pub replay_limit: usize,
    /// Request-body bytes gathered before one backend write.
    pub write_batch: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            head_limits: Limits::default(),
            response_timeout: Duration::from_secs(60),
            replay_limit: 64 * 1024,
            write_batch: 64 * 1024,
        }
    }
}

/// What the request side should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestStep {
    /// Write these bytes to the backend as they are (the head of a request without a body: no
    /// copy), then report with [`UpstreamExchange::handle_written`].
    WriteHead(Bytes),
    /// Write what was appended to the caller's buffer, then report.
    Write,
    /// Wait for the next request body piece and [`UpstreamExchange::push_body`] it (with any
    /// that are already there, while [`UpstreamExchange::wants_body`]).
    NeedBody,
    /// Nothing to do until a write completes.
    Wait,
    /// The request side is finished. `shutdown`: shut the backend connection's write side (the
    /// client ended its side of an upgraded connection).
    Done {
        /// Shut the write side.
        shutdown: bool,
    },
}

/// What the response side should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseStep {
    /// An interim (1xx) head, to pass on as it came; a final head follows.
    Interim(Bytes),
    /// The final head rewritten for the next hop; `end`: no body follows.
    Head {
        /// The rewritten head.
        head: Bytes,
        /// No body follows.
        end: bool,
    },
    /// Response body bytes (decoded; opaque after a 101) for the next hop; `end`: the response
    /// ends with them. Report with [`UpstreamExchange::response_forwarded`] once taken.
    Data {
        /// The bytes, possibly empty when only `end` is news.
        data: Bytes,
        /// The response ends here.
        end: bool,
    },
    /// Read more from the backend into the buffer, then [`UpstreamExchange::handle_read`].
    Read,
    /// The response is complete: [`UpstreamExchange::outcome`] says what follows.
    Done,
}

/// What becomes of the backend connection once the response is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It may serve another request: back to the pool.
    Reuse,
    /// Close it (the backend said so, the body ran until close, bytes followed the response,
    /// or it carried an upgraded protocol).
    Close,
    /// Close it, and tell the sender of the request body to stop: the backend answered before
    /// taking the whole body (an early 413, an upgraded connection the backend ended).
    CloseAndStopRequest,
}

/// The request side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Up {
    /// Nothing written yet.
    Head,
    /// The head is out; the body follows, framed.
    Body,
    /// An Upgrade request's head is out: what follows is written as it comes.
    Raw,
    /// All of the request was written.
    Done,
    /// A write failed: nothing more is written on this connection.
    Failed,
}

/// The response side.
#[derive(Debug)]
enum Down {
    AwaitHead(ResponseParser),
    Body(BodyDecoder),
    /// The body ran until the backend closed, and it did: only the end is left to pass on.
    EndAtEof,
    /// After a 101: opaque bytes until the backend closes.
    Upgraded,
    Done,
}

/// A write handed to the driver and not reported yet.
#[derive(Debug, Clone, Copy)]
struct Writing {
    /// Credit of the fresh body bytes in it.
    credit: usize,
    /// It completes the request side.
    ends: bool,
}

/// One request over one backend connection. See the module documentation for the calls.
#[derive(Debug)]
pub struct UpstreamExchange {
    config: UpstreamConfig,
    request: RequestHead,
    framing: BodyFraming,
    /// An Upgrade request without a body.
    upgrade: bool,
    /// The connection served an earlier request (it may be stale).
    reused: bool,
    /// This is the one retry.
    retried: bool,
    up: Up,
    encoder: BodyEncoder,
    /// Body pieces not written yet; `true`: fresh (their credit is still owed).
    queue: VecDeque<(Bytes, bool)>,
    queued: usize,
    body_end: bool,
    writing: Option<Writing>,
    /// A write reached the backend: it may have the request.
    sent: bool,
    shutdown_due: bool,
    /// The body written so far, kept for a replay while small.
    log: Vec<Bytes>,
    log_bytes: usize,
    overflowed: bool,
    down: Down,
    /// A response byte came back.
    responded: bool,
    upgraded: bool,
    /// The final head lets the connection be reused.
    reusable: bool,
    /// Bytes followed the response.
    leftover: bool,
    /// When the request side finished (the response-head timer runs from there).
    sent_at: Option<Instant>,
    /// Since when a piece of the response waits for the next hop.
    forwarding_since: Option<Instant>,
}

impl UpstreamExchange {
    /// An exchange for `request` (as the entrance framed it) on a connection that is `reused`
    /// (from the pool) or fresh.
    pub fn new(request: RequestHead, reused: bool, config: UpstreamConfig) -> Self {
        let framing = request.framing();
        let upgrade = request.wants_upgrade() && framing.is_empty();
        Self {
            encoder: BodyEncoder::new(framing),
            down: Down::AwaitHead(ResponseParser::new(config.head_limits)),
            config,
            request,
            framing,
            upgrade,
            reused,
            retried: false,
            up: Up::Head,
            queue: VecDeque::new(),
            queued: 0,
            body_end: framing.is_empty() && !upgrade,
            writing: None,
            sent: false,
            shutdown_due: false,
            log: Vec::new(),
            log_bytes: 0,
            overflowed: false,
            responded: false,
            upgraded: false,
            reusable: false,
            leftover: false,
            sent_at: None,
            forwarding_since: None,
        }
    }

    /// The request this exchange carries.
    pub fn request(&self) -> &RequestHead {
        &self.request
    }

    // ---- request side ----

    /// The next step of the request side; bytes to write are appended to `out`.
    pub fn poll_request(&mut self, out: &mut BytesMut) -> RequestStep {
        if self.writing.is_some() {
            return RequestStep::Wait;
        }
        match self.up {
            Up::Done | Up::Failed => RequestStep::Done {
                shutdown: std::mem::take(&mut self.shutdown_due),
            },
            Up::Head if self.framing.is_empty() => {
                // No body: the head goes out as it came, without a copy.
                self.writing = Some(Writing {
                    credit: 0,
                    ends: !self.upgrade,
                });
                RequestStep::WriteHead(self.request.as_bytes().clone())
            }
            Up::Head => {
                out.extend_from_slice(self.request.as_bytes());
                self.up = Up::Body;
                self.fill(out)
            }
            Up::Body | Up::Raw => self.fill(out),
        }
    }

    /// Whether the request side takes another body piece now: it wants the body, and fewer
    /// than a write batch of bytes are waiting.
    pub fn wants_body(&self) -> bool {
        !self.body_end
            && !matches!(self.up, Up::Done | Up::Failed)
            && self.queued < self.config.write_batch
    }

    /// A request body piece (decoded bytes; opaque after an Upgrade), `end`: the request side
    /// ends with it. Its credit is returned by the report of the write that carries it.
    pub fn push_body(&mut self, data: Bytes, end: bool) {
        if self.body_end || matches!(self.up, Up::Done | Up::Failed) {
            return;
        }
        if !data.is_empty() {
            self.queued += data.len();
            self.queue.push_back((data, true));
        }
        self.body_end = end;
    }

    /// The last write reached the backend; returns the body credit to release.
    pub fn handle_written(&mut self, now: Instant) -> usize {
        let Some(writing) = self.writing.take() else {
            return 0;
        };
        self.sent = true;
        if writing.ends {
            self.up = Up::Done;
            self.sent_at.get_or_insert(now);
        } else if self.up == Up::Head {
            // An Upgrade request's head: the response may come now; what follows is raw.
            self.up = Up::Raw;
            self.sent_at.get_or_insert(now);
        }
        writing.credit
    }

    /// The last write failed: nothing more is written on this connection. Returns the body
    /// credit to release (a retry replays those bytes from the log without credit, so this is
    /// their only release) and the error, which does not end the exchange by itself: the
    /// backend may have answered already (an early 413), the response side decides.
    pub fn handle_write_failed(
        &mut self,
        detail: impl std::fmt::Display,
        now: Instant,
    ) -> (usize, UpstreamError) {
        let credit = self.writing.take().map_or(0, |w| w.credit);
        self.up = Up::Failed;
        self.sent_at.get_or_insert(now);
        let error =
            UpstreamError::new(UpstreamErrorKind::Write, !self.responded).with_detail(detail);
        (credit, error)
    }

    /// Encodes what is queued into `out` and decides the step.
    fn fill(&mut self, out: &mut BytesMut) -> RequestStep {
        let mut credit = 0;
        while let Some((data, fresh)) = self.queue.pop_front() {
            self.queued -= data.len();
            if fresh {
                credit += data.len();
                self.log_piece(&data);
            }
            if self.up == Up::Raw {
                out.extend_from_slice(&data);
            } else {
                self.encoder.encode(&data, out);
            }
        }
        let mut ends = false;
        if self.body_end {
            ends = true;
            if self.up == Up::Raw {
                // The client ended its side of an upgraded connection: so does the backend's.
                self.shutdown_due = self.upgraded;
            } else {
                self.encoder.finish(out);
            }
        }
        if out.is_empty() {
            if ends {
                self.up = Up::Done;
                return RequestStep::Done {
                    shutdown: std::mem::take(&mut self.shutdown_due),
                };
            }
            return RequestStep::NeedBody;
        }
        self.writing = Some(Writing { credit, ends });
        RequestStep::Write
    }

    fn log_piece(&mut self, data: &Bytes) {
        if !self.reused || self.retried || self.overflowed {
            return;
        }
        if self.log_bytes + data.len() <= self.config.replay_limit {
            self.log_bytes += data.len();
            self.log.push(data.clone());
        } else {
            self.overflowed = true;
            self.log.clear();
        }
    }

    // ---- response side ----

    /// The next step of the response side, parsing and decoding from `buf` (the connection's
    /// read buffer).
    pub fn poll_response(
        &mut self,
        buf: &mut BytesMut,
        now: Instant,
    ) -> Result<ResponseStep, UpstreamError> {
        match &mut self.down {
            Down::AwaitHead(parser) => match parser.parse(buf) {
                Ok(Some(head)) if head.is_interim() => {
                    // The next head may already be in the buffer (1xx and final written
                    // together): the driver polls again before reading.
                    *parser = ResponseParser::new(self.config.head_limits);
                    Ok(ResponseStep::Interim(head.as_bytes().clone()))
                }
                Ok(Some(head)) => self.final_head(&head, buf),
                Ok(None) => Ok(ResponseStep::Read),
                Err(e) => Err(self.error(UpstreamErrorKind::BadHead(e))),
            },
            Down::Body(decoder) => match decoder.decode(buf) {
                Ok(BodyEvent::Data(data)) => {
                    let end = decoder.is_done();
                    if end {
                        self.finish(buf);
                    }
                    self.forwarding_since = Some(now);
                    Ok(ResponseStep::Data { data, end })
                }
                Ok(BodyEvent::End) => {
                    self.finish(buf);
                    self.forwarding_since = Some(now);
                    Ok(ResponseStep::Data {
                        data: Bytes::new(),
                        end: true,
                    })
                }
                Ok(BodyEvent::NeedMore) => Ok(ResponseStep::Read),
                Err(e) => Err(self.error(UpstreamErrorKind::BadBody(e))),
            },
            Down::EndAtEof => {
                self.down = Down::Done;
                self.forwarding_since = Some(now);
                Ok(ResponseStep::Data {
                    data: Bytes::new(),
                    end: true,
                })
            }
            Down::Upgraded if !buf.is_empty() => {
                self.forwarding_since = Some(now);
                Ok(ResponseStep::Data {
                    data: buf.split().freeze(),
                    end: false,
                })
            }
            Down::Upgraded => Ok(ResponseStep::Read),
            Down::Done => Ok(ResponseStep::Done),
        }
    }

    /// A read from the backend returned `n` bytes (appended to the read buffer); 0 is the
    /// backend's end of stream.
    pub fn handle_read(&mut self, n: usize) -> Result<(), UpstreamError> {
        if n > 0 {
            self.responded = true;
            return Ok(());
        }
        match &mut self.down {
            Down::AwaitHead(_) => Err(self.error(if self.responded {
                UpstreamErrorKind::ClosedInHead
            } else {
                UpstreamErrorKind::ClosedBeforeResponse
            })),
            Down::Body(decoder) => match decoder.finish_on_eof() {
                Ok(()) => {
                    self.down = Down::EndAtEof;
                    self.reusable = false;
                    Ok(())
                }
                Err(e) => Err(self.error(UpstreamErrorKind::ClosedInBody(e))),
            },
            Down::Upgraded => {
                self.down = Down::EndAtEof;
                Ok(())
            }
            Down::EndAtEof | Down::Done => Ok(()),
        }
    }

    /// A read from the backend failed.
    pub fn handle_read_failed(&mut self, detail: impl std::fmt::Display) -> UpstreamError {
        self.error(UpstreamErrorKind::Read).with_detail(detail)
    }

    /// The next hop took the last [`ResponseStep::Data`].
    pub fn response_forwarded(&mut self) {
        self.forwarding_since = None;
    }

    fn final_head(
        &mut self,
        head: &crate::http::ResponseHead,
        buf: &BytesMut,
    ) -> Result<ResponseStep, UpstreamError> {
        self.responded = true;
        let framing = head.framing(self.request.method());
        let mut out = BytesMut::with_capacity(head.as_bytes().len() + 64);
        if framing == BodyFraming::Upgrade {
            if head.status() != 101 || !self.upgrade {
                return Err(self.error(UpstreamErrorKind::UnrequestedUpgrade));
            }
            forward::write_response(head, framing, Persistence::Close, &mut out);
            self.upgraded = true;
            self.down = Down::Upgraded;
            return Ok(ResponseStep::Head {
                head: out.freeze(),
                end: false,
            });
        }
        let next_hop_framing = match (framing, head.content_length()) {
            (BodyFraming::UntilClose, _) => BodyFraming::Chunked,
            // HEAD and 304 responses keep the Content-Length of the representation they
            // describe; no body follows whatever it says.
            (BodyFraming::Empty, Some(n)) if head.status() != 204 && head.status() >= 200 => {
                BodyFraming::Length(n)
            }
            (other, _) => other,
        };
        forward::write_response(head, next_hop_framing, Persistence::Persistent, &mut out);
        self.reusable =
            head.keep_alive() && self.request.keep_alive() && framing != BodyFraming::UntilClose;
        let end = framing.is_empty();
        if end {
            self.finish(buf);
        } else {
            self.down = Down::Body(BodyDecoder::new(framing, None));
        }
        Ok(ResponseStep::Head {
            head: out.freeze(),
            end,
        })
    }

    fn finish(&mut self, buf: &BytesMut) {
        self.down = Down::Done;
        // Bytes past the response mean a confused backend: the connection is not reused.
        self.leftover = !buf.is_empty();
    }

    fn error(&self, kind: UpstreamErrorKind) -> UpstreamError {
        UpstreamError::new(kind, !self.responded)
    }

    // ---- decisions ----

    /// Whether a response byte came back (from then on nothing is retried).
    pub fn responded(&self) -> bool {
        self.responded
    }

    /// Whether the backend switched protocols (101).
    pub fn is_upgraded(&self) -> bool {
        self.upgraded
    }

    /// Whether the whole request was written to the backend.
    pub fn request_done(&self) -> bool {
        self.up == Up::Done
    }

    /// What becomes of the connection, once the response is complete ([`ResponseStep::Done`]).
    pub fn outcome(&self) -> Option<Outcome> {
        if !matches!(self.down, Down::Done) {
            return None;
        }
        Some(if self.up != Up::Done {
            Outcome::CloseAndStopRequest
        } else if self.reusable && !self.leftover && !self.upgraded {
            Outcome::Reuse
        } else {
            Outcome::Close
        })
    }

    /// Whether the attempt that failed with `e` may run again on a fresh connection: it failed
    /// before any response byte, on a pooled connection (which may have been closed by the
    /// backend as the request crossed it), for the first time, the body sent so far was kept,
    /// and the request is idempotent or never reached the backend (RFC 9112 §9.3.1).
    pub fn may_retry(&self, e: &UpstreamError) -> bool {
        let lost_connection = matches!(
            e.kind,
            UpstreamErrorKind::Write
                | UpstreamErrorKind::Read
                | UpstreamErrorKind::ClosedBeforeResponse
        );
        lost_connection
            && e.before_response
            && !self.responded
            && self.reused
            && !self.retried
            && !self.overflowed
            && (!self.sent || self.request.is_idempotent())
    }

    /// Starts over on a fresh connection after [`UpstreamExchange::may_retry`] allowed it: the
    /// body written so far is replayed (its credit was released already). Returns the credit of
    /// a write the failed attempt left unreported, to release now.
    pub fn retry(&mut self) -> usize {
        let abandoned = self.writing.take().map_or(0, |w| w.credit);
        let mut queue: VecDeque<(Bytes, bool)> =
            self.log.drain(..).map(|data| (data, false)).collect();
        queue.append(&mut self.queue);
        self.queued = queue.iter().map(|(data, _)| data.len()).sum();
        self.queue = queue;
        self.log_bytes = 0;
        self.retried = true;
        self.reused = false;
        self.up = Up::Head;
        self.encoder = BodyEncoder::new(self.framing);
        self.sent = false;
        self.shutdown_due = false;
        self.down = Down::AwaitHead(ResponseParser::new(self.config.head_limits));
        self.responded = false;
        self.upgraded = false;
        self.reusable = false;
        self.leftover = false;
        self.sent_at = None;
        self.forwarding_since = None;
        abandoned
    }

    /// The body credit still owed when the exchange is given up (a write left unreported,
    /// pieces taken but never written): release it before the stream ends.
    pub fn take_unreleased(&mut self) -> usize {
        let mut credit = self.writing.take().map_or(0, |w| w.credit);
        for (data, fresh) in &mut self.queue {
            if std::mem::take(fresh) {
                credit += data.len();
            }
        }
        credit
    }

    // ---- timers ----

    /// When [`UpstreamExchange::handle_timeout`] must be called next, if a timer runs: the
    /// response head is due `response_timeout` after the request was sent (a long upload is
    /// not a slow backend), and each piece of the response must be taken by the next hop
    /// within `response_timeout` (a next hop that stops returning credit must not hold the
    /// backend connection forever).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let after = self.config.response_timeout;
        let head = match self.down {
            Down::AwaitHead(_) => self.sent_at.map(|t| t + after),
            _ => None,
        };
        let forward = self.forwarding_since.map(|t| t + after);
        match (head, forward) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Checks the timers at `now`; an `Err` ends the exchange.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), UpstreamError> {
        let after = self.config.response_timeout;
        if matches!(self.down, Down::AwaitHead(_)) && self.sent_at.is_some_and(|t| now >= t + after)
        {
            return Err(self.error(UpstreamErrorKind::ResponseTimeout(after)));
        }
        if self.forwarding_since.is_some_and(|t| now >= t + after) {
            return Err(self.error(UpstreamErrorKind::ForwardTimeout(after)));
        }
        Ok(())
    }
}
