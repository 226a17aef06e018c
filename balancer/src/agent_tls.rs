//! TLS on the agent listener: the rustls server configuration every agent handshake uses,
//! built from `[agents.tls]` (the listener's certificate and, for mutual TLS, the CA that signs
//! the agents' client certificates), swapped whole by a reload, and the agent id a verified
//! client certificate stands for.
//!
//! TLS 1.3 only (both ends are ringway), ALPN `ringway-tunnel`: an agent pointed at the HTTPS
//! user listener (which offers `http/1.1`) fails its handshake with "no application protocol"
//! instead of talking the tunnel protocol to an HTTP server. The handshake and the record
//! layer are `ringway_io::tls`, on the worker that accepted the connection, before the hello;
//! a connection moved to the worker its hello asked for travels with its TLS state.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use x509_parser::extensions::GeneralName;

use crate::config::AgentTlsConfig;
use crate::tls::TlsError;

/// The ALPN protocol of the tunnel (the agent offers it too).
pub(crate) const TUNNEL_ALPN: &[u8] = b"ringway-tunnel";

/// The agent listener's TLS set-up, shared by every worker.
pub(crate) struct AgentTls {
    server: ArcSwap<ServerConfig>,
    /// Whether client certificates are verified (the agent id is then the certificate's).
    verifies_clients: std::sync::atomic::AtomicBool,
}

impl AgentTls {
    /// Reads the files of `config`; `None` when the listener is plaintext.
    pub(crate) fn new(config: &AgentTlsConfig) -> Result<Option<Self>, TlsError> {
        if !config.is_on() {
            return Ok(None);
        }
        Ok(Some(Self {
            server: ArcSwap::new(Self::prepare(config)?),
            verifies_clients: config.verifies_clients().into(),
        }))
    }

    /// The configuration the next handshake uses.
    pub(crate) fn server_config(&self) -> Arc<ServerConfig> {
        self.server.load_full()
    }

    /// Whether a client certificate, when presented, was verified against `client_ca`.
    pub(crate) fn verifies_clients(&self) -> bool {
        self.verifies_clients
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reads the files of `config` again and builds a configuration (nothing changes yet;
    /// an error names the key and the file).
    pub(crate) fn prepare(config: &AgentTlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
        let (Some(cert), Some(key)) = (&config.cert, &config.key) else {
            return Err(fail("agents.tls.cert", Path::new(""), "not set".to_owned()));
        };
        let chain = read_certs("agents.tls.cert", cert)?;
        let der = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| fail("agents.tls.key", key, pem_reason(&e)))?;
        let provider = Arc::new(default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| {
                fail(
                    "agents.tls",
                    Path::new(""),
                    format!("setting up rustls: {e}"),
                )
            })?;
        let builder = match &config.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in read_certs("agents.tls.client_ca", ca)? {
                    roots.add(c).map_err(|e| {
                        fail("agents.tls.client_ca", ca, format!("not a usable CA: {e}"))
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if config.requires_client_cert() {
                    verifier.build()
                } else {
                    verifier.allow_unauthenticated().build()
                };
                let verifier = verifier.map_err(|e| {
                    fail(
                        "agents.tls.client_ca",
                        ca,
                        format!("building the verifier: {e}"),
                    )
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut server = builder.with_single_cert(chain, der).map_err(|e| {
            fail(
                "agents.tls.key",
                key,
                format!("does not fit the certificate in {} ({e})", cert.display()),
            )
        })?;
        server.alpn_protocols = vec![TUNNEL_ALPN.to_vec()];
        Ok(Arc::new(server))
    }

    /// Serves `server` to every handshake from now on; open connections keep theirs.
    pub(crate) fn apply(&self, server: Arc<ServerConfig>, config: &AgentTlsConfig) {
        self.server.store(server);
        self.verifies_clients.store(
            config.verifies_clients(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// The name a client certificate stands for: its first DNS subject alternative name, else its
/// subject's common name (CN).
pub(crate) fn certificate_name(der: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                return Some((*dns).to_owned());
            }
        }
    }
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

fn read_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| fail(key, path, pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(fail(key, path, "no CERTIFICATE in the file".to_owned()));
    }
    Ok(certs)
}

fn fail(key: &str, path: &Path, reason: String) -> TlsError {
    TlsError {
        key: key.to_owned(),
        path: path.display().to_string(),
        reason,
    }
}

fn pem_reason(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => format!("reading the file: {io}"),
        rustls::pki_types::pem::Error::NoItemsFound => {
            "no PEM item of that kind in the file".to_owned()
        }
        other => format!("not valid PEM: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_first_dns_san_else_the_cn() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["agent-7.test".to_owned(), "b.test".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cn-agent");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            certificate_name(cert.der()).as_deref(),
            Some("agent-7.test")
        );
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cn-agent");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(certificate_name(cert.der()).as_deref(), Some("cn-agent"));
        assert_eq!(certificate_name(&CertificateDer::from(vec![1, 2, 3])), None);
    }
}
