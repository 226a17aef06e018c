//! Shared helpers for ringway benchmarks (criterion micro-benchmarks live in `benches/benches`)
//! and the `compare` harness ([`compare`]; the binary is `src/bin/compare/main.rs`).

pub mod compare;
pub mod one_response;
