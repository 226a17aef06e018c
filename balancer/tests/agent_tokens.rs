//! Scoped, hashed agent tokens (`[[agents.tokens]]`) on the real balancer and agent binaries:
//! a wrong token refused, a route outside the token's scope refusing the whole hello (nothing
//! registered, counted in /metrics), an agent inside the scope served, a token removed or
//! narrowed by a reload sending its agents away, and `ringway-balancer token new` printing an
//! entry that makes a working configuration.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use ringway_core::tunnel::{Frame, ResetCode};
use sha2::{Digest, Sha256};
use support::{
    config_file, hello_backend, metric_labels, metric_samples, AgentProc, Balancer, Client,
    HelloOutcome, RawAgent, Response,
};

const SHOP_TOKEN: &str = "rwt_shop-test-token-not-random";
const BLOG_TOKEN: &str = "rwt_blog-test-token-not-random";

fn sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `[[agents.tokens]]` entry for `token`.
fn entry(name: &str, token: &str, hosts: &str, prefixes: &str) -> String {
    let mut text = format!(
        "[[agents.tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\nhosts = {hosts}\n",
        sha256_hex(token)
    );
    if !prefixes.is_empty() {
        text.push_str(&format!("prefixes = {prefixes}\n"));
    }
    text
}

fn shop_entry(prefixes: &str) -> String {
    entry("shop", SHOP_TOKEN, "[\"*.apps.test\"]", prefixes)
}

fn blog_entry() -> String {
    entry("blog", BLOG_TOKEN, "[\"blog.test\"]", "")
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A balancer with a plaintext agent listener: the raw hellos of these tests speak the tunnel
/// protocol without TLS (the tokens are what is under test; `tunnel_tls.rs` tests the TLS).
fn start(name: &str, text: &str) -> (Balancer, std::path::PathBuf) {
    let config = config_file(name, text);
    let balancer =
        Balancer::start_without_token(&["--config", arg(&config), "--insecure-plaintext"]);
    (balancer, config)
}

fn admin_get(balancer: &Balancer, path: &str) -> String {
    Client::connect(balancer.admin.unwrap())
        .get("admin", path)
        .unwrap()
        .text()
}

fn rejections(balancer: &Balancer, reason: &str) -> f64 {
    let text = admin_get(balancer, "/metrics");
    metric_samples(&text, "ringway_agent_rejections_total")
        .get(&metric_labels(&[("reason", reason)]))
        .copied()
        .unwrap_or_else(|| panic!("no {reason} sample:\n{text}"))
}

fn post_reload(admin: SocketAddr) -> Response {
    let mut c = Client::connect(admin);
    c.send(b"POST /reload HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    c.response("POST").unwrap()
}

/// Polls `check` every 10 ms until it holds or `within` passes; false when it never held.
fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn status(balancer: &Balancer, host: &str, path: &str) -> u16 {
    support::get(balancer.users, host, path).unwrap().status
}

fn raw_hello(balancer: &Balancer, id: &str, token: &str, routes: &[&str]) -> RawAgent {
    let routes: Vec<String> = routes.iter().map(|&r| r.to_owned()).collect();
    let mut hello = RawAgent::hello(id, &routes);
    hello.token = token.to_owned();
    RawAgent::connect(balancer.agents, hello, None)
}

#[test]
fn a_wrong_token_is_refused_counted_and_registers_nothing() {
    let (balancer, _config) = start("tokens-wrong", &shop_entry(""));
    let backend = hello_backend();
    let agent = AgentProc::start_with(
        balancer.agents,
        "intruder",
        &["shop.apps.test"],
        backend.addr,
        "rwt_guessed",
        &["--insecure-plaintext"],
    );
    assert!(
        balancer
            .log
            .wait_for("agent rejected", 1, Duration::from_secs(10)),
        "{}",
        balancer.log.text()
    );
    let log = balancer.log.text();
    assert!(
        log.contains("agent=intruder") && log.contains("reason=\"bad_token\""),
        "{log}"
    );
    assert!(
        !log.contains("rwt_guessed"),
        "the token is never logged:\n{log}"
    );
    assert!(
        agent
            .log
            .wait_for("does not accept this token", 1, Duration::from_secs(10)),
        "the agent says why: {}",
        agent.log.text()
    );
    assert_eq!(status(&balancer, "shop.apps.test", "/"), 404);
    assert!(rejections(&balancer, "bad_token") >= 1.0);
    assert_eq!(rejections(&balancer, "out_of_scope"), 0.0);
    let agents = admin_get(&balancer, "/agents");
    assert!(!agents.contains("intruder"), "{agents}");
}

#[test]
fn a_route_outside_the_scope_refuses_the_whole_hello() {
    let (balancer, _config) = start("tokens-scope", &(shop_entry("[\"/api\"]") + &blog_entry()));
    let backend = hello_backend();
    // One route in scope, one not: neither is registered.
    let agent = AgentProc::start_with(
        balancer.agents,
        "greedy",
        &["shop.apps.test/api", "shop.apps.test/admin"],
        backend.addr,
        SHOP_TOKEN,
        &["--insecure-plaintext"],
    );
    assert!(
        balancer
            .log
            .wait_for("agent rejected", 1, Duration::from_secs(10)),
        "{}",
        balancer.log.text()
    );
    let log = balancer.log.text();
    let line = log.lines().find(|l| l.contains("agent rejected")).unwrap();
    for field in [
        "agent=greedy",
        "route=\"shop.apps.test/admin\"",
        "token=\"shop\"",
        "reason=\"out_of_scope\"",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
    assert!(
        !log.contains(SHOP_TOKEN),
        "the token is never logged:\n{log}"
    );
    assert!(
        agent
            .log
            .wait_for("outside the hosts", 1, Duration::from_secs(10)),
        "the agent says why: {}",
        agent.log.text()
    );
    let routes = admin_get(&balancer, "/routes");
    assert!(
        !routes.contains("shop.apps.test"),
        "nothing registered: {routes}"
    );
    assert_eq!(status(&balancer, "shop.apps.test", "/api/x"), 404);
    assert!(rejections(&balancer, "out_of_scope") >= 1.0);

    // The same hello from another angle: a host the token does not cover.
    let mut raw = raw_hello(&balancer, "raw", SHOP_TOKEN, &["blog.test"]);
    assert_eq!(
        raw.handshake(),
        HelloOutcome::Rejected(ResetCode::OutOfScope)
    );
    let mut blog = raw_hello(&balancer, "raw", BLOG_TOKEN, &["blog.test/anything"]);
    assert_eq!(blog.handshake(), HelloOutcome::Accepted, "its own token");
}

#[test]
fn an_agent_inside_its_scope_is_served_under_its_prefix() {
    let (balancer, _config) = start("tokens-in-scope", &shop_entry("[\"/api\"]"));
    let backend = hello_backend();
    let _agent = AgentProc::start_with(
        balancer.agents,
        "shop",
        &["shop.apps.test/api"],
        backend.addr,
        SHOP_TOKEN,
        &["--insecure-plaintext"],
    );
    balancer.wait_registered("shop", 2);
    let log = balancer.log.text();
    assert!(log.contains("token=\"shop\""), "{log}");
    let r = support::get(balancer.users, "shop.apps.test", "/api/items").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("GET /api/items"), "{}", r.text());
    assert_eq!(
        status(&balancer, "shop.apps.test", "/other"),
        404,
        "only the prefix it registered"
    );
    assert_eq!(rejections(&balancer, "out_of_scope"), 0.0);
}

#[test]
fn removing_a_token_on_reload_disconnects_its_agents_and_their_routes_go() {
    let linger = "[agents]\nroute_linger = \"0s\"\n";
    let (balancer, config) = start(
        "tokens-revoke",
        &format!("{linger}{}{}", shop_entry(""), blog_entry()),
    );
    let backend = hello_backend();
    let shop = AgentProc::start_with(
        balancer.agents,
        "shop",
        &["shop.apps.test"],
        backend.addr,
        SHOP_TOKEN,
        &["--insecure-plaintext"],
    );
    let _blog = AgentProc::start_with(
        balancer.agents,
        "blog",
        &["blog.test"],
        backend.addr,
        BLOG_TOKEN,
        &["--insecure-plaintext"],
    );
    balancer.wait_registered("shop", 2);
    balancer.wait_registered("blog", 2);
    assert_eq!(status(&balancer, "shop.apps.test", "/"), 200);

    config_file("tokens-revoke", &format!("{linger}{}", blog_entry()));
    let r = post_reload(balancer.admin.unwrap());
    let body = r.text();
    assert_eq!(r.status, 200, "{body}");
    assert!(
        body.contains("\"agents_sent_away\": 2"),
        "one per worker: {body}"
    );
    assert!(
        eventually(Duration::from_secs(10), || !admin_get(&balancer, "/agents")
            .contains("\"shop\"")),
        "the shop agent is disconnected: {}",
        admin_get(&balancer, "/agents")
    );
    assert!(
        eventually(Duration::from_secs(10), || status(
            &balancer,
            "shop.apps.test",
            "/"
        ) == 404),
        "its route is gone"
    );
    assert!(
        shop.log.wait_for(
            "no longer accepts this agent's token",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        shop.log.text()
    );
    // It comes back (its backoff) and is refused now.
    assert!(
        eventually(Duration::from_secs(20), || rejections(
            &balancer,
            "bad_token"
        ) >= 1.0),
        "{}",
        balancer.log.text()
    );
    assert_eq!(
        status(&balancer, "blog.test", "/"),
        200,
        "the other token stays"
    );
    assert!(!balancer.log.text().contains(SHOP_TOKEN));
    drop(config);
}

#[test]
fn narrowing_a_scope_on_reload_sends_away_with_out_of_scope() {
    let (balancer, _config) = start("tokens-narrow", &shop_entry(""));
    let mut admin_route = raw_hello(&balancer, "a", SHOP_TOKEN, &["shop.apps.test/admin"]);
    assert_eq!(admin_route.handshake(), HelloOutcome::Accepted);
    let mut api_route = raw_hello(&balancer, "b", SHOP_TOKEN, &["shop.apps.test/api"]);
    assert_eq!(api_route.handshake(), HelloOutcome::Accepted);

    config_file("tokens-narrow", &shop_entry("[\"/api\"]"));
    let r = post_reload(balancer.admin.unwrap());
    assert!(r.text().contains("\"agents_sent_away\": 1"), "{}", r.text());
    let (frames, closed) = admin_route.read_until_closed(Duration::from_secs(10));
    assert!(closed, "the agent outside the new scope is disconnected");
    assert!(
        frames.iter().any(|f| matches!(
            f,
            Frame::GoAway {
                code: ResetCode::OutOfScope,
                ..
            }
        )),
        "{frames:?}"
    );
    let (_, closed) = api_route.read_until_closed(Duration::from_millis(300));
    assert!(!closed, "the one inside it stays");
    assert!(balancer
        .log
        .wait_for("sending it away", 1, Duration::from_secs(10)));
}

#[test]
fn token_new_prints_a_token_and_an_entry_that_accepts_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_ringway-balancer"))
        .args([
            "token",
            "new",
            "--hosts",
            "*.apps.test",
            "--prefix",
            "/api",
            "--name",
            "shop",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .lines()
        .find(|l| l.starts_with("rwt_"))
        .unwrap_or_else(|| panic!("no token line:\n{text}"));
    assert!(token.len() >= 4 + 22, "at least 128 bits: {token}");
    let entry = &text[text.find("[[agents.tokens]]").unwrap()..];
    assert!(
        !entry.contains(token),
        "the entry holds the hash only:\n{entry}"
    );

    let (balancer, config) = start("tokens-new", entry);
    let check = Command::new(env!("CARGO_BIN_EXE_ringway-balancer"))
        .args(["--check", "--config", arg(&config)])
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let mut ok = raw_hello(&balancer, "a", token, &["x.apps.test/api/v1"]);
    assert_eq!(ok.handshake(), HelloOutcome::Accepted);
    let mut outside = raw_hello(&balancer, "a", token, &["x.apps.test/"]);
    assert_eq!(
        outside.handshake(),
        HelloOutcome::Rejected(ResetCode::OutOfScope)
    );
    let mut wrong = raw_hello(&balancer, "a", "rwt_other", &["x.apps.test/api"]);
    assert_eq!(
        wrong.handshake(),
        HelloOutcome::Rejected(ResetCode::Unauthorized)
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_ringway-balancer"))
        .args(["token", "new", "--hosts", "a.test/api"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--hosts"));
}

#[test]
fn token_hash_turns_an_existing_token_into_an_entry() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringway-balancer"))
        .args(["token", "hash", "--hosts", "blog.test", "--name", "old"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"change-me\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("sha256 = \"{}\"", sha256_hex("change-me"))),
        "the line's newline is not part of the token:\n{text}"
    );
    let (balancer, _config) = start("tokens-hash", &text);
    let mut ok = raw_hello(&balancer, "a", "change-me", &["blog.test"]);
    assert_eq!(ok.handshake(), HelloOutcome::Accepted);
}

#[test]
fn a_plaintext_token_is_warned_about_as_deprecated() {
    let balancer = Balancer::start(&[]);
    assert!(
        balancer.log.wait_for(
            "deprecated: use [[agents.tokens]]",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        balancer.log.text()
    );
    assert!(balancer.log.text().contains("agents.token (or --token)"));
    let quiet = Balancer::start_without_token(&[]);
    // The warnings come before the workers start, on the same stderr.
    assert!(quiet
        .log
        .wait_for("worker started", 1, Duration::from_secs(10)));
    assert!(
        !quiet.log.text().contains("deprecated"),
        "{}",
        quiet.log.text()
    );
}
