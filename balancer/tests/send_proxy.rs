//! `send_proxy` on a static route, through the real binary: each new backend connection starts
//! with a PROXY protocol header (v2 or v1) naming the user's client and the address it connected
//! to; one user connection's requests share one backend connection (one header), two user
//! connections never share one, a user connection's backend connection closes with it (also
//! when it closes right after its response), the
//! health checks send a LOCAL header, and behind a front (`--proxy-protocol`) the header names
//! the client the front named.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringway_core::proxy_protocol::{self, write_v1, Command, Parsed, ProxyHeader, Version};
use support::{Balancer, Client};

const HOST: &str = "pp.test";

/// What the backend saw on one connection.
#[derive(Debug, Clone)]
struct Seen {
    header: ProxyHeader,
    version: Version,
    requests: usize,
    closed: bool,
}

/// A backend that wants a PROXY header first on every connection (a connection without one is
/// recorded as nothing and closed) and answers each GET with the index of its connection.
struct ProxiedBackend {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl ProxiedBackend {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let record = record.clone();
                thread::spawn(move || serve(conn, &record));
            }
        });
        Self { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The connections whose header named a client: the requests' ones (not the checks').
    fn proxied(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.header.client().is_some())
            .collect()
    }

    /// Waits (at most 10 s) until `done` holds for what the backend saw.
    fn wait_until(&self, what: &str, done: impl Fn(&[Seen]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(&self.seen()) {
            assert!(Instant::now() < deadline, "{what}: {:?}", self.seen());
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// One backend connection: the header, then requests (no bodies) until the peer closes.
fn serve(mut conn: TcpStream, record: &Mutex<Vec<Seen>>) {
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = Vec::new();
    let (header, version, len) = loop {
        match proxy_protocol::parse(&buf) {
            Ok(Parsed::Header {
                header,
                version,
                len,
            }) => break (header, version, len),
            Ok(Parsed::Incomplete) => {}
            Err(_) => return,
        }
        if !read_more(&mut conn, &mut buf) {
            return;
        }
    };
    buf.drain(..len);
    let index = {
        let mut seen = record.lock().unwrap();
        seen.push(Seen {
            header,
            version,
            requests: 0,
            closed: false,
        });
        seen.len() - 1
    };
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            record.lock().unwrap()[index].requests += 1;
            let body = index.to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if conn.write_all(answer.as_bytes()).is_err() {
                break;
            }
        }
        if !read_more(&mut conn, &mut buf) {
            record.lock().unwrap()[index].closed = true;
            return;
        }
    }
}

/// Reads what is there into `buf`; `false` at the end of the connection.
fn read_more(conn: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    match conn.read(&mut chunk) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// A one-worker balancer whose route `HOST` sends `version` to `backend` (plus `route_extra`
/// lines in the route and `args` flags).
fn balancer(
    name: &str,
    backend: &ProxiedBackend,
    version: &str,
    route_extra: &str,
    args: &[&str],
) -> Balancer {
    let text = format!(
        "[[route]]\npattern = \"{HOST}\"\nbackends = [\"{}\"]\nsend_proxy = \"{version}\"\n{route_extra}",
        backend.addr
    );
    let path = support::config_file(name, &text);
    let mut all = vec!["--workers", "1", "--config", path.to_str().unwrap()];
    all.extend_from_slice(args);
    Balancer::start(&all)
}

/// GETs `/` on `client`: the index of the backend connection that served it.
fn backend_conn(client: &mut Client) -> usize {
    let r = client.get(HOST, "/").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.text().parse().unwrap()
}

fn client_addr(client: &Client) -> SocketAddr {
    client.stream.local_addr().unwrap()
}

#[test]
fn a_v2_header_names_the_client_and_backend_connections_are_private_to_one_user_connection() {
    let backend = ProxiedBackend::start();
    let balancer = balancer("send-proxy-v2", &backend, "v2", "", &[]);
    let mut first = Client::connect(balancer.users);
    let a = backend_conn(&mut first);
    assert_eq!(
        backend_conn(&mut first),
        a,
        "one user connection, one backend connection"
    );
    let mut second = Client::connect(balancer.users);
    let b = backend_conn(&mut second);
    assert_ne!(
        a, b,
        "another user connection never gets the first one's backend connection"
    );
    assert_eq!(backend_conn(&mut first), a);
    assert_eq!(backend_conn(&mut second), b);

    let seen = backend.seen();
    assert_eq!(
        seen.len(),
        2,
        "two backend connections, one header each: {seen:?}"
    );
    for (conn, client) in [(a, &first), (b, &second)] {
        let s = &seen[conn];
        assert_eq!(s.version, Version::V2);
        assert_eq!(s.header.command, Command::Proxy);
        assert_eq!(s.header.source, Some(client_addr(client)), "{s:?}");
        assert_eq!(
            s.header.destination,
            Some(balancer.users),
            "the address the user connected to"
        );
    }
    assert_eq!((seen[a].requests, seen[b].requests), (3, 2));

    drop(first);
    backend.wait_until(
        "the first user connection's backend connection closes with it",
        |s| s[a].closed,
    );
    assert!(!backend.seen()[b].closed, "the second one's stays");
    assert_eq!(backend_conn(&mut second), b);
}

#[test]
fn a_user_connection_that_closes_after_its_request_takes_its_backend_connection_along() {
    let backend = ProxiedBackend::start();
    let balancer = balancer("send-proxy-close", &backend, "v2", "", &[]);
    for round in 1..=3 {
        let mut client = Client::connect(balancer.users);
        client
            .send(format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").as_bytes())
            .unwrap();
        let r = client.response("GET").unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        backend.wait_until(
            "each backend connection closes with its user connection",
            |s| s.len() == round && s.iter().all(|s| s.closed),
        );
    }
}

#[test]
fn a_v1_header_names_the_client_and_health_checks_send_local() {
    let backend = ProxiedBackend::start();
    let health = "[route.health]\npath = \"/\"\ninterval = \"50ms\"\n";
    let balancer = balancer("send-proxy-v1", &backend, "v1", health, &[]);
    // A check came (with a LOCAL header, v1's `UNKNOWN`, which parses as one without addresses).
    backend.wait_until("a health check", |s| {
        s.iter()
            .any(|s| s.version == Version::V1 && s.header.source.is_none())
    });
    let mut client = Client::connect(balancer.users);
    let conn = backend_conn(&mut client);
    let seen = &backend.seen()[conn];
    assert_eq!(seen.version, Version::V1);
    assert_eq!(seen.header.source, Some(client_addr(&client)));
    assert_eq!(seen.header.destination, Some(balancer.users));
    assert_eq!(backend.proxied().len(), 1);
}

#[test]
fn behind_a_front_the_header_names_the_client_the_front_named() {
    let backend = ProxiedBackend::start();
    let balancer = balancer(
        "send-proxy-front",
        &backend,
        "v2",
        "",
        &["--proxy-protocol"],
    );
    let from_front = ProxyHeader {
        command: Command::Proxy,
        source: Some("203.0.113.7:40123".parse().unwrap()),
        destination: Some("198.51.100.1:443".parse().unwrap()),
    };
    let mut line = BytesMut::new();
    write_v1(&from_front, &mut line);
    let mut client = Client::connect(balancer.users);
    client.send(&line).unwrap();
    let conn = backend_conn(&mut client);
    assert_eq!(backend_conn(&mut client), conn);
    let seen = &backend.seen()[conn];
    assert_eq!(seen.version, Version::V2);
    assert_eq!(seen.header.source, from_front.source);
    assert_eq!(seen.header.destination, from_front.destination);
}
