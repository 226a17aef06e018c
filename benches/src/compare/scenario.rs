//! The scenarios: which systems run, in front of which backend path, under which load.

use clap::ValueEnum;

/// A named benchmark (`--scenario NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// 12-byte GET responses over 50 keep-alive connections: nginx, HAProxy, rathole, ringway.
    SmallGet,
    /// 1 KiB responses.
    #[value(name = "resp-1k")]
    #[serde(rename = "resp-1k")]
    Resp1k,
    /// 64 KiB responses.
    #[value(name = "resp-64k")]
    #[serde(rename = "resp-64k")]
    Resp64k,
    /// 1 MiB POST bodies.
    #[value(name = "upload-1m")]
    #[serde(rename = "upload-1m")]
    Upload1m,
    /// A new connection per request (`Connection: close`).
    Churn,
    /// Resident memory per idle keep-alive connection, 10,000 connections.
    #[value(name = "idle-10k")]
    #[serde(rename = "idle-10k")]
    Idle10k,
    /// ringway with 1,000 agents and 10,000 routes against 1 agent with 1 route.
    ManyAgents,
    /// ringway's tunnel and classic mode on io_uring and on epoll, with nginx as the yardstick.
    UringVsEpoll,
    /// ringway's classic mode (static backends) against nginx and HAProxy.
    Classic,
    /// small-get over HTTPS (TLS 1.3, the same certificate and suite): nginx, ringway classic
    /// and tunnel behind the HTTPS listener.
    HttpsSmallGet,
    /// Full TLS handshakes per second: a new HTTPS connection per request, no resumption.
    TlsHandshakes,
    /// ringway's tunnel over TLS against the same over plaintext (plain HTTP users).
    TunnelTls,
}

impl Scenario {
    /// The name on the command line and in directory names.
    pub fn name(self) -> &'static str {
        match self {
            Self::SmallGet => "small-get",
            Self::Resp1k => "resp-1k",
            Self::Resp64k => "resp-64k",
            Self::Upload1m => "upload-1m",
            Self::Churn => "churn",
            Self::Idle10k => "idle-10k",
            Self::ManyAgents => "many-agents",
            Self::UringVsEpoll => "uring-vs-epoll",
            Self::Classic => "classic",
            Self::HttpsSmallGet => "https-small-get",
            Self::TlsHandshakes => "tls-handshakes",
            Self::TunnelTls => "tunnel-tls",
        }
    }

    /// What this scenario runs.
    pub fn spec(self) -> Spec {
        use System::*;
        let load = |path: &str, rate: f64| Load {
            path: path.to_owned(),
            method: "GET".to_owned(),
            body_bytes: 0,
            close: false,
            connections: 50,
            rate,
            https: false,
        };
        let https = |l: Load| Load { https: true, ..l };
        let peers = vec![Nginx, Haproxy, Rathole, Ringway("uring")];
        match self {
            Self::SmallGet => Spec::load(peers, load("/", 5000.0)),
            Self::Resp1k => Spec::load(peers, load("/files/1k", 5000.0)),
            Self::Resp64k => Spec::load(peers, load("/files/64k", 1000.0)),
            Self::Upload1m => Spec::load(
                peers,
                Load {
                    method: "POST".to_owned(),
                    body_bytes: 1 << 20,
                    connections: 10,
                    ..load("/upload", 100.0)
                },
            ),
            Self::Churn => Spec::load(
                peers,
                Load {
                    close: true,
                    ..load("/", 1000.0)
                },
            ),
            Self::Idle10k => Spec {
                systems: vec![Nginx, Haproxy, Ringway("uring")],
                kind: Kind::Idle { conns: 10_000 },
                load: load("/", 0.0),
            },
            Self::ManyAgents => Spec::load(
                vec![
                    ManyAgents {
                        agents: 1,
                        routes_per_agent: 1,
                    },
                    ManyAgents {
                        agents: 1000,
                        routes_per_agent: 10,
                    },
                ],
                load("/", 5000.0),
            ),
            Self::UringVsEpoll => Spec::load(
                vec![
                    Nginx,
                    Ringway("uring"),
                    Ringway("epoll"),
                    Classic("uring"),
                    Classic("epoll"),
                ],
                load("/", 5000.0),
            ),
            Self::Classic => Spec::load(
                vec![Nginx, Haproxy, Classic("uring"), Classic("epoll")],
                load("/", 5000.0),
            ),
            Self::HttpsSmallGet => Spec::load(
                vec![
                    Nginx,
                    Classic("uring"),
                    Ringway("uring"),
                    RingwayTlsTunnel("uring"),
                ],
                https(load("/", 5000.0)),
            ),
            Self::TlsHandshakes => Spec::load(
                vec![Nginx, Classic("uring"), Ringway("uring")],
                https(Load {
                    close: true,
                    ..load("/", 1000.0)
                }),
            ),
            Self::TunnelTls => Spec::load(
                vec![Ringway("uring"), RingwayTlsTunnel("uring")],
                load("/", 5000.0),
            ),
        }
    }
}

/// One scenario's plan.
#[derive(Debug, Clone)]
pub struct Spec {
    /// In order; the first is the baseline of the ratios (nginx, or the 1-agent ringway).
    pub systems: Vec<System>,
    /// Load runs or idle connections.
    pub kind: Kind,
    /// The requests (for `Kind::Idle`, the one request each connection sends).
    pub load: Load,
}

impl Spec {
    fn load(systems: Vec<System>, load: Load) -> Self {
        Self {
            systems,
            kind: Kind::Load,
            load,
        }
    }
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A closed-loop run (req/s, CPU per request) then an open-loop run (corrected latency).
    Load,
    /// `conns` idle keep-alive connections: resident memory per connection.
    Idle {
        /// Connections per system.
        conns: usize,
    },
}

/// The requests of a load run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Load {
    /// Request target on the backend.
    pub path: String,
    /// `GET` or `POST`.
    pub method: String,
    /// Request body size (0: none).
    pub body_bytes: usize,
    /// `Connection: close` on every request (a new connection each).
    pub close: bool,
    /// Concurrent connections.
    pub connections: usize,
    /// Offered rate of the open-loop run, req/s.
    pub rate: f64,
    /// Users connect over HTTPS (the pinned parameters of `pki`); every system's entrance
    /// is its HTTPS listener.
    #[serde(default)]
    pub https: bool,
}

/// A system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// nginx reverse proxy, 1 worker.
    Nginx,
    /// HAProxy, 1 thread.
    Haproxy,
    /// rathole server + client (a TCP tunnel).
    Rathole,
    /// ringway-balancer + ringway-agent on an IO driver, the tunnel plaintext.
    Ringway(&'static str),
    /// The same with the agent↔balancer tunnel over TLS (the agent's default).
    RingwayTlsTunnel(&'static str),
    /// ringway-balancer in classic mode (static backend) on an IO driver.
    Classic(&'static str),
    /// ringway-balancer with `agents` agents in one `many-agents` process, each serving
    /// `routes_per_agent` routes (the first agent also serves the measured host).
    ManyAgents {
        /// Agent connections.
        agents: usize,
        /// Routes each registers.
        routes_per_agent: usize,
    },
}

impl System {
    /// The key in results.json and summary.md.
    pub fn key(self) -> String {
        match self {
            Self::Nginx => "nginx".into(),
            Self::Haproxy => "haproxy".into(),
            Self::Rathole => "rathole".into(),
            Self::Ringway(d) => format!("ringway-{d}"),
            Self::RingwayTlsTunnel(d) => format!("ringway-{d}-tls-tunnel"),
            Self::Classic(d) => format!("classic-{d}"),
            Self::ManyAgents {
                agents,
                routes_per_agent,
            } => format!(
                "ringway-{agents}-agents-{}-routes",
                agents * routes_per_agent
            ),
        }
    }

    /// The peer program it needs, if any.
    pub fn peer(self) -> Option<&'static str> {
        match self {
            Self::Nginx => Some("nginx"),
            Self::Haproxy => Some("haproxy"),
            Self::Rathole => Some("rathole"),
            _ => None,
        }
    }

    /// Whether it is ringway (runs in `--quick` mode without peers).
    pub fn is_ringway(self) -> bool {
        self.peer().is_none()
    }
}
