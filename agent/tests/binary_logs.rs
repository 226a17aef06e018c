//! The real `ringway-agent` binary's log: written to a file it holds no colour codes, and with
//! `--log-format json` every line is a JSON object with the usual fields.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts an agent whose balancer refuses connections (it logs and retries), stderr to `log`.
fn spawn_agent(log: &Path, extra: &[&str]) -> Child {
    // A port that was free a moment ago: nothing listens there, so connecting fails at once.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_ringway-agent"))
        .args(["--balancer", &closed.to_string(), "--route", "example.com"])
        .args(["--backend", "127.0.0.1:9", "--insecure-plaintext"])
        .args(extra)
        .env_remove("RINGWAY_LOG")
        .env_remove("RUST_LOG")
        .env_remove("RINGWAY_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn log_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ringway-agent-{}-{name}.log", std::process::id()))
}

/// Waits until the file holds `needle`, then stops the agent and returns the file's text.
fn read_when(mut child: Child, path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) || Instant::now() >= deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(path);
    assert!(text.contains(needle), "no {needle:?} in the log:\n{text}");
    text
}

#[test]
fn a_log_file_has_no_colour_codes() {
    let path = log_path("text");
    let child = spawn_agent(&path, &[]);
    let text = read_when(child, &path, "starting");
    assert!(
        !text.contains('\x1b'),
        "escape codes in the log file:\n{text:?}"
    );
    assert!(
        text.contains(" INFO ringway_agent: starting agent="),
        "{text}"
    );
}

#[test]
fn json_log_lines_parse_with_the_expected_fields() {
    let path = log_path("json");
    let child = spawn_agent(&path, &["--log-format", "json"]);
    let text = read_when(child, &path, "\"message\":\"starting\"");
    let mut starting = None;
    for line in text.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for field in ["timestamp", "level", "target", "message"] {
            assert!(value.get(field).is_some(), "no {field} in {line}");
        }
        if value["message"] == "starting" {
            starting = Some(value);
        }
    }
    let starting = starting.unwrap();
    assert_eq!(starting["level"], "INFO");
    assert_eq!(starting["backend"], "127.0.0.1:9");
    assert_eq!(starting["workers"], 1);
}

#[test]
fn log_level_filters() {
    let path = log_path("warn");
    let child = spawn_agent(&path, &["--log-level", "warn,ringway_io=info"]);
    // The runtime's start line passes the filter; the agent's own (info) does not.
    let text = read_when(child, &path, "worker runtime ready");
    assert!(!text.contains("starting"), "{text}");
}

#[test]
fn an_invalid_log_level_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_ringway-agent"))
        .args(["--log-level", "warn,ringway=loud"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("ringway-agent: --log-level"), "{stderr}");
}
