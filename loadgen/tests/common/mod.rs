//! A tiny HTTP/1.1 test server on loopback (std threads, one per connection) that counts every
//! request it answers exactly and can stall once, plus helpers to run the real binary.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Tests whose assertions are about timing (or that saturate the CPU in closed loop) hold this
/// lock, so that on a 2-core CI machine they do not disturb each other.
pub static TIMING: Mutex<()> = Mutex::new(());

/// Takes [`TIMING`] (a test that panicked while holding it does not poison the others).
pub fn timing_lock() -> std::sync::MutexGuard<'static, ()> {
    TIMING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the server does.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerOptions {
    /// Before answering request number `n` (1-based, counted over all connections), sleep for
    /// the duration — once.
    pub stall: Option<(u64, Duration)>,
}

/// A running test server. Its threads live until the test process exits.
pub struct TestServer {
    pub addr: SocketAddr,
    requests: Arc<AtomicU64>,
    last_request: Arc<Mutex<Vec<u8>>>,
}

impl TestServer {
    pub fn start(opts: ServerOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test server");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let stalled = Arc::new(AtomicBool::new(false));
        let last_request = Arc::new(Mutex::new(Vec::new()));
        let counter = requests.clone();
        let last = last_request.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let counter = counter.clone();
                let stalled = stalled.clone();
                let last = last.clone();
                thread::spawn(move || serve(stream, &counter, &stalled, &last, opts));
            }
        });
        Self {
            addr,
            requests,
            last_request,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hello", self.addr)
    }

    /// The bytes (head and body) of the last request answered.
    pub fn last_request(&self) -> Vec<u8> {
        self.last_request.lock().unwrap().clone()
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Serves one connection: every complete request head (plus its Content-Length body) gets a
/// 200 with a 2-byte body; pipelined requests are answered in order, in one write per read.
fn serve(
    mut stream: TcpStream,
    counter: &AtomicU64,
    stalled: &AtomicBool,
    last: &Mutex<Vec<u8>>,
    opts: ServerOptions,
) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        let mut close = false;
        while let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let body_len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() < end + 4 + body_len {
                break;
            }
            *last.lock().unwrap() = buf.drain(..end + 4 + body_len).collect();
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some((at, pause)) = opts.stall {
                if n >= at && !stalled.swap(true, Ordering::SeqCst) {
                    thread::sleep(pause);
                }
            }
            close = head.contains("connection: close");
            let connection = if close { "Connection: close\r\n" } else { "" };
            out.extend_from_slice(
                format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{connection}\r\nok").as_bytes(),
            );
            if close {
                break;
            }
        }
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
        if close {
            return;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Runs `ringway-loadgen` with the arguments; panics with its output if it fails.
pub fn loadgen(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ringway-loadgen"))
        .args(args)
        .output()
        .expect("run ringway-loadgen");
    assert!(
        out.status.success(),
        "ringway-loadgen {args:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A fresh temporary directory for output files.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ringway-loadgen-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs with `--json` into a temp dir and returns the parsed document.
pub fn loadgen_json(name: &str, args: &[&str]) -> (serde_json::Value, Output) {
    let dir = temp_dir(name);
    let json = dir.join("out.json");
    let mut all: Vec<&str> = args.to_vec();
    let json_s = json.to_str().unwrap().to_owned();
    all.extend(["--json", &json_s, "--quiet"]);
    let out = loadgen(&all);
    let text = std::fs::read_to_string(&json).unwrap();
    (serde_json::from_str(&text).unwrap(), out)
}

/// The value (µs) of a percentile in a JSON latency summary.
pub fn percentile(summary: &serde_json::Value, p: f64) -> u64 {
    summary["percentiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| (v["percentile"].as_f64().unwrap() - p).abs() < 1e-9)
        .unwrap()["value"]
        .as_u64()
        .unwrap()
}
