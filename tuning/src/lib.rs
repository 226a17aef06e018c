//! Socket options, core pinning, io_uring ring setup and the `ringway-tune` host report.
//!
//! This is the one crate of ringway allowed to hold `unsafe` code; every block carries a
//! `// SAFETY:` comment.
