//! End-to-end test support: the real `ringway-balancer` and `ringway-agent` binaries as child
//! processes, the hello backend in-process, and a small blocking HTTP/1.1 client built on core's
//! response parser. Every wait is bounded.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringway_core::http::{BodyDecoder, BodyEvent, Limits, ResponseParser};

pub mod killable;
pub mod pki;

/// The token every test balancer and agent use unless a test says otherwise.
pub const TOKEN: &str = "test-token";

/// The agent binary: `<target dir>/<profile>/ringway-agent`, next to this test's directory.
pub fn agent_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/<test>-<hash>
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = profile_dir.join("ringway-agent");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p ringway-agent` (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// Collected stderr of a child process.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<String>>);

impl Log {
    fn capture(stream: impl Read + Send + 'static) -> Self {
        let log = Self::default();
        let sink = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.0.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        log
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.0.lock().unwrap().matches(needle).count()
    }

    /// Waits until `needle` appears at least `n` times.
    pub fn wait_for(&self, needle: &str, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.count(needle) >= n {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// A `ringway-balancer` child process.
pub struct Balancer {
    child: Child,
    pub users: SocketAddr,
    pub agents: SocketAddr,
    /// The admin listener (port 0 unless `args` name one; `None` when turned off).
    pub admin: Option<SocketAddr>,
    /// The HTTPS listener, when the config has one (`[listen] https`).
    pub https: Option<SocketAddr>,
    pub log: Log,
}

impl Balancer {
    /// Starts the balancer with `args` (loopback port-0 listeners unless `args` name them) and
    /// waits for its "listening on" lines.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_defaults(args, true, true)
    }

    /// Like `start`, without the test token (`--token`): the `--config` file's
    /// `[[agents.tokens]]`, if any, are the only tokens.
    pub fn start_without_token(args: &[&str]) -> Self {
        Self::start_with_defaults(args, true, false)
    }

    /// Starts the balancer with `args` and none of the listener and worker flags `start` adds:
    /// the `--config` file says where to listen (and a reload may change it) and how many
    /// workers to run.
    pub fn start_from_config(args: &[&str]) -> Self {
        Self::start_with_defaults(args, false, true)
    }

    fn start_with_defaults(args: &[&str], defaults: bool, token: bool) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringway-balancer"));
        if defaults && !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        if defaults && !args.contains(&"--agent-listen") {
            cmd.args(["--agent-listen", "127.0.0.1:0"]);
        }
        if defaults && !args.contains(&"--workers") {
            cmd.args(["--workers", "2"]);
        }
        let admin_off = args.windows(2).any(|w| w == ["--admin-listen", "off"]);
        if defaults && !args.contains(&"--admin-listen") {
            cmd.args(["--admin-listen", "127.0.0.1:0"]);
        }
        if token {
            cmd.args(["--token", TOKEN]);
        }
        cmd.arg("--no-pin").args(args).env_remove("RINGWAY_TOKEN");
        // TLS on the agent tunnel, with this process's test certificates, unless the test
        // asks for plaintext or brings its own.
        if !args.contains(&"--insecure-plaintext") && !args.contains(&"--agent-tls-cert") {
            let pki = pki::tunnel_pki();
            cmd.arg("--agent-tls-cert")
                .arg(&pki.cert)
                .arg("--agent-tls-key")
                .arg(&pki.key);
        }
        cmd.env(
            "RINGWAY_LOG",
            std::env::var("TEST_LOG").unwrap_or_else(|_| "info".to_owned()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning ringway-balancer");
        let log = Log::capture(child.stderr.take().unwrap());
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut users, mut agents, mut admin, mut https) = (None, None, None, None);
        let deadline = Instant::now() + Duration::from_secs(20);
        while users.is_none() || agents.is_none() || (admin.is_none() && !admin_off) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                panic!(
                    "balancer did not report its listeners; stderr:\n{}",
                    log.text()
                );
            };
            let addr = || {
                line.rsplit(' ')
                    .next()
                    .unwrap()
                    .parse::<SocketAddr>()
                    .unwrap()
            };
            if line.contains("users listening on") {
                users = Some(addr());
            } else if line.contains("agents listening on") {
                agents = Some(addr());
            } else if line.contains("https listening on") {
                https = Some(addr());
            } else if line.contains("admin listening on") {
                admin = Some(addr());
            }
        }
        Self {
            child,
            users: users.unwrap(),
            agents: agents.unwrap(),
            admin,
            https,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        peak_rss_kib(self.pid())
    }

    /// Waits until agent `id` has registered one tunnel connection on each of `workers` workers
    /// (connections the kernel delivered to the wrong worker were handed over).
    pub fn wait_registered(&self, id: &str, workers: usize) {
        let needle = format!("agent registered agent={id} ");
        assert!(
            self.log.wait_for(&needle, workers, Duration::from_secs(20)),
            "agent {id} did not register {workers} connections; balancer log:\n{}",
            self.log.text()
        );
        let text = self.log.text();
        for w in 0..workers {
            let on_worker = text
                .lines()
                .any(|l| l.contains(&needle) && l.contains(&format!(" worker={w} ")));
            assert!(
                on_worker,
                "agent {id} has no connection on worker {w}; log:\n{text}"
            );
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        signal(self.pid(), "TERM");
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_exit(&mut self.child, timeout)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `ringway-agent` child process.
pub struct AgentProc {
    child: Child,
    pub id: String,
    pub log: Log,
}

impl AgentProc {
    /// Starts an agent for `routes` in front of `backend`.
    pub fn start(balancer: SocketAddr, id: &str, routes: &[&str], backend: SocketAddr) -> Self {
        Self::start_with(balancer, id, routes, backend, TOKEN, &[])
    }

    pub fn start_with(
        balancer: SocketAddr,
        id: &str,
        routes: &[&str],
        backend: SocketAddr,
        token: &str,
        extra: &[&str],
    ) -> Self {
        Self::start_for(balancer, id, routes, &backend.to_string(), token, extra)
    }

    /// Starts an agent in front of `backend` as `--backend` spells it (`IP:PORT`, `unix:PATH`).
    pub fn start_for(
        balancer: SocketAddr,
        id: &str,
        routes: &[&str],
        backend: &str,
        token: &str,
        extra: &[&str],
    ) -> Self {
        let mut cmd = Command::new(agent_bin());
        cmd.args([
            "--balancer",
            &balancer.to_string(),
            "--token",
            token,
            "--agent-id",
            id,
        ]);
        cmd.args(["--backend", backend]);
        // TLS to the balancer, trusting this process's test CA, unless the test asks for
        // plaintext or brings its own.
        if !extra.contains(&"--insecure-plaintext") && !extra.contains(&"--ca-file") {
            cmd.arg("--ca-file").arg(&pki::tunnel_pki().ca);
        }
        for r in routes {
            cmd.args(["--route", r]);
        }
        cmd.args(extra);
        cmd.env(
            "RINGWAY_LOG",
            std::env::var("TEST_LOG").unwrap_or_else(|_| "info".to_owned()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning ringway-agent");
        let log = Log::capture(child.stderr.take().unwrap());
        Self {
            child,
            id: id.to_owned(),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn peak_rss_kib(&self) -> u64 {
        peak_rss_kib(self.pid())
    }

    /// Sends SIGTERM (graceful drain).
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends a signal by name (`TERM`, `STOP`, `CONT`).
    pub fn signal(&self, name: &str) {
        signal(self.pid(), name);
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_exit(&mut self.child, timeout)
    }
}

/// Sends a signal by name (`TERM`, `STOP`, `CONT`) to `pid`.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
    assert!(status.is_ok_and(|s| s.success()), "kill -{name} failed");
}

/// Waits up to `timeout` for `child` to exit.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// VmHWM of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A hello backend on a free loopback port.
pub fn hello_backend() -> ringway_hello::HelloHandle {
    ringway_hello::spawn(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap()
}

/// A loopback port with nothing listening on it (bound, then released), for a backend that is down.
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A free loopback port below the ephemeral range, for a test that binds a fixed port more than
/// once (a balancer restart). Ports from the ephemeral range could meanwhile be handed to another
/// test's port-0 SO_REUSEPORT listener, which a later bind would then silently join.
pub fn fixed_port() -> SocketAddr {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 1000) as u16 * 10;
    loop {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 10_000;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return l.local_addr().unwrap();
        }
    }
}

/// Balancer flags with fixed loopback ports (the same over a restart) serving `route`, a park
/// time long enough to cover an agent's reconnection; and the user port.
pub fn restartable_args(route: &str) -> (SocketAddr, Vec<String>) {
    let (users, agents) = (fixed_port(), fixed_port());
    let args = [
        "--listen",
        &users.to_string(),
        "--agent-listen",
        &agents.to_string(),
        "--route",
        route,
        "--park-time",
        "5s",
    ]
    .map(str::to_owned)
    .to_vec();
    (users, args)
}

/// A response as the user sees it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `Transfer-Encoding: chunked` was used.
    pub chunked: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A blocking HTTP/1.1 client connection.
pub struct Client {
    pub stream: TcpStream,
    buf: BytesMut,
    /// The TLS session over `stream`, for a client of the HTTPS listener.
    tls: Option<Box<rustls::ClientConnection>>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        Self::from_stream(TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap())
    }

    /// A client over a connection made elsewhere.
    pub fn from_stream(stream: TcpStream) -> Self {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
            tls: None,
        }
    }

    /// A client of the HTTPS listener at `addr`, asking for `sni` (the handshake runs with the
    /// first write).
    pub fn connect_tls(addr: SocketAddr, config: Arc<rustls::ClientConfig>, sni: &str) -> Self {
        let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).unwrap();
        let conn = rustls::ClientConnection::new(config, name).unwrap();
        let mut c = Self::connect(addr);
        c.tls = Some(Box::new(conn));
        c
    }

    /// The TLS session (after the handshake: the server's certificate chain, the version).
    pub fn tls(&mut self) -> Option<&mut rustls::ClientConnection> {
        self.tls.as_deref_mut()
    }

    /// Runs the TLS handshake to its end (a write does it too).
    pub fn handshake(&mut self) -> io::Result<()> {
        if let Some(conn) = self.tls.as_deref_mut() {
            while conn.is_handshaking() {
                conn.complete_io(&mut self.stream)?;
            }
        }
        Ok(())
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.stream.set_read_timeout(Some(t)).unwrap();
    }

    pub fn send(&mut self, raw: &[u8]) -> io::Result<()> {
        match self.tls.as_deref_mut() {
            Some(conn) => {
                let mut tls = rustls::Stream::new(conn, &mut self.stream);
                tls.write_all(raw)?;
                tls.flush()
            }
            None => self.stream.write_all(raw),
        }
    }

    /// One read into the buffer; a read interrupted by a signal (EINTR) is retried.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        let n = loop {
            let read = match self.tls.as_deref_mut() {
                Some(conn) => rustls::Stream::new(conn, &mut self.stream).read(&mut chunk),
                None => self.stream.read(&mut chunk),
            };
            match read {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads one response, keeping its body.
    pub fn response(&mut self, method: &str) -> io::Result<Response> {
        let mut body = Vec::new();
        let mut r = self.response_with(method, |d| body.extend_from_slice(d))?;
        r.body = body;
        Ok(r)
    }

    /// Reads one response, handing body bytes to `on_data` (the returned body stays empty).
    pub fn response_with(
        &mut self,
        method: &str,
        mut on_data: impl FnMut(&[u8]),
    ) -> io::Result<Response> {
        // Lenient on field count: tests check what the balancer forwards, not the client's limits.
        let limits = Limits {
            max_headers: 256,
            ..Limits::default()
        };
        let mut parser = ResponseParser::new(limits);
        let head = loop {
            match parser.parse(&mut self.buf) {
                // One parser per head: the next head after an interim one starts afresh.
                Ok(Some(head)) if head.is_interim() => parser = ResponseParser::new(limits),
                Ok(Some(head)) => break head,
                Ok(None) => {
                    if self.fill()? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "closed before a response head",
                        ));
                    }
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            }
        };
        let headers = head
            .headers()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect::<Vec<_>>();
        let framing = head.framing(method.as_bytes());
        let mut decoder = BodyDecoder::new(framing, None);
        loop {
            match decoder.decode(&mut self.buf) {
                Ok(BodyEvent::Data(d)) => on_data(&d),
                Ok(BodyEvent::End) => break,
                Ok(BodyEvent::NeedMore) => {
                    if self.fill()? == 0 {
                        decoder.finish_on_eof().map_err(|e| {
                            io::Error::new(io::ErrorKind::UnexpectedEof, e.to_string())
                        })?;
                        break;
                    }
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            }
        }
        let chunked = headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        Ok(Response {
            status: head.status(),
            headers,
            body: Vec::new(),
            chunked,
        })
    }

    /// GET `path` on `host` over this connection.
    pub fn get(&mut self, host: &str, path: &str) -> io::Result<Response> {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())?;
        self.response("GET")
    }

    /// True when the server closed the connection (EOF or reset within the read timeout).
    pub fn is_closed_by_server(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        match self.fill() {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
        }
    }
}

/// One GET on a fresh connection.
pub fn get(addr: SocketAddr, host: &str, path: &str) -> io::Result<Response> {
    Client::connect(addr).get(host, path)
}

/// GETs until a 200 arrives or `timeout` passes; returns the time it took.
pub fn wait_for_200(
    addr: SocketAddr,
    host: &str,
    path: &str,
    timeout: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(r) = get(addr, host, path) {
            if r.status == 200 {
                return Some(start.elapsed());
            }
        }
        thread::sleep(Duration::from_millis(25));
    }
    None
}

/// A backend whose behaviour a test scripts: every request head read from a connection is handed
/// to `serve`, with the connection, on the connection's own thread (reads and writes time out after 30 s, so no thread outlives a test by long).
pub struct ScriptedBackend {
    pub addr: SocketAddr,
    /// Request heads received, as text.
    pub heads: Arc<Mutex<Vec<String>>>,
}

impl ScriptedBackend {
    pub fn spawn(serve: impl Fn(&mut TcpStream, &ScriptedRequest) + Send + Sync + 'static) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        let serve = Arc::new(serve);
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { break };
                let (serve, seen) = (serve.clone(), seen.clone());
                thread::spawn(move || {
                    let t = Some(Duration::from_secs(30));
                    conn.set_read_timeout(t).unwrap();
                    conn.set_write_timeout(t).unwrap();
                    // Keep-alive: the next request on the connection comes after the answer.
                    while let Some(request) = ScriptedRequest::read(&mut conn) {
                        seen.lock().unwrap().push(request.head.clone());
                        serve(&mut conn, &request);
                    }
                });
            }
        });
        Self { addr, heads }
    }
}

/// A request head a scripted backend read, and the body bytes that came with it.
pub struct ScriptedRequest {
    pub head: String,
    pub body_start: Vec<u8>,
}

impl ScriptedRequest {
    pub fn read(conn: &mut TcpStream) -> Option<Self> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(Self {
                    head: String::from_utf8_lossy(&buf[..end + 4]).into_owned(),
                    body_start: buf[end + 4..].to_vec(),
                });
            }
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The Content-Length the head announces (0 when none).
    pub fn content_length(&self) -> usize {
        self.head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0)
    }

    /// Reads the rest of a Content-Length body; returns how many body bytes arrived in all.
    pub fn read_body(&self, conn: &mut TcpStream) -> usize {
        let want = self.content_length();
        let mut got = self.body_start.len();
        let mut chunk = [0u8; 64 * 1024];
        while got < want {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        got
    }
}

/// Writes `len` bytes of request body to `stream` on a thread, stopping at the first error.
pub fn send_body(stream: &TcpStream, len: usize) -> thread::JoinHandle<usize> {
    let mut stream = stream.try_clone().unwrap();
    thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        while sent < len {
            let n = chunk.len().min(len - sent);
            if stream.write_all(&chunk[..n]).is_err() {
                break;
            }
            sent += n;
        }
        sent
    })
}

/// An agent speaking the tunnel protocol from this process (core's state machine over a blocking
/// socket), with windows of `window` bytes, that stops reading ("freezes") once the balancer
/// opened a stream on it: the balancer's writes to it then block.
pub struct FreezingAgent {
    pub local: SocketAddr,
    /// Held so the socket stays open (frozen: never read again).
    _stream: TcpStream,
}

impl FreezingAgent {
    pub fn start(balancer: SocketAddr, id: &str, route: &str, window: u32) -> Self {
        use ringway_core::tunnel::{Config, Connection, Event, Hello, PROTOCOL_VERSION};
        let mut stream = TcpStream::connect_timeout(&balancer, Duration::from_secs(5)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let config = Config {
            stream_window: window,
            connection_window: window,
            ..Config::default()
        };
        let hello = Hello {
            version: PROTOCOL_VERSION,
            agent_id: id.to_owned(),
            token: TOKEN.to_owned(),
            routes: vec![route.to_owned()],
            worker: None,
        };
        let mut conn = Connection::agent(config, hello, Instant::now());
        let mut inbuf = BytesMut::new();
        let mut out = BytesMut::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "no stream opened on the agent");
            if conn.poll_transmit(&mut out) {
                stream.write_all(&out).unwrap();
                out.clear();
            }
            let mut opened = false;
            while let Some(event) = conn.poll_event() {
                opened |= matches!(event, Event::StreamOpened { .. });
            }
            if opened {
                // Grant the window for the new stream, then never read again.
                if conn.poll_transmit(&mut out) {
                    stream.write_all(&out).unwrap();
                }
                break;
            }
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "balancer closed the tunnel before opening a stream");
            inbuf.extend_from_slice(&chunk[..n]);
            conn.handle_input(&mut inbuf, Instant::now()).unwrap();
        }
        Self {
            local: stream.local_addr().unwrap(),
            _stream: stream,
        }
    }
}

/// Whether process `pid` holds the loopback TCP socket whose peer is `peer` (an fd linking to
/// its inode in /proc/net/tcp).
pub fn holds_socket_to(pid: u32, peer: SocketAddr) -> bool {
    let SocketAddr::V4(peer) = peer else {
        panic!("IPv4 only")
    };
    let want = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(peer.ip().octets()),
        peer.port()
    );
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let inodes: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&want.as_str())).then(|| format!("socket:[{}]", f[9]))
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok).any(|fd| {
        std::fs::read_link(fd.path())
            .map(|l| inodes.iter().any(|i| l.to_string_lossy() == *i))
            .unwrap_or(false)
    })
}

/// Writes `text` to a fresh TOML file for `--config` (under the temp dir, named after the test
/// process and `name`).
pub fn config_file(name: &str, text: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("ringway-test-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// How the balancer answered a hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloOutcome {
    /// HELLO_ACK.
    Accepted,
    /// GOAWAY before any HELLO_ACK, with its code.
    Rejected(ringway_core::tunnel::ResetCode),
    /// The connection ended with neither.
    Closed,
}

/// A fake agent on a blocking socket: core's state machine for the handshake, then raw frames
/// (built with core's codec) for tests that misbehave on purpose.
pub struct RawAgent {
    pub stream: TcpStream,
    pub conn: ringway_core::tunnel::Connection,
    inbuf: BytesMut,
}

impl RawAgent {
    /// A hello from agent `id` for `routes`, with the test token.
    pub fn hello(id: &str, routes: &[String]) -> ringway_core::tunnel::Hello {
        ringway_core::tunnel::Hello {
            version: ringway_core::tunnel::PROTOCOL_VERSION,
            agent_id: id.to_owned(),
            token: TOKEN.to_owned(),
            routes: routes.to_vec(),
            worker: None,
        }
    }

    /// Connects; `recv_buffer` sets SO_RCVBUF before the connect (a small one makes the
    /// balancer's writes block soon once this agent stops reading).
    pub fn connect(
        balancer: SocketAddr,
        hello: ringway_core::tunnel::Hello,
        recv_buffer: Option<usize>,
    ) -> Self {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        socket
            .connect_timeout(&balancer.into(), Duration::from_secs(5))
            .unwrap();
        let stream: TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let conn = ringway_core::tunnel::Connection::agent(
            ringway_core::tunnel::Config::default(),
            hello,
            Instant::now(),
        );
        Self {
            stream,
            conn,
            inbuf: BytesMut::new(),
        }
    }

    /// Sends the hello and reads until the balancer accepts or rejects it.
    pub fn handshake(&mut self) -> HelloOutcome {
        use ringway_core::tunnel::Event;
        let mut out = BytesMut::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "no answer to the hello");
            if self.conn.poll_transmit(&mut out) {
                self.stream.write_all(&out).unwrap();
                out.clear();
            }
            while let Some(event) = self.conn.poll_event() {
                match event {
                    Event::HelloAck(_) => return HelloOutcome::Accepted,
                    Event::GoAway { code, .. } => return HelloOutcome::Rejected(code),
                    _ => {}
                }
            }
            let n = match self.stream.read(&mut chunk) {
                Ok(0) => return HelloOutcome::Closed,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return HelloOutcome::Closed
                }
                Err(e) => panic!("reading the hello's answer: {e}"),
            };
            self.inbuf.extend_from_slice(&chunk[..n]);
            if self
                .conn
                .handle_input(&mut self.inbuf, Instant::now())
                .is_err()
            {
                return HelloOutcome::Closed;
            }
        }
    }

    /// Reads raw frames until the balancer closes the connection (EOF or reset) or `timeout`
    /// passes; returns the frames and whether it closed.
    pub fn read_until_closed(
        &mut self,
        timeout: Duration,
    ) -> (Vec<ringway_core::tunnel::Frame>, bool) {
        let mut decoder = ringway_core::tunnel::FrameDecoder::new((1 << 24) - 1);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let deadline = Instant::now() + timeout;
        let closed = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
            while let Ok(Some(frame)) = decoder.decode(&mut buf) {
                frames.push(frame);
            }
        };
        (frames, closed)
    }
}

/// The samples of a metric family (in the text of `/metrics`) by their labels (as `k=v` pairs, sorted).
pub fn metric_samples(text: &str, name: &str) -> std::collections::HashMap<Vec<String>, f64> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("parses as Prometheus text");
    scrape
        .samples
        .into_iter()
        .filter(|s| s.metric == name)
        .map(|s| {
            let mut labels: Vec<String> =
                s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("{name}: unexpected value {other:?}"),
            };
            (labels, value)
        })
        .collect()
}

/// Labels as `metric_samples` keys them (`k=v`, sorted).
pub fn metric_labels(pairs: &[(&str, &str)]) -> Vec<String> {
    let mut v: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    v.sort();
    v
}
