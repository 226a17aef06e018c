//! The outputs and the features beyond the peers, end to end: `.hgrm` and `--hlog` re-read,
//! `--json` validated against docs/loadgen.schema.json, `--compare`, `--watch-pid`, `--find-max`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{loadgen, loadgen_json, percentile, temp_dir, ServerOptions, TestServer};
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

fn schema() -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/loadgen.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn assert_valid(doc: &serde_json::Value) {
    let validator = schema();
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "JSON does not match docs/loadgen.schema.json:\n{}",
        errors.join("\n")
    );
}

#[test]
fn hgrm_and_hlog_read_back_and_agree_with_the_json() {
    let _timing = common::timing_lock();
    let server = TestServer::start(ServerOptions::default());
    let url = server.url();
    let dir = temp_dir("hgrm");
    let (hgrm, hlog, json) = (
        dir.join("out.hgrm"),
        dir.join("out.hlog"),
        dir.join("out.json"),
    );
    loadgen(&[
        &url,
        "-c",
        "4",
        "--duration",
        "1",
        "--interval",
        "0.25",
        "--quiet",
        "--hgrm",
        hgrm.to_str().unwrap(),
        "--hlog",
        hlog.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_valid(&doc);
    // Closed loop paces nothing.
    assert!(doc["targets"][0]["pacing"].is_null());
    let t = &doc["targets"][0];
    let completed = t["requests"]["completed"].as_u64().unwrap();
    assert_eq!(completed, server.requests());

    // .hgrm: monotonic rows, ends at 100 % with the total count, footer agrees.
    let text = std::fs::read_to_string(&hgrm).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    );
    let rows: Vec<(f64, f64, u64)> = lines
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() == 4 || f.len() == 3, "odd row {l:?}");
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    assert!(rows.len() > 10);
    assert!(rows
        .windows(2)
        .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1 && w[0].2 <= w[1].2));
    let last = rows.last().unwrap();
    assert_eq!((last.1, last.2), (1.0, completed));
    let max_ms = t["latency_us"]["corrected"]["max"].as_u64().unwrap() as f64 / 1000.0;
    assert!(
        (last.0 - max_ms).abs() <= 0.001 + max_ms * 0.001,
        "hgrm max {} vs json {max_ms}",
        last.0
    );
    // The row at (or just past) the 50th percentile matches the JSON median within precision.
    let p50_ms = percentile(&t["latency_us"]["corrected"], 50.0) as f64 / 1000.0;
    let row50 = rows.iter().find(|r| r.1 >= 0.5).unwrap();
    assert!(
        (row50.0 - p50_ms).abs() <= 0.002 + p50_ms * 0.002,
        "hgrm p50 {} vs json {p50_ms}",
        row50.0
    );
    assert!(text.contains(&format!("Total count    = {completed:>12}]")));

    // --hlog: decode every interval histogram; together they hold every request.
    let log = std::fs::read(&hlog).unwrap();
    let mut deserializer = Deserializer::new();
    let mut total = 0u64;
    let mut intervals = 0;
    for entry in IntervalLogIterator::new(&log) {
        if let LogEntry::Interval(ilh) = entry.unwrap() {
            let bytes = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                ilh.encoded_histogram(),
            )
            .unwrap();
            let h: Histogram<u64> = deserializer.deserialize(&mut bytes.as_slice()).unwrap();
            assert_eq!(ilh.tag().unwrap().as_str(), "t0");
            total += h.len();
            intervals += 1;
        }
    }
    assert!(intervals >= 4, "{intervals} intervals");
    assert_eq!(total, completed);
}

#[test]
fn compare_runs_every_target_in_rounds_with_one_histogram_each_and_ratios() {
    let _timing = common::timing_lock();
    let a = TestServer::start(ServerOptions::default());
    let b = TestServer::start(ServerOptions::default());
    let (ua, ub) = (a.url(), b.url());
    let dir = temp_dir("compare");
    let (plot, hgrm) = (dir.join("cmp.svg"), dir.join("cmp.hgrm"));
    let (doc, out) = loadgen_json(
        "compare-json",
        &[
            &ua,
            "--compare",
            &ub,
            "--rounds",
            "2",
            "--rate",
            "400",
            "-c",
            "2",
            "--duration",
            "1",
            "--plot",
            plot.to_str().unwrap(),
            "--hgrm",
            hgrm.to_str().unwrap(),
        ],
    );
    assert_valid(&doc);
    let targets = doc["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    for (t, server) in targets.iter().zip([&a, &b]) {
        // 400 req/s × 2 rounds × 0.5 s each: 400 due; a request woken late past the end of a
        // round by a busy machine is not sent (and shows as a shortfall), so allow 1 %.
        let completed = t["requests"]["completed"].as_u64().unwrap();
        assert!((396..=400).contains(&completed), "{completed}");
        assert_eq!(server.requests(), completed);
    }
    let cmp = doc["comparison"].as_array().unwrap();
    assert_eq!(cmp.len(), 2);
    assert_eq!(cmp[0]["throughput_ratio"].as_f64().unwrap(), 1.0);
    assert!(cmp[1]["p99_ratio"].as_f64().unwrap() > 0.0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Comparison against") && stdout.contains(&ub),
        "{stdout}"
    );
    // Rounds interleave: each target has intervals from two different rounds.
    for t in targets {
        let mut rounds: Vec<u64> = t["intervals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["round_start_unix_ms"].as_u64().unwrap())
            .collect();
        rounds.dedup();
        assert_eq!(rounds.len(), 2);
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains(&ua) && svg.contains(&ub) && svg.contains("99.9%")
    );
    assert!(svg.matches("<polyline").count() >= 2);
    assert!(dir.join("cmp-0.hgrm").exists() && dir.join("cmp-1.hgrm").exists());
}

#[test]
fn watch_pid_reports_cpu_microseconds_per_request() {
    let _timing = common::timing_lock();
    // The test server runs inside this test process: watch it.
    let server = TestServer::start(ServerOptions::default());
    let url = server.url();
    let pid = std::process::id().to_string();
    let (doc, out) = loadgen_json(
        "watch",
        &[&url, "-c", "2", "--duration", "0.5", "--watch-pid", &pid],
    );
    assert_valid(&doc);
    let cpu = &doc["targets"][0]["cpu"];
    assert_eq!(cpu["pid"].as_u64().unwrap().to_string(), pid);
    let per_request = cpu["us_per_request"].as_f64().unwrap();
    assert!(
        per_request > 0.0 && per_request < 10_000.0,
        "{per_request} µs/request"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("µs/request"));
}

#[test]
fn find_max_finds_a_rate_and_stops_in_bounded_time() {
    let _timing = common::timing_lock();
    let server = TestServer::start(ServerOptions::default());
    let url = server.url();
    let started = Instant::now();
    let svg = temp_dir("findmax-plot").join("fm.svg");
    let svg_s = svg.to_str().unwrap().to_owned();
    let (doc, out) = loadgen_json(
        "findmax",
        &[
            &url,
            "--plot",
            &svg_s,
            "--plot-log-latency",
            "--find-max",
            "--slo",
            "p99=100ms",
            "--rate",
            "400",
            "-c",
            "4",
            "--duration",
            "0.5",
            "--find-max-steps",
            "5",
        ],
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_valid(&doc);
    let fm = &doc["find_max"];
    let steps = fm["steps"].as_array().unwrap();
    assert!(!steps.is_empty() && steps.len() <= 5);
    assert!(fm["max_rate"].as_f64().unwrap() >= 400.0);
    assert_eq!(steps[0]["rate"].as_f64().unwrap(), 400.0);
    assert_eq!(steps[0]["ok"], true);
    assert!(String::from_utf8_lossy(&out.stdout).contains("highest rate within the SLO"));
    // Every step reports its send-lag; the plot (log latency axis) carries the SLO line.
    assert!(steps.iter().all(|s| s["send_lag_p99_us"].is_u64()));
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.contains("SLO p99 &lt;= 100.00ms") || chart.contains("SLO p99 <= 100.00ms"));
    assert!(chart.contains("log scale"));
}

#[test]
fn bad_flags_are_refused_with_the_flag_named() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringway-loadgen"))
        .args(["http://127.0.0.1:1/", "--slo", "p99=fast", "--find-max"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--slo"));
}

#[test]
fn a_spin_window_that_is_neither_auto_nor_bounded_is_refused() {
    for bad in ["fast", "1001"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringway-loadgen"))
            .args(["http://127.0.0.1:1/", "-R", "100", "--spin-us", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--spin-us {bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--spin-us"),
            "--spin-us {bad}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
