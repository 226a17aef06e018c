//! HTTPS on the user side through the real binary: certificates generated here (rcgen: a CA
//! and leaves it signed, written to a temporary directory), a rustls client trusting the CA.
//! SNI picks the certificate (exact, wildcard, the default for an unknown name), requests reach
//! a static backend and an agent's backend with `X-Forwarded-Proto: https`, a 1 MiB upload is
//! echoed while it streams, and a reload swaps the certificates without failing a request —
//! or, given a file it cannot read, fails naming it and keeps the old ones.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use support::pki::Pki;
use support::{hello_backend, AgentProc, Balancer, Client, Response, ScriptedBackend};

/// `[[tls.cert]]` for the files `issue` wrote.
fn cert_entry(hosts: &[&str], (cert, key): &(PathBuf, PathBuf), default: bool) -> String {
    let hosts = hosts
        .iter()
        .map(|h| format!("{h:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "[[tls.cert]]\nhosts = [{hosts}]\ncert = {:?}\nkey = {:?}\ndefault = {default}\n",
        cert.display().to_string(),
        key.display().to_string()
    )
}

/// A balancer whose HTTPS listener has `certs` and whose routes are `routes` (TOML).
fn balancer(name: &str, certs: &str, routes: &str) -> (Balancer, PathBuf) {
    let text = format!("[listen]\nhttps = \"127.0.0.1:0\"\n\n{certs}\n{routes}");
    let path = support::config_file(name, &text);
    let b = Balancer::start(&["--workers", "2", "--config", path.to_str().unwrap()]);
    assert!(
        b.https.is_some(),
        "no https listener; log:\n{}",
        b.log.text()
    );
    (b, path)
}

fn static_route(host: &str, backend: SocketAddr) -> String {
    format!("[[route]]\npattern = \"{host}\"\nbackends = [\"{backend}\"]\n")
}

/// The common name of the certificate the server showed `client` (after a request).
fn peer_name(client: &mut Client) -> String {
    let conn = client.tls().unwrap();
    let leaf = conn.peer_certificates().unwrap()[0].clone();
    // The CN is the last printable string of the (small) subject: find it by its value.
    let der = leaf.as_ref();
    for name in [
        "shop.test",
        "api.shop.test",
        "*.shop.test",
        "other.test",
        "fallback.test",
    ] {
        // `CertificateParams` put the CN in the subject; a SAN of another name may also be
        // there, so look for the CN's encoding (UTF8String, 0x0c, then the length).
        let mut encoded = vec![0x0c, u8::try_from(name.len()).unwrap()];
        encoded.extend_from_slice(name.as_bytes());
        if der.windows(encoded.len()).any(|w| w == encoded) {
            return name.to_owned();
        }
    }
    "unknown".to_owned()
}

fn https_get(addr: SocketAddr, pki: &Pki, sni: &str, host: &str) -> (Response, String) {
    let mut c = Client::connect_tls(addr, pki.client_config(), sni);
    let r = c.get(host, "/").unwrap();
    let name = peer_name(&mut c);
    (r, name)
}

#[test]
fn sni_picks_the_certificate_and_an_unknown_name_gets_the_default() {
    let pki = Pki::new("sni");
    let shop = pki.issue("shop", &["shop.test"]);
    let wild = pki.issue("wild", &["*.shop.test"]);
    let fallback = pki.issue("fallback", &["fallback.test"]);
    let backend = hello_backend();
    let certs = [
        cert_entry(&["shop.test"], &shop, false),
        cert_entry(&["*.shop.test"], &wild, false),
        cert_entry(&[], &fallback, true),
    ]
    .concat();
    let routes = static_route("*", backend.addr);
    let (b, _) = balancer("sni", &certs, &routes);
    let https = b.https.unwrap();

    let (r, name) = https_get(https, &pki, "shop.test", "shop.test");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(name, "shop.test");
    let (r, name) = https_get(https, &pki, "www.shop.test", "www.shop.test");
    assert_eq!(r.status, 200);
    assert_eq!(name, "*.shop.test");
    // A name nobody listed: the default certificate (the client, asking for a name the
    // certificate does not cover, refuses it; the name it saw is what counts).
    let config = pki.client_config();
    let mut c = Client::connect_tls(https, config, "nobody.test");
    let err = c.handshake().unwrap_err().to_string().to_lowercase();
    assert!(
        err.contains("valid for name") || err.contains("notvalidforname"),
        "{err}"
    );
    // The certificate a client sees that asks for the name it covers (listed under no
    // `hosts`: only the default answers it).
    let (r, name) = https_get(https, &pki, "fallback.test", "shop.test");
    assert_eq!(r.status, 200);
    assert_eq!(name, "fallback.test");
}

#[test]
fn https_reaches_a_static_backend_with_x_forwarded_proto_https() {
    let pki = Pki::new("proto");
    let shop = pki.issue("shop", &["shop.test"]);
    let backend = ScriptedBackend::spawn(|conn, _| {
        use std::io::Write;
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .unwrap();
    });
    let routes = static_route("shop.test", backend.addr);
    let (b, _) = balancer("proto", &cert_entry(&["shop.test"], &shop, false), &routes);
    let mut c = Client::connect_tls(b.https.unwrap(), pki.client_config(), "shop.test");
    // Keep-alive: several requests over one TLS connection.
    for _ in 0..3 {
        let r = c.get("shop.test", "/").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "ok");
    }
    assert_eq!(
        c.tls().unwrap().alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "ALPN"
    );
    let heads = backend.heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 3);
    for head in &heads {
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("x-forwarded-proto: https"), "{head}");
    }
    // Plain HTTP on the user listener still says http.
    let r = support::get(b.users, "shop.test", "/").unwrap();
    assert_eq!(r.status, 200);
    let last = backend
        .heads
        .lock()
        .unwrap()
        .last()
        .unwrap()
        .to_ascii_lowercase();
    assert!(last.contains("x-forwarded-proto: http\r\n"), "{last}");
}

#[test]
fn tls_1_2_and_session_resumption_work() {
    let pki = Pki::new("versions");
    let shop = pki.issue("shop", &["shop.test"]);
    let backend = hello_backend();
    let routes = static_route("shop.test", backend.addr);
    let (b, _) = balancer(
        "versions",
        &cert_entry(&["shop.test"], &shop, false),
        &routes,
    );
    let https = b.https.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(pki.ca_der()))
        .unwrap();
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let config = Arc::new(
            rustls::ClientConfig::builder_with_protocol_versions(&[version])
                .with_root_certificates(roots.clone())
                .with_no_client_auth(),
        );
        // The second connection resumes the first one's session (same config: same cache).
        for round in 0..2 {
            let mut c = Client::connect_tls(https, config.clone(), "shop.test");
            let r = c.get("shop.test", "/").unwrap();
            assert_eq!(r.status, 200);
            let conn = c.tls().unwrap();
            assert_eq!(conn.protocol_version(), Some(version.version));
            let kind = conn.handshake_kind();
            if round == 1 {
                assert_eq!(kind, Some(rustls::HandshakeKind::Resumed), "{version:?}");
            }
        }
    }
}

#[test]
fn a_1_mib_upload_is_echoed_while_it_streams_over_tls() {
    let pki = Pki::new("echo");
    let shop = pki.issue("shop", &["shop.test"]);
    let backend = hello_backend();
    let routes = static_route("shop.test", backend.addr);
    let (b, _) = balancer("echo", &cert_entry(&["shop.test"], &shop, false), &routes);
    let mut c = Client::connect_tls(b.https.unwrap(), pki.client_config(), "shop.test");
    let body: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    for _ in 0..2 {
        let head = format!(
            "POST /echo HTTP/1.1\r\nHost: shop.test\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        c.send(head.as_bytes()).unwrap();
        c.send(&body).unwrap();
        let r = c.response("POST").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), body.len());
        assert!(r.body == body, "echoed bytes differ");
    }
}

#[test]
fn https_reaches_an_agents_backend() {
    let pki = Pki::new("agent");
    let shop = pki.issue("shop", &["shop.test"]);
    let backend = hello_backend();
    let (b, _) = balancer("agent", &cert_entry(&["shop.test"], &shop, false), "");
    let _agent = AgentProc::start(b.agents, "tls-agent", &["shop.test"], backend.addr);
    b.wait_registered("tls-agent", 2);
    let mut c = Client::connect_tls(b.https.unwrap(), pki.client_config(), "shop.test");
    let r = c.get("shop.test", "/").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

/// `POST /reload` on the admin listener.
fn post_reload(admin: SocketAddr) -> Response {
    let mut c = Client::connect(admin);
    c.send(b"POST /reload HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    c.response("POST").unwrap()
}

#[test]
fn a_reload_swaps_the_certificate_and_fails_no_request() {
    let pki = Pki::new("reload");
    let old = pki.issue("old", &["shop.test"]);
    let new = pki.issue("new", &["shop.test", "api.shop.test"]);
    let backend = hello_backend();
    let routes = static_route("*", backend.addr);
    let (b, path) = balancer("reload", &cert_entry(&["shop.test"], &old, false), &routes);
    let https = b.https.unwrap();
    let admin = b.admin.unwrap();
    let (_, name) = https_get(https, &pki, "shop.test", "shop.test");
    assert_eq!(name, "shop.test");
    // A keep-alive connection opened before the reload, and a load that runs through it.
    let mut before = Client::connect_tls(https, pki.client_config(), "shop.test");
    assert_eq!(before.get("shop.test", "/").unwrap().status, 200);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, config) = (stop.clone(), pki.client_config());
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut c = Client::connect_tls(https, config.clone(), "shop.test");
                match c.get("shop.test", "/") {
                    Ok(r) if r.status == 200 => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    // The new certificate covers api.shop.test as well: it is its CN that tells them apart.
    let text = format!(
        "[listen]\nhttps = \"127.0.0.1:0\"\n\n{}\n{routes}",
        cert_entry(&["shop.test", "api.shop.test"], &new, false)
    );
    std::fs::write(&path, text).unwrap();
    let r = post_reload(admin);
    assert_eq!(r.status, 200, "{}", r.text());
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.join().unwrap();
    assert!(ok > 0);
    assert_eq!(
        failed, 0,
        "{failed} requests failed across the reload ({ok} ok)"
    );
    let (r, name) = https_get(https, &pki, "api.shop.test", "api.shop.test");
    assert_eq!(r.status, 200);
    assert_eq!(
        name, "shop.test",
        "the new certificate (CN shop.test, SAN api.shop.test)"
    );
    // The connection from before goes on, with the old certificate.
    for _ in 0..3 {
        assert_eq!(before.get("shop.test", "/").unwrap().status, 200);
    }

    // A certificate file that is not there: 422 naming it, and the running ones stay.
    let missing = pki.dir.join("missing.pem");
    let text = format!(
        "[listen]\nhttps = \"127.0.0.1:0\"\n\n{}\n{routes}",
        cert_entry(&["shop.test"], &(missing.clone(), new.1), false)
    );
    std::fs::write(&path, text).unwrap();
    let r = post_reload(admin);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("tls.cert[0].cert"), "{}", r.text());
    assert!(
        r.text().contains(&missing.display().to_string()),
        "{}",
        r.text()
    );
    let (r, _) = https_get(https, &pki, "api.shop.test", "api.shop.test");
    assert_eq!(
        r.status, 200,
        "the certificates of before the failed reload still serve"
    );
}

#[test]
fn a_key_that_does_not_match_its_certificate_is_refused_at_the_start() {
    let pki = Pki::new("mismatch");
    let a = pki.issue("a", &["shop.test"]);
    let other = pki.issue("b", &["shop.test"]);
    let text = format!(
        "[listen]\nhttps = \"127.0.0.1:0\"\n\n{}",
        cert_entry(&["shop.test"], &(a.0, other.1), false)
    );
    let path = support::config_file("mismatch", &text);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringway-balancer"))
        .args(["--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0"])
        .args([
            "--admin-listen",
            "off",
            "--workers",
            "1",
            "--no-pin",
            "--insecure-plaintext",
        ])
        .args(["--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls.cert[0].key"), "{err}");
    assert!(err.contains("does not match"), "{err}");
}

#[test]
fn plain_http_on_the_https_listener_fails_its_handshake_and_closes() {
    let pki = Pki::new("plain");
    let shop = pki.issue("shop", &["shop.test"]);
    let backend = hello_backend();
    let routes = static_route("shop.test", backend.addr);
    let (b, _) = balancer("plain", &cert_entry(&["shop.test"], &shop, false), &routes);
    let https = b.https.unwrap();
    let mut c = Client::connect(https);
    c.send(b"GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n")
        .unwrap();
    assert!(c.is_closed_by_server() || c.response("GET").is_err());
    assert!(b
        .log
        .wait_for("TLS handshake failed", 1, Duration::from_secs(5)));
    // The listener goes on serving TLS.
    let (r, _) = https_get(https, &pki, "shop.test", "shop.test");
    assert_eq!(r.status, 200);
}
