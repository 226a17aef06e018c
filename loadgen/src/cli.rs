//! The command line of `ringway-loadgen`: every flag, parsed by clap.
//!
//! The flags are turned into a validated [`crate::config::RunConfig`] by `config.rs`; nothing else
//! reads [`Cli`] directly.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use ringway_io::runtime::IoDriver;

/// A latency-honest (coordinated-omission-corrected) io_uring HTTP/1.1 load generator.
#[derive(Debug, Clone, Parser)]
#[command(name = "ringway-loadgen", version, about, long_about = None)]
pub struct Cli {
    /// The target URL (`http://host:port/path?query`, or `https://…`).
    pub url: String,

    /// More targets, run in the same run interleaved in rounds with the first (A B A B …); the
    /// report gets one histogram per target and a table of ratios against the first.
    #[arg(long, num_args = 1.., value_name = "URL")]
    pub compare: Vec<String>,

    /// Rounds per target when comparing: each target runs `--duration / --rounds` per round.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub rounds: u32,

    /// Concurrent connections in total (split across threads).
    #[arg(short = 'c', long, default_value_t = 50)]
    pub connections: usize,

    /// Load-generating threads, each a pinned thread-per-core runtime.
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,

    /// CPUs to pin the threads to, in order (`--cpus 2,3`); default: no pinning.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub cpus: Vec<usize>,

    /// IO driver of the load threads (as in ringway-balancer).
    #[arg(long, value_enum, default_value_t = IoDriver::Auto)]
    pub io_driver: IoDriver,

    /// Measured duration in seconds (per target).
    #[arg(short = 'd', long, default_value_t = 10.0, value_name = "SECONDS")]
    pub duration: f64,

    /// Warm-up in seconds before the measured duration; its requests are not recorded.
    #[arg(short = 'w', long, default_value_t = 0.0, value_name = "SECONDS")]
    pub warmup: f64,

    /// Open loop: requests per second in total, on a fixed schedule split across the load
    /// threads; each thread hands its due requests to whichever of its connections is free.
    /// Without it the run is closed-loop (as fast as responses come back, like wrk).
    #[arg(short = 'R', long, value_name = "REQ/S")]
    pub rate: Option<f64>,

    /// Spacing of intended start times in open loop.
    #[arg(long, value_enum, default_value_t = ArrivalsArg::Even)]
    pub arrivals: ArrivalsArg,

    /// Seed for the Poisson schedule (default: from the clock; always reported).
    #[arg(long)]
    pub seed: Option<u64>,

    /// Open loop: the last microseconds before each due time are waited by yielding to the
    /// runtime instead of sleeping on the timer: precision for CPU (at most this much per
    /// request) on a generator with a core of its own. `auto` (the default) measures how late
    /// the timer wakes on this host and covers that (up to 30 µs, and 30 % of the gap between a
    /// thread's due times); a number fixes the window; 0 = sleep only (better on a shared,
    /// contended core).
    #[arg(long, default_value = "auto", value_name = "US|auto")]
    pub spin_us: String,

    /// Requests in flight per connection (HTTP/1.1 pipelining); 1 = no pipelining.
    #[arg(long, default_value_t = 1, value_name = "DEPTH")]
    pub pipeline: usize,

    /// Churn mode: send `Connection: close` and open a new connection for every request.
    #[arg(long)]
    pub close: bool,

    /// Request timeout in seconds: a request not answered in time is aborted (its connection
    /// closed), counted as a timeout and recorded at the time it was aborted.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub timeout: f64,

    /// `https://` targets: CA certificates (PEM) that vouch for the server.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<String>,

    /// `https://` targets: accept any server certificate (its signature is still checked).
    #[arg(long, conflicts_with = "ca_file")]
    pub insecure: bool,

    /// `https://` targets: the name sent as SNI and verified (default: the URL's host; an IP
    /// address sends no SNI).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,

    /// `https://` targets: offer only these cipher suites, rustls names
    /// (`TLS13_AES_128_GCM_SHA256`, `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`); the TLS
    /// versions offered follow from them. Sessions are never resumed: every connection is a
    /// full handshake.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub tls_cipher: Vec<String>,

    /// `https://` targets: offer only these key-exchange groups (`X25519`, `secp256r1`).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub tls_group: Vec<String>,

    /// Request method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,

    /// Extra request header (`-H "Name: value"`, repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,

    /// Request body: a literal, or `@path` to read it from a file.
    #[arg(long, value_name = "TEXT|@FILE")]
    pub body: Option<String>,

    /// Read the CPU time of this process from /proc before and after each run and report
    /// CPU-microseconds per request (repeatable: the n-th pid belongs to the n-th target).
    #[arg(long, value_name = "PID")]
    pub watch_pid: Vec<u32>,

    /// Search for the highest open-loop rate that stays within `--slo`.
    #[arg(long, requires = "slo")]
    pub find_max: bool,

    /// The service-level objective for `--find-max`, e.g. `p99=2ms`, `p99.9=500us`.
    #[arg(long, value_name = "pXX=LATENCY")]
    pub slo: Option<String>,

    /// Most trial runs `--find-max` may use.
    #[arg(long, default_value_t = 12, value_name = "N")]
    pub find_max_steps: u32,

    /// Write the whole report as JSON (schema: docs/loadgen.schema.json).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write the corrected latency histogram in HdrHistogram percentile-distribution format.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,

    /// Write an HdrHistogram interval log (one base64 histogram per interval).
    #[arg(long, value_name = "FILE")]
    pub hlog: Option<PathBuf>,

    /// Draw latency by percentile (logarithmic 1/(1-p) axis), one curve per target, as SVG.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// Draw the `--plot` latency axis on a logarithmic scale (default: linear from 0).
    #[arg(long, requires = "plot")]
    pub plot_log_latency: bool,

    /// Seconds between progress lines, per-interval rates and interval-log histograms.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub interval: f64,

    /// No progress output on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// How intended start times are spaced in open loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArrivalsArg {
    /// Evenly spaced: one request every `connections / rate` seconds per connection.
    Even,
    /// Poisson arrivals: exponentially distributed gaps with the same mean.
    Poisson,
}
