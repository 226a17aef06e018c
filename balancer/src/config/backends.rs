//! Static backends (classic mode): a route's `backends` list, its `[route.health]` check, and
//! the `[backends]` defaults every static backend shares (pool, timeouts, passive ejection, DNS).
//!
//! A backend is written as a string or a table:
//!
//! ```toml
//! backends = ["127.0.0.1:9001", "unix:/run/app.sock", { addr = "app.internal:8080", weight = 3 }]
//! ```
//!
//! `IP:PORT` and `unix:/path` are used as they are; `name:port` is resolved at start and again
//! every `backends.resolve_interval`, each address it resolves to being one backend of the
//! route with the entry's weight (as nginx does with a server name).

use std::fmt;
use std::time::Duration;

use ringway_upstream::BackendAddr;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{de_duration, ser_duration};

/// `[backends]`: settings shared by every static backend.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendsConfig {
    /// Connections one worker may hold to one backend (in use or idle); a request that finds
    /// none free waits for one.
    pub max_connections: usize,
    /// Idle keep-alive connections one worker keeps to one backend.
    pub max_idle: usize,
    /// An idle backend connection older than this is closed instead of reused: shorter than the
    /// backends' own keep-alive timeout (nginx 75 s, Node.js 5 s), so they never close first.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub idle_timeout: Duration,
    /// How long a connect to a backend may take.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub connect_timeout: Duration,
    /// Consecutive failed requests (connect error, timeout, 5xx) that take a backend out on a
    /// worker; 0 = never (passive checks off).
    pub max_fails: u32,
    /// How long a backend taken out by `max_fails` stays out before it is tried again.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub fail_timeout: Duration,
    /// How often backend host names are resolved again.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub resolve_interval: Duration,
}

impl Default for BackendsConfig {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_idle: 64,
            idle_timeout: Duration::from_secs(4),
            connect_timeout: Duration::from_secs(3),
            max_fails: 3,
            fail_timeout: Duration::from_secs(10),
            resolve_interval: Duration::from_secs(30),
        }
    }
}

/// A route's `send_proxy`: whether each new connection to its backends starts with a PROXY
/// protocol header naming the user's client (HAProxy's `send-proxy` / `send-proxy-v2`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SendProxy {
    /// No header (the default).
    #[default]
    Off,
    /// The text header (`PROXY TCP4 … CRLF`).
    V1,
    /// The binary header.
    V2,
}

impl SendProxy {
    /// Whether a header is sent.
    pub fn is_on(self) -> bool {
        self != Self::Off
    }

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
    pub(crate) fn is_off(&self) -> bool {
        !self.is_on()
    }
}

/// One entry of a route's `backends`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// Where it listens.
    pub target: BackendTarget,
    /// Its share for the weighted pickers (default 1; 0 = never picked).
    pub weight: u32,
}

/// Where a static backend listens, as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BackendTarget {
    /// An IP address and port, or a unix socket path.
    Addr(BackendAddr),
    /// A host name and port, resolved periodically.
    Name {
        /// The name.
        host: String,
        /// The port.
        port: u16,
    },
}

impl fmt::Display for BackendTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(addr) => addr.fmt(f),
            Self::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl BackendTarget {
    /// Parses `IP:PORT`, `[IPv6]:PORT`, `unix:/path` or `name:PORT`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Ok(addr) = text.parse::<BackendAddr>() {
            return Ok(Self::Addr(addr));
        }
        let bad = || {
            format!(
                "backend {text:?}: expected IP:PORT, [IPv6]:PORT, unix:/path/to.sock or NAME:PORT"
            )
        };
        if text.starts_with("unix:") {
            return Err(bad());
        }
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let valid_host = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid_host || port == 0 {
            return Err(bad());
        }
        Ok(Self::Name {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl Serialize for BackendSpec {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        if self.weight == 1 {
            return ser.collect_str(&self.target);
        }
        use serde::ser::SerializeMap;
        let mut map = ser.serialize_map(Some(2))?;
        map.serialize_entry("addr", &self.target.to_string())?;
        map.serialize_entry("weight", &self.weight)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for BackendSpec {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(SpecVisitor)
    }
}

struct SpecVisitor;

impl<'de> Visitor<'de> for SpecVisitor {
    type Value = BackendSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a backend address string or a table { addr = \"…\", weight = N }")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<BackendSpec, E> {
        Ok(BackendSpec {
            target: BackendTarget::parse(text).map_err(E::custom)?,
            weight: 1,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BackendSpec, A::Error> {
        let mut target = None;
        let mut weight = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "addr" => {
                    let text: String = map.next_value()?;
                    target = Some(BackendTarget::parse(&text).map_err(de::Error::custom)?);
                }
                "weight" => weight = Some(map.next_value::<u32>()?),
                other => return Err(de::Error::unknown_field(other, &["addr", "weight"])),
            }
        }
        Ok(BackendSpec {
            target: target.ok_or_else(|| de::Error::missing_field("addr"))?,
            weight: weight.unwrap_or(1),
        })
    }
}

/// `[route.health]`: the active check of a route's backends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// The path asked for (`GET`); any 2xx or 3xx answer is healthy.
    pub path: String,
    /// The Host header of the check; absent = the route's host (or the backend's address for
    /// a wildcard route).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Time between two checks of one backend.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub interval: Duration,
    /// A check without a whole response head within this time failed.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub timeout: Duration,
    /// Consecutive good checks that bring a down backend back.
    pub rise: u32,
    /// Consecutive failed checks that take an up backend out.
    pub fall: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            path: "/".to_owned(),
            host: None,
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            BackendTarget::parse("127.0.0.1:9000").unwrap(),
            BackendTarget::Addr(BackendAddr::Tcp("127.0.0.1:9000".parse().unwrap()))
        );
        assert!(matches!(
            BackendTarget::parse("[::1]:80").unwrap(),
            BackendTarget::Addr(BackendAddr::Tcp(_))
        ));
        assert!(matches!(
            BackendTarget::parse("unix:/run/app.sock").unwrap(),
            BackendTarget::Addr(BackendAddr::Unix(_))
        ));
        assert_eq!(
            BackendTarget::parse("App.Internal:8080").unwrap(),
            BackendTarget::Name {
                host: "app.internal".to_owned(),
                port: 8080
            }
        );
        for bad in [
            "app.internal",
            "app:http",
            "app:0",
            ":80",
            "unix:",
            "-app:80",
            "a b:80",
            "app..x:80",
        ] {
            let e = BackendTarget::parse(bad).unwrap_err();
            assert!(e.contains("expected IP:PORT"), "{bad}: {e}");
        }
    }
}
