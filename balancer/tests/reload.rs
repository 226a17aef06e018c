//! Hot reload on the real balancer (SIGHUP, `POST /reload`): routes added, an invalid file that
//! changes nothing, the user listener moved to another port, reloads under a steady load that
//! fail no request, a token change that sends an agent away, and a `runtime` change reported as
//! needing a restart.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ringway_core::tunnel::{Frame, ResetCode};
use support::{
    config_file, fixed_port, hello_backend, signal, AgentProc, Balancer, Client, HelloOutcome,
    RawAgent, Response,
};

const HOST: &str = "app.test";

/// `POST /reload` on the admin listener.
fn post_reload(admin: SocketAddr) -> Response {
    let mut c = Client::connect(admin);
    c.send(b"POST /reload HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    c.response("POST").unwrap()
}

fn metrics(admin: SocketAddr) -> String {
    Client::connect(admin)
        .get("admin", "/metrics")
        .unwrap()
        .text()
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

fn status(addr: SocketAddr, host: &str) -> u16 {
    support::get(addr, host, "/").map_or(0, |r| r.status)
}

fn route(pattern: &str) -> String {
    format!("[[route]]\npattern = \"{pattern}\"\n")
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn sighup_adds_a_route_from_the_file() {
    let config = config_file("sighup", &route(HOST));
    let balancer = Balancer::start(&["--config", arg(&config), "--park-time", "100ms"]);
    assert_eq!(status(balancer.users, "new.test"), 404, "unknown before");

    config_file("sighup", &format!("{}{}", route(HOST), route("new.test")));
    signal(balancer.pid(), "HUP");
    assert!(
        eventually(Duration::from_secs(10), || status(
            balancer.users,
            "new.test"
        ) == 503),
        "after the reload the route is known (503: no agent yet); log:\n{}",
        balancer.log.text()
    );
    let backend = hello_backend();
    let _agent = AgentProc::start(balancer.agents, "a1", &["new.test"], backend.addr);
    balancer.wait_registered("a1", 2);
    assert_eq!(status(balancer.users, "new.test"), 200);
    assert!(balancer
        .log
        .wait_for("configuration reloaded", 1, Duration::from_secs(10)));
    let log = balancer.log.text();
    assert!(
        log.contains("new.test"),
        "the log names the added route: {log}"
    );
}

#[test]
fn an_invalid_file_changes_nothing_and_says_where_it_is_wrong() {
    let config = config_file("invalid", &route(HOST));
    let balancer = Balancer::start(&["--config", arg(&config)]);
    let admin = balancer.admin.unwrap();
    let backend = hello_backend();
    let _agent = AgentProc::start(balancer.agents, "a1", &[HOST], backend.addr);
    balancer.wait_registered("a1", 2);
    assert_eq!(status(balancer.users, HOST), 200);

    config_file(
        "invalid",
        &format!("{}[timeouts]\npark = \"2 parsecs\"\n", route(HOST)),
    );
    let r = post_reload(admin);
    let body = r.text();
    assert_eq!(r.status, 422, "{body}");
    assert!(body.contains("timeouts.park"), "names the key: {body}");
    assert!(body.contains(".toml:4:"), "names the file and line: {body}");
    assert!(body.contains("unchanged"), "{body}");

    assert_eq!(
        status(balancer.users, HOST),
        200,
        "the old config still serves"
    );
    let text = metrics(admin);
    assert!(
        text.contains("ringway_reloads_total{result=\"failed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ringway_reloads_total{result=\"ok\"} 0"),
        "{text}"
    );
    assert!(text.contains("ringway_config_generation 1"), "{text}");
    assert!(
        text.contains("ringway_config_last_reload_success_timestamp_seconds"),
        "{text}"
    );
    assert!(balancer
        .log
        .wait_for("reload failed", 1, Duration::from_secs(10)));
    let log = balancer.log.text();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("reload failed") && l.contains("park")),
        "{log}"
    );
}

/// A config file naming every listener (fixed loopback ports), with `extra` appended.
fn listen_config(users: SocketAddr, agents: SocketAddr, admin: SocketAddr, extra: &str) -> String {
    format!(
        "[listen]\nusers = \"{users}\"\nagents = \"{agents}\"\nadmin = \"{admin}\"\n\
         [runtime]\nworkers = 2\n{extra}{}",
        route(HOST)
    )
}

#[test]
fn a_listener_change_moves_the_user_port_and_keeps_open_connections() {
    let (old_users, new_users, agents, admin, new_admin) = (
        fixed_port(),
        fixed_port(),
        fixed_port(),
        fixed_port(),
        fixed_port(),
    );
    let config = config_file("listen", &listen_config(old_users, agents, admin, ""));
    let balancer = Balancer::start_from_config(&["--config", arg(&config)]);
    assert_eq!(balancer.users, old_users);
    let backend = hello_backend();
    let _agent = AgentProc::start(agents, "a1", &[HOST], backend.addr);
    balancer.wait_registered("a1", 2);
    let mut kept = Client::connect(old_users);
    assert_eq!(kept.get(HOST, "/").unwrap().status, 200);

    config_file("listen", &listen_config(new_users, agents, new_admin, ""));
    let r = post_reload(admin);
    let body = r.text();
    assert_eq!(r.status, 200, "{body}");
    assert!(
        body.contains(&format!("\"users_rebound\": \"{new_users}\"")),
        "{body}"
    );
    assert!(
        body.contains(&format!("\"admin_rebound\": \"{new_admin}\"")),
        "{body}"
    );
    assert!(
        metrics(new_admin).contains("ringway_config_generation 2"),
        "the admin listener moved"
    );
    assert!(
        eventually(Duration::from_secs(5), || TcpStream::connect_timeout(
            &admin,
            Duration::from_secs(1)
        )
        .is_err()),
        "the old admin port is closed"
    );

    assert_eq!(status(new_users, HOST), 200, "the new port serves");
    assert!(
        eventually(Duration::from_secs(5), || {
            matches!(
                TcpStream::connect_timeout(&old_users, Duration::from_secs(1)),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused
            )
        }),
        "the old port refuses new connections"
    );
    let r = kept.get(HOST, "/").unwrap();
    assert_eq!(
        r.status, 200,
        "a connection opened before the reload is still served"
    );
    assert!(
        balancer
            .log
            .wait_for("replaced by a reload", 1, Duration::from_secs(10)),
        "{}",
        balancer.log.text()
    );
}

#[test]
fn reloads_under_a_steady_load_fail_no_request() {
    let config = config_file("load", &route(HOST));
    let balancer = Balancer::start(&["--config", arg(&config)]);
    let admin = balancer.admin.unwrap();
    let backend = hello_backend();
    let _agent = AgentProc::start(balancer.agents, "a1", &[HOST], backend.addr);
    balancer.wait_registered("a1", 2);

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let users = balancer.users;
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
            thread::spawn(move || {
                // Keep-alive connections, and a fresh one every 50 requests.
                let mut n = 0u64;
                let mut client = Client::connect(users);
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    if n % 50 == 0 {
                        client = Client::connect(users);
                    }
                    match client.get(HOST, &format!("/?client={i}&n={n}")) {
                        Ok(r) if r.status == 200 => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => failures.lock().unwrap().push(format!(
                            "status {}: {}",
                            r.status,
                            r.text()
                        )),
                        Err(e) => {
                            failures.lock().unwrap().push(format!("request: {e}"));
                            client = Client::connect(users);
                        }
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    for round in 0..5 {
        // Something different each time: a route more, another park time, another picker.
        let picker = ["round-robin", "p2c-peak-ewma"][round % 2];
        config_file(
            "load",
            &format!(
                "[timeouts]\npark = \"{}s\"\n[agents]\npicker = \"{picker}\"\n{}{}",
                round + 1,
                route(HOST),
                route(&format!("r{round}.test"))
            ),
        );
        let seen = ok.load(Ordering::Relaxed);
        let r = post_reload(admin);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            eventually(Duration::from_secs(10), || ok.load(Ordering::Relaxed)
                > seen + 20),
            "requests go on after reload {round}"
        );
    }
    // About two seconds of load in all, however fast the reloads went.
    while started.elapsed() < Duration::from_secs(2) {
        thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed requests of {}: {failures:?}",
        failures.len(),
        ok.load(Ordering::Relaxed)
    );
    assert!(ok.load(Ordering::Relaxed) > 100);
    let text = metrics(admin);
    assert!(
        text.contains("ringway_reloads_total{result=\"ok\"} 5"),
        "{text}"
    );
    assert!(text.contains("ringway_config_generation 6"), "{text}");
}

fn token_route(token: &str) -> String {
    format!("[[route]]\npattern = \"{HOST}\"\ntoken = \"{token}\"\n")
}

fn raw_agent(balancer: &Balancer, id: &str, token: &str) -> RawAgent {
    let mut hello = RawAgent::hello(id, &[HOST.to_owned()]);
    hello.token = token.to_owned();
    RawAgent::connect(balancer.agents, hello, None)
}

#[test]
fn a_token_change_sends_away_agents_whose_token_is_no_longer_valid() {
    let config = config_file("token", &token_route("old-secret"));
    // The raw agents speak the tunnel protocol in plaintext.
    let balancer = Balancer::start(&["--insecure-plaintext", "--config", arg(&config)]);
    let admin = balancer.admin.unwrap();
    let mut agent = raw_agent(&balancer, "a-old", "old-secret");
    assert_eq!(agent.handshake(), HelloOutcome::Accepted);

    config_file("token", &token_route("new-secret"));
    let r = post_reload(admin);
    let body = r.text();
    assert_eq!(r.status, 200, "{body}");
    assert!(body.contains("\"agents_sent_away\": 1"), "{body}");

    let (frames, closed) = agent.read_until_closed(Duration::from_secs(10));
    assert!(closed, "the agent is disconnected");
    assert!(
        frames.iter().any(|f| matches!(
            f,
            Frame::GoAway {
                code: ResetCode::Unauthorized,
                ..
            }
        )),
        "with a GOAWAY saying why: {frames:?}"
    );
    let mut again = raw_agent(&balancer, "a-old", "old-secret");
    assert_eq!(
        again.handshake(),
        HelloOutcome::Rejected(ResetCode::Unauthorized),
        "a new hello with the old token is refused"
    );
    let mut fresh = raw_agent(&balancer, "a-new", "new-secret");
    assert_eq!(fresh.handshake(), HelloOutcome::Accepted);
}

#[test]
fn a_runtime_change_is_reported_as_needing_a_restart() {
    let any = "127.0.0.1:0";
    let text = |workers: u32| {
        format!(
            "[listen]\nusers = \"{any}\"\nagents = \"{any}\"\nadmin = \"{any}\"\n\
             [runtime]\nworkers = {workers}\n{}",
            route(HOST)
        )
    };
    let config = config_file("runtime", &text(2));
    let balancer = Balancer::start_from_config(&["--config", arg(&config), "--park-time", "100ms"]);
    let admin = balancer.admin.unwrap();
    config_file("runtime", &text(3));
    let r = post_reload(admin);
    let body = r.text();
    assert_eq!(r.status, 200, "a warning, not an error: {body}");
    assert!(
        body.contains("runtime.workers (running: 2, file: 3)"),
        "{body}"
    );
    assert!(
        balancer
            .log
            .wait_for("needs a restart", 1, Duration::from_secs(10)),
        "{}",
        balancer.log.text()
    );
    assert_eq!(status(balancer.users, HOST), 503, "still serving");
}

#[test]
fn without_a_config_file_a_reload_changes_nothing_and_says_so() {
    let balancer = Balancer::start(&["--route", HOST]);
    let r = post_reload(balancer.admin.unwrap());
    let body = r.text();
    assert_eq!(r.status, 200, "{body}");
    assert!(body.contains("no --config file"), "{body}");
    assert!(body.contains("\"routes_added\": []"), "{body}");
}

#[test]
fn a_reload_turns_the_access_log_on() {
    let config = config_file("access", &route(HOST));
    let balancer = Balancer::start(&["--config", arg(&config)]);
    let backend = hello_backend();
    let _agent = AgentProc::start(balancer.agents, "a1", &[HOST], backend.addr);
    balancer.wait_registered("a1", 2);
    let log = std::env::temp_dir().join(format!("ringway-test-{}-access.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    config_file(
        "access",
        &format!(
            "[log]\naccess = \"{}\"\naccess_format = \"json\"\n{}",
            log.display(),
            route(HOST)
        ),
    );
    let r = post_reload(balancer.admin.unwrap());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        support::get(balancer.users, HOST, "/after-reload")
            .unwrap()
            .status,
        200
    );
    assert!(
        eventually(Duration::from_secs(5), || std::fs::read_to_string(&log)
            .is_ok_and(|t| t.contains("/after-reload"))),
        "the request is in the new access log"
    );
    let _ = std::fs::remove_file(&log);
}

/// A static route's backends (classic mode), as a config file has them.
fn static_route(backends: &[SocketAddr]) -> String {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
    format!(
        "[[route]]\npattern = \"{HOST}\"\nbackends = [{}]\npicker = \"round-robin\"\n",
        list.join(", ")
    )
}

#[test]
fn a_reload_moves_a_static_route_to_other_backends_under_load_failing_no_request() {
    let a = support::killable::KillableBackend::start("a");
    let b = support::killable::KillableBackend::start("b");
    let config = config_file("static", &static_route(&[a.addr]));
    let balancer = Balancer::start(&["--config", arg(&config)]);
    let admin = balancer.admin.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let served = Arc::new(Mutex::new(Vec::<String>::new()));
    let users = balancer.users;
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (stop, failures, served) = (stop.clone(), failures.clone(), served.clone());
            thread::spawn(move || {
                let mut client = Client::connect(users);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    match client.get(HOST, &format!("/?client={i}&n={n}")) {
                        Ok(r) if r.status == 200 => served.lock().unwrap().push(r.text()),
                        Ok(r) => failures.lock().unwrap().push(format!(
                            "status {}: {}",
                            r.status,
                            r.text()
                        )),
                        Err(e) => {
                            failures.lock().unwrap().push(format!("request: {e}"));
                            client = Client::connect(users);
                        }
                    }
                }
            })
        })
        .collect();
    let count = |name: &str| served.lock().unwrap().iter().filter(|s| *s == name).count();
    assert!(eventually(Duration::from_secs(10), || count("a") > 50));

    // a → b: once b serves, a gets nothing new (beyond the requests already on their way).
    config_file("static", &static_route(&[b.addr]));
    let r = post_reload(admin);
    assert_eq!(r.status, 200, "{}", r.text());
    let report: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(
        report["restart_needed"],
        serde_json::json!([]),
        "a backend change needs no restart: {report}"
    );
    assert!(eventually(Duration::from_secs(10), || count("b") > 50));
    let a_after = a.requests();
    assert!(eventually(Duration::from_secs(10), || count("b") > 200));
    assert!(
        a.requests() <= a_after + 4,
        "a still got requests after the reload took it out: {} then {}",
        a_after,
        a.requests()
    );

    // b → a and b: both serve.
    config_file("static", &static_route(&[a.addr, b.addr]));
    let r = post_reload(admin);
    assert_eq!(r.status, 200, "{}", r.text());
    let a_before = count("a");
    assert!(eventually(Duration::from_secs(10), || count("a") > a_before + 50));

    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed requests of {}: {failures:?}",
        failures.len(),
        served.lock().unwrap().len()
    );
    // b kept its keep-alive connections across the second reload: its pools were kept.
    assert!(
        b.accepted() <= 2 * 4,
        "b accepted {} connections",
        b.accepted()
    );
}

#[test]
fn a_reload_changes_a_routes_concurrency_limit() {
    let backend = hello_backend();
    let limited = |max: u32| {
        format!(
            "[[route]]\npattern = \"{HOST}\"\nbackends = [\"{}\"]\nmax_concurrent = {max}\n",
            backend.addr
        )
    };
    let config = config_file("limit", &limited(1));
    let balancer = Balancer::start(&["--workers", "1", "--config", arg(&config)]);
    let users = balancer.users;
    // One slow request holds the only slot: a second one is refused at once.
    let slow = |ms: u32| {
        thread::spawn(move || {
            support::get(users, HOST, &format!("/slow/{ms}"))
                .unwrap()
                .status
        })
    };
    let held = slow(3000);
    assert!(eventually(Duration::from_secs(5), || {
        metrics(balancer.admin.unwrap())
            .contains(&format!("ringway_route_in_flight{{route=\"{HOST}/\"}} 1"))
    }));
    assert_eq!(status(users, HOST), 503);
    // Two slots after the reload: the next request gets one although the slow one still runs.
    config_file("limit", &limited(2));
    let r = post_reload(balancer.admin.unwrap());
    assert_eq!(r.status, 200, "{}", r.text());
    let report: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(report["restart_needed"], serde_json::json!([]), "{report}");
    let second = slow(500);
    assert_eq!(second.join().unwrap(), 200);
    assert_eq!(held.join().unwrap(), 200);
}
