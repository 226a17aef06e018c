//! The balancer's typed configuration: a TOML file (every key optional, with defaults) whose values
//! are parsed straight into valid types: durations, socket addresses, route patterns, picker names.
//! An error names the file, line, column and key that were wrong, and why (`error`). Command-line
//! flags override the file (see `cli`). A configuration serialises back to TOML that parses into
//! the same configuration (`ringway-balancer --check` prints it).
//!
//! Every key is listed in docs/CONFIG.md.

mod acme;
mod agent_tls;
mod backends;
mod error;
mod tls;
mod tokens;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use ringway_core::pick::PickerKind;
use ringway_core::route::RoutePattern;
use ringway_tuning::runtime::IoDriver;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use acme::{AcmeChallenge, AcmeConfig};
pub use agent_tls::AgentTlsConfig;
pub use backends::{BackendSpec, BackendTarget, BackendsConfig, HealthConfig, SendProxy};
pub use error::{ConfigError, ConfigProblem};
pub use tls::{CertConfig, TlsConfig};
pub use tokens::{check_name as check_token_name, AgentToken, TokenDigest};

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listening sockets.
    pub listen: ListenConfig,
    /// Worker threads and the IO driver.
    pub runtime: RuntimeConfig,
    /// Deadlines on the request path.
    pub timeouts: TimeoutConfig,
    /// HTTP/1.1 parser limits for user requests.
    pub limits: LimitsConfig,
    /// Tunnel flow control and heartbeat.
    pub tunnel: TunnelConfig,
    /// How agents authenticate and how endpoints are picked.
    pub agents: AgentsConfig,
    /// How often peers' repeated mistakes are logged.
    pub log: LogConfig,
    /// What the balancer tells backends about where a request came from.
    pub proxy: ProxyConfig,
    /// Settings shared by every static backend (routes with `backends`).
    pub backends: BackendsConfig,
    /// Certificates and session resumption of the HTTPS listener (`listen.https`).
    pub tls: TlsConfig,
    /// Routes known from the start, each optionally with its own agent token.
    #[serde(rename = "route", skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
}

/// `[listen]`: where users and agents connect.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// User-facing HTTP/1.1 listener (one SO_REUSEPORT socket per worker).
    pub users: SocketAddr,
    /// Agent tunnel listener.
    pub agents: SocketAddr,
    /// listen(2) backlog of every listening socket.
    pub backlog: i32,
    /// Admin listener (`/metrics`, `/healthz`, `/readyz`, `/routes`, `/agents`): an address,
    /// or `"off"`. Loopback by default: it tells anyone who reaches it the routes and agents.
    #[serde(deserialize_with = "de_admin", serialize_with = "ser_admin")]
    pub admin: Option<SocketAddr>,
    /// Every user connection must begin with a PROXY protocol header (v1 or v2) from an L4
    /// front, whose source address then stands for the client's. Only for a user listener
    /// that nothing but the front can reach.
    pub proxy_protocol: bool,
    /// User-facing HTTPS listener (one SO_REUSEPORT socket per worker; certificates in
    /// `[tls]`), or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub https: Option<SocketAddr>,
}

/// Where the admin listener binds unless told otherwise.
pub const DEFAULT_ADMIN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9180);

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            users: SocketAddr::from(([0, 0, 0, 0], 8080)),
            agents: SocketAddr::from(([0, 0, 0, 0], 7000)),
            backlog: 1024,
            admin: Some(DEFAULT_ADMIN),
            proxy_protocol: false,
            https: None,
        }
    }
}

/// `[runtime]`: worker threads.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Worker threads; absent = one per CPU in the process's affinity mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// `auto`, `uring`, `uring-defer` or `epoll`.
    pub io_driver: IoDriver,
    /// io_uring submission queue entries per worker.
    pub ring_entries: u32,
    /// Pin worker i to the i-th allowed CPU.
    pub pin: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            workers: None,
            io_driver: IoDriver::Auto,
            ring_entries: 1024,
            pin: true,
        }
    }
}

/// `[timeouts]`: every deadline on the request path, as `"250ms"`, `"2s"`, `"1m"`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutConfig {
    /// A whole request head must arrive within this time of its first byte (slowloris).
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub head: Duration,
    /// An idle keep-alive connection is closed after this long.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub idle: Duration,
    /// No progress reading a request body for this long closes the connection.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub body: Duration,
    /// No response head within this time of the request being sent → 504.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub response_head: Duration,
    /// A request for a known route with no agent waits this long for one, then 503.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub park: Duration,
    /// An upgraded (WebSocket) connection that carries no byte either way for this long closes.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub upgrade_idle: Duration,
    /// After an answer that left part of the request body unread, the rest is read and dropped
    /// for at most this long before the connection closes (lingering close).
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub linger: Duration,
    /// On SIGTERM, how long requests in flight get to finish before their connections are cut.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub shutdown_grace: Duration,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            head: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            body: Duration::from_secs(60),
            response_head: Duration::from_secs(30),
            park: Duration::from_secs(2),
            upgrade_idle: Duration::from_secs(600),
            linger: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// `[limits]`: HTTP/1.1 request parser limits, and how many user connections are taken.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Bytes in a request head (→ 431).
    pub max_head_bytes: usize,
    /// Header lines in a request head (→ 431).
    pub max_headers: usize,
    /// Bytes in the request target (→ 414).
    pub max_target_len: usize,
    /// Bytes in a request body; absent = unlimited (→ 413).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    /// User connections one worker holds open at once (0: no limit); at the limit the worker
    /// stops accepting (new connections wait in its listener's accept queue) until one closes.
    pub max_connections_per_worker: u32,
    /// User connections one client IP address may hold open at once over all workers (0: no
    /// limit); one more is answered 429 and closed.
    pub max_connections_per_client: u32,
}

/// Default of `limits.max_connections_per_worker` (nginx's `worker_connections` is 512 by
/// default, HAProxy's `maxconn` is derived from the descriptor limit; 10,000 idle connections
/// cost a worker about 7 MiB).
pub const DEFAULT_MAX_CONNECTIONS_PER_WORKER: u32 = 10_000;

impl Default for LimitsConfig {
    fn default() -> Self {
        let core = ringway_core::http::Limits::default();
        Self {
            max_head_bytes: core.max_head_bytes,
            max_headers: core.max_headers,
            max_target_len: core.max_target_len,
            max_body_bytes: core.max_body_bytes,
            max_connections_per_worker: DEFAULT_MAX_CONNECTIONS_PER_WORKER,
            max_connections_per_client: 0,
        }
    }
}

impl LimitsConfig {
    /// The core parser's limits.
    pub fn to_core(self) -> ringway_core::http::Limits {
        ringway_core::http::Limits {
            max_head_bytes: self.max_head_bytes,
            max_headers: self.max_headers,
            max_target_len: self.max_target_len,
            max_body_bytes: self.max_body_bytes,
        }
    }
}

/// `[tunnel]`: flow-control windows and heartbeat of agent connections.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TunnelConfig {
    /// Largest DATA payload in one frame.
    pub max_frame_payload: u32,
    /// Bytes one stream may have in flight towards the balancer before it releases them.
    pub stream_window: u32,
    /// Bytes all streams of one connection may have in flight.
    pub connection_window: u32,
    /// Concurrent streams per agent connection.
    pub max_streams: u32,
    /// Ping interval.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub ping_interval: Duration,
    /// The connection is dead after this many ping intervals without any inbound frame.
    pub dead_after_missed_pings: u32,
    /// PONGs waiting for a blocked write; one PING more fails the connection
    /// (`ENHANCE_YOUR_CALM`).
    pub max_queued_pongs: u32,
    /// Response heads (interim and final) per stream; one more resets it (`TOO_MANY_HEADS`).
    pub max_response_heads: u32,
    /// Routes one hello may register (`TOO_MANY_ROUTES`).
    pub max_routes_per_hello: u16,
}

impl Default for TunnelConfig {
    fn default() -> Self {
        let core = ringway_core::tunnel::Config::default();
        Self {
            max_frame_payload: core.max_frame_payload,
            stream_window: core.stream_window,
            connection_window: core.connection_window,
            max_streams: core.max_streams,
            ping_interval: core.ping_interval,
            dead_after_missed_pings: core.dead_after_missed_pings,
            max_queued_pongs: core.max_queued_pongs,
            max_response_heads: core.max_response_heads,
            max_routes_per_hello: core.max_routes_per_hello,
        }
    }
}

impl TunnelConfig {
    /// The tunnel state machine's configuration.
    pub fn to_core(self) -> ringway_core::tunnel::Config {
        ringway_core::tunnel::Config {
            max_frame_payload: self.max_frame_payload,
            stream_window: self.stream_window,
            connection_window: self.connection_window,
            max_streams: self.max_streams,
            ping_interval: self.ping_interval,
            dead_after_missed_pings: self.dead_after_missed_pings,
            max_queued_pongs: self.max_queued_pongs,
            max_response_heads: self.max_response_heads,
            max_routes_per_hello: self.max_routes_per_hello,
        }
    }
}

/// `[agents]`: authentication, picking, and what agents may register.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentsConfig {
    /// Deprecated (plaintext, unscoped; see `tokens`): a token every agent may present (a
    /// route's own `token` overrides it for that route).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Picker among a route's agents: `p2c-peak-ewma` (default), `round-robin`,
    /// `weighted-round-robin`, `least-outstanding`.
    #[serde(deserialize_with = "de_picker", serialize_with = "ser_display")]
    pub picker: PickerKind,
    /// Distinct routes one agent (by agent id, over all its connections) may hold at once; a
    /// hello that would take it past this is rejected (`TOO_MANY_ROUTES`).
    pub max_routes_per_agent: usize,
    /// A route only agents registered (not in the config) is forgotten once its last agent has
    /// been gone this long: users then get 404 instead of 503.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub route_linger: Duration,
    /// The agent listener speaks plaintext TCP, not TLS: only where the network itself is
    /// trusted (loopback, a private link). Without it the listener needs `[agents.tls]`.
    pub insecure_plaintext: bool,
    /// The agent listener's TLS: its certificate, and the agents' client certificates.
    #[serde(skip_serializing_if = "AgentTlsConfig::is_unset")]
    pub tls: AgentTlsConfig,
    /// Agent tokens by their SHA-256, each with the routes it may register (`[[agents.tokens]]`,
    /// see `config::tokens`). With one or more, every agent route needs a token that allows it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<AgentToken>,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        Self {
            token: None,
            picker: PickerKind::default(),
            max_routes_per_agent: 1024,
            route_linger: Duration::from_secs(5 * 60),
            insecure_plaintext: false,
            tls: AgentTlsConfig::default(),
            tokens: Vec::new(),
        }
    }
}

/// `[log]`: log lines that peers can cause (an agent port scanned with garbage, malformed user
/// requests) are limited per peer address and kind of mistake.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Lines logged per peer and kind of mistake in each `peer_error_interval`; the rest are
    /// counted and reported in one "suppressed N similar" line when the interval ends.
    pub peer_error_burst: u32,
    /// The interval of `peer_error_burst`.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub peer_error_interval: Duration,
    /// The access log, one line per request: `"off"`, `"stdout"`, or a file (appended to).
    pub access: String,
    /// The access log's lines: `text` (combined-log-like) or `json` (one object per line).
    pub access_format: AccessFormat,
}

/// How access-log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AccessFormat {
    /// `client - - [time] "METHOD target" status bytes "host" seconds route=… agent=… id=…`.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            peer_error_burst: 5,
            peer_error_interval: Duration::from_secs(10),
            access: "off".to_owned(),
            access_format: AccessFormat::Text,
        }
    }
}

/// `[proxy]`: forwarding headers.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Peers (addresses or CIDR networks) whose X-Forwarded-For and Forwarded lists are kept and
    /// appended to: an L4/L7 front in front of the balancer. From any other peer those lists
    /// are dropped and the backend gets a fresh one naming the peer (a client cannot claim to be
    /// someone else). Empty by default.
    #[serde(deserialize_with = "de_networks", serialize_with = "ser_networks")]
    pub trusted: Vec<ipnet::IpNet>,
}

impl ProxyConfig {
    /// Whether `peer` is a trusted proxy.
    pub fn trusts(&self, peer: std::net::IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&peer))
    }
}

fn de_networks<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let texts = Vec::<String>::deserialize(de)?;
    texts
        .iter()
        .map(|t| parse_network(t).map_err(serde::de::Error::custom))
        .collect()
}

fn ser_networks<S: Serializer>(nets: &[ipnet::IpNet], ser: S) -> Result<S::Ok, S::Error> {
    ser.collect_seq(nets.iter().map(ToString::to_string))
}

/// Parses an address (`10.0.0.1`, `::1`) or a CIDR network (`10.0.0.0/8`).
pub fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is neither an IP address nor a CIDR network"))
}

/// One `[[route]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// `host[/prefix]`, host exact or `*.suffix`.
    #[serde(deserialize_with = "de_route", serialize_with = "ser_route")]
    pub pattern: RouteSpec,
    /// Token agents must present to serve this route (overrides `agents.token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Static backends (classic mode): the route is served by these addresses, not by agents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<BackendSpec>,
    /// Picker among this route's backends; absent = `weighted-round-robin` for a route with
    /// backends (nginx's default), `agents.picker` for an agent route.
    #[serde(
        default,
        deserialize_with = "de_picker_opt",
        serialize_with = "ser_picker_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub picker: Option<PickerKind>,
    /// Active health check of this route's backends; absent = none (passive checks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthConfig>,
    /// The PROXY protocol header each new backend connection starts with (only with
    /// `backends`); such connections are private to one user connection.
    #[serde(default, skip_serializing_if = "SendProxy::is_off")]
    pub send_proxy: SendProxy,
    /// Requests of this route in flight at once, per worker (absent: no limit; see
    /// [`RouteLimit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<NonZeroU32>,
    /// Requests that may wait for a slot past `max_concurrent`, per worker; more get 503 at once.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_queue: u32,
    /// How long a request waits in the queue for a slot before it gets 503.
    #[serde(
        default = "default_queue_timeout",
        skip_serializing_if = "is_default_queue_timeout",
        deserialize_with = "de_duration",
        serialize_with = "ser_duration"
    )]
    pub queue_timeout: Duration,
    /// On the plain listener, the route's requests are answered `308 Permanent Redirect` to
    /// the same host and target on the HTTPS listener (nothing is proxied); ACME's HTTP-01
    /// challenges are answered all the same.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redirect_https: bool,
}

/// Default of a route's `queue_timeout`.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);

fn default_queue_timeout() -> Duration {
    DEFAULT_QUEUE_TIMEOUT
}

fn is_default_queue_timeout(d: &Duration) -> bool {
    *d == DEFAULT_QUEUE_TIMEOUT
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A route's concurrency limit, on each worker: with W workers the route admits up to
/// W × `max_concurrent` requests at once (the balancer shares nothing on the request path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteLimit {
    /// Requests in flight at once.
    pub max_concurrent: NonZeroU32,
    /// Requests waiting for a slot.
    pub max_queue: u32,
    /// How long one waits.
    pub queue_timeout: Duration,
}

impl RouteConfig {
    /// A route with nothing but its pattern.
    pub fn new(pattern: RouteSpec) -> Self {
        Self {
            pattern,
            token: None,
            backends: Vec::new(),
            picker: None,
            health: None,
            send_proxy: SendProxy::Off,
            max_concurrent: None,
            max_queue: 0,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            redirect_https: false,
        }
    }

    /// Whether static backends serve this route.
    pub fn is_static(&self) -> bool {
        !self.backends.is_empty()
    }

    /// The picker of this route.
    pub fn picker_kind(&self, agents_default: PickerKind) -> PickerKind {
        match self.picker {
            Some(kind) => kind,
            None if self.is_static() => PickerKind::WeightedRoundRobin,
            None => agents_default,
        }
    }

    /// The route's concurrency limit, when it has one.
    pub fn limit(&self) -> Option<RouteLimit> {
        Some(RouteLimit {
            max_concurrent: self.max_concurrent?,
            max_queue: self.max_queue,
            queue_timeout: self.queue_timeout,
        })
    }
}

/// A route pattern as written and as parsed.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    /// Canonical text (lowercase host, prefix defaulting to `/`).
    pub text: String,
    /// The parsed pattern.
    pub pattern: RoutePattern,
}

impl RouteSpec {
    /// Parses `host[/prefix]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let pattern = RoutePattern::parse(text).map_err(|e| format!("route {text:?}: {e}"))?;
        Ok(Self {
            text: pattern.to_string(),
            pattern,
        })
    }
}

impl Config {
    /// Loads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|problem| ConfigError::Invalid {
            path: path.display().to_string(),
            problem: Box::new(problem),
        })
    }

    /// Parses TOML text; an error says where (line, column, key) and why.
    pub fn parse(text: &str) -> Result<Self, ConfigProblem> {
        let config = error::parse(text)?;
        config.validate().map_err(|(key, reason)| ConfigProblem {
            line: None,
            column: None,
            key: Some(key),
            reason,
            source_line: None,
        })?;
        config.check_route_limits()?;
        Ok(config)
    }

    /// What serde cannot check key by key: `(key, reason)` of the first problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let mut seen = std::collections::HashSet::new();
        for (i, r) in self.routes.iter().enumerate() {
            if !seen.insert(r.pattern.text.as_str()) {
                return Err((
                    format!("route[{i}].pattern"),
                    format!("route {:?} is listed twice", r.pattern.text),
                ));
            }
            if r.is_static() && r.token.is_some() {
                return Err((
                    format!("route[{i}].token"),
                    "a route with static backends is not served by agents, so it takes no token"
                        .to_owned(),
                ));
            }
            if r.health.is_some() && !r.is_static() {
                return Err((
                    format!("route[{i}].health"),
                    "a health check needs static backends (`backends`)".to_owned(),
                ));
            }
            if r.send_proxy.is_on() && !r.is_static() {
                return Err((
                    format!("route[{i}].send_proxy"),
                    "the PROXY protocol is sent to static backends (`backends`); agents get the \
                     client's address in X-Forwarded-For"
                        .to_owned(),
                ));
            }
            if let Some(h) = &r.health {
                if !h.path.starts_with('/') {
                    return Err((
                        format!("route[{i}].health.path"),
                        format!("{:?} must start with '/'", h.path),
                    ));
                }
                if h.interval.is_zero() || h.timeout.is_zero() {
                    return Err((
                        format!("route[{i}].health"),
                        "interval and timeout must be above zero".to_owned(),
                    ));
                }
            }
            if r.redirect_https && self.listen.https.is_none() {
                return Err((
                    format!("route[{i}].redirect_https"),
                    "redirects go to the HTTPS listener: set [listen] https".to_owned(),
                ));
            }
            if r.is_static() && r.backends.iter().all(|b| b.weight == 0) {
                return Err((
                    format!("route[{i}].backends"),
                    "every backend has weight 0: nothing could be picked".to_owned(),
                ));
            }
        }
        self.tls.validate(self.listen.https.is_some())?;
        self.agents.tls.validate(self.agents.insecure_plaintext)?;
        tokens::validate(&self.agents.tokens)?;
        if self.backends.max_connections == 0 {
            return Err((
                "backends.max_connections".to_owned(),
                "must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }

    /// A route's queue settings mean nothing without its `max_concurrent`: a file that sets
    /// them alone most likely misses it, so it is refused rather than silently unlimited.
    fn check_route_limits(&self) -> Result<(), ConfigProblem> {
        for (i, r) in self.routes.iter().enumerate() {
            if r.max_concurrent.is_some() {
                continue;
            }
            let key = if r.max_queue != 0 {
                "max_queue"
            } else if r.queue_timeout != DEFAULT_QUEUE_TIMEOUT {
                "queue_timeout"
            } else {
                continue;
            };
            return Err(ConfigProblem {
                line: None,
                column: None,
                key: Some(format!("route[{i}].{key}")),
                reason: format!(
                    "route {:?} sets {key} but not max_concurrent, which it applies to",
                    r.pattern.text
                ),
                source_line: None,
            });
        }
        Ok(())
    }

    /// The configuration as TOML, every default filled in; [`Config::parse`] reads it back into
    /// the same configuration.
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| format!("writing the configuration as TOML: {e}"))
    }

    /// Whether the agent listener may start as configured: `(key, reason)` when not. It must
    /// speak TLS (`[agents.tls]`) unless told to be plaintext (`agents.insecure_plaintext`),
    /// and one that other hosts can reach (not a loopback address) must authenticate agents,
    /// by token or by client certificate. Checked at the start and by a reload, not by
    /// `--check`'s parse (whose defaults would fail it).
    pub fn check_agent_listener(&self) -> Result<(), (String, String)> {
        let addr = self.listen.agents;
        if !self.agents.insecure_plaintext && !self.agents.tls.is_on() {
            return Err((
                "agents.tls".to_owned(),
                "the agent listener speaks TLS and has no certificate: set [agents.tls] cert and \
                 key (PEM files), or agents.insecure_plaintext = true (--insecure-plaintext) \
                 for an unencrypted tunnel on a trusted network"
                    .to_owned(),
            ));
        }
        if !addr.ip().is_loopback()
            && !self.has_agent_tokens()
            && !self.agents.tls.requires_client_cert()
        {
            return Err((
                "listen.agents".to_owned(),
                format!(
                    "the agent listener on {addr} is reachable from other hosts but nothing \
                     authenticates agents: add an [[agents.tokens]] entry (`ringway-balancer token new`), or \
                     require client certificates with agents.tls.client_ca; or listen on a \
                     loopback address"
                ),
            ));
        }
        Ok(())
    }

    /// The deprecated plaintext token an agent may present for `route` (canonical text): the
    /// route's own `token`, else `agents.token`. `[[agents.tokens]]` entries whose scope covers
    /// the route are accepted besides (see `auth`).
    pub fn token_for(&self, route: &str) -> Option<&str> {
        self.routes
            .iter()
            .find(|r| r.pattern.text == route)
            .and_then(|r| r.token.as_deref())
            .or(self.agents.token.as_deref())
    }
}

/// Parses `"250ms"`, `"2s"`, `"1m"`, `"1h"` (a bare integer is seconds): the parser the agent's
/// flags use too, so both programs accept the same durations.
pub use ringway_tuning::duration::parse_duration;

/// Writes a duration as [`parse_duration`] reads it (`250ms`, `10s`, `5m`, `1m 30s`).
pub use ringway_tuning::duration::format_duration;

fn ser_duration<S: Serializer>(d: &Duration, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&format_duration(*d))
}

fn ser_display<S: Serializer, T: std::fmt::Display>(value: &T, ser: S) -> Result<S::Ok, S::Error> {
    ser.collect_str(value)
}

fn ser_route<S: Serializer>(route: &RouteSpec, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&route.text)
}

fn de_duration<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(de)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn ser_admin<S: Serializer>(admin: &Option<SocketAddr>, ser: S) -> Result<S::Ok, S::Error> {
    match admin {
        Some(addr) => ser.collect_str(addr),
        None => ser.serialize_str("off"),
    }
}

fn de_admin<'de, D: Deserializer<'de>>(de: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(de)?;
    parse_admin(&text).map_err(serde::de::Error::custom)
}

/// Parses the admin listener's setting: an address, or `off`.
pub fn parse_admin(text: &str) -> Result<Option<SocketAddr>, String> {
    if text == "off" {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|e| format!("{text:?} is neither an address (IP:port) nor \"off\": {e}"))
}

fn de_route<'de, D: Deserializer<'de>>(de: D) -> Result<RouteSpec, D::Error> {
    let text = String::deserialize(de)?;
    RouteSpec::parse(&text).map_err(serde::de::Error::custom)
}

fn de_picker_opt<'de, D: Deserializer<'de>>(de: D) -> Result<Option<PickerKind>, D::Error> {
    de_picker(de).map(Some)
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `serialize_with` passes a reference.
fn ser_picker_opt<S: Serializer>(kind: &Option<PickerKind>, ser: S) -> Result<S::Ok, S::Error> {
    match kind {
        Some(kind) => ser.collect_str(kind),
        None => ser.serialize_none(),
    }
}

fn de_picker<'de, D: Deserializer<'de>>(de: D) -> Result<PickerKind, D::Error> {
    let text = String::deserialize(de)?;
    parse_picker(&text).map_err(serde::de::Error::custom)
}

/// Parses a picker name.
pub fn parse_picker(text: &str) -> Result<PickerKind, String> {
    text.parse()
        .map_err(|e: ringway_core::pick::UnknownPicker| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let c = Config::parse("[proxy]\ntrusted = [\"10.0.0.0/8\", \"127.0.0.1\"]\n").unwrap();
        assert!(c.proxy.trusts("10.1.2.3".parse().unwrap()));
        assert!(c.proxy.trusts("127.0.0.1".parse().unwrap()));
        assert!(!c.proxy.trusts("127.0.0.2".parse().unwrap()));
        assert!(
            !Config::default().proxy.trusts("127.0.0.1".parse().unwrap()),
            "nobody by default"
        );
        let printed = toml::to_string(&c).unwrap();
        assert!(
            printed.contains("trusted = [\"10.0.0.0/8\", \"127.0.0.1/32\"]"),
            "{printed}"
        );
        let e = Config::parse("[proxy]\ntrusted = [\"10.0.0.0/99\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("proxy.trusted") && e.contains("CIDR"), "{e}");
    }

    #[test]
    fn the_admin_listener_is_an_address_or_off() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.listen.admin, Some(DEFAULT_ADMIN));
        assert!(DEFAULT_ADMIN.ip().is_loopback(), "loopback by default");
        let c = Config::parse("[listen]\nadmin = \"off\"\n").unwrap();
        assert_eq!(c.listen.admin, None);
        let printed = toml::to_string(&c).unwrap();
        assert!(
            printed.contains("admin = \"off\""),
            "prints back as off: {printed}"
        );
        let c = Config::parse("[listen]\nadmin = \"127.0.0.1:0\"\n").unwrap();
        assert_eq!(c.listen.admin, Some(SocketAddr::from(([127, 0, 0, 1], 0))));
        let e = Config::parse("[listen]\nadmin = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("admin"), "names the key: {e}");
        assert!(e.contains("\"off\""), "says what is allowed: {e}");
    }

    #[test]
    fn static_backends_parse_validate_and_round_trip() {
        let c = Config::parse(
            r#"
            [backends]
            max_fails = 2
            fail_timeout = "5s"
            [[route]]
            pattern = "shop.test"
            backends = ["127.0.0.1:9001", { addr = "127.0.0.1:9002", weight = 3 }, "unix:/run/a.sock", "app.internal:8080"]
            [route.health]
            path = "/healthz"
            interval = "500ms"
            [[route]]
            pattern = "api.test"
            backends = ["127.0.0.1:9003"]
            picker = "least"
            [[route]]
            pattern = "agents.test"
            "#,
        )
        .unwrap();
        let shop = &c.routes[0];
        assert!(shop.is_static());
        assert_eq!(shop.backends.len(), 4);
        assert_eq!(shop.backends[1].weight, 3);
        assert_eq!(
            shop.backends[3].target,
            BackendTarget::Name {
                host: "app.internal".to_owned(),
                port: 8080
            }
        );
        let health = shop.health.as_ref().unwrap();
        assert_eq!(
            (
                health.path.as_str(),
                health.interval,
                health.rise,
                health.fall
            ),
            ("/healthz", Duration::from_millis(500), 2, 3)
        );
        assert_eq!(
            shop.picker_kind(PickerKind::P2cPeakEwma),
            PickerKind::WeightedRoundRobin,
            "nginx's default for static backends"
        );
        assert_eq!(
            c.routes[1].picker_kind(PickerKind::P2cPeakEwma),
            PickerKind::LeastOutstanding
        );
        assert_eq!(
            c.routes[2].picker_kind(PickerKind::P2cPeakEwma),
            PickerKind::P2cPeakEwma
        );
        assert_eq!(c.backends.max_fails, 2);
        let text = round_trip(&c);
        assert!(
            text.contains(r#"{ addr = "127.0.0.1:9002", weight = 3 }"#),
            "{text}"
        );
    }

    #[test]
    fn send_proxy_is_off_by_default_and_read_back() {
        let c = Config::parse(
            "[[route]]\npattern = \"a.test\"\nbackends = [\"127.0.0.1:1\"]\nsend_proxy = \"v2\"\n\
             [[route]]\npattern = \"b.test\"\nbackends = [\"127.0.0.1:2\"]\nsend_proxy = \"v1\"\n\
             [[route]]\npattern = \"c.test\"\nbackends = [\"127.0.0.1:3\"]\n",
        )
        .unwrap();
        let kinds: Vec<_> = c.routes.iter().map(|r| r.send_proxy).collect();
        assert_eq!(kinds, [SendProxy::V2, SendProxy::V1, SendProxy::Off]);
        let text = round_trip(&c);
        assert!(text.contains("send_proxy = \"v2\""), "{text}");
    }

    #[test]
    fn static_backend_mistakes_name_the_key() {
        let cases = [
            (
                "[[route]]\npattern = \"a.test\"\nbackends = [\"nowhere\"]\n",
                "route[0].backends[0]",
            ),
            (
                "[[route]]\npattern = \"a.test\"\nbackends = [{ adr = \"127.0.0.1:1\" }]\n",
                "route[0].backends[0]",
            ),
            (
                "[[route]]\npattern = \"a.test\"\n[route.health]\npath = \"/\"\n",
                "route[0].health",
            ),
            (
                "[[route]]\npattern = \"a.test\"\nbackends = [\"127.0.0.1:1\"]\ntoken = \"t\"\n",
                "route[0].token",
            ),
            (
                "[[route]]\npattern = \"a.test\"\n[[route]]\npattern = \"A.test\"\n",
                "route[1].pattern",
            ),
            (
                "[[route]]\npattern = \"a.test\"\nbackends = [\"127.0.0.1:1\"]\n[route.health]\npath = \"healthz\"\n",
                "route[0].health.path",
            ),
            (
                "[[route]]\npattern = \"a.test\"\nsend_proxy = \"v2\"\n",
                "route[0].send_proxy",
            ),
            (
                "[[route]]\npattern = \"a.test\"\nbackends = [\"127.0.0.1:1\"]\nsend_proxy = \"v3\"\n",
                "route[0].send_proxy",
            ),
        ];
        for (text, key) in cases {
            let e = Config::parse(text).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{text}: {e}");
        }
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.timeouts.park, Duration::from_secs(2));
        assert_eq!(c.listen.backlog, 1024);
        assert!(c.routes.is_empty());
    }

    #[test]
    fn full_file_parses() {
        let c = Config::parse(
            r#"
            [listen]
            users = "127.0.0.1:9000"
            agents = "127.0.0.1:9001"
            backlog = 64
            proxy_protocol = true
            [runtime]
            workers = 2
            io_driver = "epoll"
            [timeouts]
            park = "300ms"
            response_head = "5s"
            [agents]
            token = "secret"
            picker = "round-robin"
            [[route]]
            pattern = "Example.com/api"
            token = "route-secret"
            [[route]]
            pattern = "*.example.org"
            "#,
        )
        .unwrap();
        assert_eq!(c.listen.users.port(), 9000);
        assert!(c.listen.proxy_protocol);
        assert!(!Config::default().listen.proxy_protocol, "off by default");
        assert_eq!(c.runtime.workers, Some(2));
        assert_eq!(c.runtime.io_driver, IoDriver::Epoll);
        assert_eq!(c.timeouts.park, Duration::from_millis(300));
        assert_eq!(c.routes[0].pattern.text, "example.com/api");
        assert_eq!(c.token_for("example.com/api"), Some("route-secret"));
        assert_eq!(c.token_for(&c.routes[1].pattern.text), Some("secret"));
    }

    #[test]
    fn bounds_have_defaults_and_parse() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.agents.max_routes_per_agent, 1024);
        assert_eq!(c.agents.route_linger, Duration::from_secs(300));
        assert_eq!(c.tunnel.max_routes_per_hello, 256);
        assert_eq!(c.tunnel.to_core().max_queued_pongs, 16);
        assert_eq!(c.tunnel.to_core().max_response_heads, 8);
        let c = Config::parse(
            "[agents]\nmax_routes_per_agent = 3\nroute_linger = \"1s\"\n\
             [tunnel]\nmax_routes_per_hello = 2\nmax_queued_pongs = 4\nmax_response_heads = 2\n",
        )
        .unwrap();
        assert_eq!(c.agents.max_routes_per_agent, 3);
        assert_eq!(c.agents.route_linger, Duration::from_secs(1));
        let core = c.tunnel.to_core();
        assert_eq!(
            (
                core.max_routes_per_hello,
                core.max_queued_pongs,
                core.max_response_heads
            ),
            (2, 4, 2)
        );
        let err = Config::parse("[tunnel]\nmax_routes_per_hello = 70000\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_routes_per_hello"), "{err}");
    }

    #[test]
    fn connection_limits_have_defaults_and_parse() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.limits.max_connections_per_worker, 10_000);
        assert_eq!(c.limits.max_connections_per_client, 0, "off by default");
        let c = Config::parse(
            "[limits]\nmax_connections_per_worker = 2\nmax_connections_per_client = 3\n",
        )
        .unwrap();
        assert_eq!(c.limits.max_connections_per_worker, 2);
        assert_eq!(c.limits.max_connections_per_client, 3);
        let text = round_trip(&c);
        assert!(text.contains("max_connections_per_worker = 2\n"), "{text}");
        let e = Config::parse("[limits]\nmax_connections_per_client = -1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("limits.max_connections_per_client"), "{e}");
    }

    #[test]
    fn route_limits_have_defaults_and_parse() {
        let c = Config::parse(
            r#"
            [[route]]
            pattern = "a.test"
            [[route]]
            pattern = "b.test"
            max_concurrent = 4
            [[route]]
            pattern = "c.test"
            max_concurrent = 1
            max_queue = 10
            queue_timeout = "250ms"
            "#,
        )
        .unwrap();
        assert_eq!(c.routes[0].limit(), None, "no limit unless asked");
        let b = c.routes[1].limit().unwrap();
        assert_eq!(b.max_concurrent.get(), 4);
        assert_eq!(b.max_queue, 0, "no queue by default");
        assert_eq!(b.queue_timeout, Duration::from_secs(1));
        let limit = c.routes[2].limit().unwrap();
        assert_eq!(
            (
                limit.max_concurrent.get(),
                limit.max_queue,
                limit.queue_timeout
            ),
            (1, 10, Duration::from_millis(250))
        );
        let text = round_trip(&c);
        assert!(
            text.contains(
                "pattern = \"c.test/\"\nmax_concurrent = 1\nmax_queue = 10\nqueue_timeout = \"250ms\"\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("pattern = \"a.test/\"\n\n"),
            "nothing printed for a route without a limit: {text}"
        );
    }

    #[test]
    fn route_limits_are_checked() {
        let e = Config::parse("[[route]]\npattern = \"a.test\"\nmax_concurrent = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("route[0].max_concurrent"), "{e}");
        let e = Config::parse("[[route]]\npattern = \"a.test\"\nmax_queue = 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("route[0].max_queue") && e.contains("max_concurrent"),
            "{e}"
        );
        let e = Config::parse(
            "[[route]]\npattern = \"a.test\"\n[[route]]\npattern = \"b.test\"\nqueue_timeout = \"5s\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("route[1].queue_timeout"), "{e}");
        let e = Config::parse(
            "[[route]]\npattern = \"a.test\"\nmax_concurrent = 1\nqueue_timeout = \"soon\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("route[0].queue_timeout"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let err = Config::parse("[timeouts]\npark = \"2 parsecs\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("park"), "{err}");
        let err = Config::parse("[listen]\nusers = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("users"), "{err}");
        let err = Config::parse("[listen]\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus"), "{err}");
        let err = Config::parse("[agents]\npicker = \"random\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("picker"), "{err}");
    }

    /// Prints `c` as TOML, reads it back, and asserts the same configuration came back.
    fn round_trip(c: &Config) -> String {
        let text = c.to_toml().unwrap();
        let back = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(format!("{back:#?}"), format!("{c:#?}"), "{text}");
        text
    }

    #[test]
    fn defaults_round_trip_as_toml() {
        let text = round_trip(&Config::default());
        assert!(text.contains("[timeouts]\nhead = \"10s\"\n"), "{text}");
        assert!(text.contains("upgrade_idle = \"10m\""), "{text}");
        assert!(text.contains("picker = \"p2c-peak-ewma\""), "{text}");
        assert!(text.contains("users = \"0.0.0.0:8080\""), "{text}");
        assert!(text.contains("io_driver = \"auto\""), "{text}");
        assert!(
            !text.contains("workers"),
            "absent means one per CPU: {text}"
        );
    }

    #[test]
    fn every_kind_of_value_round_trips_as_toml() {
        let c = Config::parse(
            r#"
            [listen]
            users = "[::1]:9000"
            agents = "127.0.0.1:9001"
            [runtime]
            workers = 3
            io_driver = "uring-defer"
            pin = false
            [timeouts]
            park = "1m 30s"
            linger = "1.5s"
            head = "250ms"
            [limits]
            max_body_bytes = 1048576
            [tunnel]
            ping_interval = "0s"
            [agents]
            token = "secret"
            picker = "wrr"
            [log]
            peer_error_burst = 2
            peer_error_interval = "1s"
            [[route]]
            pattern = "Example.com/api"
            token = "route-secret"
            [[route]]
            pattern = "*.example.org"
            [[route]]
            pattern = "*"
            "#,
        )
        .unwrap();
        let text = round_trip(&c);
        assert!(text.contains("park = \"1m 30s\""), "{text}");
        assert!(text.contains("linger = \"1s 500ms\""), "{text}");
        assert!(text.contains("picker = \"weighted-round-robin\""), "{text}");
        assert!(text.contains("pattern = \"example.com/api\""), "{text}");
        assert!(text.contains("users = \"[::1]:9000\""), "{text}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("2 parsecs").is_err());
        assert_eq!(
            parse_duration("2 days").unwrap(),
            Duration::from_secs(2 * 86_400)
        );
    }
}
