//! An agent next to a backend that listens on a unix socket (`ringway-agent --backend
//! unix:PATH`), through the real binaries: requests and bodies both ways reach it and come back.
//! (That the pool reuses unix connections as it does TCP ones is `ringway-upstream`'s
//! `a_unix_socket_backend_is_pooled_like_a_tcp_one`.)
#![allow(clippy::unwrap_used)]

mod support;

use support::{AgentProc, Balancer, Client, TOKEN};

const HOST: &str = "unix.test";

#[test]
fn requests_and_bodies_reach_a_backend_on_a_unix_socket() {
    let dir = std::env::temp_dir().join(format!("ringway-unix-backend-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hello.sock");
    let _ = std::fs::remove_file(&path);
    let backend = ringway_hello::spawn_unix(&path).unwrap();
    let balancer = Balancer::start(&["--workers", "1"]);
    let spelled = format!("unix:{}", path.display());
    let _agent = AgentProc::start_for(balancer.agents, "u1", &[HOST], &spelled, TOKEN, &[]);
    balancer.wait_registered("u1", 1);

    let mut client = Client::connect(balancer.users);
    let r = client.get(HOST, "/hi").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("GET /hi"), "{}", r.text());
    assert_eq!(
        r.header("x-served-by"),
        Some(format!("hello@{spelled}").as_str())
    );

    client
        .send(
            format!("POST /echo HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 11\r\n\r\nhello unix")
                .as_bytes(),
        )
        .unwrap();
    client.send(b"!").unwrap();
    let r = client.response("POST").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello unix!");

    let r = client.get(HOST, "/bytes/100000").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 100_000);
    assert_eq!(backend.requests(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}
