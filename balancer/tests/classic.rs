//! Classic mode through the real binary: routes served by static backends from the config, as
//! nginx's `upstream` blocks are. Weights split the load, keep-alive connections to backends are
//! reused, active health checks take a killed backend out and bring it back, passive checks
//! eject a backend that keeps failing, a route whose backends are all down answers 503 at once,
//! and backends may be unix sockets or host names.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::killable::KillableBackend;
use support::{get, hello_backend, Balancer, Client};

const HOST: &str = "shop.test";

/// A balancer with `workers` workers and the configuration `text`.
fn balancer(name: &str, workers: usize, text: &str) -> Balancer {
    let path = support::config_file(name, text);
    Balancer::start(&[
        "--workers",
        &workers.to_string(),
        "--config",
        path.to_str().unwrap(),
    ])
}

/// The value of one sample of `/metrics` whose line starts with `prefix` (name and labels).
fn metric(balancer: &Balancer, prefix: &str) -> Option<f64> {
    let text = get(balancer.admin.unwrap(), "localhost", "/metrics")
        .unwrap()
        .text();
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// GETs `/` of `HOST` `n` times on one keep-alive connection; counts who served each.
fn served_by(balancer: &Balancer, n: usize) -> HashMap<String, usize> {
    let mut c = Client::connect(balancer.users);
    let mut seen = HashMap::new();
    for _ in 0..n {
        let r = c.get(HOST, "/").unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let by = r.header("x-served-by").unwrap_or("?").to_owned();
        *seen.entry(by).or_default() += 1;
    }
    seen
}

#[test]
fn weights_3_to_1_split_the_requests_3_to_1() {
    let a = hello_backend();
    let b = hello_backend();
    let balancer = balancer(
        "weights",
        2,
        &format!(
            "[[route]]\npattern = \"{HOST}\"\nbackends = [{{ addr = \"{}\", weight = 3 }}, \"{}\"]\n",
            a.addr, b.addr
        ),
    );
    // Several connections, so both workers serve some.
    for _ in 0..8 {
        let seen = served_by(&balancer, 50);
        assert_eq!(seen.values().sum::<usize>(), 50);
    }
    let (to_a, to_b) = (a.requests(), b.requests());
    assert_eq!(to_a + to_b, 400);
    // Smooth weighted round robin is exact per worker over every 4 picks: at most a few off.
    assert!(
        to_a.abs_diff(300) <= 8,
        "weights 3:1 gave {to_a}:{to_b} over 400 requests"
    );
}

#[test]
fn backend_connections_are_kept_alive_and_reused() {
    let backend = KillableBackend::start("only");
    let balancer = balancer(
        "keepalive",
        1,
        &format!(
            "[[route]]\npattern = \"{HOST}\"\nbackends = [\"{}\"]\n",
            backend.addr
        ),
    );
    for _ in 0..5 {
        let seen = served_by(&balancer, 20);
        assert_eq!(seen.get("only"), Some(&20));
    }
    assert_eq!(backend.requests(), 100);
    assert_eq!(
        backend.accepted(),
        1,
        "100 sequential requests over one pooled backend connection"
    );
}

#[test]
fn forwarding_headers_and_the_request_id_reach_the_backend() {
    let backend = support::ScriptedBackend::spawn(|conn, _req| {
        use std::io::Write;
        let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
    });
    let balancer = balancer(
        "headers",
        1,
        &format!(
            "[[route]]\npattern = \"{HOST}\"\nbackends = [\"{}\"]\n",
            backend.addr
        ),
    );
    let r = get(balancer.users, HOST, "/cart?id=7").unwrap();
    assert_eq!(r.status, 204);
    let heads = backend.heads.lock().unwrap();
    let head = heads[0].to_ascii_lowercase();
    assert!(head.starts_with("get /cart?id=7 http/1.1\r\n"), "{head}");
    assert!(head.contains("x-forwarded-for: 127.0.0.1\r\n"), "{head}");
    assert!(head.contains("x-forwarded-proto: http\r\n"), "{head}");
    assert!(head.contains(&format!("host: {HOST}\r\n")), "{head}");
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap_or_else(|| panic!("no request id: {head}"));
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
}

#[test]
fn a_health_check_takes_a_killed_backend_out_and_puts_it_back_after_rise() {
    let a = KillableBackend::start("a");
    let b = KillableBackend::start("b");
    let addr_a = a.addr;
    // Passive checks off: only the active check decides here.
    let balancer = balancer(
        "health",
        2,
        &format!(
            "[backends]\nmax_fails = 0\n\
             [[route]]\npattern = \"{HOST}\"\nbackends = [\"{}\", \"{}\"]\npicker = \"round-robin\"\n\
             [route.health]\npath = \"/healthz\"\ninterval = \"100ms\"\ntimeout = \"500ms\"\nrise = 2\nfall = 2\n",
            a.addr, b.addr
        ),
    );
    let up_a = format!("ringway_backend_up{{route=\"{HOST}/\",backend=\"{addr_a}\"}}");
    assert_eq!(metric(&balancer, &up_a), Some(1.0));
    let seen = served_by(&balancer, 20);
    assert!(seen.contains_key("a") && seen.contains_key("b"), "{seen:?}");

    a.kill();
    assert!(
        balancer
            .log
            .wait_for("backend is down (health check)", 1, Duration::from_secs(10)),
        "{}",
        balancer.log.text()
    );
    assert_eq!(metric(&balancer, &up_a), Some(0.0));
    let routes = get(balancer.admin.unwrap(), "localhost", "/routes")
        .unwrap()
        .text();
    let routes: serde_json::Value = serde_json::from_str(&routes).unwrap();
    let listed = &routes[0]["backends"];
    assert_eq!(listed[0]["addr"], addr_a.to_string(), "{routes}");
    assert_eq!(listed[0]["up"], false, "{routes}");
    assert_eq!(listed[1]["up"], true, "{routes}");
    // Out: every request goes to b, none fails.
    let seen = served_by(&balancer, 20);
    assert_eq!(seen.get("b"), Some(&20), "{seen:?}");

    let a = KillableBackend::start_on("a", addr_a);
    assert!(
        balancer.log.wait_for(
            "backend is up again (health check)",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        balancer.log.text()
    );
    assert_eq!(metric(&balancer, &up_a), Some(1.0));
    let before = a.requests();
    let seen = served_by(&balancer, 20);
    assert!(
        seen.get("a").is_some_and(|&n| n >= 5),
        "back in turn: {seen:?}"
    );
    assert!(a.requests() > before);
}

#[test]
fn consecutive_5xx_eject_a_backend_until_fail_timeout() {
    let bad = KillableBackend::start("bad");
    bad.set_failing(true);
    let good = KillableBackend::start("good");
    let balancer = balancer(
        "passive",
        1,
        &format!(
            "[backends]\nmax_fails = 2\nfail_timeout = \"1m\"\n\
             [[route]]\npattern = \"{HOST}\"\nbackends = [\"{}\", \"{}\"]\npicker = \"round-robin\"\n",
            bad.addr, good.addr
        ),
    );
    let mut c = Client::connect(balancer.users);
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(c.get(HOST, "/").unwrap().status);
    }
    // A 5xx is the backend's answer and reaches the user; after the second in a row the
    // backend is out and the rest go to the good one.
    assert_eq!(bad.requests(), 2, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 500).count(), 2);
    assert_eq!(good.requests(), 18);
    let ejections = format!(
        "ringway_backend_ejections_total{{route=\"{HOST}/\",backend=\"{}\"}}",
        bad.addr
    );
    assert_eq!(metric(&balancer, &ejections), Some(1.0));
    assert!(balancer
        .log
        .text()
        .contains("backend taken out after consecutive failures"));
}

#[test]
fn a_refused_connect_is_retried_on_another_backend() {
    // Nothing listens on the first address.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let good = KillableBackend::start("good");
    let balancer = balancer(
        "retry",
        1,
        &format!(
            "[backends]\nmax_fails = 0\n\
             [[route]]\npattern = \"{HOST}\"\nbackends = [\"{dead_addr}\", \"{}\"]\npicker = \"round-robin\"\n",
            good.addr
        ),
    );
    let seen = served_by(&balancer, 10);
    assert_eq!(seen.get("good"), Some(&10), "{seen:?}");
    assert!(
        metric(&balancer, "ringway_retries_total").is_some_and(|n| n >= 5.0),
        "every other request was retried"
    );
}

#[test]
fn a_route_whose_backends_are_all_down_answers_503_at_once() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let balancer = balancer(
        "alldown",
        1,
        &format!(
            "[[route]]\npattern = \"{HOST}\"\nbackends = [\"{dead_addr}\"]\n\
             [route.health]\ninterval = \"100ms\"\nfall = 1\n"
        ),
    );
    assert!(balancer
        .log
        .wait_for("backend is down (health check)", 1, Duration::from_secs(10)));
    let started = Instant::now();
    let r = get(balancer.users, HOST, "/").unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.text().contains("no backend of this route is up"),
        "{}",
        r.text()
    );
    assert!(r.header("x-request-id").is_some());
    assert!(r.header("retry-after").is_some());
    // At once: no park time, no connect attempt.
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_dead_backend_without_checks_answers_502_with_a_request_id() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let balancer = balancer(
        "dead",
        1,
        &format!(
            "[backends]\nmax_fails = 0\n[[route]]\npattern = \"{HOST}\"\nbackends = [\"{dead_addr}\"]\n"
        ),
    );
    let r = get(balancer.users, HOST, "/").unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("refused"), "{}", r.text());
    assert!(r.header("x-request-id").is_some());
}

#[test]
fn unix_socket_and_host_name_backends() {
    let dir = std::env::temp_dir().join(format!("ringway-classic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("hello.sock");
    let _ = std::fs::remove_file(&sock);
    let unix = ringway_hello::spawn_unix(&sock).unwrap();
    let named = hello_backend();
    let balancer = balancer(
        "unix-dns",
        1,
        &format!(
            "[[route]]\npattern = \"{HOST}/unix\"\nbackends = [\"unix:{}\"]\n\
             [[route]]\npattern = \"{HOST}/named\"\nbackends = [\"localhost:{}\"]\n",
            sock.display(),
            named.addr.port()
        ),
    );
    let r = get(balancer.users, HOST, "/unix/x").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(unix.requests(), 1);
    for _ in 0..5 {
        // `localhost` may resolve to ::1 as well, where nothing listens: that address is
        // refused and the request retried on 127.0.0.1.
        let r = get(balancer.users, HOST, "/named/y").unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(named.requests(), 5);
}

#[test]
fn agents_may_not_register_a_static_route() {
    let backend = hello_backend();
    let path = support::config_file(
        "no-agents",
        &format!(
            "[[route]]\npattern = \"{HOST}\"\nbackends = [\"{}\"]\n",
            backend.addr
        ),
    );
    // The raw agent speaks the tunnel protocol in plaintext.
    let balancer = Balancer::start(&[
        "--workers",
        "1",
        "--insecure-plaintext",
        "--config",
        path.to_str().unwrap(),
    ]);
    let mut agent = support::RawAgent::connect(
        balancer.agents,
        support::RawAgent::hello("intruder", &[HOST.to_owned()]),
        None,
    );
    assert_eq!(
        agent.handshake(),
        support::HelloOutcome::Rejected(ringway_core::tunnel::ResetCode::BadRoute)
    );
    let r = get(balancer.users, HOST, "/").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(backend.requests(), 1);
}

#[test]
fn the_access_log_names_the_backend_that_served() {
    let backend = KillableBackend::start("only");
    let log =
        std::env::temp_dir().join(format!("ringway-classic-access-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let balancer = balancer(
        "access",
        1,
        &format!(
            "[log]\naccess = \"{}\"\n[[route]]\npattern = \"{HOST}\"\nbackends = [\"{}\"]\n",
            log.display(),
            backend.addr
        ),
    );
    assert_eq!(get(balancer.users, HOST, "/x").unwrap().status, 200);
    let wanted = format!(" agent={} ", backend.addr);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&wanted) && text.contains("\"GET /x\" 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no access-log line with {wanted:?}: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
