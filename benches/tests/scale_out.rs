//! Scale-out as a user sees it: `benches/scripts/scale_out.sh --quick` builds, in network
//! namespaces, three balancers behind the kernel's ECMP route (the L4 front), two agents with a
//! hello backend each that know the balancers by one DNS name, and a client; then, under
//! open-loop load, kills a balancer, starts it again and adds a fourth through DNS alone.
//!
//! The script fails when a phase does not reach its condition within its (generous) deadline;
//! this test asserts its figures: both backends answer through every balancer and through the
//! front, requests succeed again soon after the kill, the restarted balancer gets its agents
//! back and serves, the fourth one gets agents and traffic. It needs root and `ip netns`: without
//! them it says so and passes (`.ci/run` runs as root).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole quick run takes about 30 s; past this the script is stopped (its trap cleans up).
const RUN_LIMIT: Duration = Duration::from_secs(150);
/// Requests must succeed again this soon after a balancer is killed: generous, it only catches
/// a front that does not stop sending users to the dead one (measured: about 0.1 s,
/// results/scale-out.md). The quick run keeps the balancer down for 5 s.
const RECOVERY_BOUND_MS: f64 = 4_000.0;
/// ... and from then on to the restart, nothing may fail.
const ERROR_FREE_MS: f64 = 1_000.0;

/// Why this machine cannot run the test, if it cannot.
fn unusable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("?")
        .to_owned();
    if uid != "0" {
        return Some(format!(
            "not root (uid {uid}): network namespaces need root"
        ));
    }
    let probe = format!("rwsoprobe{}", std::process::id());
    let added = Command::new("ip")
        .args(["netns", "add", &probe])
        .stderr(Stdio::null())
        .status();
    match added {
        Ok(s) if s.success() => {
            let _ = Command::new("ip").args(["netns", "del", &probe]).status();
        }
        Ok(_) => return Some("`ip netns add` failed: network namespaces unusable here".into()),
        Err(e) => return Some(format!("no `ip` command (iproute2): {e}")),
    }
    match Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
    {
        Ok(_) => None,
        Err(e) => Some(format!("no curl: {e}")),
    }
}

/// The directory holding the workspace's binaries (`cargo test --workspace` builds them all).
fn bin_dir() -> PathBuf {
    let report = PathBuf::from(env!("CARGO_BIN_EXE_scale-out-report"));
    let dir = report.parent().unwrap().to_path_buf();
    for bin in [
        "ringway-balancer",
        "ringway-agent",
        "ringway-demo",
        "ringway-loadgen",
    ] {
        assert!(
            dir.join(bin).exists(),
            "{} is missing: run `cargo build --workspace` (cargo test --workspace builds it)",
            dir.join(bin).display()
        );
    }
    dir
}

fn run_script(out: &Path) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/scale_out.sh");
    let log = out.join("script.log");
    let mut child = Command::new(&script)
        .arg("--quick")
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--out")
        .arg(out)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(out.join("script.err")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            // SIGTERM, not SIGKILL: the script's trap removes its namespaces and processes.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let err = std::fs::read_to_string(out.join("script.err")).unwrap_or_default();
    (status.success(), err)
}

fn summary(out: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(out.join("summary"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn balancers_behind_an_ecmp_front_survive_a_kill_and_grow_through_dns() {
    if let Some(why) = unusable() {
        eprintln!("scale_out: skipped: {why}");
        return;
    }
    let out = std::env::temp_dir().join(format!("ringway-scale-out-test-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let (ok, err) = run_script(&out);
    assert!(ok, "scale_out.sh --quick failed:\n{err}");
    let s = summary(&out);
    let get = |k: &str| {
        s.get(k)
            .unwrap_or_else(|| panic!("no {k} in the summary: {s:?}"))
            .as_str()
    };
    let num = |k: &str| -> f64 {
        get(k)
            .parse()
            .unwrap_or_else(|e| panic!("{k}={:?}: {e}", get(k)))
    };

    // Both agents' backends answer through each balancer and through the front.
    for via in ["b1", "b2", "b3", "front"] {
        let seen = get(&format!("backends_via_{via}"));
        for backend in ["hello@10.77.21.2:3000", "hello@10.77.22.2:3000"] {
            assert!(
                seen.contains(backend),
                "{backend} not reached via {via}: {seen}"
            );
        }
    }
    // The load went through every balancer, and nothing failed before the kill.
    for b in ["b1", "b2", "b3", "b4"] {
        assert!(num(&format!("app_2xx_{b}")) > 0.0, "no load on {b}: {s:?}");
    }
    assert_eq!(num("failed_before_kill"), 0.0, "{s:?}");
    // After the kill, requests succeed again within the bound; the rest of the run is served.
    assert!(
        num("recovery_ms") <= RECOVERY_BOUND_MS,
        "requests kept failing {} ms after the kill: {s:?}",
        get("recovery_ms")
    );
    assert!(
        num("error_free_before_restart_ms") >= ERROR_FREE_MS,
        "requests still failed {} ms before the restart: {s:?}",
        get("error_free_before_restart_ms")
    );
    assert!(num("completed_after_restart") > 0.0, "{s:?}");
    // The restarted balancer got its agents back and serves again; the fourth, added through DNS
    // alone, got the agents and traffic.
    for k in [
        "agents_back_ms",
        "b2_traffic_ms",
        "b4_agents_ms",
        "b4_traffic_ms",
    ] {
        assert_ne!(get(k), "none", "{k}: {s:?}");
    }
    let _ = std::fs::remove_dir_all(&out);
}
