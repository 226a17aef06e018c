//! ACME through the real binary against a real ACME server: Debian's `pebble` on loopback
//! (with `pebble-challtestsrv` as its DNS, answering 127.0.0.1 for every name), with HTTP-01
//! really validated: pebble's VA fetches the challenge from the balancer's plain listener.
//! The HTTPS listener then serves the pebble-issued certificate (its chain verified against
//! pebble's issuing root, from its management endpoint `/roots/0`) and proxies requests; a
//! restart reuses the stored certificate without an order; and with `renew_before` longer
//! than the validity, a renewal is seen as a new certificate while the process runs, an old
//! connection still answering.
//!
//! Without pebble installed (`apt-get install pebble`; `.ci/run` installs it) the test says
//! that it skipped and passes.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::CertificateDer;
use support::{fixed_port, hello_backend, Balancer, Client};

/// The directory of the test's files.
fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringway-acme-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// A process killed when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// pebble and its DNS, on loopback ports of their own.
struct Pebble {
    _dns: Proc,
    _pebble: Proc,
    directory: String,
    management: SocketAddr,
    /// The CA of pebble's own HTTPS certificate (this test's), in PEM.
    ca_file: PathBuf,
    ca: CertificateDer<'static>,
}

impl Pebble {
    /// Starts pebble so that its VA validates HTTP-01 at `http_port` and TLS-ALPN-01 at
    /// `tls_port` of 127.0.0.1.
    fn start(dir: &Path, http_port: u16, tls_port: u16) -> Self {
        // pebble's HTTPS certificate: the Debian package ships none, so a CA of our own.
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let ca_file = dir.join("pebble-ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        std::fs::write(dir.join("pebble.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.join("pebble.key"), key.serialize_pem()).unwrap();

        let (listen, management, dns, dns_management) =
            (fixed_port(), fixed_port(), fixed_port(), fixed_port());
        let dns_proc = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args([
                "-dns01",
                &dns.to_string(),
                "-management",
                &dns_management.to_string(),
            ])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting pebble-challtestsrv");
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": listen.to_string(),
                "managementListenAddress": management.to_string(),
                "certificate": dir.join("pebble.pem"),
                "privateKey": dir.join("pebble.key"),
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }
        });
        let config_path = dir.join("pebble.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let log = std::fs::File::create(dir.join("pebble.log")).unwrap();
        let pebble = Command::new("pebble")
            .args(["-config", config_path.to_str().unwrap()])
            .args(["-dnsserver", &dns.to_string()])
            // No artificial sleeps; no nonce refused on purpose. (PEBBLE_VA_ALWAYS_VALID is not
            // set: the challenges are really fetched.)
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting pebble");
        let (dns_proc, pebble) = (Proc(dns_proc), Proc(pebble));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(listen).is_err()
            || std::net::TcpStream::connect(management).is_err()
        {
            assert!(Instant::now() < deadline, "pebble did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            _dns: dns_proc,
            _pebble: pebble,
            directory: format!("https://{listen}/dir"),
            management,
            ca_file,
            ca: CertificateDer::from(ca.der().to_vec()),
        }
    }

    /// pebble's issuing root, from its management endpoint.
    fn issuing_root(&self) -> CertificateDer<'static> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut c = Client::connect_tls(self.management, Arc::new(config), "localhost");
        let r = c.get("localhost", "/roots/0").unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(&r.body).unwrap()
    }
}

/// The balancer's config: `shop.test` by ACME, proxied to `backend`.
fn config(
    pebble: &Pebble,
    storage: &Path,
    https: SocketAddr,
    backend: SocketAddr,
    renew: &str,
) -> String {
    config_with(pebble, storage, https, backend, renew, "http-01")
}

fn config_with(
    pebble: &Pebble,
    storage: &Path,
    https: SocketAddr,
    backend: SocketAddr,
    renew: &str,
    challenge: &str,
) -> String {
    format!(
        "[listen]\nhttps = \"{https}\"\n\n\
         [tls.acme]\ndirectory = \"{}\"\ncontact = [\"mailto:ops@shop.test\"]\naccept_terms = true\n\
         storage = {:?}\nca_file = {:?}\nrenew_before = \"{renew}\"\ncheck_interval = \"1s\"\n\
         challenge = \"{challenge}\"\n\n\
         [[tls.cert]]\nhosts = [\"shop.test\", \"www.shop.test\"]\nacme = true\n\n\
         [[route]]\npattern = \"shop.test\"\nbackends = [\"{backend}\"]\nredirect_https = true\n",
        pebble.directory,
        storage.display().to_string(),
        pebble.ca_file.display().to_string(),
    )
}

/// A client that trusts only pebble's issuing root.
fn client_config(root: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// An HTTPS connection to `shop.test` whose handshake verified against `config` (the leaf it
/// got), once the balancer serves such a certificate; panics after `within`.
fn verified_connection(
    https: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    within: Duration,
    unlike: Option<&CertificateDer<'static>>,
    b: &Balancer,
) -> (Client, CertificateDer<'static>) {
    let deadline = Instant::now() + within;
    loop {
        let mut c = Client::connect_tls(https, config.clone(), "shop.test");
        c.set_read_timeout(Duration::from_secs(5));
        if c.handshake().is_ok() {
            let leaf = c.tls().unwrap().peer_certificates().unwrap()[0].clone();
            if unlike != Some(&leaf) {
                return (c, leaf);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no (new) pebble-issued certificate within {within:?}; balancer log:\n{}",
            b.log.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_balancer(path: &Path, users: SocketAddr) -> Balancer {
    Balancer::start(&[
        "--workers",
        "2",
        "--listen",
        &users.to_string(),
        "--config",
        path.to_str().unwrap(),
    ])
}

fn pebble_missing() -> bool {
    let missing = !on_path("pebble") || !on_path("pebble-challtestsrv");
    if missing {
        eprintln!(
            "SKIPPED: pebble is not installed (apt-get install pebble): the ACME test did not run"
        );
    }
    missing
}

#[test]
fn tls_alpn01_is_answered_by_the_https_listener() {
    if pebble_missing() {
        return;
    }
    let dir = test_dir("alpn");
    // Nothing listens on pebble's HTTP-01 port: only the TLS-ALPN-01 validation can succeed.
    let (users, https, nowhere) = (fixed_port(), fixed_port(), fixed_port());
    let pebble = Pebble::start(&dir, nowhere.port(), https.port());
    let trust = client_config(&pebble.issuing_root());
    let hello = hello_backend();
    let text = config_with(
        &pebble,
        &dir.join("storage"),
        https,
        hello.addr,
        "30d",
        "tls-alpn-01",
    );
    let path = support::config_file("acme-alpn", &text);
    let b = start_balancer(&path, users);
    let (mut c, _) = verified_connection(https, &trust, Duration::from_secs(60), None, &b);
    // An ordinary client still gets http/1.1 and a proxied request.
    assert_eq!(c.tls().unwrap().alpn_protocol(), None);
    let r = c.get("shop.test", "/echo").unwrap();
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn pebble_issues_the_certificate_over_http01_it_is_reused_and_renewed() {
    if pebble_missing() {
        return;
    }
    let dir = test_dir("http01");
    let (users, https) = (fixed_port(), fixed_port());
    let pebble = Pebble::start(&dir, users.port(), https.port());
    let root = pebble.issuing_root();
    let trust = client_config(&root);
    let hello = hello_backend();
    let storage = dir.join("storage");
    let path = support::config_file("acme", &config(&pebble, &storage, https, hello.addr, "30d"));

    // 1. Issued over HTTP-01 (pebble fetched the challenge from `users`) and served.
    let mut b = start_balancer(&path, users);
    let (mut c, first) = verified_connection(https, &trust, Duration::from_secs(60), None, &b);
    let r = c.get("shop.test", "/echo").unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let mut www = Client::connect_tls(https, trust.clone(), "www.shop.test");
    www.handshake().unwrap();
    // The plain listener redirects the route; the challenge path was answered before that.
    let r = support::get(users, "shop.test", "/a?b=c").unwrap();
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some(format!("https://shop.test:{}/a?b=c", https.port()).as_str())
    );
    // The log is read from the balancer's stderr by a thread of its own: wait for the line.
    let log_wait = Duration::from_secs(10);
    assert!(b
        .log
        .wait_for("ACME account created and stored", 1, log_wait));

    // 2. Stored 0600, and reused by a restart: no new order.
    use std::os::unix::fs::PermissionsExt;
    let files: Vec<_> = std::fs::read_dir(&storage)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    for file in &files {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    b.terminate();
    b.wait_exit(Duration::from_secs(20)).unwrap();
    drop(c);
    let mut b = start_balancer(&path, users);
    let (_, again) = verified_connection(https, &trust, Duration::from_secs(10), None, &b);
    assert_eq!(again, first, "a restart ordered a new certificate");
    assert!(b
        .log
        .wait_for("ACME certificate loaded from the storage", 1, log_wait));
    assert!(!b.log.text().contains("ordering an ACME certificate"));
    b.terminate();
    b.wait_exit(Duration::from_secs(20)).unwrap();

    // 3. Renewed while running: `renew_before` longer than any validity makes every check
    // (`check_interval`, 1 s) order again; each new certificate is served without a restart,
    // and a connection made before still answers.
    let path = support::config_file(
        "acme-renew",
        &config(&pebble, &storage, https, hello.addr, "100000d"),
    );
    let b = start_balancer(&path, users);
    let pid = b.pid();
    let (mut old, served) = verified_connection(https, &trust, Duration::from_secs(10), None, &b);
    let (_, renewed) =
        verified_connection(https, &trust, Duration::from_secs(60), Some(&served), &b);
    assert_ne!(renewed, served);
    assert_eq!(b.pid(), pid);
    assert!(b.log.wait_for("account read from the storage", 1, log_wait));
    let r = old.get("shop.test", "/echo").unwrap();
    assert_eq!(r.status, 200, "{r:?}");
}
