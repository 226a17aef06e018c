//! Limits on the real binary, against a real agent and the hello backend on loopback: a route's
//! `max_concurrent` with its FIFO queue (a request past it waits and is served after the one in
//! flight, one past the queue gets 503 at once, one that waits past `queue_timeout` gets 503
//! after waiting), `max_connections_per_client` (429 and close, room again after a close) and
//! `max_connections_per_worker` (no answer until a connection closes); `/metrics` counts exactly
//! what was refused.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::thread;
use std::time::{Duration, Instant};

use support::{config_file, hello_backend, AgentProc, Balancer, Client, Response};

const HOST: &str = "app.test";
const ROUTE: &str = "app.test/";

/// A one-worker balancer with `config` and an agent for [`HOST`] in front of a hello backend.
fn start(name: &str, config: &str) -> (Balancer, AgentProc, ringway_hello::HelloHandle) {
    let path = config_file(name, config);
    let balancer = Balancer::start(&["--workers", "1", "--config", path.to_str().unwrap()]);
    let backend = hello_backend();
    let agent = AgentProc::start(balancer.agents, "a1", &[HOST], backend.addr);
    balancer.wait_registered("a1", 1);
    (balancer, agent, backend)
}

fn limited_route(max_concurrent: u32, max_queue: u32, queue_timeout: &str) -> String {
    format!(
        "[[route]]\npattern = \"{HOST}\"\nmax_concurrent = {max_concurrent}\n\
         max_queue = {max_queue}\nqueue_timeout = \"{queue_timeout}\"\n"
    )
}

/// The samples of metric `name` on `balancer`'s `/metrics`.
fn samples(balancer: &Balancer, name: &str) -> HashMap<Vec<String>, f64> {
    let r = support::get(balancer.admin.unwrap(), "localhost", "/metrics").unwrap();
    assert_eq!(r.status, 200);
    support::metric_samples(&r.text(), name)
}

use support::metric_labels as labels;

/// The value of one sample (0 when absent).
fn metric(balancer: &Balancer, name: &str, pairs: &[(&str, &str)]) -> f64 {
    samples(balancer, name)
        .get(&labels(pairs))
        .copied()
        .unwrap_or(0.0)
}

/// Polls until the sample equals `want` (bounded).
fn wait_metric(balancer: &Balancer, name: &str, pairs: &[(&str, &str)], want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = metric(balancer, name, pairs);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{pairs:?} stayed {got}, not {want}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// A GET on its own connection and thread; the response and when it arrived.
fn get_in_background(balancer: &Balancer, path: &str) -> thread::JoinHandle<(Response, Instant)> {
    let (users, path) = (balancer.users, path.to_owned());
    thread::spawn(move || {
        let r = support::get(users, HOST, &path).unwrap();
        (r, Instant::now())
    })
}

fn assert_refused_by_route(r: &Response, retry_after: &str) {
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some(retry_after), "{r:?}");
    let id = r.header("x-request-id").expect("an X-Request-Id");
    assert!(r.text().contains(id), "the body names the id: {}", r.text());
}

#[test]
fn past_max_concurrent_a_request_waits_its_turn_and_one_past_the_queue_gets_503_at_once() {
    let (balancer, _agent, _backend) = start("queue", &limited_route(1, 1, "10s"));
    let in_flight = ("route", ROUTE);

    let slow_sent = Instant::now();
    let slow = get_in_background(&balancer, "/slow/3000");
    wait_metric(&balancer, "ringway_route_in_flight", &[in_flight], 1.0);
    let queued = get_in_background(&balancer, "/echo");
    wait_metric(&balancer, "ringway_route_queue_waiting", &[in_flight], 1.0);

    // The slot and the one place in the queue are taken: refused at once.
    let refused = support::get(balancer.users, HOST, "/").unwrap();
    let refused_at = Instant::now();
    assert_refused_by_route(&refused, "10");

    let (slow, slow_at) = slow.join().unwrap();
    assert_eq!(slow.status, 200);
    let (queued, queued_at) = queued.join().unwrap();
    assert_eq!(queued.status, 200, "{}", queued.text());
    // It got the slot only when the slow one gave it back: after the backend's 3 s. (Not
    // `queued_at >= slow_at`: the two client threads read their responses at nearly the same
    // moment and either may note the time first.)
    assert!(
        queued_at.duration_since(slow_sent) >= Duration::from_millis(3000),
        "the queued request was served {:?} after the slow one was sent, before its 3 s were up",
        queued_at.duration_since(slow_sent)
    );
    assert!(
        slow_at.duration_since(refused_at) >= Duration::from_millis(1000),
        "the refusal came {:?} before the slow response, not at once",
        slow_at.duration_since(refused_at)
    );

    assert_eq!(
        metric(&balancer, "ringway_route_queued_total", &[in_flight]),
        1.0
    );
    let rejected = |reason| {
        metric(
            &balancer,
            "ringway_route_rejected_total",
            &[in_flight, ("reason", reason)],
        )
    };
    assert_eq!(rejected("queue_full"), 1.0);
    assert_eq!(rejected("queue_timeout"), 0.0);
    wait_metric(&balancer, "ringway_route_in_flight", &[in_flight], 0.0);
    assert_eq!(
        metric(
            &balancer,
            "ringway_requests_total",
            &[in_flight, ("class", "5xx")]
        ),
        1.0
    );
    // The slot came back: the route serves again.
    assert_eq!(support::get(balancer.users, HOST, "/").unwrap().status, 200);
}

#[test]
fn a_request_that_waits_past_the_queue_timeout_gets_503() {
    let (balancer, _agent, _backend) = start("queue-timeout", &limited_route(1, 1, "300ms"));
    let in_flight = ("route", ROUTE);

    let slow = get_in_background(&balancer, "/slow/4000");
    wait_metric(&balancer, "ringway_route_in_flight", &[in_flight], 1.0);
    let sent = Instant::now();
    let timed_out = support::get(balancer.users, HOST, "/").unwrap();
    let waited = sent.elapsed();
    let timed_out_at = Instant::now();
    assert_refused_by_route(&timed_out, "1");
    assert!(
        waited >= Duration::from_millis(300),
        "it waited: {waited:?}"
    );

    let (slow, slow_at) = slow.join().unwrap();
    assert_eq!(slow.status, 200);
    assert!(
        slow_at.duration_since(timed_out_at) >= Duration::from_millis(1000),
        "the 503 came after the queue timeout, well before the slow response"
    );
    let rejected = |reason| {
        metric(
            &balancer,
            "ringway_route_rejected_total",
            &[in_flight, ("reason", reason)],
        )
    };
    assert_eq!(rejected("queue_timeout"), 1.0);
    assert_eq!(rejected("queue_full"), 0.0);
    assert_eq!(
        metric(&balancer, "ringway_route_queued_total", &[in_flight]),
        1.0
    );
    wait_metric(&balancer, "ringway_route_queue_waiting", &[in_flight], 0.0);
}

#[test]
fn a_client_past_max_connections_per_client_gets_429_and_is_closed() {
    let (balancer, _agent, _backend) = start(
        "per-client",
        &format!("[limits]\nmax_connections_per_client = 2\n[[route]]\npattern = \"{HOST}\"\n"),
    );
    let mut first = Client::connect(balancer.users);
    let mut second = Client::connect(balancer.users);
    assert_eq!(first.get(HOST, "/").unwrap().status, 200);
    assert_eq!(second.get(HOST, "/").unwrap().status, 200);

    let mut third = Client::connect(balancer.users);
    let r = third.get(HOST, "/").unwrap();
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some(), "{r:?}");
    assert_eq!(r.header("connection"), Some("close"));
    let id = r.header("x-request-id").expect("an X-Request-Id");
    assert!(r.text().contains(id), "{}", r.text());
    assert!(
        third.is_closed_by_server(),
        "the refused connection is closed"
    );
    let mut refused = 1.0;

    // One of the two closes: a new connection is served (once the balancer saw the close).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut fourth = loop {
        let mut c = Client::connect(balancer.users);
        let r = c.get(HOST, "/").unwrap();
        if r.status == 200 {
            break c;
        }
        assert_eq!(r.status, 429);
        refused += 1.0;
        assert!(Instant::now() < deadline, "no room after a close");
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(second.get(HOST, "/").unwrap().status, 200, "kept alive");
    assert_eq!(fourth.get(HOST, "/").unwrap().status, 200);
    assert_eq!(
        metric(&balancer, "ringway_client_connections_refused_total", &[]),
        refused
    );
}

#[test]
fn a_worker_at_max_connections_per_worker_accepts_again_when_one_closes() {
    let (balancer, _agent, _backend) = start(
        "per-worker",
        &format!("[limits]\nmax_connections_per_worker = 2\n[[route]]\npattern = \"{HOST}\"\n"),
    );
    let mut first = Client::connect(balancer.users);
    let mut second = Client::connect(balancer.users);
    assert_eq!(first.get(HOST, "/").unwrap().status, 200);
    assert_eq!(second.get(HOST, "/").unwrap().status, 200);
    wait_metric(
        &balancer,
        "ringway_accept_paused_total",
        &[("worker", "0")],
        1.0,
    );
    assert_eq!(
        metric(&balancer, "ringway_user_connections", &[("worker", "0")]),
        2.0
    );

    // The kernel completes the handshake (the connection waits in the accept queue) but
    // nobody reads the request.
    let mut third = Client::connect(balancer.users);
    third
        .send(format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .unwrap();
    third
        .stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    match third.stream.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the third connection got an answer while the worker was full: {other:?}"),
    }
    assert_eq!(
        metric(&balancer, "ringway_user_connections", &[("worker", "0")]),
        2.0,
        "not accepted"
    );

    drop(first);
    third.set_read_timeout(Duration::from_secs(10));
    let r = third.response("GET").unwrap();
    assert_eq!(r.status, 200, "served once the first closed");
    assert_eq!(second.get(HOST, "/").unwrap().status, 200);
    // Paused at two connections, resumed for the third, paused again.
    assert_eq!(
        metric(&balancer, "ringway_accept_paused_total", &[("worker", "0")]),
        2.0
    );
}
