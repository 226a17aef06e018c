//! TLS on the agent tunnel, through the real binaries, with certificates made here (rcgen):
//! requests cross a TLS tunnel (also from an HTTPS user, with curl when it is installed) on
//! connections handed to the worker they asked for; an agent that does not trust the
//! balancer's CA fails its handshake and keeps retrying; mutual TLS refuses an agent without a
//! client certificate and names one that has it after its certificate; plaintext against TLS
//! (either way) is refused with a clear line; and an agent listener that other hosts could
//! reach without any authentication does not start.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use support::pki::{tunnel_pki, Pki};
use support::{get, hello_backend, AgentProc, Balancer};

const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn requests_cross_the_tls_tunnel_on_every_worker() {
    let backend = hello_backend();
    let b = Balancer::start(&["--route", "tls.test"]);
    let agent = AgentProc::start(b.agents, "tls-agent", &["tls.test"], backend.addr);
    // Two workers: one connection was handed over with its TLS state.
    b.wait_registered("tls-agent", 2);
    assert!(b.log.count("tls=true") >= 2, "{}", b.log.text());
    for _ in 0..20 {
        let r = get(b.users, "tls.test", "/").unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = get(b.admin.unwrap(), "localhost", "/agents").unwrap();
    let agents: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    let agents = agents.as_array().unwrap();
    assert_eq!(agents.len(), 2, "{agents:?}");
    assert!(agents
        .iter()
        .all(|a| a["tls"] == true && a["id_from"] == "hello"));
    drop(agent);
}

#[test]
fn an_https_user_reaches_the_backend_through_the_tls_tunnel() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("curl is not installed: skipped");
        return;
    }
    let backend = hello_backend();
    let users = Pki::new("tunnel-https-users");
    let (cert, key) = users.issue("site", &["site.test"]);
    let text = format!(
        "[listen]\nhttps = \"127.0.0.1:0\"\n\n[[tls.cert]]\nhosts = [\"site.test\"]\ncert = {:?}\nkey = {:?}\n\n[[route]]\npattern = \"site.test\"\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let path = support::config_file("tunnel-https", &text);
    let b = Balancer::start(&["--config", path.to_str().unwrap()]);
    let _agent = AgentProc::start(b.agents, "https-agent", &["site.test"], backend.addr);
    b.wait_registered("https-agent", 2);
    let https = b.https.unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(users.ca_file())
        .args([
            "--resolve",
            &format!("site.test:{}:127.0.0.1", https.port()),
        ])
        .arg(format!("https://site.test:{}/echo", https.port()))
        .args(["--data-binary", "through two TLS hops"])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(body.contains("through two TLS hops"), "{body}");
}

#[test]
fn an_agent_that_does_not_trust_the_balancer_keeps_retrying() {
    let backend = hello_backend();
    let b = Balancer::start(&["--route", "ca.test"]);
    let other = Pki::new("tunnel-other-ca");
    let ca = other.ca_file();
    let agent = AgentProc::start_with(
        b.agents,
        "wrong-ca",
        &["ca.test"],
        backend.addr,
        support::TOKEN,
        &["--ca-file", ca.to_str().unwrap()],
    );
    // Every attempt fails the same way and is logged; the backoff retries.
    let failed = "TLS handshake with the balancer failed";
    assert!(
        agent.log.wait_for(failed, 3, PATIENCE),
        "{}",
        agent.log.text()
    );
    let text = agent.log.text();
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(
        text.contains("--ca-file"),
        "the hint names the flag: {text}"
    );
    assert_eq!(b.log.count("agent registered"), 0, "{}", b.log.text());
    let r = get(b.users, "ca.test", "/").unwrap();
    assert_eq!(r.status, 503);
}

#[test]
fn mutual_tls_refuses_an_agent_without_a_client_certificate() {
    let backend = hello_backend();
    let clients = Pki::new("tunnel-mtls-refused");
    let ca = clients.ca_file();
    let b = Balancer::start(&[
        "--route",
        "m.test",
        "--agent-client-ca",
        ca.to_str().unwrap(),
    ]);
    let agent = AgentProc::start(b.agents, "no-cert", &["m.test"], backend.addr);
    assert!(
        b.log.wait_for("agent TLS handshake failed", 2, PATIENCE),
        "{}",
        b.log.text()
    );
    assert!(b.log.text().contains("no certificates"), "{}", b.log.text());
    assert!(
        agent.log.wait_for("CertificateRequired", 2, PATIENCE),
        "{}",
        agent.log.text()
    );
    assert_eq!(b.log.count("agent registered"), 0);
}

#[test]
fn mutual_tls_names_the_agent_after_its_certificate() {
    let backend = hello_backend();
    let clients = Pki::new("tunnel-mtls-named");
    let (cert, key) = clients.issue("agent", &["agent-7.fleet.test"]);
    let ca = clients.ca_file();
    let b = Balancer::start(&[
        "--route",
        "n.test",
        "--agent-client-ca",
        ca.to_str().unwrap(),
    ]);
    let _agent = AgentProc::start_with(
        b.agents,
        "what-the-hello-says",
        &["n.test"],
        backend.addr,
        support::TOKEN,
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    b.wait_registered("agent-7.fleet.test", 2);
    let r = get(b.users, "n.test", "/").unwrap();
    assert_eq!(r.status, 200);
    let r = get(b.admin.unwrap(), "localhost", "/agents").unwrap();
    let agents: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    let agents = agents.as_array().unwrap();
    assert_eq!(agents.len(), 2, "{agents:?}");
    for a in agents {
        assert_eq!(a["id"], "agent-7.fleet.test", "{a}");
        assert_eq!(a["id_from"], "certificate", "{a}");
    }
}

#[test]
fn a_plaintext_agent_against_the_tls_listener_is_refused() {
    let backend = hello_backend();
    let b = Balancer::start(&["--route", "p.test"]);
    let agent = AgentProc::start_with(
        b.agents,
        "plain",
        &["p.test"],
        backend.addr,
        support::TOKEN,
        &["--insecure-plaintext"],
    );
    assert!(
        b.log.wait_for("agent TLS handshake failed", 1, PATIENCE),
        "{}",
        b.log.text()
    );
    assert!(
        b.log.text().contains("the peer does not speak TLS"),
        "{}",
        b.log.text()
    );
    let refused = "closed the plaintext connection before accepting the hello";
    assert!(
        agent.log.wait_for(refused, 2, PATIENCE),
        "{}",
        agent.log.text()
    );
    assert!(agent.log.text().contains("drop --insecure-plaintext"));
    assert_eq!(b.log.count("agent registered"), 0);
}

#[test]
fn a_tls_agent_against_a_plaintext_listener_is_refused() {
    let backend = hello_backend();
    let b = Balancer::start(&["--route", "q.test", "--insecure-plaintext"]);
    assert!(
        b.log
            .wait_for("the agent tunnel is not encrypted", 1, PATIENCE),
        "a warning at start: {}",
        b.log.text()
    );
    let agent = AgentProc::start(b.agents, "tls", &["q.test"], backend.addr);
    let plain = "agent began a TLS handshake but this listener is plaintext";
    assert!(b.log.wait_for(plain, 1, PATIENCE), "{}", b.log.text());
    assert!(
        agent
            .log
            .wait_for("TLS handshake with the balancer failed", 2, PATIENCE),
        "{}",
        agent.log.text()
    );
    assert_eq!(b.log.count("agent registered"), 0);
}

/// Starts the binary as an operator would, without the support's defaults.
fn start_bare(args: &[&str]) -> std::process::Output {
    let pki = tunnel_pki();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringway-balancer"));
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "off",
        "--workers",
        "1",
    ])
    .arg("--no-pin")
    .args(args);
    if !args.contains(&"--insecure-plaintext") {
        cmd.arg("--agent-tls-cert")
            .arg(&pki.cert)
            .arg("--agent-tls-key")
            .arg(&pki.key);
    }
    cmd.env_remove("RINGWAY_TOKEN").output().unwrap()
}

#[test]
fn an_exposed_agent_listener_without_authentication_does_not_start() {
    let out = start_bare(&["--agent-listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen.agents"), "{err}");
    for fix in ["agents.tokens", "agents.tls.client_ca", "loopback"] {
        assert!(err.contains(fix), "the message names {fix}: {err}");
    }
    // Plaintext is refused the same way; TLS without a certificate names both ways out.
    let out = start_bare(&["--agent-listen", "0.0.0.0:0", "--insecure-plaintext"]);
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(env!("CARGO_BIN_EXE_ringway-balancer"))
        .args(["--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0"])
        .args(["--admin-listen", "off", "--workers", "1", "--no-pin"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[agents.tls] cert"), "{err}");
    assert!(err.contains("insecure_plaintext"), "{err}");
}
