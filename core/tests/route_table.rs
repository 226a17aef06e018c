//! Routing rules of `RouteTable`, one test per rule, plus a property test against a naive
//! reference matcher that implements the documented rule by scanning every route.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use ringway_core::route::{HostPattern, RoutePattern, RouteTable};

fn table(patterns: &[&str]) -> RouteTable<&'static str> {
    let mut builder = RouteTable::builder();
    for p in patterns {
        // Leak is fine in tests: the value is the pattern text, handy in assertion messages.
        let name: &'static str = Box::leak(p.to_string().into_boxed_str());
        builder.insert(RoutePattern::parse(p).unwrap(), name);
    }
    builder.build()
}

#[test]
fn exact_host_is_case_insensitive_and_ignores_port_and_trailing_dot() {
    let t = table(&["example.com"]);
    for host in [
        "example.com",
        "EXAMPLE.com",
        "Example.Com:8080",
        "example.com.",
        "example.com.:443",
    ] {
        assert_eq!(
            t.lookup(host.as_bytes(), b"/"),
            Some(&"example.com"),
            "{host}"
        );
    }
    for host in ["example.org", "www.example.com", "example.comx", "", ":80"] {
        assert_eq!(t.lookup(host.as_bytes(), b"/"), None, "{host}");
    }
}

#[test]
fn ipv6_literal_ignores_port() {
    let t = table(&["[::1]/", "[2001:DB8::1]/api"]);
    assert_eq!(t.lookup(b"[::1]:8080", b"/x"), Some(&"[::1]/"));
    assert_eq!(t.lookup(b"[::1]", b"/"), Some(&"[::1]/"));
    assert_eq!(
        t.lookup(b"[2001:db8::1]:1", b"/api/v"),
        Some(&"[2001:DB8::1]/api")
    );
    assert_eq!(t.lookup(b"[::2]:8080", b"/"), None);
}

#[test]
fn wildcard_does_not_match_the_bare_suffix() {
    let t = table(&["*.example.com"]);
    assert_eq!(t.lookup(b"a.example.com", b"/"), Some(&"*.example.com"));
    assert_eq!(
        t.lookup(b"a.b.example.com:80", b"/"),
        Some(&"*.example.com")
    );
    assert_eq!(t.lookup(b"A.EXAMPLE.COM.", b"/"), Some(&"*.example.com"));
    assert_eq!(t.lookup(b"example.com", b"/"), None);
    assert_eq!(t.lookup(b"badexample.com", b"/"), None);
    assert_eq!(t.lookup(b".example.com", b"/"), Some(&"*.example.com"));
}

#[test]
fn exact_beats_wildcard_and_longer_suffix_beats_shorter() {
    let t = table(&[
        "*",
        "*.com",
        "*.example.com",
        "*.a.example.com",
        "x.a.example.com",
    ]);
    assert_eq!(t.lookup(b"x.a.example.com", b"/"), Some(&"x.a.example.com"));
    assert_eq!(t.lookup(b"y.a.example.com", b"/"), Some(&"*.a.example.com"));
    assert_eq!(t.lookup(b"a.example.com", b"/"), Some(&"*.example.com"));
    assert_eq!(t.lookup(b"example.com", b"/"), Some(&"*.com"));
    assert_eq!(t.lookup(b"example.org", b"/"), Some(&"*"));
    assert_eq!(t.lookup(b"", b"/"), Some(&"*"));
}

#[test]
fn more_specific_host_without_matching_prefix_falls_through() {
    let t = table(&["api.example.com/v2", "*.example.com/", "*/health"]);
    assert_eq!(
        t.lookup(b"api.example.com", b"/v2/users"),
        Some(&"api.example.com/v2")
    );
    assert_eq!(
        t.lookup(b"api.example.com", b"/other"),
        Some(&"*.example.com/")
    );
    assert_eq!(t.lookup(b"other.org", b"/health"), Some(&"*/health"));
    assert_eq!(t.lookup(b"other.org", b"/"), None);
    // Host specificity ranks before prefix length.
    assert_eq!(
        t.lookup(b"x.example.com", b"/health"),
        Some(&"*.example.com/")
    );
}

#[test]
fn prefix_matches_on_segment_boundaries_only() {
    let t = table(&["h/api"]);
    for path in [
        "/api", "/api/", "/api/x", "/api/x/y", "/api?q=1", "/api/?q", "/api//x",
    ] {
        assert_eq!(t.lookup(b"h", path.as_bytes()), Some(&"h/api"), "{path}");
    }
    for path in ["/apix", "/ap", "/", "", "/API", "/x/api", "api"] {
        assert_eq!(t.lookup(b"h", path.as_bytes()), None, "{path}");
    }
}

#[test]
fn trailing_slash_in_prefix_is_the_same_prefix() {
    let t = table(&["h/api/"]);
    assert_eq!(t.lookup(b"h", b"/api"), Some(&"h/api/"));
    assert_eq!(t.lookup(b"h", b"/api/x"), Some(&"h/api/"));
    assert_eq!(t.lookup(b"h", b"/apix"), None);
}

#[test]
fn longest_prefix_wins() {
    let t = table(&["h", "h/a", "h/a/b", "h/a/b/c/d"]);
    assert_eq!(t.lookup(b"h", b"/a/b/c"), Some(&"h/a/b"));
    assert_eq!(t.lookup(b"h", b"/a/b/c/d/e"), Some(&"h/a/b/c/d"));
    assert_eq!(t.lookup(b"h", b"/a/bc"), Some(&"h/a"));
    assert_eq!(t.lookup(b"h", b"/ab"), Some(&"h"));
    assert_eq!(t.lookup(b"h", b"/a?x=/a/b"), Some(&"h/a"));
}

#[test]
fn root_prefix_matches_every_target_form() {
    let t = table(&["h"]);
    for path in ["/", "", "*", "/x/y?z", "?q"] {
        assert_eq!(t.lookup(b"h", path.as_bytes()), Some(&"h"), "{path}");
    }
}

#[test]
fn paths_are_compared_as_raw_bytes() {
    let t = table(&["h/Api", "h/a%20b"]);
    assert_eq!(t.lookup(b"h", b"/Api/x"), Some(&"h/Api"));
    assert_eq!(t.lookup(b"h", b"/api/x"), None);
    assert_eq!(t.lookup(b"h", b"/a%20b"), Some(&"h/a%20b"));
    assert_eq!(t.lookup(b"h", b"/a b"), None);
}

#[test]
fn overlong_or_odd_hosts_do_not_panic() {
    let t = table(&["*"]);
    let long = vec![b'a'; 10_000];
    assert_eq!(t.lookup(&long, b"/"), None);
    assert_eq!(t.lookup(b"\xff\x00:", b"/"), Some(&"*"));
    assert_eq!(t.lookup(b"[::1", b"/"), Some(&"*"));
    let deep = "/a".repeat(4000);
    assert_eq!(t.lookup(b"x", deep.as_bytes()), Some(&"*"));
}

#[test]
fn routes_iterate_in_insertion_order_and_reinsert_replaces() {
    let mut b = RouteTable::builder();
    b.insert(RoutePattern::parse("b.com").unwrap(), 1)
        .insert(RoutePattern::parse("a.com/x").unwrap(), 2)
        .insert(RoutePattern::parse("B.COM/").unwrap(), 3);
    assert_eq!(b.len(), 2);
    let t = b.build();
    assert!(b.is_empty(), "build drains the builder");
    let listed: Vec<(String, i32)> = t.routes().map(|(p, v)| (p.to_string(), *v)).collect();
    assert_eq!(
        listed,
        vec![("b.com/".to_string(), 3), ("a.com/x".to_string(), 2)]
    );
    assert_eq!(t.len(), 2);
    assert_eq!(t.lookup(b"b.com", b"/"), Some(&3));
    let (pattern, _) = t.lookup_route(b"a.com", b"/x/y").unwrap();
    assert_eq!(pattern.host(), &HostPattern::Exact("a.com".into()));
    assert_eq!(pattern.path_prefix(), "/x");
}

#[test]
fn empty_and_collected_tables() {
    let empty: RouteTable<u8> = RouteTable::default();
    assert!(empty.is_empty());
    assert_eq!(empty.lookup(b"a", b"/"), None);
    let t: RouteTable<u8> = [("a.com", 1), ("*.a.com", 2)]
        .into_iter()
        .map(|(p, v)| (RoutePattern::parse(p).unwrap(), v))
        .collect();
    assert_eq!(t.lookup(b"x.a.com", b"/"), Some(&2));
}

// ---- property test against a reference matcher ----

/// Host specificity of `pattern` for `host` (higher is better), or `None` if it does not match.
fn host_rank(pattern: &HostPattern, host: &str) -> Option<usize> {
    match pattern {
        HostPattern::Exact(name) => (**name == *host).then_some(usize::MAX),
        HostPattern::Suffix(suffix) => {
            let dotted = format!(".{suffix}");
            (host.len() > dotted.len() && host.ends_with(&dotted)).then_some(1 + suffix.len())
        }
        HostPattern::Any => Some(0),
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    let prefix = if prefix == "/" { "" } else { prefix };
    path.strip_prefix(prefix)
        .is_some_and(|rest| prefix.is_empty() || rest.is_empty() || rest.starts_with('/'))
}

fn reference<'a>(routes: &'a [(RoutePattern, usize)], host: &str, path: &str) -> Option<&'a usize> {
    let host = host.split(':').next().unwrap().to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    let path = path.split('?').next().unwrap();
    routes
        .iter()
        .filter_map(|(p, v)| {
            let rank = host_rank(p.host(), host)?;
            prefix_matches(p.path_prefix(), path).then_some(((rank, p.path_prefix().len()), v))
        })
        .max_by_key(|(key, _)| *key)
        .map(|(_, v)| v)
}

fn host_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "B", "com"]), 1..4)
        .prop_map(|labels| labels.join("."))
}

fn path_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["x", "y", "xy", ""]), 0..4)
        .prop_map(|segments| segments.iter().map(|s| format!("/{s}")).collect::<String>())
}

fn pattern_strategy() -> impl Strategy<Value = String> {
    (0..3u8, host_strategy(), path_strategy()).prop_map(|(kind, host, path)| match kind {
        0 => format!("{host}{path}"),
        1 => format!("*.{host}{path}"),
        _ if path.is_empty() => "*".to_string(),
        _ => format!("*{path}"),
    })
}

proptest! {
    #[test]
    fn lookup_agrees_with_reference(
        patterns in prop::collection::vec(pattern_strategy(), 0..24),
        requests in prop::collection::vec((host_strategy(), path_strategy(), any::<bool>(), any::<bool>()), 1..16),
    ) {
        // Patterns with empty segments (`//`) are legal; keep only those that parse and dedupe.
        let mut routes: Vec<(RoutePattern, usize)> = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            if let Ok(p) = RoutePattern::parse(p) {
                routes.retain(|(q, _)| *q != p);
                routes.push((p, i));
            }
        }
        let table: RouteTable<usize> = routes.iter().cloned().collect();
        for (host, path, port, query) in &requests {
            let host = if *port { format!("{host}:8080") } else { host.clone() };
            let path = if *query { format!("{path}?q=/x") } else { path.clone() };
            prop_assert_eq!(
                table.lookup(host.as_bytes(), path.as_bytes()),
                reference(&routes, &host, &path),
                "host {:?} path {:?} routes {:?}", host, path, routes
            );
        }
    }
}
