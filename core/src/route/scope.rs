//! Route scopes: which routes a credential (an agent token) may register.
//!
//! A scope is a list of host patterns, in the syntax of a route pattern's host (`example.com`,
//! `*.example.com`, `*`), and an optional list of path prefixes (`/api`). A route is inside the
//! scope when one of the host patterns **covers** its host and, if prefixes are given, one of
//! them covers its prefix. Host and prefix are checked independently: hosts `a.test`, `b.test`
//! with prefixes `/api`, `/static` allow the four combinations.
//!
//! Covering compares patterns, not requests: a route is inside the scope only if every request
//! it could ever match is one the scope's patterns could match too.
//!
//! | scope host | covers the route host | does not cover |
//! |---|---|---|
//! | `*` | anything | — |
//! | `*.example.com` | `a.example.com`, `a.b.example.com`, `*.example.com`, `*.b.example.com` | `example.com`, `*`, `*.com` |
//! | `example.com` | `example.com` | `a.example.com`, `*.example.com` |
//!
//! A scope prefix `/api` covers the route prefixes `/api` and `/api/…` (on a `/` boundary), not
//! `/apix` nor `/` (a route for `/` would take `/other` too). No prefixes = every prefix.

use std::fmt;

use super::pattern::{parse_path_prefix, HostPattern, RouteError, RoutePattern};

/// Host patterns and path prefixes; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteScope {
    hosts: Vec<HostPattern>,
    prefixes: Vec<PathPrefix>,
}

/// A path prefix on its own, normalised like a route pattern's (`/api/` ≡ `/api`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathPrefix {
    /// No trailing `/`; the root is stored empty.
    prefix: Box<str>,
}

impl PathPrefix {
    /// Parses `/segment[/segment…]` (or `/`); anything a route pattern's prefix may not hold,
    /// or a missing leading `/`, is an error.
    pub fn parse(text: &str) -> Result<Self, RouteError> {
        parse_path_prefix(text).map(|prefix| Self { prefix })
    }

    /// The normalised prefix, `/` for the root.
    pub fn as_str(&self) -> &str {
        if self.prefix.is_empty() {
            "/"
        } else {
            &self.prefix
        }
    }

    /// Whether a route with prefix `route` (normalised, as [`RoutePattern::path_prefix`] gives
    /// it) only matches paths under this prefix.
    pub fn covers(&self, route: &str) -> bool {
        let route = route.trim_end_matches('/');
        self.prefix.is_empty()
            || route == &*self.prefix
            || (route.starts_with(&*self.prefix)
                && route.as_bytes().get(self.prefix.len()) == Some(&b'/'))
    }
}

impl fmt::Display for PathPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl HostPattern {
    /// Whether every host that `other` matches, this pattern matches too.
    pub fn covers(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Any, _) => true,
            (Self::Exact(a), Self::Exact(b)) => a == b,
            (Self::Suffix(suffix), Self::Exact(name)) => is_below(name, suffix),
            (Self::Suffix(suffix), Self::Suffix(inner)) => {
                inner == suffix || is_below(inner, suffix)
            }
            (Self::Exact(_) | Self::Suffix(_), _) => false,
        }
    }
}

/// `name` ends in `.suffix` with at least one label in front.
fn is_below(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len() + 1
        && name.ends_with(suffix)
        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
}

impl RouteScope {
    /// A scope of `hosts` (at least one, or nothing is covered) and `prefixes` (none: every
    /// prefix).
    pub fn new(hosts: Vec<HostPattern>, prefixes: Vec<PathPrefix>) -> Self {
        Self { hosts, prefixes }
    }

    /// The host patterns.
    pub fn hosts(&self) -> &[HostPattern] {
        &self.hosts
    }

    /// The path prefixes (empty: every prefix).
    pub fn prefixes(&self) -> &[PathPrefix] {
        &self.prefixes
    }

    /// Whether `route` lies inside the scope: a host pattern covers its host and (when there
    /// are prefixes) a prefix covers its prefix.
    pub fn covers(&self, route: &RoutePattern) -> bool {
        self.hosts.iter().any(|h| h.covers(route.host()))
            && (self.prefixes.is_empty()
                || self.prefixes.iter().any(|p| p.covers(route.path_prefix())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::RouteErrorKind;

    fn scope(hosts: &[&str], prefixes: &[&str]) -> RouteScope {
        RouteScope::new(
            hosts
                .iter()
                .map(|h| HostPattern::parse(h).unwrap())
                .collect(),
            prefixes
                .iter()
                .map(|p| PathPrefix::parse(p).unwrap())
                .collect(),
        )
    }

    fn covers(scope: &RouteScope, route: &str) -> bool {
        scope.covers(&RoutePattern::parse(route).unwrap())
    }

    #[test]
    fn a_wildcard_host_covers_names_and_narrower_wildcards_below_it() {
        let s = scope(&["*.apps.example.com"], &[]);
        for inside in [
            "shop.apps.example.com",
            "a.b.apps.example.com/x",
            "*.apps.example.com",
            "*.eu.apps.example.com/api",
            "SHOP.Apps.Example.com.",
        ] {
            assert!(covers(&s, inside), "{inside}");
        }
        for outside in [
            "apps.example.com",
            "xapps.example.com",
            "example.com",
            "*.example.com",
            "*",
            "shop.apps.example.org",
        ] {
            assert!(!covers(&s, outside), "{outside}");
        }
    }

    #[test]
    fn an_exact_host_covers_only_itself_and_any_covers_everything() {
        let s = scope(&["shop.test"], &[]);
        assert!(covers(&s, "shop.test/anything"));
        assert!(!covers(&s, "a.shop.test"));
        assert!(!covers(&s, "*.shop.test"));
        let all = scope(&["*"], &[]);
        for route in ["*", "*.test", "a.test/x", "[::1]/y"] {
            assert!(covers(&all, route), "{route}");
        }
    }

    #[test]
    fn prefixes_cover_on_segment_boundaries_and_combine_with_every_host() {
        let s = scope(&["a.test", "b.test"], &["/api/", "/static"]);
        for inside in [
            "a.test/api",
            "b.test/api/v1",
            "a.test/static/css",
            "b.test/static",
        ] {
            assert!(covers(&s, inside), "{inside}");
        }
        for outside in [
            "a.test",
            "a.test/apix",
            "b.test/ap",
            "c.test/api",
            "a.test/other/api",
        ] {
            assert!(!covers(&s, outside), "{outside}");
        }
        let root = scope(&["a.test"], &["/"]);
        assert!(covers(&root, "a.test"), "`/` is every prefix");
        assert!(covers(&root, "a.test/x"));
    }

    #[test]
    fn no_host_covers_nothing() {
        assert!(!covers(&scope(&[], &[]), "a.test"));
    }

    #[test]
    fn scope_parts_parse_with_the_route_syntax() {
        assert_eq!(
            HostPattern::parse("*.Example.COM.").unwrap().to_string(),
            "*.example.com"
        );
        assert_eq!(PathPrefix::parse("/api//").unwrap().as_str(), "/api");
        assert_eq!(PathPrefix::parse("/").unwrap().to_string(), "/");
        for (bad, kind) in [
            ("a.test/api", RouteErrorKind::Slash),
            ("a.*.test", RouteErrorKind::MisplacedWildcard),
            ("a.test:80", RouteErrorKind::Port),
            ("", RouteErrorKind::EmptyHost),
        ] {
            assert_eq!(HostPattern::parse(bad).unwrap_err().kind(), kind, "{bad}");
        }
        for (bad, kind) in [
            ("api", RouteErrorKind::Slash),
            ("", RouteErrorKind::Slash),
            ("/a?b", RouteErrorKind::PathByte(b'?')),
        ] {
            assert_eq!(PathPrefix::parse(bad).unwrap_err().kind(), kind, "{bad}");
        }
    }
}
