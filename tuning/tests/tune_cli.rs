//! `ringway-tune` end to end: the binary runs, and its JSON has the documented keys.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ringway-tune"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty() || out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn json_report_has_the_documented_keys() {
    let (code, stdout) = run(&["--json", "--pin-plan", "1"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    for key in [
        "kernel_release",
        "cpu",
        "io_uring",
        "net",
        "rlimit_nofile",
        "transparent_hugepages",
        "cpu_governors",
        "findings",
        "summary",
        "pin_plan",
        "driver_probe",
    ] {
        assert!(v.get(key).is_some(), "missing key {key}");
    }
    for key in ["online", "allowed", "allowed_list", "affinity_mask"] {
        assert!(v["cpu"].get(key).is_some(), "missing cpu.{key}");
    }
    assert!(v["cpu"]["allowed"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    for key in [
        "disabled_sysctl",
        "plain",
        "coop_taskrun",
        "single_issuer",
        "defer_taskrun",
        "missing_ops",
        "auto_driver",
    ] {
        assert!(v["io_uring"].get(key).is_some(), "missing io_uring.{key}");
    }
    assert!(v["io_uring"]["coop_taskrun"]["ok"].is_boolean());
    assert!(matches!(
        v["io_uring"]["auto_driver"].as_str(),
        Some("uring" | "epoll")
    ));
    for key in [
        "somaxconn",
        "tcp_max_syn_backlog",
        "ip_local_port_range",
        "tcp_tw_reuse",
        "rmem_max",
        "wmem_max",
        "tcp_rmem",
        "tcp_wmem",
    ] {
        assert!(v["net"].get(key).is_some(), "missing net.{key}");
    }
    assert!(v["net"]["somaxconn"].is_u64());
    assert!(v["rlimit_nofile"].get("soft").is_some() && v["rlimit_nofile"].get("hard").is_some());

    let findings = v["findings"].as_array().unwrap();
    assert!(findings.len() >= 10);
    for f in findings {
        assert!(
            matches!(f["status"].as_str(), Some("ok" | "info" | "warn")),
            "{f}"
        );
        assert!(
            f["check"].is_string() && f["value"].is_string() && f["recommendation"].is_string()
        );
        if f["status"] == "warn" && f["check"] != "io_uring ring" {
            assert!(f["command"].is_string(), "warning without a command: {f}");
        }
    }
    let checks: Vec<&str> = findings
        .iter()
        .filter_map(|f| f["check"].as_str())
        .collect();
    for c in [
        "net.core.somaxconn",
        "net.ipv4.tcp_max_syn_backlog",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_tw_reuse",
        "RLIMIT_NOFILE",
        "transparent_hugepage",
        "kernel.io_uring_disabled",
    ] {
        assert!(checks.contains(&c), "no finding for {c}");
    }
    let s = &v["summary"];
    let total =
        s["ok"].as_u64().unwrap() + s["info"].as_u64().unwrap() + s["warn"].as_u64().unwrap();
    assert_eq!(total, findings.len() as u64);

    let plan = &v["pin_plan"];
    assert_eq!(plan["workers"].as_array().unwrap().len(), 1);
    assert_eq!(plan["workers"][0], v["cpu"]["allowed"][0]);
    assert!(plan["commands"][0]
        .as_str()
        .unwrap()
        .contains("ringway-balancer --workers 1"));
    assert!(v["driver_probe"].is_null());
}

#[test]
fn probe_drivers_times_both_drivers() {
    let (code, stdout) = run(&["--json", "--probe-drivers", "--probe-seconds", "0.05"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let probe = v["driver_probe"].as_array().unwrap();
    let drivers: Vec<&str> = probe.iter().filter_map(|t| t["driver"].as_str()).collect();
    assert!(
        drivers.contains(&"uring") && drivers.contains(&"epoll"),
        "{drivers:?}"
    );
    let epoll = probe.iter().find(|t| t["driver"] == "epoll").unwrap();
    assert!(epoll["round_trips"].as_u64().unwrap() > 0, "{epoll}");
    let uring = probe.iter().find(|t| t["driver"] == "uring").unwrap();
    if v["io_uring"]["plain"]["ok"] == true {
        assert!(uring["round_trips"].as_u64().unwrap() > 0, "{uring}");
    } else {
        assert!(uring["error"].is_string());
    }
}

#[test]
fn text_report_lists_findings_and_plan() {
    let (code, stdout) = run(&["--pin-plan", "0"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("ringway-tune: host report"));
    assert!(stdout.contains("net.core.somaxconn"));
    assert!(stdout.contains("Pin plan for "));
    assert!(stdout.contains("worker 0"));
}

#[test]
fn strict_exits_2_exactly_when_something_warns() {
    let (_, json) = run(&["--json"]);
    let v: Value = serde_json::from_str(&json).unwrap();
    let warnings = v["summary"]["warn"].as_u64().unwrap();
    let (code, _) = run(&["--strict"]);
    assert_eq!(code, if warnings > 0 { 2 } else { 0 });
}

#[test]
fn probe_can_be_pinned() {
    let (code, stdout) = run(&[
        "--json",
        "--probe-drivers",
        "--probe-seconds",
        "0.02",
        "--probe-cpu",
        "0",
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let epoll = v["driver_probe"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["driver"] == "epoll")
        .unwrap()
        .clone();
    assert!(epoll["round_trips"].as_u64().unwrap() > 0, "{epoll}");
}

#[test]
fn stall_probe_reports_the_cpu_taken_and_the_wake_up_lateness() {
    let (code, stdout) = run(&["--json", "--probe-stalls", "0.2", "--probe-cpu", "0"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let p = &v["stall_probe"];
    assert_eq!(p["cpu"], 0, "{p}");
    assert!(
        (p["spin_seconds"].as_f64().unwrap() - 0.1).abs() < 1e-9,
        "{p}"
    );
    let pct = p["stalled_percent"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&pct), "{p}");
    // 0.1 s of 1 ms sleeps: however late they wake, some are taken.
    let wakeups = p["wakeups"].as_u64().unwrap();
    assert!((1..=100).contains(&wakeups), "{p}");
    let late = &p["wake_late_us"];
    assert!(late["p50"].as_u64().unwrap() <= late["p99"].as_u64().unwrap());
    assert!(late["p99"].as_u64().unwrap() <= late["max"].as_u64().unwrap());
    assert!(p["max_gap_us"].as_u64().is_some());
    // Without the flag there is no probe.
    let (_, stdout) = run(&["--json"]);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert!(v["stall_probe"].is_null());
    // The text report says it in words.
    let (_, text) = run(&["--probe-stalls", "0.05"]);
    assert!(text.contains("Stall probe (unpinned)"), "{text}");
    assert!(text.contains("sleeps of 1 ms woke late"), "{text}");
}
