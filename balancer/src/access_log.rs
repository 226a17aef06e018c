//! The access log (`[log] access`, off by default): one line per request, text (combined-log-like)
//! or JSON. Each worker formats its lines into a buffer of its own and writes the buffer out when
//! it holds [`FLUSH_AT`] bytes, on every deadline tick (100 ms) and when the worker ends: one
//! `write` for many lines, no lock, no line split between workers (the file is opened with
//! `O_APPEND`, so each worker's writes land whole). Off, it costs a branch per request.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::SystemTime;

use serde::Serialize;
use tracing::warn;

use crate::config::{AccessFormat, LogConfig};

/// Buffered bytes that make a worker write its lines out at once.
const FLUSH_AT: usize = 32 * 1024;

/// Where the lines go.
enum Sink {
    Stdout,
    File(File),
}

/// One worker's access log.
pub(crate) struct AccessLog {
    sink: Sink,
    format: AccessFormat,
    buf: RefCell<Vec<u8>>,
}

/// What one line tells.
#[derive(Serialize)]
pub(crate) struct Entry<'a> {
    /// When the request ended (RFC 3339, UTC).
    pub(crate) time: String,
    pub(crate) client: SocketAddr,
    pub(crate) method: &'a str,
    pub(crate) host: &'a str,
    pub(crate) target: &'a str,
    /// The status the user got; `None`: no response.
    pub(crate) status: Option<u16>,
    /// Request body bytes taken from the user.
    pub(crate) bytes_in: u64,
    /// Response body bytes sent to the user.
    pub(crate) bytes_out: u64,
    /// Seconds from the request head to the end of the response.
    pub(crate) duration: f64,
    /// The route (`host/prefix`), empty when none matched.
    pub(crate) route: &'a str,
    /// The agent (its id) or static backend (its address) that served it, empty when none did.
    pub(crate) agent: &'a str,
    pub(crate) request_id: &'a str,
}

impl AccessLog {
    /// The access log `config` asks for, or `None` when it is off. A file is opened (created,
    /// appended to) here: an error names the key.
    pub(crate) fn open(config: &LogConfig) -> io::Result<Option<Self>> {
        let sink = match config.access.as_str() {
            "off" | "" => return Ok(None),
            "stdout" => Sink::Stdout,
            path => Sink::File(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("[log] access = {path:?}: {e}"))
                    })?,
            ),
        };
        Ok(Some(Self {
            sink,
            format: config.access_format,
            buf: RefCell::new(Vec::with_capacity(FLUSH_AT)),
        }))
    }

    /// Adds the line of one request.
    pub(crate) fn record(&self, e: &Entry<'_>) {
        let mut buf = self.buf.borrow_mut();
        match self.format {
            AccessFormat::Json => {
                if serde_json::to_writer(&mut *buf, e).is_ok() {
                    buf.push(b'\n');
                }
            }
            AccessFormat::Text => {
                let status = e.status.map_or_else(|| "-".to_owned(), |s| s.to_string());
                let _ = writeln!(
                    buf,
                    "{} - - [{}] \"{} {}\" {} {} \"{}\" {:.6} route={} agent={} id={} in={}",
                    e.client.ip(),
                    e.time,
                    Quoted(e.method),
                    Quoted(e.target),
                    status,
                    e.bytes_out,
                    Quoted(e.host),
                    e.duration,
                    Quoted(e.route),
                    Quoted(e.agent),
                    Quoted(e.request_id),
                    e.bytes_in,
                );
            }
        }
        if buf.len() >= FLUSH_AT {
            drop(buf);
            self.flush();
        }
    }

    /// Writes out what is buffered.
    pub(crate) fn flush(&self) {
        let mut buf = self.buf.borrow_mut();
        if buf.is_empty() {
            return;
        }
        let written = match &self.sink {
            Sink::Stdout => io::stdout().lock().write_all(&buf),
            Sink::File(f) => (&*f).write_all(&buf),
        };
        if let Err(e) = written {
            warn!(error = %e, "writing the access log failed; lines lost");
        }
        buf.clear();
    }
}

/// The time of a line.
pub(crate) fn now_text() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// A field of a text line with what could break the line's shape escaped: quotes, backslashes,
/// spaces' cousins (control bytes). A user sends the method, target and host: they must not be
/// able to forge lines.
struct Quoted<'a>(&'a str);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if c.is_control() => write!(f, "\\x{:02x}", u32::from(c))?,
                c => write!(f, "{c}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_field_cannot_forge_a_line() {
        let text = Quoted("GET /\"x\"\n10.0.0.1 - - [forged]").to_string();
        assert_eq!(text, "GET /\\\"x\\\"\\x0a10.0.0.1 - - [forged]");
        assert!(!text.contains('\n'));
    }
}
