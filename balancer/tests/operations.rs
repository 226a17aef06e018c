//! What an operator sees of the real `ringway-balancer` binary: `--check` on a config file, the
//! messages of a broken one, the log on a file (no colour codes) or as JSON, and a peer that
//! repeats a mistake getting a bounded number of log lines.

mod support;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::Balancer;

fn balancer_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ringway-balancer")
}

fn check(config: &Path) -> Output {
    Command::new(balancer_bin())
        .args(["--check", "--config"])
        .arg(config)
        .output()
        .expect("running ringway-balancer --check")
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ringway-balancer.toml")
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ringway-{}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("writing a temporary file");
    path
}

#[test]
fn check_accepts_the_example_config() {
    let out = check(&example());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("# ringway-balancer: configuration OK"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[[route]]\npattern = \"example.com/api\"\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[[agents.tokens]]\nname = \"admin\"\nsha256 = \""),
        "{stdout}"
    );
    assert!(stdout.contains("prefixes = [\"/admin\"]\n"), "{stdout}");
    assert!(stdout.contains("max_body_bytes = 104857600"), "{stdout}");
    assert!(
        stdout.contains("max_connections_per_client = 200\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "pattern = \"example.com/api\"\nmax_concurrent = 64\nmax_queue = 128\nqueue_timeout = \"2s\"\n"
        ),
        "{stdout}"
    );
}

#[test]
fn check_output_is_a_config_that_checks_to_itself() {
    let first = check(&example());
    assert!(first.status.success());
    let printed = String::from_utf8(first.stdout).expect("UTF-8 output");
    let path = temp_file("printed.toml", &printed);
    let second = check(&path);
    let _ = std::fs::remove_file(&path);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&second.stdout), printed);
}

#[test]
fn check_names_file_line_key_and_reason_and_fails() {
    let path = temp_file(
        "bad.toml",
        "[listen]\nusers = \"127.0.0.1:8080\"\n\n[timeouts]\npark = \"2 parsecs\"\n",
    );
    let out = check(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing printed as a configuration");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "ringway-balancer: {}:5:8: timeouts.park: invalid duration \"2 parsecs\"",
        path.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(
        stderr.contains("    5 | park = \"2 parsecs\"\n      |        ^"),
        "{stderr}"
    );
}

#[test]
fn check_of_a_missing_file_fails() {
    let out = check(Path::new("/nonexistent/ringway.toml"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("reading /nonexistent/ringway.toml: No such file"),
        "{stderr}"
    );
}

/// Starts the balancer on loopback with stderr to `log`, waits for its listener lines.
fn spawn_logging_to(log: &Path, extra: &[&str]) -> Child {
    let mut child = Command::new(balancer_bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--agent-listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--no-pin",
        ])
        .arg("--agent-tls-cert")
        .arg(&support::pki::tunnel_pki().cert)
        .arg("--agent-tls-key")
        .arg(&support::pki::tunnel_pki().key)
        .args(extra)
        .env_remove("RINGWAY_LOG")
        .env_remove("RUST_LOG")
        .env_remove("RINGWAY_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(File::create(log).expect("creating the log file"))
        .spawn()
        .expect("spawning ringway-balancer");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines.any(|l| l.is_ok_and(|l| l.contains("workers")));
    assert!(ready, "the balancer did not start");
    child
}

/// Waits until the file at `path` contains `needle`.
fn wait_for_in_file(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_log_file_has_no_colour_codes() {
    let path = std::env::temp_dir().join(format!("ringway-{}-text.log", std::process::id()));
    let mut child = spawn_logging_to(&path, &[]);
    let text = wait_for_in_file(&path, "worker started");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
    assert!(
        !text.contains('\x1b'),
        "escape codes in the log file:\n{text:?}"
    );
    assert!(text.contains(" INFO worker{index=0}: "), "{text}");
}

#[test]
fn json_log_lines_parse_with_the_expected_fields() {
    let path = std::env::temp_dir().join(format!("ringway-{}-json.log", std::process::id()));
    let mut child = spawn_logging_to(&path, &["--log-format", "json", "--log-level", "info"]);
    let text = wait_for_in_file(&path, "worker started");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
    assert!(!text.contains('\x1b'), "{text:?}");
    let mut started = None;
    for line in text.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for field in ["timestamp", "level", "target", "message"] {
            assert!(value.get(field).is_some(), "no {field} in {line}");
        }
        if value["message"] == "worker started" {
            started = Some(value);
        }
    }
    let started = started.expect("the worker started line");
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["target"], "ringway_balancer::listener");
    assert!(started["driver"].is_string(), "{started}");
    assert_eq!(started["span"]["name"], "worker");
    assert_eq!(started["span"]["index"], 0);
}

#[test]
fn an_unknown_log_format_is_refused() {
    let out = Command::new(balancer_bin())
        .args(["--check", "--log-format", "xml"])
        .output()
        .expect("running ringway-balancer");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-format"));
}

#[test]
fn garbage_on_the_agent_port_gets_a_bounded_number_of_log_lines() {
    let config = temp_file(
        "limits.toml",
        "[log]\npeer_error_burst = 3\npeer_error_interval = \"1s\"\n",
    );
    // Garbage on a plaintext agent port reaches the tunnel's parser (on a TLS one, rustls').
    let balancer = Balancer::start(&[
        "--workers",
        "1",
        "--insecure-plaintext",
        "--config",
        config.to_str().unwrap(),
    ]);
    let started = Instant::now();
    for _ in 0..200 {
        let mut conn = TcpStream::connect(balancer.agents).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        // The balancer answers with a GOAWAY and closes: read to the end.
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest);
    }
    let sent_within_interval = started.elapsed() < Duration::from_secs(1);
    let summary = "agent protocol error: suppressed";
    assert!(
        balancer.log.wait_for(summary, 1, Duration::from_secs(10)),
        "no summary line; log:\n{}",
        balancer.log.text()
    );
    let _ = std::fs::remove_file(&config);
    let text = balancer.log.text();
    let logged = balancer
        .log
        .count("agent broke the protocol before its hello");
    let summaries: Vec<&str> = text.lines().filter(|l| l.contains(summary)).collect();
    let suppressed: u64 = summaries
        .iter()
        .map(|l| {
            let field = l.split("suppressed=").nth(1).expect("a suppressed field");
            field.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(
        logged as u64 + suppressed,
        200,
        "every error logged or counted:\n{text}"
    );
    if sent_within_interval {
        assert_eq!(logged, 3, "{text}");
        assert_eq!(summaries.len(), 1, "{text}");
        assert!(summaries[0].contains("suppressed 197 similar"), "{text}");
    } else {
        // A slow machine spread the connections over several intervals: 3 lines per interval.
        let intervals = started.elapsed().as_secs() as usize + 2;
        assert!(logged <= 3 * intervals, "{logged} lines:\n{text}");
    }
    assert!(summaries[0].contains("peer=127.0.0.1"), "{text}");
    assert!(text.lines().count() < 30, "the log stays short:\n{text}");
}

#[test]
fn config_md_lists_every_key_with_its_default() {
    let out = Command::new(balancer_bin())
        .arg("--check")
        .output()
        .expect("running ringway-balancer --check");
    assert!(out.status.success());
    let defaults: toml::Table = String::from_utf8_lossy(&out.stdout)
        .parse()
        .expect("--check prints TOML");
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/CONFIG.md"))
            .expect("docs/CONFIG.md");
    let mut checked = 0;
    for (section, table) in &defaults {
        let table = table
            .as_table()
            .expect("every top-level default is a table");
        for (key, value) in table {
            let row_start = format!("| `{section}.{key}` |");
            let row = doc
                .lines()
                .find(|l| l.starts_with(&row_start))
                .unwrap_or_else(|| panic!("docs/CONFIG.md has no row for {section}.{key}"));
            let default_column = row.split(" | ").nth(2).unwrap_or_default();
            let shown = match value {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert!(
                default_column.contains(&format!("`{shown}`")),
                "docs/CONFIG.md gives {section}.{key} the default {default_column:?}; --check says {shown}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} keys checked");
}
