//! The example systemd units (`examples/*.service`): they say what docs/systemd.md promises
//! (reload by SIGHUP, a stop timeout above the drain grace, the descriptor limit, hardening),
//! and `systemd-analyze verify` accepts them where it is installed (the binary paths are
//! pointed at stand-ins, since the binaries are not installed here).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn unit(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value of `key=` in `text` (the last one, as systemd reads it).
fn value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

fn seconds(text: &str, key: &str) -> Duration {
    let v = value(text, key).unwrap_or_else(|| panic!("{key} missing"));
    ringway_balancer::config::parse_duration(v).unwrap()
}

#[test]
fn the_balancer_unit_reloads_by_sighup_and_outwaits_the_drain() {
    let text = unit("ringway-balancer.service");
    assert_eq!(value(&text, "Type"), Some("simple"));
    assert_eq!(value(&text, "ExecReload"), Some("/bin/kill -HUP $MAINPID"));
    assert!(value(&text, "ExecStart")
        .unwrap()
        .contains("--config /etc/ringway/balancer.toml"));
    assert_eq!(value(&text, "Restart"), Some("on-failure"));
    assert_eq!(value(&text, "KillSignal"), Some("SIGTERM"));
    assert_eq!(value(&text, "LimitNOFILE"), Some("1048576"));
    let grace = ringway_balancer::Config::default().timeouts.shutdown_grace;
    assert!(seconds(&text, "TimeoutStopSec") > grace);
    for key in [
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "DynamicUser",
    ] {
        assert_eq!(value(&text, key), Some("yes"), "{key}");
    }
    assert_eq!(value(&text, "ProtectSystem"), Some("strict"));
    assert_eq!(
        value(&text, "AmbientCapabilities"),
        Some("CAP_NET_BIND_SERVICE")
    );
}

#[test]
fn the_agent_unit_outwaits_the_agent_drain() {
    let text = unit("ringway-agent.service");
    assert_eq!(value(&text, "Restart"), Some("on-failure"));
    assert_eq!(value(&text, "LimitNOFILE"), Some("1048576"));
    assert!(seconds(&text, "TimeoutStopSec") > Duration::from_secs(10));
    assert_eq!(
        value(&text, "ExecReload"),
        None,
        "the agent does not reload"
    );
}

#[test]
fn systemd_analyze_verifies_the_units() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed: the units are not verified");
        return;
    }
    let dir = std::env::temp_dir().join(format!("ringway-units-{}", std::process::id()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let mut units: Vec<PathBuf> = Vec::new();
    for (name, program) in [
        ("ringway-balancer.service", "ringway-balancer"),
        ("ringway-agent.service", "ringway-agent"),
    ] {
        let stand_in = bin.join(program);
        std::fs::write(&stand_in, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
        let text = unit(name).replace("/usr/local/bin/", &format!("{}/", bin.display()));
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        units.push(path);
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "systemd-analyze verify: {said}");
    assert!(
        !said.contains("ringway"),
        "no warning about the units: {said}"
    );
}
