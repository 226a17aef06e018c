//! Route patterns: `host/prefix` strings parsed into a normalised, validated form.
//!
//! A pattern is written `HOST[/PATH-PREFIX]`:
//!
//! | pattern | host matches | path matches |
//! |---|---|---|
//! | `example.com` | `example.com` only | everything (prefix `/`) |
//! | `example.com/api` | `example.com` only | `/api`, `/api/…`, `/api?…`, not `/apix` |
//! | `*.example.com` | `a.example.com`, `a.b.example.com`, **not** `example.com` | everything |
//! | `*` | any host, including a missing one (the catch-all) | everything |
//! | `[::1]/x` | the IPv6 literal `[::1]` | `/x`, `/x/…` |
//!
//! Normalisation: the host is lower-cased and a trailing dot is dropped (`Example.COM.` ≡
//! `example.com`); a trailing `/` on the prefix is dropped (`/api/` ≡ `/api`, since prefixes match on
//! segment boundaries anyway). Paths are compared byte for byte: case-sensitive, no percent-decoding,
//! no dot-segment removal. A port is rejected in a pattern (routing never looks at ports), and so are
//! non-ASCII hosts (write IDNs in their `xn--` form).

use std::fmt;
use std::str::FromStr;

/// A parsed, normalised route pattern: a host pattern plus a path prefix.
///
/// Two patterns that normalise to the same thing compare equal, so `Example.com/api/` and
/// `example.com/api` are one route. `Display` writes the normalised form, which parses back to an
/// equal pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutePattern {
    host: HostPattern,
    /// Normalised prefix: starts with `/` and has no trailing `/`; the root prefix is stored empty.
    prefix: Box<str>,
}

/// The host part of a [`RoutePattern`]. Names are lower-case, without trailing dot or port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Matches exactly this host name (or bracketed IPv6 literal, or IPv4 address).
    Exact(Box<str>),
    /// `*.suffix`: matches any host that ends in `.suffix` with at least one more label in front.
    /// Does not match `suffix` itself (the nginx / HAProxy rule).
    Suffix(Box<str>),
    /// `*`: matches every host, and requests without a host; the least specific pattern.
    Any,
}

/// Why a route pattern was rejected. Carries the pattern text it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid route pattern {pattern:?}: {kind}")]
pub struct RouteError {
    pattern: String,
    kind: RouteErrorKind,
}

/// What exactly was wrong with a route pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteErrorKind {
    /// Nothing before the first `/`.
    #[error("the host is empty")]
    EmptyHost,
    /// A byte that may not appear in a host name.
    #[error("byte {0:#04x} is not allowed in a host")]
    HostByte(u8),
    /// Two dots in a row, or a leading dot.
    #[error("the host has an empty label")]
    EmptyLabel,
    /// `*` anywhere but as the whole first label (`*.example.com`) or the whole host (`*`).
    #[error("`*` is only allowed as the whole first label (`*.example.com`) or alone")]
    MisplacedWildcard,
    /// `host:port`: routing ignores ports, so a pattern may not name one.
    #[error("a route pattern may not contain a port")]
    Port,
    /// `[` without a matching `]`, or bytes after the `]` of an IPv6 literal.
    #[error("malformed IPv6 literal")]
    Ipv6Literal,
    /// A byte that may not appear in a path prefix (`?`, `#`, space, controls, non-ASCII).
    #[error("byte {0:#04x} is not allowed in a path prefix")]
    PathByte(u8),
    /// A host longer than [`MAX_HOST_LEN`].
    #[error("the host is longer than {MAX_HOST_LEN} bytes")]
    HostTooLong,
    /// A path prefix given on its own (a scope's, see [`super::scope`]) that does not start
    /// with `/`, or a host given on its own that has one.
    #[error("a path prefix starts with `/`, and a host has none")]
    Slash,
}

/// The longest host (in bytes, after normalisation) a pattern may name and a lookup will match.
/// DNS names are at most 253 bytes; IPv6 literals far less.
pub const MAX_HOST_LEN: usize = 255;

impl RoutePattern {
    /// Parses `HOST[/PATH-PREFIX]`; see the [module docs](self) for the grammar and normalisation.
    pub fn parse(pattern: &str) -> Result<Self, RouteError> {
        parse_pattern(pattern).map_err(|kind| RouteError {
            pattern: pattern.to_owned(),
            kind,
        })
    }

    /// The host part.
    pub fn host(&self) -> &HostPattern {
        &self.host
    }

    /// The normalised path prefix, always starting with `/` and without trailing `/` (except `/`).
    pub fn path_prefix(&self) -> &str {
        if self.prefix.is_empty() {
            "/"
        } else {
            &self.prefix
        }
    }

    /// The prefix as stored in the table's per-host map: `""` for the root.
    pub(crate) fn prefix_key(&self) -> &str {
        &self.prefix
    }

    /// Number of `/`-separated segments in the prefix (`/` → 0, `/api` → 1, `/a/b` → 2).
    pub(crate) fn prefix_depth(&self) -> usize {
        self.prefix.bytes().filter(|&b| b == b'/').count()
    }
}

impl HostPattern {
    /// Parses a host pattern on its own (`example.com`, `*.example.com`, `*`, `[::1]`), with the
    /// normalisation of a route pattern's host; a `/` is [`RouteErrorKind::Slash`].
    pub fn parse(host: &str) -> Result<Self, RouteError> {
        let error = |kind| RouteError {
            pattern: host.to_owned(),
            kind,
        };
        if host.contains('/') {
            return Err(error(RouteErrorKind::Slash));
        }
        parse_host(host).map_err(error)
    }
}

/// Parses a path prefix on its own (`/api`, `/api/`, `/`): validated and normalised like a
/// route pattern's prefix, so the root is `""` and no trailing `/` is kept. Without a leading
/// `/` it is [`RouteErrorKind::Slash`].
pub(crate) fn parse_path_prefix(path: &str) -> Result<Box<str>, RouteError> {
    let error = |kind| RouteError {
        pattern: path.to_owned(),
        kind,
    };
    if !path.starts_with('/') {
        return Err(error(RouteErrorKind::Slash));
    }
    parse_prefix(path).map_err(error)
}

impl FromStr for RoutePattern {
    type Err = RouteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.host, self.path_prefix())
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => f.write_str(name),
            Self::Suffix(suffix) => write!(f, "*.{suffix}"),
            Self::Any => f.write_str("*"),
        }
    }
}

impl RouteError {
    /// The pattern text that was rejected.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// What was wrong with it.
    pub fn kind(&self) -> RouteErrorKind {
        self.kind
    }
}

fn parse_pattern(pattern: &str) -> Result<RoutePattern, RouteErrorKind> {
    let (host, path) = match pattern.find('/') {
        Some(slash) => pattern.split_at(slash),
        None => (pattern, "/"),
    };
    let host = parse_host(host)?;
    let prefix = parse_prefix(path)?;
    Ok(RoutePattern { host, prefix })
}

fn parse_host(host: &str) -> Result<HostPattern, RouteErrorKind> {
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        let suffix = normalise_name(suffix)?;
        return Ok(HostPattern::Suffix(suffix));
    }
    if host.starts_with('[') {
        return parse_ipv6_literal(host).map(HostPattern::Exact);
    }
    normalise_name(host).map(HostPattern::Exact)
}

/// Lower-cases and validates a DNS name or IPv4 address, dropping one trailing dot.
fn normalise_name(name: &str) -> Result<Box<str>, RouteErrorKind> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(RouteErrorKind::EmptyHost);
    }
    if name.len() > MAX_HOST_LEN {
        return Err(RouteErrorKind::HostTooLong);
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(RouteErrorKind::EmptyLabel);
        }
    }
    for b in name.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {}
            b'*' => return Err(RouteErrorKind::MisplacedWildcard),
            b':' => return Err(RouteErrorKind::Port),
            other => return Err(RouteErrorKind::HostByte(other)),
        }
    }
    Ok(name.to_ascii_lowercase().into_boxed_str())
}

/// Validates `[v6]` (brackets kept, hex digits lower-cased); anything after `]` is an error.
fn parse_ipv6_literal(host: &str) -> Result<Box<str>, RouteErrorKind> {
    let Some(close) = host.find(']') else {
        return Err(RouteErrorKind::Ipv6Literal);
    };
    let rest = &host[close + 1..];
    if rest.starts_with(':') {
        return Err(RouteErrorKind::Port);
    }
    if !rest.is_empty() && rest != "." {
        return Err(RouteErrorKind::Ipv6Literal);
    }
    let inner = &host[1..close];
    if inner.is_empty() {
        return Err(RouteErrorKind::Ipv6Literal);
    }
    for b in inner.bytes() {
        if !(b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return Err(RouteErrorKind::HostByte(b));
        }
    }
    Ok(host[..=close].to_ascii_lowercase().into_boxed_str())
}

/// Validates a path prefix (starting with `/`) and drops trailing slashes; the root becomes `""`.
fn parse_prefix(path: &str) -> Result<Box<str>, RouteErrorKind> {
    for b in path.bytes() {
        if b <= b' ' || b >= 0x7f || b == b'?' || b == b'#' {
            return Err(RouteErrorKind::PathByte(b));
        }
    }
    Ok(path.trim_end_matches('/').into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> RoutePattern {
        RoutePattern::parse(s).unwrap()
    }

    fn kind(s: &str) -> RouteErrorKind {
        RoutePattern::parse(s).unwrap_err().kind()
    }

    #[test]
    fn normalises_host_and_prefix() {
        assert_eq!(ok("Example.COM./api/"), ok("example.com/api"));
        assert_eq!(ok("example.com"), ok("example.com/"));
        assert_eq!(ok("example.com///"), ok("example.com"));
        assert_eq!(ok("example.com").path_prefix(), "/");
        assert_eq!(
            ok("*.Example.com").host(),
            &HostPattern::Suffix("example.com".into())
        );
        assert_eq!(ok("*").host(), &HostPattern::Any);
        assert_eq!(ok("[::1]/x").host(), &HostPattern::Exact("[::1]".into()));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "example.com/",
            "example.com/api",
            "*.example.com/a/b",
            "*/",
            "[::1]/x",
            "10.0.0.1/",
        ] {
            let p = ok(s);
            assert_eq!(p.to_string(), s);
            assert_eq!(ok(&p.to_string()), p);
        }
    }

    #[test]
    fn rejects_malformed_patterns() {
        assert_eq!(kind(""), RouteErrorKind::EmptyHost);
        assert_eq!(kind("/api"), RouteErrorKind::EmptyHost);
        assert_eq!(kind("a..b"), RouteErrorKind::EmptyLabel);
        assert_eq!(kind(".a"), RouteErrorKind::EmptyLabel);
        assert_eq!(kind("a.*.b"), RouteErrorKind::MisplacedWildcard);
        assert_eq!(kind("*x.com"), RouteErrorKind::MisplacedWildcard);
        assert_eq!(kind("*."), RouteErrorKind::EmptyHost);
        assert_eq!(kind("a.com:8080"), RouteErrorKind::Port);
        assert_eq!(kind("[::1]:80/"), RouteErrorKind::Port);
        assert_eq!(kind("[::1"), RouteErrorKind::Ipv6Literal);
        assert_eq!(kind("[zz]"), RouteErrorKind::HostByte(b'z'));
        assert_eq!(kind("exämple.com"), RouteErrorKind::HostByte(0xc3));
        assert_eq!(kind("a.com/x?y"), RouteErrorKind::PathByte(b'?'));
        assert_eq!(kind("a.com/x y"), RouteErrorKind::PathByte(b' '));
        assert_eq!(kind(&"a".repeat(256)), RouteErrorKind::HostTooLong);
        let err = RoutePattern::parse("a b").unwrap_err();
        assert_eq!(err.pattern(), "a b");
        assert!(err.to_string().contains("\"a b\""), "{err}");
    }

    #[test]
    fn depth_counts_segments() {
        assert_eq!(ok("a").prefix_depth(), 0);
        assert_eq!(ok("a/api").prefix_depth(), 1);
        assert_eq!(ok("a/api/v1/").prefix_depth(), 2);
    }
}
