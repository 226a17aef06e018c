//! A table of 10 000 routes: every route is found by its own host and path, near misses are not,
//! and the winner among overlapping routes is right. (Lookup *cost* at 10 vs 10k routes is measured
//! by the criterion bench `benches/benches/route.rs`, not here.)
#![allow(clippy::unwrap_used)]

use ringway_core::route::{RoutePattern, RouteTable};

const ROUTES: usize = 10_000;

/// Route `i` in a mix of shapes: exact host at root, exact host with a one- or two-segment prefix,
/// and wildcard hosts.
fn pattern(i: usize) -> String {
    match i % 4 {
        0 => format!("svc{i}.example.com"),
        1 => format!("svc{i}.example.com/api"),
        2 => format!("shared.example.com/t{i}/v1"),
        _ => format!("*.tenant{i}.example.net"),
    }
}

/// A request that route `i` must win.
fn request(i: usize) -> (String, String) {
    match i % 4 {
        0 => (
            format!("SVC{i}.example.com:443"),
            "/anything/here".to_string(),
        ),
        1 => (format!("svc{i}.example.com"), "/api/users?id=7".to_string()),
        2 => (
            "shared.example.com".to_string(),
            format!("/t{i}/v1/items/3"),
        ),
        _ => (format!("app.eu.tenant{i}.example.net."), "/".to_string()),
    }
}

fn build() -> RouteTable<usize> {
    let mut builder = RouteTable::builder();
    for i in 0..ROUTES {
        builder.insert(RoutePattern::parse(&pattern(i)).unwrap(), i);
    }
    builder.build()
}

#[test]
fn every_route_of_ten_thousand_is_found() {
    let table = build();
    assert_eq!(table.len(), ROUTES);
    for i in 0..ROUTES {
        let (host, path) = request(i);
        assert_eq!(
            table.lookup(host.as_bytes(), path.as_bytes()),
            Some(&i),
            "{host}{path}"
        );
    }
}

#[test]
fn near_misses_among_ten_thousand_are_not_found() {
    let table = build();
    for i in 0..ROUTES {
        let (host, path): (String, &str) = match i % 4 {
            0 => (format!("svc{i}.example.com.evil"), "/"),
            1 => (format!("svc{i}.example.com"), "/apix"),
            2 => ("shared.example.com".to_string(), "/t/v1"),
            _ => (format!("tenant{i}.example.net"), "/"),
        };
        assert_eq!(
            table.lookup(host.as_bytes(), path.as_bytes()),
            None,
            "{host}{path}"
        );
    }
    // Same host, sibling prefix: shared.example.com/t2/v1 exists, /t2/v2 does not.
    assert_eq!(table.lookup(b"shared.example.com", b"/t2/v2"), None);
}

#[test]
fn overlapping_routes_at_scale_pick_the_most_specific() {
    let mut builder = RouteTable::builder();
    for i in 0..ROUTES {
        builder.insert(RoutePattern::parse(&pattern(i)).unwrap(), i);
    }
    builder
        .insert(RoutePattern::parse("*.example.com").unwrap(), ROUTES)
        .insert(
            RoutePattern::parse("svc1.example.com/api/admin").unwrap(),
            ROUTES + 1,
        );
    let table = builder.build();
    // An exact host whose prefix does not match falls through to the wildcard.
    assert_eq!(table.lookup(b"svc1.example.com", b"/web"), Some(&ROUTES));
    assert_eq!(
        table.lookup(b"svc1.example.com", b"/api/admin/x"),
        Some(&(ROUTES + 1))
    );
    assert_eq!(table.lookup(b"svc1.example.com", b"/api/x"), Some(&1));
    assert_eq!(table.lookup(b"svc0.example.com", b"/web"), Some(&0));
    assert_eq!(table.lookup(b"unknown.example.com", b"/"), Some(&ROUTES));
}
