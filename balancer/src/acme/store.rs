//! The ACME thread's files under `tls.acme.storage`: the account (its key and URL, one file
//! per ACME directory, so that a move from a staging to a production CA makes a new account),
//! and per certificate entry its chain and private key, named after the entry's first host.
//! The directory is created 0700, every file holding a key is written 0600, and each file is
//! written to a temporary name and renamed (a crash leaves the old file or the new, whole).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use crate::tls::{certified_key, pem_reason};

/// The storage directory.
pub(crate) struct Store {
    dir: PathBuf,
}

/// A certificate read back from the storage (or just obtained).
pub(crate) struct Stored {
    pub(crate) key: CertifiedKey,
    /// When the leaf expires.
    pub(crate) not_after: SystemTime,
    /// The leaf's DNS names (lower-case).
    pub(crate) names: Vec<String>,
}

impl Store {
    /// Opens (creates, 0700) the storage directory.
    pub(crate) fn open(dir: &Path) -> Result<Self, String> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("tls.acme.storage = {:?}: creating it: {e}", dir.display()))?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The account file for the ACME server at `directory`.
    pub(crate) fn account_path(&self, directory: &str) -> PathBuf {
        let digest = Sha256::digest(directory.as_bytes());
        let tag: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("account-{tag}.json"))
    }

    /// The stored account for `directory` (JSON, as the ACME client serialises it), if any.
    pub(crate) fn read_account(&self, directory: &str) -> Result<Option<String>, String> {
        let path = self.account_path(directory);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }

    /// Stores the account for `directory` (0600: it holds the account key).
    pub(crate) fn write_account(&self, directory: &str, json: &str) -> Result<(), String> {
        write_private(&self.account_path(directory), json.as_bytes())
    }

    /// The chain and key files of the entry whose first host is `host`.
    pub(crate) fn cert_paths(&self, host: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{host}.crt.pem")),
            self.dir.join(format!("{host}.key.pem")),
        )
    }

    /// The stored certificate of the entry whose first host is `host`: `Ok(None)` when there
    /// is none, an error when the files are there but unusable.
    pub(crate) fn read_cert(&self, host: &str) -> Result<Option<Stored>, String> {
        let (cert, key) = self.cert_paths(host);
        let chain_pem = match fs::read(&cert) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("reading {}: {e}", cert.display())),
        };
        let key_pem = fs::read(&key).map_err(|e| format!("reading {}: {e}", key.display()))?;
        parse(&chain_pem, &key_pem).map(Some)
    }

    /// Stores a certificate just obtained: the key first (0600), then the chain.
    pub(crate) fn write_cert(
        &self,
        host: &str,
        chain_pem: &str,
        key_pem: &str,
    ) -> Result<(), String> {
        let (cert, key) = self.cert_paths(host);
        write_private(&key, key_pem.as_bytes())?;
        write_private(&cert, chain_pem.as_bytes())
    }
}

/// A PEM chain (leaf first) and its PEM key, checked to belong together, with the leaf's
/// expiry and names.
pub(crate) fn parse(chain_pem: &[u8], key_pem: &[u8]) -> Result<Stored, String> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate chain: {}", pem_reason(&e)))?;
    let der = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("the private key: {}", pem_reason(&e)))?;
    let (not_after, names) = match chain.first() {
        Some(leaf) => leaf_facts(leaf)?,
        None => return Err("no CERTIFICATE in the chain".to_owned()),
    };
    let key = certified_key(chain, &der).map_err(|(field, reason)| format!("{field}: {reason}"))?;
    Ok(Stored {
        key,
        not_after,
        names,
    })
}

/// The leaf's expiry and DNS names.
fn leaf_facts(leaf: &CertificateDer<'_>) -> Result<(SystemTime, Vec<String>), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| format!("the leaf certificate does not parse: {e}"))?;
    let secs = cert.validity().not_after.timestamp();
    let not_after = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push(dns.to_ascii_lowercase());
            }
        }
    }
    Ok((not_after, names))
}

/// Writes `bytes` to `path` through a temporary file created 0600, renamed over `path`.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let fail = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail("creating a temporary file for", e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| fail("writing", e))?;
    fs::rename(&tmp, path).map_err(|e| fail("renaming into", e))
}

/// When a certificate expiring at `not_after` is due for renewal.
pub(crate) fn renew_at(not_after: SystemTime, renew_before: Duration) -> SystemTime {
    not_after
        .checked_sub(renew_before)
        .unwrap_or(SystemTime::UNIX_EPOCH)
        .max(SystemTime::UNIX_EPOCH)
}

/// Whether a certificate for `names` serves every one of `hosts` (compared lower-case).
pub(crate) fn covers(names: &[String], hosts: &[String]) -> bool {
    hosts
        .iter()
        .all(|h| names.iter().any(|n| n.eq_ignore_ascii_case(h)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ringway-acme-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_certificate_round_trips_with_its_expiry_names_and_modes() {
        let dir = temp_dir("store");
        let store = Store::open(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(store.read_cert("shop.test").unwrap().is_none());
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["shop.test".to_owned(), "WWW.shop.test".to_owned()])
                .unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 1, 2);
        let cert = params.self_signed(&key).unwrap();
        store
            .write_cert("shop.test", &cert.pem(), &key.serialize_pem())
            .unwrap();
        let (cert_path, key_path) = store.cert_paths("shop.test");
        for path in [&cert_path, &key_path] {
            assert_eq!(
                fs::metadata(path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let stored = store.read_cert("shop.test").unwrap().unwrap();
        assert_eq!(stored.names, ["shop.test", "www.shop.test"]);
        let expected = SystemTime::UNIX_EPOCH + Duration::from_secs(1_925_078_400);
        assert_eq!(stored.not_after, expected);
        assert!(covers(&stored.names, &["Shop.test".to_owned()]));
        assert!(!covers(&stored.names, &["api.shop.test".to_owned()]));
        fs::write(&key_path, "garbage").unwrap();
        assert!(store.read_cert("shop.test").is_err());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn renewal_is_due_renew_before_the_expiry() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(100 * 86_400);
        let day = Duration::from_secs(86_400);
        assert_eq!(renew_at(at, 30 * day), at - 30 * day);
        assert_eq!(renew_at(at, 1000 * day), SystemTime::UNIX_EPOCH);
    }

    #[test]
    fn each_directory_has_its_own_account_file() {
        let store = Store::open(&temp_dir("accounts")).unwrap();
        let a = store.account_path("https://a.test/dir");
        assert_ne!(a, store.account_path("https://b.test/dir"));
        assert_eq!(a, store.account_path("https://a.test/dir"));
    }
}
