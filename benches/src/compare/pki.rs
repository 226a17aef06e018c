//! The certificates of the TLS scenarios, made at run time into the run's work directory (never
//! checked in): a CA and one ECDSA P-256 leaf it signs for `bench.test` and `127.0.0.1`, the
//! certificate nginx and ringway's HTTPS listener serve alike, and the agent listener's.
//!
//! What both sides pin (the client offers only these, nginx accepts only these; ringway's
//! listener accepts rustls' defaults, so the client's offer decides): TLS 1.3,
//! TLS_AES_128_GCM_SHA256, X25519, no session tickets or cache on either server.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256};

use super::systems::HOST;

/// The cipher suite, as rustls (and so `ringway-loadgen --tls-cipher`) names it.
pub const CIPHER: &str = "TLS13_AES_128_GCM_SHA256";
/// The same suite, as OpenSSL (nginx's `Ciphersuites`) names it.
pub const CIPHER_OPENSSL: &str = "TLS_AES_128_GCM_SHA256";
/// The key-exchange group (rustls' name; OpenSSL's is the same).
pub const GROUP: &str = "X25519";
/// What the summary says about it.
pub const DESCRIPTION: &str =
    "TLS 1.3, TLS_AES_128_GCM_SHA256, X25519, ECDSA P-256 certificate, no resumption";

/// The files of one run.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate (PEM): what clients and the agent trust.
    pub ca: PathBuf,
    /// The leaf's certificate (PEM).
    pub cert: PathBuf,
    /// The leaf's private key (PEM, PKCS#8).
    pub key: PathBuf,
}

impl Pki {
    /// Makes the CA and the leaf under `work/tls/`.
    pub fn create(work: &Path) -> Result<Self, String> {
        let err = |what: &str, e: rcgen::Error| format!("making the {what} certificate: {e}");
        let dir = work.join("tls");
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| err("CA", e))?;
        let mut params = CertificateParams::new(Vec::new()).map_err(|e| err("CA", e))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "ringway compare CA");
        let ca = params.self_signed(&ca_key).map_err(|e| err("CA", e))?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| err("leaf", e))?;
        let mut params = CertificateParams::new(vec![HOST.to_owned(), "127.0.0.1".to_owned()])
            .map_err(|e| err("leaf", e))?;
        params.distinguished_name.push(DnType::CommonName, HOST);
        let leaf = params
            .signed_by(&key, &ca, &ca_key)
            .map_err(|e| err("leaf", e))?;
        let pki = Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        for (path, text) in [
            (&pki.ca, ca.pem()),
            (&pki.cert, leaf.pem()),
            (&pki.key, key.serialize_pem()),
        ] {
            std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        Ok(pki)
    }

    /// `ringway-loadgen`'s flags for an HTTPS target: trust the CA, send SNI `bench.test`,
    /// offer only the pinned suite and group.
    pub fn loadgen_args(&self) -> Vec<String> {
        vec![
            "--ca-file".into(),
            self.ca.display().to_string(),
            "--sni".into(),
            HOST.into(),
            "--tls-cipher".into(),
            CIPHER.into(),
            "--tls-group".into(),
            GROUP.into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_the_three_files() {
        let dir = std::env::temp_dir().join(format!("ringway-pki-test-{}", std::process::id()));
        let pki = super::Pki::create(&dir).unwrap();
        for p in [&pki.ca, &pki.cert, &pki.key] {
            let text = std::fs::read_to_string(p).unwrap();
            assert!(text.starts_with("-----BEGIN"), "{}", p.display());
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
