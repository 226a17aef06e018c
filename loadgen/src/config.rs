//! The validated run configuration: targets parsed into addresses, the request bytes built once,
//! durations and the SLO parsed into typed values.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::cli::{ArrivalsArg, Cli};

/// Everything wrong with the command line, said in terms of the flag that caused it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A URL that is not `http[s]://host[:port][/path]`.
    #[error("bad target URL {url:?}: {why}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A flag with a value out of range.
    #[error("--{flag}: {why}")]
    Flag {
        /// The flag's long name.
        flag: &'static str,
        /// What is wrong with its value.
        why: String,
    },
    /// `--body @file` could not be read.
    #[error("--body: cannot read {path}: {source}")]
    BodyFile {
        /// The file named.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
}

fn flag(flag: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::Flag {
        flag,
        why: why.into(),
    }
}

/// `--spin-us`: `auto`, or a window of at most 1000 µs.
fn parse_spin(arg: &str) -> Result<crate::pacer::Spin, ConfigError> {
    if arg.eq_ignore_ascii_case("auto") {
        return Ok(crate::pacer::Spin::Auto);
    }
    let us: u64 = arg.parse().map_err(|_| {
        flag(
            "spin-us",
            format!("{arg:?} is neither `auto` nor a number of µs"),
        )
    })?;
    if us > 1000 {
        return Err(flag(
            "spin-us",
            "at most 1000 µs (a longer spin only burns CPU)",
        ));
    }
    Ok(crate::pacer::Spin::Fixed(Duration::from_micros(us)))
}

/// One target: where to connect and the exact bytes of one request.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given on the command line.
    pub url: String,
    /// The resolved address connected to.
    pub addr: SocketAddr,
    /// The complete request (head and body), written as-is for every request.
    pub request: Bytes,
    /// `https://`: the TLS client every connection's handshake uses.
    pub tls: Option<crate::tls::TlsClient>,
}

/// A latency objective: the `percentile` of the corrected latency must stay within `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Slo {
    /// The percentile, e.g. 99.0.
    pub percentile: f64,
    /// The latency it must not exceed.
    #[serde(serialize_with = "crate::report::serialize_us")]
    pub limit: Duration,
}

/// The validated configuration of a run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The targets, the first being the baseline of `--compare`.
    pub targets: Vec<Target>,
    /// Request method (also decides whether a response has a body: HEAD never does).
    pub method: String,
    /// Total connections per target run.
    pub connections: usize,
    /// Threads.
    pub threads: usize,
    /// CPU of each thread, when pinned.
    pub cpus: Vec<usize>,
    /// IO driver.
    pub io_driver: ringway_io::runtime::IoDriver,
    /// Measured duration per target.
    pub duration: Duration,
    /// Unrecorded warm-up per target.
    pub warmup: Duration,
    /// Open-loop rate in requests/s (None = closed loop).
    pub rate: Option<f64>,
    /// Arrival spacing for open loop.
    pub arrivals: ArrivalsArg,
    /// Seed of the schedule's random numbers.
    pub seed: u64,
    /// Open loop: the window before a due time waited by yielding (`--spin-us`).
    pub spin: crate::pacer::Spin,
    /// Pipelining depth per connection (1 = none).
    pub pipeline: usize,
    /// One connection per request.
    pub close: bool,
    /// Request timeout.
    pub timeout: Duration,
    /// Rounds per target in `--compare`.
    pub rounds: u32,
    /// Processes to watch, by target index.
    pub watch_pids: Vec<u32>,
    /// `--find-max` objective.
    pub find_max: Option<Slo>,
    /// Most trial runs of `--find-max`.
    pub find_max_steps: u32,
    /// Progress / interval-log interval.
    pub interval: Duration,
    /// No progress output.
    pub quiet: bool,
}

impl RunConfig {
    /// Validates the command line and builds the request bytes of every target.
    pub fn from_cli(cli: &Cli) -> Result<Self, ConfigError> {
        let seconds = |name: &'static str, v: f64, min: f64| {
            if v.is_finite() && v >= min && v < 1e7 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(flag(
                    name,
                    format!("{v} is out of range (at least {min} seconds)"),
                ))
            }
        };
        let duration = seconds("duration", cli.duration, 0.01)?;
        let warmup = seconds("warmup", cli.warmup, 0.0)?;
        let timeout = seconds("timeout", cli.timeout, 0.001)?;
        let interval = seconds("interval", cli.interval, 0.05)?;
        if cli.connections == 0 {
            return Err(flag("connections", "need at least one connection"));
        }
        if cli.threads == 0 || cli.threads > cli.connections {
            return Err(flag("threads", "need 1 ..= connections threads"));
        }
        if !cli.cpus.is_empty() && cli.cpus.len() < cli.threads {
            return Err(flag("cpus", "name one CPU per thread"));
        }
        if cli.pipeline == 0 {
            return Err(flag("pipeline", "depth must be at least 1"));
        }
        if cli.close && cli.pipeline > 1 {
            return Err(flag(
                "close",
                "churn mode sends one request per connection: no pipelining",
            ));
        }
        if let Some(rate) = cli.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(flag(
                    "rate",
                    "must be a positive number of requests per second",
                ));
            }
        }
        let spin = parse_spin(&cli.spin_us)?;
        if cli.rounds == 0 {
            return Err(flag("rounds", "need at least one round"));
        }
        let body = match &cli.body {
            None => None,
            Some(b) => Some(match b.strip_prefix('@') {
                Some(path) => std::fs::read(path).map_err(|source| ConfigError::BodyFile {
                    path: path.to_owned(),
                    source,
                })?,
                None => b.clone().into_bytes(),
            }),
        };
        let mut headers = Vec::with_capacity(cli.headers.len());
        for h in &cli.headers {
            let Some((name, value)) = h.split_once(':') else {
                return Err(flag("header", format!("{h:?} is not `Name: value`")));
            };
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(flag("header", format!("{name:?} is not a header name")));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n') {
                return Err(flag("header", "a value may not hold CR or LF"));
            }
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        if cli.method.is_empty() || !cli.method.bytes().all(is_token_byte) {
            return Err(flag("method", format!("{:?} is not a method", cli.method)));
        }
        let tls_opts = crate::tls::TlsOptions {
            ca_file: cli.ca_file.clone(),
            insecure: cli.insecure,
            sni: cli.sni.clone(),
            ciphers: cli.tls_cipher.clone(),
            groups: cli.tls_group.clone(),
        };
        let urls = std::iter::once(&cli.url).chain(cli.compare.iter());
        let targets = urls
            .map(|url| {
                let parsed = ParsedUrl::parse(url)?;
                let request =
                    build_request(&cli.method, &parsed, &headers, body.as_deref(), cli.close);
                let tls = if parsed.https {
                    Some(
                        crate::tls::TlsClient::new(&tls_opts, &parsed.host)
                            .map_err(|(name, why)| flag(name, why))?,
                    )
                } else {
                    None
                };
                Ok(Target {
                    url: url.clone(),
                    addr: parsed.addr,
                    request,
                    tls,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        if cli.watch_pid.len() > targets.len() {
            return Err(flag("watch-pid", "at most one pid per target"));
        }
        let find_max = match (&cli.slo, cli.find_max) {
            (Some(slo), true) => Some(parse_slo(slo)?),
            _ => None,
        };
        if find_max.is_some() && targets.len() > 1 {
            return Err(flag("find-max", "searches one target; drop --compare"));
        }
        Ok(Self {
            targets,
            method: cli.method.clone(),
            connections: cli.connections,
            threads: cli.threads,
            cpus: cli.cpus.clone(),
            io_driver: cli.io_driver,
            duration,
            warmup,
            rate: cli.rate,
            arrivals: cli.arrivals,
            seed: cli.seed.unwrap_or_else(clock_seed),
            spin,
            pipeline: cli.pipeline,
            close: cli.close,
            timeout,
            rounds: cli.rounds,
            watch_pids: cli.watch_pid.clone(),
            find_max,
            find_max_steps: cli.find_max_steps.max(1),
            interval,
            quiet: cli.quiet,
        })
    }
}

fn clock_seed() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    // 53 bits, so the seed survives JSON readers that hold numbers as doubles.
    (now.map_or(0x5eed, |d| d.as_nanos() as u64) ^ u64::from(std::process::id())) & ((1 << 53) - 1)
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The parts of an `http://` or `https://` URL the request needs.
#[derive(Debug)]
struct ParsedUrl {
    host_header: String,
    /// The host alone (no port): the TLS server name.
    host: String,
    target: String,
    addr: SocketAddr,
    https: bool,
}

impl ParsedUrl {
    fn parse(url: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| ConfigError::Url {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let (rest, https) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => return Err(bad("only http:// and https:// are supported")),
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("needs a host (and no user info)"));
        }
        if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("the path may not hold spaces or control characters"));
        }
        let has_port = !authority.ends_with(']') && authority.contains(':');
        let with_port = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:{}", if https { 443 } else { 80 })
        };
        let host = match authority.rsplit_once(':') {
            Some((h, _)) if has_port => h,
            _ => authority,
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| bad(&format!("cannot resolve {with_port}: {e}")))?
            .next()
            .ok_or_else(|| bad("resolves to no address"))?;
        Ok(Self {
            host_header: authority.to_owned(),
            host: host.to_owned(),
            target,
            addr,
            https,
        })
    }
}

/// Builds the request bytes once: request line, Host, the user's headers, framing, body.
fn build_request(
    method: &str,
    url: &ParsedUrl,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    close: bool,
) -> Bytes {
    let mut out = BytesMut::with_capacity(256 + body.map_or(0, <[u8]>::len));
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    out.put_slice(format!("{method} {} HTTP/1.1\r\n", url.target).as_bytes());
    if !has("host") {
        out.put_slice(format!("Host: {}\r\n", url.host_header).as_bytes());
    }
    for (name, value) in headers {
        out.put_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if let Some(body) = body {
        if !has("content-length") {
            out.put_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
    }
    if close && !has("connection") {
        out.put_slice(b"Connection: close\r\n");
    }
    out.put_slice(b"\r\n");
    if let Some(body) = body {
        out.put_slice(body);
    }
    out.freeze()
}

/// Parses `p99=2ms`, `p99.9=500us`, `p50=1.5s`.
pub fn parse_slo(s: &str) -> Result<Slo, ConfigError> {
    let bad = |why: &str| flag("slo", format!("{s:?}: {why} (expected e.g. p99=2ms)"));
    let (p, limit) = s.split_once('=').ok_or_else(|| bad("no `=`"))?;
    let percentile: f64 = p
        .trim()
        .strip_prefix(['p', 'P'])
        .and_then(|p| p.parse().ok())
        .filter(|p: &f64| *p > 0.0 && *p <= 100.0)
        .ok_or_else(|| bad("percentile must be p<number in (0, 100]>"))?;
    let limit =
        parse_latency(limit.trim()).ok_or_else(|| bad("latency must be <number><ns|us|ms|s>"))?;
    Ok(Slo { percentile, limit })
}

fn parse_latency(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| c.is_ascii_alphabetic() || c == 'µ')?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "ns" => v / 1e9,
        "us" | "µs" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        _ => return None,
    };
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_is_auto_or_bounded_micros() {
        use crate::pacer::Spin;
        assert_eq!(parse_spin("auto").unwrap(), Spin::Auto);
        assert_eq!(parse_spin("AUTO").unwrap(), Spin::Auto);
        assert_eq!(
            parse_spin("30").unwrap(),
            Spin::Fixed(Duration::from_micros(30))
        );
        assert_eq!(parse_spin("0").unwrap(), Spin::Fixed(Duration::ZERO));
        let err = parse_spin("1001").unwrap_err().to_string();
        assert!(err.contains("spin-us") && err.contains("1000"), "{err}");
        let err = parse_spin("fast").unwrap_err().to_string();
        assert!(err.contains("spin-us") && err.contains("auto"), "{err}");
    }

    #[test]
    fn slo_parses_units() {
        let slo = parse_slo("p99=2ms").unwrap();
        assert_eq!(slo.percentile, 99.0);
        assert_eq!(slo.limit, Duration::from_millis(2));
        assert_eq!(
            parse_slo("p99.9=500us").unwrap().limit,
            Duration::from_micros(500)
        );
        assert!(parse_slo("99=2ms").is_err());
        assert!(parse_slo("p99=2").is_err());
        assert!(parse_slo("p101=2ms").is_err());
    }

    #[test]
    fn request_has_host_framing_and_body() {
        let url = ParsedUrl::parse("http://127.0.0.1:8080/a/b?x=1").unwrap();
        assert_eq!(url.target, "/a/b?x=1");
        assert_eq!(url.addr.port(), 8080);
        let headers = vec![("X-Test".to_owned(), "yes".to_owned())];
        let req = build_request("POST", &url, &headers, Some(b"hello"), true);
        let text = std::str::from_utf8(&req).unwrap();
        assert_eq!(
            text,
            "POST /a/b?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Test: yes\r\n\
             Content-Length: 5\r\nConnection: close\r\n\r\nhello"
        );
    }

    #[test]
    fn url_without_path_or_port() {
        let url = ParsedUrl::parse("http://127.0.0.1").unwrap();
        assert_eq!(url.target, "/");
        assert_eq!(url.addr.port(), 80);
        let url = ParsedUrl::parse("http://[::1]:9/?q").unwrap();
        assert_eq!(url.target, "/?q");
        assert!(ParsedUrl::parse("ftp://x").is_err());
        let u = ParsedUrl::parse("https://127.0.0.1:8443/a").unwrap();
        assert!(u.https);
        assert_eq!(u.host, "127.0.0.1");
        assert_eq!(u.addr.port(), 8443);
        let u = ParsedUrl::parse("https://[::1]/").unwrap();
        assert_eq!((u.host.as_str(), u.addr.port()), ("[::1]", 443));
    }
}
