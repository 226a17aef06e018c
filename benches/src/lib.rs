//! Shared helpers for ringway benchmarks (criterion micro-benchmarks live in `benches/benches`).
