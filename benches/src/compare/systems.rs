//! Starting the common backend and each system under test, pinned as the plan says, with the
//! configs rendered from benches/templates/. Every process is a [`Guard`]: dropping a [`Running`]
//! stops it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::peers::{self, Peer};
use super::pki::{self, Pki};
use super::procs::{tail, Guard};
use super::results::Pinning;
use super::scenario::System;
use super::templates;
use super::tls_probe;

/// The Host header every request carries (the route ringway serves).
pub const HOST: &str = "bench.test";

/// Loopback ports, from `--base-port`.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// The backend.
    pub backend: u16,
    /// Where users connect: the system under test's entrance.
    pub entrance: u16,
    /// ringway's agent listener.
    pub agents: u16,
    /// rathole's control channel.
    pub control: u16,
    /// ringway's plain user listener when the entrance is its HTTPS listener.
    pub plain: u16,
}

impl Ports {
    /// Five consecutive ports from `base`.
    pub fn from_base(base: u16) -> Self {
        Self {
            backend: base,
            entrance: base + 1,
            agents: base + 2,
            control: base + 3,
            plain: base + 4,
        }
    }
}

/// What starting a system needs.
#[derive(Debug)]
pub struct Ctx {
    /// Temporary directory for configs, pid files and logs.
    pub work: PathBuf,
    /// ringway's release binaries.
    pub bins: PathBuf,
    /// The peers found.
    pub peers: Vec<Peer>,
    /// CPU sets.
    pub pin: Pinning,
    /// Ports.
    pub ports: Ports,
    /// Open-file limit to configure (worker_connections, maxconn).
    pub nofile: u64,
    /// Every command started, in order (commands.txt).
    pub commands: Vec<String>,
    /// Users connect over HTTPS: every entrance is an HTTPS listener.
    pub https: bool,
    /// The TLS scenarios' certificates (made when a scenario needs them).
    pub pki: Option<Pki>,
}

impl Ctx {
    /// `program args…` under `taskset -c CPUS` (unpinned when `cpus` is empty), recorded.
    pub fn pinned(&mut self, cpus: &[usize], program: &Path, args: &[String]) -> Command {
        let mut cmd;
        let mut line = String::new();
        if cpus.is_empty() {
            cmd = Command::new(program);
        } else {
            let list = cpu_list(cpus);
            cmd = Command::new("taskset");
            cmd.args(["-c", &list]).arg(program);
            line = format!("taskset -c {list} ");
        }
        cmd.args(args);
        line.push_str(&shell_line(&program.display().to_string(), args));
        self.commands.push(line);
        cmd
    }

    /// Records an environment variable in front of the last command line.
    fn env(&mut self, cmd: &mut Command, key: &str, value: &str) {
        cmd.env(key, value);
        if let Some(last) = self.commands.last_mut() {
            *last = format!("{key}={value} {last}");
        }
    }

    /// HAProxy's `maxconn`: it wants two descriptors per connection, and a few to spare.
    pub fn haproxy_maxconn(&self) -> u64 {
        (self.nofile / 2).saturating_sub(100)
    }

    /// The most client connections `system` is configured to hold at once, where that is below
    /// the open-file limit: the idle scenarios open no more than this on it.
    pub fn conn_cap(&self, system: System) -> Option<u64> {
        match system {
            System::Haproxy => Some(self.haproxy_maxconn()),
            _ => None,
        }
    }

    fn log(&self, name: &str) -> PathBuf {
        self.work.join(format!("{name}.log"))
    }

    fn peer(&self, name: &str) -> Result<(PathBuf, String), String> {
        let p = peers::find(&self.peers, name).ok_or_else(|| format!("{name} is not installed"))?;
        Ok((p.path.clone().unwrap_or_default(), p.version.clone()))
    }

    fn bin(&self, name: &str) -> Result<PathBuf, String> {
        let p = self.bins.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "{} is missing (cargo build --release -p ringway-balancer -p ringway-agent -p ringway-loadgen -p ringway-benches)",
                p.display()
            ))
        }
    }

    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("WORK", self.work.display().to_string()),
            ("NOFILE", self.nofile.to_string()),
            ("PORT", self.ports.entrance.to_string()),
            ("BACKEND_PORT", self.ports.backend.to_string()),
            ("CONTROL_PORT", self.ports.control.to_string()),
            ("MAXCONN", self.haproxy_maxconn().to_string()),
            ("TIMEOUT", "600s".to_owned()),
            ("HOST", HOST.to_owned()),
            ("TLS_CIPHER", pki::CIPHER_OPENSSL.to_owned()),
            ("TLS_GROUP", pki::GROUP.to_owned()),
            (
                "TLS_CERT",
                self.pki
                    .as_ref()
                    .map_or(String::new(), |p| p.cert.display().to_string()),
            ),
            (
                "TLS_KEY",
                self.pki
                    .as_ref()
                    .map_or(String::new(), |p| p.key.display().to_string()),
            ),
        ]
    }

    fn pki(&self) -> Result<Pki, String> {
        self.pki
            .clone()
            .ok_or_else(|| "no certificates made for this scenario".to_owned())
    }
}

/// A started system.
#[derive(Debug)]
pub struct Running {
    /// Versions and threads.
    pub label: String,
    /// The process users connect to (on the entrance CPUs).
    pub entrance: Guard,
    /// A tunnel's far half (on the other CPUs).
    pub far: Option<Guard>,
}

/// The common backend on the other CPUs: nginx (1 worker, benches/templates/nginx-backend.conf)
/// when installed, else ringway's hello backend (this binary, `--serve-hello`; a harness check
/// only: its answers differ). Returns the guard and what it is.
pub fn start_backend(ctx: &mut Ctx) -> Result<(Guard, String), String> {
    let www = ctx.work.join("www/files");
    std::fs::create_dir_all(&www).map_err(|e| format!("creating {}: {e}", www.display()))?;
    for (name, size) in [("1k", 1024), ("64k", 64 * 1024)] {
        let body: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(www.join(name), body).map_err(|e| format!("writing {name}: {e}"))?;
    }
    let rest = ctx.pin.rest_cpus.clone();
    let (mut guard, label) = if let Ok((nginx, version)) = ctx.peer("nginx") {
        let conf = templates::write(&ctx.work, "nginx-backend.conf", &ctx.vars())?;
        let args = nginx_args(&ctx.work, &conf, "backend");
        let cmd = ctx.pinned(&rest, &nginx, &args);
        let guard = Guard::spawn("backend nginx", cmd, &ctx.log("backend"))?;
        (guard, format!("nginx {version}, 1 worker"))
    } else {
        let me = std::env::current_exe().map_err(|e| format!("finding this binary: {e}"))?;
        let args = vec!["--serve-hello".to_owned(), ctx.ports.backend.to_string()];
        let cmd = ctx.pinned(&rest, &me, &args);
        let guard = Guard::spawn("backend hello", cmd, &ctx.log("backend"))?;
        (
            guard,
            "ringway hello backend (nginx not installed)".to_owned(),
        )
    };
    wait_ready(
        ctx.ports.backend,
        &mut [&mut guard],
        Duration::from_secs(15),
    )?;
    Ok((guard, label))
}

fn nginx_args(work: &Path, conf: &str, name: &str) -> Vec<String> {
    vec![
        "-p".into(),
        work.display().to_string(),
        "-e".into(),
        work.join(format!("{name}.err")).display().to_string(),
        "-c".into(),
        conf.to_owned(),
    ]
}

/// Starts `system` and waits until a request through it gets a 200.
pub fn start(ctx: &mut Ctx, system: System) -> Result<Running, String> {
    let entrance = ctx.pin.entrance_cpus.clone();
    let rest = ctx.pin.rest_cpus.clone();
    let p = ctx.ports;
    let running = match system {
        System::Nginx => {
            let (nginx, version) = ctx.peer("nginx")?;
            let (template, kind) = if ctx.https {
                ("nginx-https.conf", "HTTPS reverse proxy")
            } else {
                ("nginx-proxy.conf", "reverse proxy")
            };
            let conf = templates::write(&ctx.work, template, &ctx.vars())?;
            let cmd = ctx.pinned(&entrance, &nginx, &nginx_args(&ctx.work, &conf, "proxy"));
            Running {
                label: format!("nginx {version} {kind} (1 worker, upstream keepalive)"),
                entrance: Guard::spawn("nginx", cmd, &ctx.log("nginx"))?,
                far: None,
            }
        }
        System::Haproxy => {
            let (haproxy, version) = ctx.peer("haproxy")?;
            let conf = templates::write(&ctx.work, "haproxy.cfg", &ctx.vars())?;
            let cmd = ctx.pinned(&entrance, &haproxy, &["-db".into(), "-f".into(), conf]);
            Running {
                label: format!("HAProxy {version} (nbthread 1, http-reuse always)"),
                entrance: Guard::spawn("haproxy", cmd, &ctx.log("haproxy"))?,
                far: None,
            }
        }
        System::Rathole => {
            let (rathole, version) = ctx.peer("rathole")?;
            let server = templates::write(&ctx.work, "rathole-server.toml", &ctx.vars())?;
            let client = templates::write(&ctx.work, "rathole-client.toml", &ctx.vars())?;
            let mut s = ctx.pinned(&entrance, &rathole, &["--server".into(), server]);
            ctx.env(&mut s, "TOKIO_WORKER_THREADS", "1");
            ctx.env(&mut s, "RUST_LOG", "warn");
            let entrance = Guard::spawn("rathole server", s, &ctx.log("rathole-server"))?;
            let mut c = ctx.pinned(&rest, &rathole, &["--client".into(), client]);
            ctx.env(&mut c, "TOKIO_WORKER_THREADS", "1");
            ctx.env(&mut c, "RUST_LOG", "warn");
            Running {
                label: format!(
                    "rathole {version} TCP tunnel (server + client, 1 tokio worker each)"
                ),
                entrance,
                far: Some(Guard::spawn(
                    "rathole client",
                    c,
                    &ctx.log("rathole-client"),
                )?),
            }
        }
        System::Ringway(driver) | System::RingwayTlsTunnel(driver) => {
            let tunnel_tls = matches!(system, System::RingwayTlsTunnel(_));
            let bal = balancer(
                ctx,
                &entrance,
                driver,
                tunnel_tls,
                &["--route", HOST, "--token", "bench"],
            )?;
            let agent = ctx.bin("ringway-agent")?;
            let mut args = strings(&[
                "--balancer",
                &format!("127.0.0.1:{}", p.agents),
                "--token",
                "bench",
                "--route",
                HOST,
                "--backend",
                &format!("127.0.0.1:{}", p.backend),
                "--workers",
                "1",
                "--io-driver",
                driver,
            ]);
            let tunnel = if tunnel_tls {
                args.extend(["--ca-file".into(), ctx.pki()?.ca.display().to_string()]);
                "TLS 1.3"
            } else {
                args.push("--insecure-plaintext".into());
                "plaintext"
            };
            let mut cmd = ctx.pinned(&rest, &agent, &args);
            ctx.env(&mut cmd, "RINGWAY_LOG", "warn");
            Running {
                label: format!(
                    "ringway tunnel, {driver} (balancer 1 worker + agent 1 thread; tunnel {tunnel})"
                ),
                entrance: bal,
                far: Some(Guard::spawn("ringway-agent", cmd, &ctx.log("agent"))?),
            }
        }
        System::Classic(driver) => {
            let backend = format!("{HOST}=127.0.0.1:{}", p.backend);
            Running {
                label: format!(
                    "ringway classic mode, {driver} (balancer 1 worker, static backend)"
                ),
                entrance: balancer(ctx, &entrance, driver, false, &["--backend", &backend])?,
                far: None,
            }
        }
        System::ManyAgents {
            agents,
            routes_per_agent,
        } => {
            let bal = balancer(
                ctx,
                &entrance,
                "uring",
                false,
                &["--route", HOST, "--token", "bench"],
            )?;
            let bin = ctx.bin("many-agents")?;
            let args = strings(&[
                "--balancer",
                &format!("127.0.0.1:{}", p.agents),
                "--backend",
                &format!("127.0.0.1:{}", p.backend),
                "--agents",
                &agents.to_string(),
                "--routes-per-agent",
                &routes_per_agent.to_string(),
                "--host",
                HOST,
            ]);
            let mut cmd = ctx.pinned(&rest, &bin, &args);
            ctx.env(&mut cmd, "RINGWAY_LOG", "warn");
            let log = ctx.log("many-agents");
            let mut far = Guard::spawn("many-agents", cmd, &log)?;
            wait_for_line(&log, "ready", &mut far, Duration::from_secs(180))?;
            Running {
                label: format!(
                    "ringway tunnel, uring: balancer 1 worker; {agents} agent(s) (epoll, 1 thread each, one process) with {} route(s)",
                    agents * routes_per_agent
                ),
                entrance: bal,
                far: Some(far),
            }
        }
    };
    let mut running = running;
    let mut guards: Vec<&mut Guard> = vec![&mut running.entrance];
    if let Some(f) = running.far.as_mut() {
        guards.push(f);
    }
    if ctx.https {
        let pki = ctx.pki()?;
        let config = tls_probe::client_config(&pki.ca, false)?;
        let check = |port| tls_probe::get(port, &config).map(|(status, _)| status);
        wait_until(p.entrance, &mut guards, Duration::from_secs(20), check)?;
        let negotiated = tls_probe::probe(p.entrance, &pki)?;
        running.label = format!("{}; HTTPS: {}", running.label, negotiated.describe());
    } else {
        wait_ready(p.entrance, &mut guards, Duration::from_secs(20))?;
    }
    Ok(running)
}

/// ringway-balancer with 1 worker on `cpus`, plus `extra` flags; the agent listener over TLS
/// with `tunnel_tls` (else plaintext); users on the HTTPS listener (ringway-https.toml) when
/// the scenario is HTTPS, the plain listener then on another port.
fn balancer(
    ctx: &mut Ctx,
    cpus: &[usize],
    driver: &str,
    tunnel_tls: bool,
    extra: &[&str],
) -> Result<Guard, String> {
    let bin = ctx.bin("ringway-balancer")?;
    let p = ctx.ports;
    let plain = if ctx.https { p.plain } else { p.entrance };
    let mut args = strings(&[
        "--workers",
        "1",
        "--io-driver",
        driver,
        "--listen",
        &format!("127.0.0.1:{plain}"),
        "--agent-listen",
        &format!("127.0.0.1:{}", p.agents),
        "--admin-listen",
        "off",
        "--idle-timeout",
        "600s",
        "--max-connections-per-worker",
        "0",
    ]);
    if tunnel_tls {
        let pki = ctx.pki()?;
        args.extend([
            "--agent-tls-cert".into(),
            pki.cert.display().to_string(),
            "--agent-tls-key".into(),
            pki.key.display().to_string(),
        ]);
    } else {
        // The benchmarked tunnel is plaintext on loopback, like rathole's default transport.
        args.push("--insecure-plaintext".into());
    }
    if ctx.https {
        let conf = templates::write(&ctx.work, "ringway-https.toml", &ctx.vars())?;
        args.extend(["--config".into(), conf]);
    }
    args.extend(strings(extra));
    let mut cmd = ctx.pinned(cpus, &bin, &args);
    ctx.env(&mut cmd, "RINGWAY_LOG", "warn");
    Guard::spawn("ringway-balancer", cmd, &ctx.log("balancer"))
}

/// Polls `GET /` (Host: bench.test) on 127.0.0.1:`port` until a 200, failing early when one of
/// `guards` exits.
pub fn wait_ready(port: u16, guards: &mut [&mut Guard], limit: Duration) -> Result<(), String> {
    wait_until(port, guards, limit, get_status)
}

/// Polls `check` (the status of one request to `port`) until a 200, failing early when one of
/// `guards` exits.
fn wait_until(
    port: u16,
    guards: &mut [&mut Guard],
    limit: Duration,
    check: impl Fn(u16) -> Result<u16, String>,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        for g in guards.iter_mut() {
            g.check_alive()?;
        }
        match check(port) {
            Ok(200) => return Ok(()),
            Ok(s) => last = format!("status {s}"),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let names: Vec<&str> = guards.iter().map(|g| g.name()).collect();
    Err(format!(
        "no 200 on port {port} ({}) within {} s: {last}",
        names.join(", "),
        limit.as_secs()
    ))
}

/// One `GET /` with `Connection: close`; the status code.
fn get_status(port: u16) -> Result<u16, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).map_err(|e| e.to_string())?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "not an HTTP response".to_owned())
}

/// Waits until `log` has a line starting with `prefix`.
pub fn wait_for_line(
    log: &Path,
    prefix: &str,
    g: &mut Guard,
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().any(|l| l.starts_with(prefix)) {
            return Ok(());
        }
        g.check_alive()
            .map_err(|e| format!("{e}: {}", tail(log, 4)))?;
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "{}: no `{prefix}` within {} s: {}",
        g.name(),
        limit.as_secs(),
        tail(log, 4)
    ))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// `0,1` for taskset.
pub fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A command line as a shell would take it (single quotes where needed).
pub fn shell_line(program: &str, args: &[String]) -> String {
    let quote = |s: &str| {
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
        {
            s.to_owned()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}
