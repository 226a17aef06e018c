//! `[[agents.tokens]]`: agent tokens kept as their SHA-256 only, each with the routes it allows
//! (its scope: host patterns and optional path prefixes, see `ringway_core::route::scope`).
//!
//! ```toml
//! [[agents.tokens]]
//! name = "shop"                     # for logs and metrics; never the token
//! sha256 = "4f1c…"                  # 64 hex digits: SHA-256 of the token's UTF-8 bytes
//! hosts = ["*.apps.example.com"]    # host patterns, as in a route pattern
//! prefixes = ["/api"]               # optional; absent = every path
//! ```
//!
//! `ringway-balancer token new` draws a token and prints such an entry. The older plaintext keys
//! (`agents.token`, a route's `token`) still work, unscoped, and are reported as deprecated
//! ([`Config::deprecations`]).

use std::fmt;

use ringway_core::route::{HostPattern, PathPrefix, RouteScope};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::Config;

/// The SHA-256 of an agent token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    /// The digest of `token` (its UTF-8 bytes, as the hello carries them).
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Compares in constant time (no early exit on the first differing byte).
    pub fn matches(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// Lower-case hex, as the config writes it.
    pub fn to_hex(self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(text.trim().as_bytes())
            .map_err(|e| format!("{text:?} is not hex: {e}"))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "{text:?} is {} bytes; a SHA-256 is 32 (64 hex digits)",
                b.len()
            )
        })?;
        Ok(Self(bytes))
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

/// One `[[agents.tokens]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentToken {
    /// Shown in logs and metrics in place of the token: letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// SHA-256 of the token, 64 hex digits.
    #[serde(deserialize_with = "de_digest", serialize_with = "ser_digest")]
    pub sha256: TokenDigest,
    /// Host patterns the token may register routes under (at least one; `"*"` = any).
    #[serde(deserialize_with = "de_hosts", serialize_with = "ser_all")]
    pub hosts: Vec<HostPattern>,
    /// Path prefixes its routes must lie under; empty = any path.
    #[serde(
        default,
        deserialize_with = "de_prefixes",
        serialize_with = "ser_all",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub prefixes: Vec<PathPrefix>,
}

impl AgentToken {
    /// The routes this token allows.
    pub fn scope(&self) -> RouteScope {
        RouteScope::new(self.hosts.clone(), self.prefixes.clone())
    }

    /// The entry as TOML, ready to paste into a config file.
    pub fn to_toml(&self) -> Result<String, String> {
        #[derive(Serialize)]
        struct Agents<'a> {
            tokens: [&'a AgentToken; 1],
        }
        #[derive(Serialize)]
        struct File<'a> {
            agents: Agents<'a>,
        }
        toml::to_string(&File {
            agents: Agents { tokens: [self] },
        })
        .map_err(|e| format!("writing the token entry as TOML: {e}"))
    }
}

fn de_digest<'de, D: Deserializer<'de>>(de: D) -> Result<TokenDigest, D::Error> {
    let text = String::deserialize(de)?;
    TokenDigest::from_hex(&text).map_err(serde::de::Error::custom)
}

fn ser_digest<S: Serializer>(digest: &TokenDigest, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&digest.to_hex())
}

fn de_hosts<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<HostPattern>, D::Error> {
    Vec::<String>::deserialize(de)?
        .iter()
        .map(|h| {
            HostPattern::parse(h)
                .map_err(|e| serde::de::Error::custom(format!("host {h:?}: {}", e.kind())))
        })
        .collect()
}

fn de_prefixes<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<PathPrefix>, D::Error> {
    Vec::<String>::deserialize(de)?
        .iter()
        .map(|p| {
            PathPrefix::parse(p)
                .map_err(|e| serde::de::Error::custom(format!("path prefix {p:?}: {}", e.kind())))
        })
        .collect()
}

fn ser_all<S: Serializer, T: fmt::Display>(items: &[T], ser: S) -> Result<S::Ok, S::Error> {
    ser.collect_seq(items.iter().map(ToString::to_string))
}

/// Checks what serde cannot: names well formed and unique, hashes unique, a host at least.
pub(super) fn validate(tokens: &[AgentToken]) -> Result<(), (String, String)> {
    for (i, t) in tokens.iter().enumerate() {
        let key = |field: &str| format!("agents.tokens[{i}].{field}");
        if let Err(reason) = check_name(&t.name) {
            return Err((key("name"), reason));
        }
        if t.hosts.is_empty() {
            return Err((
                key("hosts"),
                "a token needs at least one host pattern (\"*\" for any host)".to_owned(),
            ));
        }
        if let Some(j) = tokens[..i].iter().position(|o| o.name == t.name) {
            return Err((
                key("name"),
                format!("{:?} is also the name of agents.tokens[{j}]", t.name),
            ));
        }
        if let Some(j) = tokens[..i].iter().position(|o| o.sha256 == t.sha256) {
            return Err((
                key("sha256"),
                format!("the same hash as agents.tokens[{j}]: one token, one entry"),
            ));
        }
    }
    Ok(())
}

/// A token name: 1–64 of letters, digits, `-`, `_`, `.` (it goes into logs and metrics).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?}: a token name is 1 to 64 letters, digits, '-', '_' or '.'"
        ))
    }
}

impl Config {
    /// Whether any agent token is configured (`[[agents.tokens]]`, `agents.token` or a route's
    /// `token`): without one, any agent may register any route that is not static.
    pub fn has_agent_tokens(&self) -> bool {
        !self.agents.tokens.is_empty()
            || self.agents.token.is_some()
            || self.routes.iter().any(|r| r.token.is_some())
    }

    /// The deprecated keys this configuration uses, each with what to do instead (logged as
    /// warnings at the start and on every reload).
    pub fn deprecations(&self) -> Vec<String> {
        let advice =
            "a plaintext token with no scope; deprecated: use [[agents.tokens]] (a SHA-256 \
                      and the hosts it may register; `ringway-balancer token new` makes one)";
        let mut out = Vec::new();
        if self.agents.token.is_some() {
            out.push(format!("agents.token (or --token): {advice}"));
        }
        for (i, r) in self.routes.iter().enumerate() {
            if r.token.is_some() {
                out.push(format!("route[{i}].token ({}): {advice}", r.pattern.text));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_in_hex() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(TokenDigest::of("abc").to_hex(), abc);
        assert_eq!(
            TokenDigest::from_hex(&abc.to_uppercase()).unwrap(),
            TokenDigest::of("abc")
        );
        assert!(TokenDigest::of("abc").matches(&TokenDigest::of("abc")));
        assert!(!TokenDigest::of("abc").matches(&TokenDigest::of("abd")));
        for bad in ["", "zz", &abc[..62]] {
            assert!(TokenDigest::from_hex(bad).is_err(), "{bad:?}");
        }
    }

    fn entry(name: &str, token: &str, extra: &str) -> String {
        format!(
            "[[agents.tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\n{extra}\n",
            TokenDigest::of(token).to_hex()
        )
    }

    #[test]
    fn token_entries_parse_round_trip_and_say_what_is_wrong() {
        let text = entry(
            "shop",
            "s",
            "hosts = [\"*.Apps.example.com\"]\nprefixes = [\"/api/\"]",
        ) + &entry("all", "a", "hosts = [\"*\"]");
        let c = Config::parse(&text).unwrap();
        assert!(c.has_agent_tokens());
        let shop = &c.agents.tokens[0];
        assert_eq!(shop.hosts[0].to_string(), "*.apps.example.com");
        assert_eq!(shop.prefixes[0].as_str(), "/api");
        assert!(c.agents.tokens[1].prefixes.is_empty());
        let printed = c.to_toml().unwrap();
        let back = Config::parse(&printed).unwrap();
        assert_eq!(format!("{back:?}"), format!("{c:?}"), "{printed}");
        assert!(
            printed.contains("[[agents.tokens]]\nname = \"shop\""),
            "{printed}"
        );
        let cases = [
            (entry("x", "t", "hosts = []"), "agents.tokens[0].hosts"),
            (
                entry("x", "t", "hosts = [\"a.test/x\"]"),
                "agents.tokens[0].hosts",
            ),
            (
                entry("x", "t", "hosts = [\"a\"]\nprefixes = [\"api\"]"),
                "agents.tokens[0].prefixes",
            ),
            (
                entry("x y", "t", "hosts = [\"a\"]"),
                "agents.tokens[0].name",
            ),
            (
                entry("x", "t", "hosts = [\"a\"]") + &entry("x", "u", "hosts = [\"a\"]"),
                "agents.tokens[1].name",
            ),
            (
                entry("x", "t", "hosts = [\"a\"]") + &entry("y", "t", "hosts = [\"a\"]"),
                "agents.tokens[1].sha256",
            ),
            (
                "[[agents.tokens]]\nname = \"x\"\nsha256 = \"abcd\"\nhosts = [\"a\"]\n".to_owned(),
                "agents.tokens[0].sha256",
            ),
            (
                entry("x", "t", "hosts = [\"a\"]\ntoken = \"plain\""),
                "agents.tokens[0]",
            ),
        ];
        for (text, key) in cases {
            let e = Config::parse(&text).unwrap_err();
            assert!(
                e.key.as_deref().is_some_and(|k| k.starts_with(key)),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn plaintext_tokens_are_reported_as_deprecated() {
        assert!(!Config::default().has_agent_tokens());
        assert!(Config::default().deprecations().is_empty());
        let c = Config::parse(
            "[agents]\ntoken = \"g\"\n[[route]]\npattern = \"a.test\"\n\
             [[route]]\npattern = \"b.test\"\ntoken = \"r\"\n",
        )
        .unwrap();
        assert!(c.has_agent_tokens());
        let d = c.deprecations();
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("agents.token"), "{d:?}");
        assert!(
            d[1].starts_with("route[1].token (b.test/)") && d[1].contains("token new"),
            "{d:?}"
        );
        let route_only = Config::parse("[[route]]\npattern = \"a.test\"\ntoken = \"r\"\n").unwrap();
        assert!(route_only.has_agent_tokens());
    }

    #[test]
    fn an_entry_prints_as_a_pasteable_table() {
        let t = AgentToken {
            name: "shop".to_owned(),
            sha256: TokenDigest::of("x"),
            hosts: vec![HostPattern::parse("*.apps.test").unwrap()],
            prefixes: vec![],
        };
        let text = t.to_toml().unwrap();
        assert!(text.starts_with("[[agents.tokens]]\n"), "{text}");
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.agents.tokens[0].sha256, t.sha256);
        assert!(!text.contains("prefixes"), "{text}");
    }
}
