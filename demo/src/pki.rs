//! The demo's throwaway certificates for the agent tunnel's TLS: a CA and the balancer's
//! certificate (for `localhost` and 127.0.0.1) made with rcgen at every start, written as PEM
//! to a directory of their own under the temporary directory (the balancer reads its files,
//! the agent trusts the CA), and removed when the demo stops. Never checked in.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// The files of one demo run.
#[derive(Debug)]
pub struct DemoPki {
    dir: PathBuf,
    /// The CA the agent trusts (`--ca-file`).
    pub ca: PathBuf,
    /// The agent listener's certificate (`[agents.tls] cert`).
    pub cert: PathBuf,
    /// Its key (`[agents.tls] key`).
    pub key: PathBuf,
}

impl DemoPki {
    /// Makes a CA and the balancer's certificate and writes them to a fresh directory.
    pub fn generate() -> Result<Self, String> {
        let fail =
            |what: &str, e: &dyn std::fmt::Display| format!("demo certificates: {what}: {e}");
        let ca_key = KeyPair::generate().map_err(|e| fail("CA key", &e))?;
        let mut params = CertificateParams::new(Vec::new()).map_err(|e| fail("CA", &e))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "ringway demo CA (throwaway)");
        let ca = params.self_signed(&ca_key).map_err(|e| fail("CA", &e))?;
        let key = KeyPair::generate().map_err(|e| fail("balancer key", &e))?;
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(|e| fail("balancer certificate", &e))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "ringway demo balancer");
        let cert = params
            .signed_by(&key, &ca, &ca_key)
            .map_err(|e| fail("balancer certificate", &e))?;
        let dir = std::env::temp_dir().join(format!("ringway-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| fail(&dir.display().to_string(), &e))?;
        let write = |name: &str, text: &str| -> Result<PathBuf, String> {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| fail(&path.display().to_string(), &e))?;
            Ok(path)
        };
        Ok(Self {
            ca: write("ca.pem", &ca.pem())?,
            cert: write("balancer.pem", &cert.pem())?,
            key: write("balancer.key", &key.serialize_pem())?,
            dir,
        })
    }

    /// The directory that holds the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DemoPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
