//! criterion micro-benchmarks of `ringway_core::route`: lookup cost with 10 routes vs 10 000 routes
//! (it should not depend on the count), for exact hosts, wildcard hosts, deep paths and misses.
//!
//! Run: `cargo bench -p ringway-benches --bench route`; results in results/archive/core-route-bench.md.
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ringway_core::route::{RoutePattern, RouteTable};

/// Route `i`: a mix of exact hosts (root and one-segment prefixes), a shared host with many
/// two-segment prefixes, and wildcard hosts. The same shapes as core/tests/route_scale.rs.
fn pattern(i: usize) -> String {
    match i % 4 {
        0 => format!("svc{i}.example.com"),
        1 => format!("svc{i}.example.com/api"),
        2 => format!("shared.example.com/t{i}/v1"),
        _ => format!("*.tenant{i}.example.net"),
    }
}

fn table(routes: usize) -> RouteTable<usize> {
    let mut builder = RouteTable::builder();
    for i in 0..routes {
        builder.insert(RoutePattern::parse(&pattern(i)).expect("bench pattern"), i);
    }
    builder.build()
}

/// (name, host, path) of requests that exist in both the 10- and the 10k-route table.
const REQUESTS: [(&str, &[u8], &[u8]); 5] = [
    ("exact_root", b"svc4.example.com:8080", b"/index.html"),
    (
        "exact_prefix",
        b"svc5.example.com",
        b"/api/users/42?fields=name",
    ),
    (
        "shared_host_deep_path",
        b"shared.example.com",
        b"/t6/v1/items/3/parts/7/x",
    ),
    ("wildcard", b"App.EU.tenant7.example.net", b"/"),
    ("miss", b"nothing.example.org", b"/a/b/c"),
];

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_lookup");
    for routes in [10, 10_000] {
        let table = table(routes);
        for (name, host, path) in REQUESTS {
            let expected = table.lookup(host, path).copied();
            assert_eq!(
                expected.is_some(),
                name != "miss",
                "{name} with {routes} routes"
            );
            group.bench_with_input(
                BenchmarkId::new(name, routes),
                &(host, path),
                |b, &(host, path)| {
                    b.iter(|| table.lookup(black_box(host), black_box(path)));
                },
            );
        }
    }
    group.finish();
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_build");
    group.sample_size(10);
    for routes in [10, 10_000] {
        let patterns: Vec<RoutePattern> = (0..routes)
            .map(|i| RoutePattern::parse(&pattern(i)).expect("bench pattern"))
            .collect();
        group.bench_with_input(
            BenchmarkId::from_parameter(routes),
            &patterns,
            |b, patterns| {
                b.iter(|| {
                    patterns
                        .iter()
                        .cloned()
                        .zip(0..)
                        .collect::<RouteTable<usize>>()
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, lookup, build);
criterion_main!(benches);
