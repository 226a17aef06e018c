//! `compare`: ringway side by side with nginx, HAProxy and rathole in one command
//! (`cargo run --release -p ringway-benches --bin compare -- --scenario NAME`; docs/benchmarks.md).
//!
//! - [`scenario`]: what each scenario runs; [`peers`]: finding and installing the peers;
//!   [`templates`]: their configs (benches/templates/); [`procs`]: process-group guards and
//!   Ctrl-C; [`pin`]: the pin plan from `ringway-tune`.
//! - [`systems`]: starting the backend and each system; [`measure`]: load runs with CPU from
//!   /proc ([`proc_stat`]); [`idle`]: memory per idle connection; [`pki`]: the TLS scenarios'
//!   certificates and pinned parameters; [`tls_probe`]: readiness and what an HTTPS entrance
//!   negotiated.
//! - [`results`]: results.json and the summary over rounds; [`summary`]: summary.md;
//!   [`plot`]: latency.svg; [`index`]: results/README.md's index; [`run`]: the whole run.

pub mod idle;
pub mod index;
pub mod measure;
pub mod peers;
pub mod pin;
pub mod pki;
pub mod plot;
pub mod proc_stat;
pub mod procs;
pub mod results;
pub mod run;
pub mod scenario;
pub mod summary;
pub mod systems;
pub mod templates;
pub mod tls_probe;

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, UTC, RFC 3339 to the second.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (days to a civil date: H. Hinnant's
/// algorithm, <https://howardhinnant.github.io/date_algorithms.html#civil_from_days>).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_796_191_200), "2026-12-02T06:00:00Z");
    }
}
