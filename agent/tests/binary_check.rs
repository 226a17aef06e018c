//! `ringway-agent --check`: the flags validated, the effective settings printed as TOML, exit 0;
//! a missing or wrong flag named, exit 2.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn agent(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ringway-agent"))
        .args(args)
        .env_remove("RINGWAY_BALANCER")
        .env_remove("RINGWAY_TOKEN")
        .output()
        .unwrap()
}

#[test]
fn check_prints_the_effective_settings() {
    let out = agent(&[
        "--check",
        "--balancer",
        "lb.example:7000",
        "--route",
        "example.com/api",
        "--backend",
        "127.0.0.1:3000",
        "--workers",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("# ringway-agent: flags OK"), "{stdout}");
    let settings: toml::Table = stdout.parse().unwrap();
    assert_eq!(settings["balancer"][0].as_str(), Some("lb.example:7000"));
    assert_eq!(settings["workers"].as_integer(), Some(2));
    assert_eq!(settings["pool-idle"].as_str(), Some("15s"));
    assert_eq!(settings["response-timeout"].as_str(), Some("1m"));
}

#[test]
fn check_names_what_is_missing_and_fails() {
    let out = agent(&["--check", "--route", "a.test", "--backend", "127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("at least one --balancer HOST:PORT is required"),
        "{stderr}"
    );
    let out = agent(&["--check", "--drain-grace", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--drain-grace"));
}
