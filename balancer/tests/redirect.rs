//! `[[route]] redirect_https = true` through the real binary: a plain request of such a route
//! gets `308` to the same host, path and query on the HTTPS listener's port, with nothing
//! proxied; the ACME challenge path is not redirected; the route is still proxied over HTTPS,
//! and a route without the flag still over plain HTTP.
#![allow(clippy::unwrap_used)]

mod support;

use rcgen::{CertificateParams, KeyPair};
use support::{hello_backend, Balancer, Client, ScriptedBackend};

#[test]
fn a_plain_request_is_redirected_to_https_and_the_challenge_path_is_not() {
    let hello = hello_backend();
    // Counts what reaches the redirecting route's backend: nothing but the challenge path.
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<String>();
    let seen_tx = std::sync::Mutex::new(seen_tx);
    let backend = ScriptedBackend::spawn(move |conn, req| {
        let target = req.head.split(' ').nth(1).unwrap_or_default().to_owned();
        let body = format!("backend saw {target}");
        let _ = seen_tx.lock().unwrap().send(target);
        let _ = std::io::Write::write_all(
            conn,
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    });
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["shop.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("ringway-redirect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("shop.pem"), dir.join("shop.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let text = format!(
        "[listen]\nhttps = \"127.0.0.1:0\"\n\n\
         [[tls.cert]]\nhosts = [\"shop.test\"]\ncert = {:?}\nkey = {:?}\n\n\
         [[route]]\npattern = \"shop.test\"\nbackends = [\"{}\"]\nredirect_https = true\n\n\
         [[route]]\npattern = \"plain.test\"\nbackends = [\"{}\"]\n",
        cert_path.display().to_string(),
        key_path.display().to_string(),
        backend.addr,
        hello.addr,
    );
    let path = support::config_file("redirect", &text);
    let b = Balancer::start(&["--workers", "2", "--config", path.to_str().unwrap()]);
    let https = b.https.unwrap();

    let mut c = Client::connect(b.users);
    c.send(b"GET /cart/items?sort=new&page=2 HTTP/1.1\r\nHost: shop.test:8080\r\n\r\n")
        .unwrap();
    let r = c.response("GET").unwrap();
    assert_eq!(r.status, 308, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some(
            format!(
                "https://shop.test:{}/cart/items?sort=new&page=2",
                https.port()
            )
            .as_str()
        )
    );
    assert_eq!(r.header("content-length"), Some("0"));
    // The connection is kept: a POST with a body is redirected too, and then closed (its body
    // was never read).
    c.send(b"POST /pay HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 3\r\n\r\nabc")
        .unwrap();
    let r = c.response("POST").unwrap();
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some(format!("https://shop.test:{}/pay", https.port()).as_str())
    );
    assert_eq!(r.header("connection"), Some("close"));
    assert!(
        seen_rx.try_recv().is_err(),
        "a redirected request reached the backend"
    );

    // The challenge path is proxied (no ACME here: no token of the balancer's own).
    let r = support::get(b.users, "shop.test", "/.well-known/acme-challenge/tok123").unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), "backend saw /.well-known/acme-challenge/tok123");
    assert_eq!(
        seen_rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .unwrap(),
        "/.well-known/acme-challenge/tok123"
    );

    // Over HTTPS the route is served, not redirected.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(cert.der().to_vec()))
        .unwrap();
    let config = std::sync::Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let mut tls = Client::connect_tls(https, config, "shop.test");
    let r = tls.get("shop.test", "/cart").unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), "backend saw /cart");

    // A route without the flag is proxied over plain HTTP.
    let r = support::get(b.users, "plain.test", "/echo").unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("location").is_none());
}

#[test]
fn redirect_https_without_an_https_listener_is_refused() {
    let text =
        "[[route]]\npattern = \"shop.test\"\nbackends = [\"127.0.0.1:9\"]\nredirect_https = true\n";
    let path = support::config_file("redirect-nohttps", text);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringway-balancer"))
        .args(["--check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("route[0].redirect_https"), "{stderr}");
}
