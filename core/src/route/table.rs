//! The routing table: an immutable snapshot mapping (host, path) to a route's value.
//!
//! ## Matching rule
//!
//! A route matches a request when its host pattern matches the request's host and its path prefix
//! matches the request's path on a segment boundary. Among the matching routes the winner is the one
//! with the most specific host, and among those the longest prefix:
//!
//! 1. host specificity: an exact host beats every wildcard; a longer `*.suffix` beats a shorter
//!    one (`*.a.example.com` beats `*.example.com`); the catch-all `*` comes last;
//! 2. then the longest path prefix.
//!
//! So a more specific host that has no prefix matching the path falls through to the next less
//! specific host pattern (`api.example.com/v2` and `*.example.com/` send `api.example.com/other` to
//! the wildcard route) rather than answering "no route".
//!
//! Host handling: ASCII case-insensitive, a `:port` suffix is ignored (also after an IPv6 literal
//! `[::1]:8080`), one trailing dot is ignored. `*.example.com` does not match `example.com`.
//!
//! Path handling: the path is cut at the first `?` (so a full request target works too). A prefix
//! `/api` matches `/api`, `/api/`, `/api/x` and `/api?q`, never `/apix`. The root prefix `/`
//! matches every path, also `*` (`OPTIONS *`) and an empty one. Bytes are compared as they are:
//! case-sensitive, no percent-decoding.
//!
//! ## Cost
//!
//! Independent of the number of routes. Hosts are hash-map keys (lower-cased into a stack buffer,
//! no allocation); wildcards are found by looking up each dot-suffix of the host, longest first
//! (bounded by the host's label count); within a host the prefixes are hash-map keys too, tried at
//! each `/` boundary of the path from longest to shortest, never deeper than the deepest prefix
//! registered for that host.

use std::collections::HashMap;

/// The maps a lookup reads (hosts, path prefixes), on every request: foldhash instead of
/// SipHash. Their keys come from the configuration and agents' hellos, never from users, who
/// only look keys up, so a hash a user could collide on their own costs nothing here.
type LookupMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use super::pattern::{HostPattern, RoutePattern, MAX_HOST_LEN};

/// An immutable routing snapshot. Build one with [`RouteTable::builder`]; to change routes build a
/// new table and swap it in (the balancer keeps it in an `Arc` behind `arc-swap`).
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    /// Every route in insertion order; the maps below hold indexes into it.
    entries: Vec<(RoutePattern, T)>,
    exact: LookupMap<Box<[u8]>, Prefixes>,
    /// Keyed by the suffix after `*.`; the catch-all `*` is the empty key.
    wildcard: LookupMap<Box<[u8]>, Prefixes>,
    /// Length of the longest wildcard suffix, to skip hopeless dot-suffixes of long hosts.
    max_suffix_len: usize,
}

/// Collects routes for a [`RouteTable`]. A pattern inserted twice keeps the last value.
#[derive(Debug)]
pub struct RouteTableBuilder<T> {
    entries: Vec<(RoutePattern, T)>,
    positions: HashMap<RoutePattern, usize>,
}

/// The path prefixes registered for one host pattern.
#[derive(Debug, Clone, Default)]
struct Prefixes {
    /// Normalised prefix (root = empty) → index into `entries`.
    by_prefix: LookupMap<Box<[u8]>, usize>,
    /// The largest number of `/` in any prefix here.
    max_depth: usize,
}

impl<T> RouteTable<T> {
    /// Starts an empty builder.
    pub fn builder() -> RouteTableBuilder<T> {
        RouteTableBuilder {
            entries: Vec::new(),
            positions: HashMap::new(),
        }
    }

    /// The value of the route for `host` (a Host header value, port allowed) and `path` (a path or
    /// full origin-form target), by the rule in the [module docs](self).
    pub fn lookup(&self, host: &[u8], path: &[u8]) -> Option<&T> {
        self.lookup_route(host, path).map(|(_, value)| value)
    }

    /// Like [`lookup`](Self::lookup), also returning the pattern that matched.
    pub fn lookup_route(&self, host: &[u8], path: &[u8]) -> Option<(&RoutePattern, &T)> {
        let path = match path.iter().position(|&b| b == b'?') {
            Some(q) => &path[..q],
            None => path,
        };
        let mut buf = [0u8; MAX_HOST_LEN];
        let host = normalise_host(host, &mut buf)?;
        let index = self.find(host, path)?;
        let (pattern, value) = &self.entries[index];
        Some((pattern, value))
    }

    /// Every route, in the order it was first inserted.
    pub fn routes(&self) -> impl ExactSizeIterator<Item = (&RoutePattern, &T)> + '_ {
        self.entries.iter().map(|(pattern, value)| (pattern, value))
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn find(&self, host: &[u8], path: &[u8]) -> Option<usize> {
        if let Some(found) = self.exact.get(host).and_then(|p| p.longest_match(path)) {
            return Some(found);
        }
        if self.wildcard.is_empty() {
            return None;
        }
        // Each dot-suffix, longest first. A suffix must leave at least one label in front.
        for (i, &b) in host.iter().enumerate() {
            let suffix = &host[i + 1..];
            if b != b'.' || suffix.len() > self.max_suffix_len {
                continue;
            }
            if let Some(found) = self
                .wildcard
                .get(suffix)
                .and_then(|p| p.longest_match(path))
            {
                return Some(found);
            }
        }
        self.wildcard
            .get(&b""[..])
            .and_then(|p| p.longest_match(path))
    }
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl<T> FromIterator<(RoutePattern, T)> for RouteTable<T> {
    fn from_iter<I: IntoIterator<Item = (RoutePattern, T)>>(iter: I) -> Self {
        let mut builder = Self::builder();
        for (pattern, value) in iter {
            builder.insert(pattern, value);
        }
        builder.build()
    }
}

impl<T> RouteTableBuilder<T> {
    /// Adds a route; a pattern that is already present gets the new value (keeping its position).
    pub fn insert(&mut self, pattern: RoutePattern, value: T) -> &mut Self {
        if let Some(&at) = self.positions.get(&pattern) {
            self.entries[at].1 = value;
        } else {
            self.positions.insert(pattern.clone(), self.entries.len());
            self.entries.push((pattern, value));
        }
        self
    }

    /// Number of distinct patterns inserted so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was inserted yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Builds the table, leaving this builder empty (so both `builder().insert(..).build()` and
    /// `let mut b = ..; b.insert(..); b.build()` work).
    pub fn build(&mut self) -> RouteTable<T> {
        self.positions.clear();
        let entries = std::mem::take(&mut self.entries);
        let mut exact: LookupMap<Box<[u8]>, Prefixes> = LookupMap::default();
        let mut wildcard: LookupMap<Box<[u8]>, Prefixes> = LookupMap::default();
        let mut max_suffix_len = 0;
        for (index, (pattern, _)) in entries.iter().enumerate() {
            let prefixes = match pattern.host() {
                HostPattern::Exact(name) => exact.entry(name.as_bytes().into()).or_default(),
                HostPattern::Suffix(suffix) => {
                    max_suffix_len = max_suffix_len.max(suffix.len());
                    wildcard.entry(suffix.as_bytes().into()).or_default()
                }
                HostPattern::Any => wildcard.entry(Box::default()).or_default(),
            };
            prefixes
                .by_prefix
                .insert(pattern.prefix_key().as_bytes().into(), index);
            prefixes.max_depth = prefixes.max_depth.max(pattern.prefix_depth());
        }
        RouteTable {
            entries,
            exact,
            wildcard,
            max_suffix_len,
        }
    }
}

impl<T> Default for RouteTableBuilder<T> {
    fn default() -> Self {
        RouteTable::builder()
    }
}

impl Prefixes {
    /// The longest registered prefix of `path` that ends on a segment boundary.
    fn longest_match(&self, path: &[u8]) -> Option<usize> {
        // Candidates deeper than `max_depth` cannot be registered: the (max_depth+1)-th slash
        // (counting the leading one) bounds the longest candidate worth hashing.
        let mut slashes = 0;
        let mut limit = path.len();
        for (i, &b) in path.iter().enumerate() {
            if b == b'/' {
                slashes += 1;
                if slashes > self.max_depth {
                    limit = i;
                    break;
                }
            }
        }
        if limit > 0 {
            if let Some(&found) = self.by_prefix.get(&path[..limit]) {
                return Some(found);
            }
        }
        for i in (1..limit).rev() {
            if path[i] == b'/' {
                if let Some(&found) = self.by_prefix.get(&path[..i]) {
                    return Some(found);
                }
            }
        }
        self.by_prefix.get(&b""[..]).copied()
    }
}

/// Lower-cases `host` into `buf` without its port and trailing dot. `None` when it cannot name any
/// route (too long). An empty host stays empty and can only match the catch-all.
fn normalise_host<'b>(host: &[u8], buf: &'b mut [u8; MAX_HOST_LEN]) -> Option<&'b [u8]> {
    let host = if host.first() == Some(&b'[') {
        // IPv6 literal: keep through `]`, drop `:port` after it.
        match host.iter().position(|&b| b == b']') {
            Some(close) => &host[..=close],
            None => host,
        }
    } else {
        match host.iter().position(|&b| b == b':') {
            Some(colon) => &host[..colon],
            None => host,
        }
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    let out = buf.get_mut(..host.len())?;
    for (o, &b) in out.iter_mut().zip(host) {
        *o = b.to_ascii_lowercase();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(patterns: &[&str]) -> RouteTable<usize> {
        let mut b = RouteTable::builder();
        for (i, p) in patterns.iter().enumerate() {
            b.insert(RoutePattern::parse(p).unwrap(), i);
        }
        b.build()
    }

    #[test]
    fn normalise_host_strips_port_dot_and_case() {
        let mut buf = [0; MAX_HOST_LEN];
        assert_eq!(
            normalise_host(b"Ex.COM.:80", &mut buf),
            Some(&b"ex.com"[..])
        );
        assert_eq!(normalise_host(b"[::1]:8080", &mut buf), Some(&b"[::1]"[..]));
        assert_eq!(normalise_host(b"", &mut buf), Some(&b""[..]));
        assert_eq!(normalise_host(&[b'a'; 256], &mut buf), None);
    }

    #[test]
    fn depth_limit_still_finds_shallow_prefixes() {
        let t = table(&["h/a", "h/a/b/c"]);
        assert_eq!(t.lookup(b"h", b"/a/b/c/d/e/f"), Some(&1));
        assert_eq!(t.lookup(b"h", b"/a/b/x/y/z"), Some(&0));
        assert_eq!(t.lookup(b"h", b"/a//////"), Some(&0));
        assert_eq!(t.lookup(b"h", b"/b"), None);
    }
}
