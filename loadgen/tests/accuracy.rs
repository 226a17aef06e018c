//! Proof that ringway-loadgen measures right, against a real loopback server: coordinated
//! omission is corrected, the open-loop rate is kept, every request is counted exactly once, and
//! timeouts are counted and recorded.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{loadgen_json, percentile, ServerOptions, TestServer};

#[test]
fn a_one_second_stall_shows_in_corrected_but_not_in_uncorrected_percentiles() {
    let _timing = common::timing_lock();
    // 1000 req/s over 1 connection for 3 s; the server stalls for 1 s once, at request 500.
    // The next ~1000 requests are due during the stall: their corrected latency (from the
    // intended start) runs up to ~1 s, about a third of all requests — p99 sees it. Uncorrected
    // latency (from the actual send) has one slow sample (its max): p99 stays fast. (With more
    // connections the pacer hands the requests due during the stall to the free ones: the next
    // test.)
    let server = TestServer::start(ServerOptions {
        stall: Some((500, Duration::from_secs(1))),
    });
    let url = server.url();
    let (doc, _) = loadgen_json(
        "stall",
        &[&url, "--rate", "1000", "-c", "1", "--duration", "3"],
    );
    let t = &doc["targets"][0];
    let corrected = &t["latency_us"]["corrected"];
    let uncorrected = &t["latency_us"]["uncorrected"];
    let c99 = percentile(corrected, 99.0);
    let cmax = corrected["max"].as_u64().unwrap();
    let u99 = percentile(uncorrected, 99.0);
    assert!(
        c99 >= 500_000,
        "corrected p99 {c99} µs should show the 1 s stall"
    );
    assert!(
        (900_000..2_000_000).contains(&cmax),
        "corrected max {cmax} µs should be ~1 s"
    );
    assert!(
        u99 < 50_000,
        "uncorrected p99 {u99} µs should not show the stall"
    );
    // The mean says the same without depending on where single samples fall: ~1000 requests
    // waited up to 1 s by the schedule, while only one waited long after being written.
    let cmean = corrected["mean"].as_f64().unwrap();
    let umean = uncorrected["mean"].as_f64().unwrap();
    assert!(
        cmean > 10.0 * umean,
        "corrected mean {cmean} µs vs uncorrected mean {umean} µs"
    );
    // Send-lag: the requests queued behind the stall were written late.
    assert!(t["latency_us"]["send_lag"]["max"].as_u64().unwrap() >= 800_000);
    assert_eq!(t["requests"]["error_total"], 0);
}

#[test]
fn a_stalled_connection_holds_up_only_its_own_request_when_others_are_free() {
    let _timing = common::timing_lock();
    // As above over 4 connections: the stalled connection is busy for 1 s, and the requests due
    // meanwhile go to the three free ones. One request took ~1 s; the p99 does not see it.
    let server = TestServer::start(ServerOptions {
        stall: Some((500, Duration::from_secs(1))),
    });
    let url = server.url();
    let (doc, _) = loadgen_json(
        "stall-4",
        &[&url, "--rate", "1000", "-c", "4", "--duration", "3"],
    );
    let t = &doc["targets"][0];
    let corrected = &t["latency_us"]["corrected"];
    let cmax = corrected["max"].as_u64().unwrap();
    assert!(
        (900_000..2_000_000).contains(&cmax),
        "corrected max {cmax} µs"
    );
    let c99 = percentile(corrected, 99.0);
    assert!(
        c99 < 500_000,
        "corrected p99 {c99} µs: only one request was stalled"
    );
    assert_eq!(t["requests"]["error_total"], 0);
    assert_eq!(t["rate_shortfall"], false);
}

#[test]
fn open_loop_keeps_the_requested_rate_within_one_percent() {
    let _timing = common::timing_lock();
    let server = TestServer::start(ServerOptions::default());
    let url = server.url();
    let (doc, _) = loadgen_json(
        "rate",
        &[&url, "--rate", "2000", "-c", "8", "--duration", "3"],
    );
    let t = &doc["targets"][0];
    let achieved = t["achieved_rate"].as_f64().unwrap();
    let throughput = t["throughput"].as_f64().unwrap();
    assert!(
        (achieved - 2000.0).abs() / 2000.0 < 0.01,
        "achieved {achieved} req/s"
    );
    assert!(
        (throughput - 2000.0).abs() / 2000.0 < 0.01,
        "throughput {throughput} req/s"
    );
    assert_eq!(t["rate_shortfall"], false);
    assert_eq!(
        t["requests"]["completed"].as_u64().unwrap(),
        server.requests()
    );
    // The per-interval rates agree with the schedule too (full intervals only).
    let intervals = t["intervals"].as_array().unwrap();
    let full: Vec<f64> = intervals
        .iter()
        .filter(|i| i["start_us"].as_u64().unwrap() + i["length_us"].as_u64().unwrap() <= 3_000_000)
        .map(|i| i["rate"].as_f64().unwrap())
        .collect();
    assert!(full.len() >= 2, "{intervals:?}");
    for r in &full {
        assert!((r - 2000.0).abs() / 2000.0 < 0.05, "interval rate {r}");
    }
}

#[test]
fn an_unreachable_rate_is_reported_loudly() {
    // One connection to a server that takes 1 s for its first request cannot send 2000 req/s
    // for the 0.5 s run: the shortfall must be flagged in JSON and on stderr.
    let server = TestServer::start(ServerOptions {
        stall: Some((1, Duration::from_secs(1))),
    });
    let url = server.url();
    let (doc, out) = loadgen_json(
        "shortfall",
        &[&url, "--rate", "2000", "-c", "1", "--duration", "0.5"],
    );
    assert_eq!(doc["targets"][0]["rate_shortfall"], true);
    assert!(!doc["warnings"].as_array().unwrap().is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WARNING") && stderr.contains("short"),
        "{stderr}"
    );
}

#[test]
fn counts_agree_with_the_server_exactly() {
    let _timing = common::timing_lock();
    // Closed loop with warm-up and pipelining: every request the server answered is counted
    // once, as warm-up or measured.
    let server = TestServer::start(ServerOptions::default());
    let url = server.url();
    let (doc, _) = loadgen_json(
        "counts",
        &[
            &url,
            "-c",
            "6",
            "-t",
            "2",
            "--pipeline",
            "4",
            "--warmup",
            "0.3",
            "--duration",
            "0.7",
        ],
    );
    let t = &doc["targets"][0];
    let measured = t["requests"]["completed"].as_u64().unwrap();
    let warmup = t["warmup_requests"]["completed"].as_u64().unwrap();
    assert!(
        measured > 100 && warmup > 10,
        "measured {measured}, warm-up {warmup}"
    );
    assert_eq!(measured + warmup, server.requests());
    assert_eq!(t["requests"]["sent"].as_u64().unwrap(), measured);
    assert_eq!(t["requests"]["error_total"], 0);
    assert_eq!(t["requests"]["statuses"]["200"].as_u64().unwrap(), measured);
    assert_eq!(
        t["latency_us"]["corrected"]["count"].as_u64().unwrap(),
        measured
    );
}

#[test]
fn churn_mode_opens_one_connection_per_request() {
    let server = TestServer::start(ServerOptions::default());
    let url = server.url();
    let (doc, _) = loadgen_json(
        "churn",
        &[
            &url,
            "-c",
            "2",
            "--close",
            "--rate",
            "300",
            "--duration",
            "0.5",
        ],
    );
    let r = &doc["targets"][0]["requests"];
    let completed = r["completed"].as_u64().unwrap();
    assert!((148..=150).contains(&completed), "{completed} of 150 due");
    assert_eq!(r["connects"].as_u64().unwrap(), completed);
    assert_eq!(completed, server.requests());
}

#[test]
fn a_timeout_aborts_the_request_and_is_recorded_at_the_timeout() {
    let server = TestServer::start(ServerOptions {
        stall: Some((1, Duration::from_secs(1))),
    });
    let url = server.url();
    let (doc, _) = loadgen_json(
        "timeout",
        &[
            &url,
            "-c",
            "1",
            "--rate",
            "20",
            "--duration",
            "0.6",
            "--timeout",
            "0.2",
        ],
    );
    let t = &doc["targets"][0];
    assert_eq!(t["requests"]["errors"]["timeout"], 1);
    let max = t["latency_us"]["uncorrected"]["max"].as_u64().unwrap();
    assert!(
        (195_000..400_000).contains(&max),
        "timeout recorded at {max} µs"
    );
    // The requests after the aborted one went out on a new connection and succeeded.
    assert!(t["requests"]["completed"].as_u64().unwrap() >= 5);
    assert_eq!(t["requests"]["connects"].as_u64().unwrap(), 2);
}

#[test]
fn a_closed_loop_timeout_aborts_the_request_and_the_loop_goes_on() {
    // Closed loop keeps one timeout timer per connection and moves it request by request: the
    // stalled request must still be given up at its own deadline, not at an earlier request's.
    let server = TestServer::start(ServerOptions {
        stall: Some((3, Duration::from_secs(1))),
    });
    let url = server.url();
    let (doc, _) = loadgen_json(
        "closed-timeout",
        &[&url, "-c", "1", "--duration", "0.6", "--timeout", "0.2"],
    );
    let t = &doc["targets"][0];
    assert_eq!(t["requests"]["errors"]["timeout"], 1);
    let max = t["latency_us"]["uncorrected"]["max"].as_u64().unwrap();
    assert!(
        (195_000..400_000).contains(&max),
        "timeout recorded at {max} µs"
    );
    // Closed loop: corrected and uncorrected are the same, send-lag is 0 for every request.
    assert_eq!(
        t["latency_us"]["corrected"]["max"],
        t["latency_us"]["uncorrected"]["max"]
    );
    assert_eq!(t["send_lag_us"]["max"], 0);
    assert!(t["requests"]["completed"].as_u64().unwrap() >= 5);
    assert_eq!(t["requests"]["connects"].as_u64().unwrap(), 2);
}

#[test]
fn poisson_arrivals_keep_the_mean_rate_and_every_request_is_counted() {
    let _timing = common::timing_lock();
    let server = TestServer::start(ServerOptions::default());
    let url = server.url();
    let (doc, _) = loadgen_json(
        "poisson",
        &[
            &url,
            "--rate",
            "1000",
            "--arrivals",
            "poisson",
            "--seed",
            "7",
            "-c",
            "4",
            "--duration",
            "1.5",
        ],
    );
    assert_eq!(doc["config"]["seed"], 7);
    assert_eq!(doc["config"]["arrivals"], "poisson");
    let t = &doc["targets"][0];
    let sent = t["requests"]["sent"].as_u64().unwrap();
    // 1500 expected; a Poisson count has a standard deviation of sqrt(1500) ≈ 39.
    assert!((1300..=1700).contains(&sent), "{sent} requests");
    assert_eq!(
        t["requests"]["completed"].as_u64().unwrap(),
        server.requests()
    );
}

#[test]
fn method_headers_and_body_from_a_file_are_sent_as_given() {
    let server = TestServer::start(ServerOptions::default());
    let url = server.url();
    let dir = common::temp_dir("body-input");
    let body = dir.join("body.json");
    std::fs::write(&body, br#"{"hello":"world"}"#).unwrap();
    let body_arg = format!("@{}", body.display());
    let (doc, _) = loadgen_json(
        "body",
        &[
            &url,
            "-m",
            "PUT",
            "-H",
            "X-Test: yes",
            "--body",
            &body_arg,
            "-c",
            "1",
            "--rate",
            "50",
            "--duration",
            "0.2",
        ],
    );
    assert_eq!(doc["targets"][0]["requests"]["completed"], 10);
    let req = String::from_utf8(server.last_request()).unwrap();
    assert!(req.starts_with("PUT /hello HTTP/1.1\r\n"), "{req}");
    assert!(
        req.contains("\r\nX-Test: yes\r\n") && req.contains("\r\nContent-Length: 17\r\n"),
        "{req}"
    );
    assert!(req.ends_with("\r\n\r\n{\"hello\":\"world\"}"), "{req}");
}

#[test]
fn the_epoll_driver_counts_exactly_too_with_pipelined_open_loop() {
    // Open loop with room in the pipeline reads with a cancellable read that is woken for the
    // next intended start; under the epoll driver too, no byte and no response may be lost.
    let server = TestServer::start(ServerOptions::default());
    let url = server.url();
    let (doc, _) = loadgen_json(
        "epoll",
        &[
            &url,
            "--io-driver",
            "epoll",
            "--rate",
            "1000",
            "--pipeline",
            "4",
            "-c",
            "2",
            "--duration",
            "0.5",
        ],
    );
    assert_eq!(doc["config"]["driver"], "epoll");
    let r = &doc["targets"][0]["requests"];
    assert_eq!(r["error_total"], 0);
    assert_eq!(r["completed"].as_u64().unwrap(), server.requests());
    assert!(r["completed"].as_u64().unwrap() >= 490);
}
