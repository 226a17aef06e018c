//! Certificates for the tests, generated with rcgen (never checked in): a CA, leaves it
//! signed written as PEM files to a temporary directory, a rustls client config trusting it;
//! and the process-wide [`tunnel_pki`] that every balancer and agent the support starts use
//! for the agent tunnel's TLS.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::CertificateDer;

/// A test CA, the files of the leaves it issued, and a client config that trusts it.
pub struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("ringway test CA {name}"));
        let ca = params.self_signed(&ca_key).unwrap();
        let dir = std::env::temp_dir().join(format!("ringway-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Self { ca, ca_key, dir }
    }

    /// The CA certificate (DER).
    pub fn ca_der(&self) -> Vec<u8> {
        self.ca.der().to_vec()
    }

    /// The CA certificate's PEM file.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Issues a certificate for `names` (DNS names or IP addresses; its common name is the
    /// first) and writes `{file}.pem` and `{file}.key`; returns both paths.
    pub fn issue(&self, file: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let (cert_path, key_path) = (
            self.dir.join(format!("{file}.pem")),
            self.dir.join(format!("{file}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca.der().to_vec()))
            .unwrap();
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// The tunnel's certificates for this test process: a CA and the agent listener's
/// certificate (for `localhost`, 127.0.0.1 and ::1).
pub struct TunnelPki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The one [`TunnelPki`] of this process, made on first use.
pub fn tunnel_pki() -> &'static TunnelPki {
    static PKI: OnceLock<TunnelPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let pki = Pki::new("tunnel");
        let (cert, key) = pki.issue("balancer", &["localhost", "127.0.0.1", "::1"]);
        TunnelPki {
            ca: pki.ca_file(),
            cert,
            key,
        }
    })
}
