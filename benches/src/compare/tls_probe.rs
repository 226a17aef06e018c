//! A blocking rustls client for the HTTPS entrances: readiness (`GET /` over TLS until a 200),
//! and the probe that records what a system negotiated with the pinned offer and whether it
//! resumes sessions (a second handshake from a client that keeps tickets).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::Resumption;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, RootCertStore, StreamOwned};

use super::pki::{Pki, CIPHER, GROUP};
use super::systems::HOST;

/// What one HTTPS entrance negotiated.
#[derive(Debug, Clone)]
pub struct Negotiated {
    /// `TLSv1_3`.
    pub version: String,
    /// `TLS13_AES_128_GCM_SHA256`.
    pub suite: String,
    /// `X25519`.
    pub group: String,
    /// Whether a second connection resumed the first's session (tickets or a cache).
    pub resumes: bool,
}

impl Negotiated {
    /// For a system's label.
    pub fn describe(&self) -> String {
        format!(
            "{} {} {}, {}",
            self.version,
            self.suite,
            self.group,
            if self.resumes {
                "resumes sessions"
            } else {
                "no resumption"
            }
        )
    }
}

/// A client offering only the pinned suite and group; `resume`: keeps sessions (the probe).
pub fn client_config(ca: &Path, resume: bool) -> Result<Arc<ClientConfig>, String> {
    let mut provider = default_provider();
    provider
        .cipher_suites
        .retain(|s| format!("{:?}", s.suite()) == CIPHER);
    provider
        .kx_groups
        .retain(|g| format!("{:?}", g.name()) == GROUP);
    let mut roots = RootCertStore::empty();
    let certs =
        CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e:?}", ca.display()))?;
    for c in certs {
        let c = c.map_err(|e| format!("{}: {e:?}", ca.display()))?;
        roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("setting up rustls: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        config.resumption = Resumption::disabled();
    }
    Ok(Arc::new(config))
}

/// One `GET /` (Host: bench.test, SNI bench.test, `Connection: close`) over TLS on
/// 127.0.0.1:`port`: the status and the connection (for what it negotiated).
pub fn get(port: u16, config: &Arc<ClientConfig>) -> Result<(u16, ClientConnection), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(HOST).map_err(|e| e.to_string())?;
    let conn = ClientConnection::new(config.clone(), name).map_err(|e| format!("tls: {e}"))?;
    let mut s = StreamOwned::new(conn, tcp);
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(|e| format!("tls: {e}"))?;
    let mut answer = Vec::new();
    // Servers may end without close_notify; what was read counts.
    let _ = s.read_to_end(&mut answer);
    let status = answer
        .get(9..12)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "no HTTP response over TLS".to_owned())?;
    Ok((status, s.conn))
}

/// Two GETs from a client that keeps sessions: what the first negotiated, and whether the
/// second resumed.
pub fn probe(port: u16, pki: &Pki) -> Result<Negotiated, String> {
    let config = client_config(&pki.ca, true)?;
    let (status, first) = get(port, &config)?;
    if status != 200 {
        return Err(format!("HTTPS probe: status {status}"));
    }
    // TLS 1.3 tickets arrive after the handshake; the first exchange has read them.
    let (_, second) = get(port, &config)?;
    let opt = |s: Option<String>| s.unwrap_or_else(|| "?".into());
    Ok(Negotiated {
        version: opt(first.protocol_version().map(|v| format!("{v:?}"))),
        suite: opt(first
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))),
        group: opt(first
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name()))),
        resumes: second.handshake_kind() == Some(HandshakeKind::Resumed),
    })
}
