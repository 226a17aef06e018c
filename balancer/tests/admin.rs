//! The admin listener on the real binary: `/metrics` parses as Prometheus text and counts exactly
//! the requests sent (by route and status class, over both workers), `/healthz`, `/readyz`,
//! `/routes` and `/agents` tell what an operator needs, and unknown paths or methods are refused.
#![allow(clippy::unwrap_used)]

mod support;

use support::{hello_backend, AgentProc, Balancer, Client};

const HOST: &str = "app.test";

fn admin_get(balancer: &Balancer, path: &str) -> support::Response {
    support::get(
        balancer.admin.expect("admin listener on"),
        "localhost",
        path,
    )
    .unwrap()
}

use support::{metric_labels as labels, metric_samples as samples};

#[test]
fn metrics_count_exactly_the_requests_sent_and_the_admin_pages_answer() {
    let balancer = Balancer::start(&["--route", HOST]);
    let backend = hello_backend();
    let _agent = AgentProc::start(balancer.agents, "a1", &[HOST], backend.addr);
    balancer.wait_registered("a1", 2);

    // 40 keep-alive GETs that the backend answers, on 4 connections (the kernel spreads the
    // connections over both workers), and 3 requests for a host nobody serves.
    let mut body_bytes = 0;
    for _ in 0..4 {
        let mut c = Client::connect(balancer.users);
        for _ in 0..10 {
            let r = c.get(HOST, "/").unwrap();
            assert_eq!(r.status, 200);
            body_bytes += r.body.len();
        }
    }
    for _ in 0..3 {
        let r = support::get(balancer.users, "nobody.test", "/").unwrap();
        assert_eq!(r.status, 404);
    }

    let r = admin_get(&balancer, "/metrics");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .contains("openmetrics-text"));
    let text = r.text();
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    let requests = samples(&text, "ringway_requests_total");
    let route = format!("{HOST}/");
    assert_eq!(
        requests.get(&labels(&[("route", &route), ("class", "2xx")])),
        Some(&40.0),
        "{text}"
    );
    assert_eq!(
        requests.get(&labels(&[("route", "(none)"), ("class", "4xx")])),
        Some(&3.0),
        "{text}"
    );
    let total: f64 = requests.values().sum();
    assert_eq!(total, 43.0, "every request counted once: {text}");
    // The duration histogram of the route saw the same 40 requests.
    assert!(
        text.contains(&format!(
            "ringway_request_duration_seconds_count{{route=\"{route}\"}} 40"
        )),
        "{text}"
    );
    let bytes = samples(&text, "ringway_body_bytes_total");
    assert_eq!(
        bytes.get(&labels(&[("route", &route), ("direction", "out")])),
        Some(&(body_bytes as f64)),
        "{text}"
    );
    assert_eq!(
        bytes.get(&labels(&[("route", &route), ("direction", "in")])),
        Some(&0.0),
        "{text}"
    );
    let accepted = samples(&text, "ringway_user_connections_accepted_total");
    assert_eq!(
        accepted.values().sum::<f64>(),
        7.0,
        "4 + 3 user connections: {text}"
    );
    let agents = samples(&text, "ringway_agent_connections");
    assert_eq!(
        agents.get(&labels(&[("route", &route)])),
        Some(&2.0),
        "one tunnel connection per worker: {text}"
    );
    assert!(
        text.contains("ringway_worker_info{worker=\"0\",driver="),
        "{text}"
    );
    assert!(
        text.contains("ringway_worker_info{worker=\"1\",driver="),
        "{text}"
    );

    let r = admin_get(&balancer, "/healthz");
    assert_eq!((r.status, r.text().trim()), (200, "ok"));
    let r = admin_get(&balancer, "/readyz");
    assert_eq!((r.status, r.text().trim()), (200, "ready"));

    let r = admin_get(&balancer, "/routes");
    assert_eq!(r.status, 200);
    let routes: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    let entry = routes
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["route"] == route.as_str())
        .unwrap_or_else(|| panic!("{route} in /routes: {routes}"));
    assert_eq!(entry["agent_connections"], 2);
    assert_eq!(entry["requests"], 40);

    let r = admin_get(&balancer, "/agents");
    assert_eq!(r.status, 200);
    let agents: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    let agents = agents.as_array().unwrap();
    assert_eq!(agents.len(), 2, "{agents:?}");
    assert!(agents.iter().all(|a| a["id"] == "a1" && a["open"] == true));
    let mut workers: Vec<u64> = agents
        .iter()
        .map(|a| a["worker"].as_u64().unwrap())
        .collect();
    workers.sort_unstable();
    assert_eq!(workers, [0, 1]);

    assert_eq!(admin_get(&balancer, "/nope").status, 404);
    let mut c = Client::connect(balancer.admin.unwrap());
    c.send(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    assert_eq!(c.response("POST").unwrap().status, 405);
}
