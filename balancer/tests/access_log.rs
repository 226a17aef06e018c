//! The access log on the real binary: one line per request with what an operator needs, JSON or
//! text, written within a tick of the request's end; off by default.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use support::{hello_backend, AgentProc, Balancer, Client};

const HOST: &str = "app.test";

/// The file's lines once it has `n` of them (within 10 s).
fn lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "only {} lines: {text}",
            lines.len()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ringway-access-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("access.log")
}

#[test]
fn every_request_gets_one_json_line_with_its_fields() {
    let path = tmp("json");
    let path_s = path.to_str().unwrap().to_owned();
    let balancer = Balancer::start(&[
        "--route",
        HOST,
        "--access-log",
        &path_s,
        "--access-log-format",
        "json",
    ]);
    let backend = hello_backend();
    let _agent = AgentProc::start(balancer.agents, "a1", &[HOST], backend.addr);
    balancer.wait_registered("a1", 2);

    let mut c = Client::connect(balancer.users);
    assert_eq!(c.get(HOST, "/hi?x=1").unwrap().status, 200);
    c.send(
        format!("POST /echo HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 5\r\n\r\nhello").as_bytes(),
    )
    .unwrap();
    let echoed = c.response("POST").unwrap();
    assert_eq!((echoed.status, echoed.text().as_str()), (200, "hello"));
    assert_eq!(
        support::get(balancer.users, "nobody.test", "/x")
            .unwrap()
            .status,
        404
    );

    let lines = lines(&path, 3);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let entries: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let get = entries
        .iter()
        .find(|e| e["target"] == "/hi?x=1")
        .expect("the GET");
    assert_eq!(get["method"], "GET");
    assert_eq!(get["host"], HOST);
    assert_eq!(get["status"], 200);
    assert_eq!(get["route"], format!("{HOST}/"));
    assert_eq!(get["agent"], "a1");
    assert!(get["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(get["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(get["duration"].as_f64().unwrap() >= 0.0);
    assert!(get["time"].as_str().unwrap().ends_with('Z'));
    let post = entries
        .iter()
        .find(|e| e["method"] == "POST")
        .expect("the POST");
    assert_eq!(
        (post["bytes_in"].as_u64(), post["bytes_out"].as_u64()),
        (Some(5), Some(5))
    );
    let unknown = entries
        .iter()
        .find(|e| e["host"] == "nobody.test")
        .expect("the 404");
    assert_eq!(unknown["status"], 404);
    assert_eq!(unknown["route"], "");
    assert_eq!(unknown["agent"], "");
}

#[test]
fn text_lines_are_combined_like_and_quote_what_users_send() {
    let path = tmp("text");
    let path_s = path.to_str().unwrap().to_owned();
    let balancer = Balancer::start(&["--route", HOST, "--access-log", &path_s]);
    let backend = hello_backend();
    let _agent = AgentProc::start(balancer.agents, "a1", &[HOST], backend.addr);
    balancer.wait_registered("a1", 2);
    let r = support::get(balancer.users, HOST, "/a\"b").unwrap();
    assert_eq!(r.status, 200);
    let lines = lines(&path, 1);
    let line = &lines[0];
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.contains("\"GET /a\\\"b\" 200 "),
        "the quote is escaped: {line}"
    );
    assert!(line.contains(&format!("\"{HOST}\"")), "{line}");
    assert!(
        line.contains(" agent=a1 ") && line.contains(" id="),
        "{line}"
    );
}
