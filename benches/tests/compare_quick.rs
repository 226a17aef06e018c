//! `compare --quick` end to end: it starts the backend and every system it can (ringway alone on a
//! machine without the peers), drives real load through them, stops everything, and writes a
//! results directory whose results.json parses into the documented schema.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ringway_benches::compare::results::Results;

/// The binaries next to `compare` (this profile's target directory), built if one is missing.
fn bin_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_compare"))
        .parent()
        .expect("compare has a directory")
        .to_path_buf();
    let needed = [
        "ringway-balancer",
        "ringway-agent",
        "ringway-loadgen",
        "ringway-tune",
    ];
    if needed.iter().any(|b| !dir.join(b).is_file()) {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .args([
                "build",
                "-q",
                "-p",
                "ringway-balancer",
                "-p",
                "ringway-agent",
            ])
            .args(["-p", "ringway-loadgen", "-p", "ringway-tuning", "--bins"]);
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().expect("cargo runs").success(),
            "cargo build failed"
        );
    }
    dir
}

#[test]
fn quick_small_get_writes_a_valid_results_directory() {
    quick_small_get(18680, &[]);
}

#[test]
fn quick_https_runs_ringway_behind_its_https_listener() {
    // ringway alone (the hello backend), so it runs in seconds wherever the test runs: the
    // HTTPS listener in classic mode, and the tunnel over TLS behind it.
    let r = quick(
        "https-small-get",
        18700,
        &[
            "--no-peers",
            "--systems",
            "classic-uring,ringway-uring-tls-tunnel",
        ],
    );
    assert!(r.plan.request.https);
    assert_eq!(r.runs.len(), 2);
    for run in &r.runs {
        assert!(
            run.label
                .contains("HTTPS: TLSv1_3 TLS13_AES_128_GCM_SHA256 X25519, no resumption"),
            "the probe's findings are in the label: {}",
            run.label
        );
        let closed = run.closed.as_ref().expect("a closed-loop run");
        assert!(closed.requests > 0 && closed.errors == 0, "{closed:?}");
    }
    let tunnel = r
        .runs
        .iter()
        .find(|x| x.system == "ringway-uring-tls-tunnel")
        .expect("the TLS tunnel ran");
    assert!(tunnel.label.contains("tunnel TLS 1.3"), "{}", tunnel.label);
}

#[test]
fn without_peers_ringway_runs_alone_against_the_hello_backend() {
    let r = quick_small_get(18690, &["--no-peers"]);
    assert_eq!(r.runs.len(), 1, "ringway alone");
    assert_eq!(r.baseline, "ringway-uring");
    assert!(r
        .skipped
        .iter()
        .any(|s| s.system == "nginx" && s.reason.contains("not installed")));
    assert!(
        r.notes.iter().any(|n| n.contains("hello backend")),
        "{:?}",
        r.notes
    );
}

/// Runs `compare --quick --scenario small-get` with ports from `port` and checks its directory.
fn quick_small_get(port: u16, extra: &[&str]) -> Results {
    let r = quick("small-get", port, extra);
    // ringway ran whatever else was installed, answered every request, and was summarised.
    let rw = r
        .runs
        .iter()
        .find(|x| x.system == "ringway-uring")
        .expect("ringway-uring ran");
    let closed = rw.closed.as_ref().expect("a closed-loop run");
    assert!(closed.requests > 0 && closed.errors == 0, "{closed:?}");
    assert!(closed.total_cpu_us > 0.0 && closed.far_cpu_us.is_some());
    let open = rw.open.as_ref().expect("an open-loop run");
    assert!(open.requests > 0 && open.errors == 0, "{open:?}");
    r
}

/// Runs `compare --quick --scenario SCENARIO` with ports from `port` and checks its directory.
fn quick(scenario: &str, port: u16, extra: &[&str]) -> Results {
    let out = std::env::temp_dir().join(format!(
        "ringway-compare-test-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&out).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_compare"))
        .args([
            "--scenario",
            scenario,
            "--quick",
            "--no-build",
            "--base-port",
        ])
        .arg(port.to_string())
        .args(extra)
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--out-dir")
        .arg(&out)
        .output()
        .expect("compare runs");
    assert!(
        run.status.success(),
        "compare --quick failed ({}): {}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let printed = String::from_utf8_lossy(&run.stdout);
    assert!(
        printed.contains("**Headline:**"),
        "the summary is printed: {printed}"
    );

    let runs: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "one results directory: {runs:?}");
    let dir = &runs[0];
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.ends_with(&format!("-{scenario}-quick")), "{name}");
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    let r: Results = serde_json::from_str(&text).expect("results.json has the documented schema");
    assert_eq!((r.schema_version, r.tool.as_str()), (1, "ringway-compare"));
    assert!(r.quick);
    assert_eq!(r.scenario, scenario);
    assert_eq!(r.commit.len(), 40, "a full commit hash: {}", r.commit);

    assert_eq!(r.summary.len(), r.runs.len());
    assert!(r.summary.iter().any(|s| s.system == r.baseline));
    for run in &r.runs {
        let hgrm = run.hgrm.as_ref().expect("an hgrm per load run");
        let h = std::fs::read_to_string(dir.join(hgrm)).unwrap();
        assert!(
            h.contains("Percentile"),
            "{hgrm} is a percentile distribution"
        );
    }
    for file in ["summary.md", "host.txt", "commands.txt", "commit.txt"] {
        assert!(dir.join(file).is_file(), "{file} written");
    }
    let svg = std::fs::read_to_string(dir.join("latency.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("-uring"));
    let commands = std::fs::read_to_string(dir.join("commands.txt")).unwrap();
    assert!(commands.contains("ringway-balancer") && commands.contains("ringway-loadgen"));
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("Quick mode") && summary.contains("ringway"));

    // Nothing it started is still listening.
    let entrance = std::net::TcpStream::connect(("127.0.0.1", port + 1));
    assert!(
        entrance.is_err(),
        "the entrance port is closed after the run"
    );
    let backend = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(backend.is_err(), "the backend port is closed after the run");
    std::fs::remove_dir_all(&out).unwrap();
    r
}
