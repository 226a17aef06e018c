//! HTTPS on the user side: the certificates of `[[tls.cert]]` read from their PEM files, the
//! rustls server configuration every HTTPS connection of the process shares, and its swap on a
//! reload.
//!
//! One [`ServerConfig`] is built at the start: TLS 1.3 and 1.2, ALPN `http/1.1`, session
//! tickets and a session-ID cache, and [`SniResolver`] as its certificate resolver. A reload
//! re-reads the files and swaps the resolver's table ([`Tls::reload`]): handshakes from then on
//! get the new certificates, connections already open keep theirs, and the ticket keys and
//! the session cache stay (a client resumes across a reload). The handshake itself and the
//! record layer are `ringway_io::tls`, on the worker that accepted the connection.

mod resolver;

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring::{default_provider, Ticketer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ServerSessionMemoryCache;
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::config::{AcmeChallenge, TlsConfig};
pub(crate) use resolver::{CertTable, SniResolver, ACME_TLS_ALPN};

/// The HTTPS listener's TLS set-up: the shared rustls configuration and its resolver.
pub(crate) struct Tls {
    server: Arc<ServerConfig>,
    resolver: Arc<SniResolver>,
}

/// Why the certificates could not be set up: the key (`tls.cert[0].key`), the file and why.
#[derive(Debug, thiserror::Error)]
#[error("{key}{}: {reason}", if path.is_empty() { String::new() } else { format!(" = {path:?}") })]
pub struct TlsError {
    /// The config key that names the file.
    pub key: String,
    /// The file.
    pub path: String,
    /// What was wrong with it.
    pub reason: String,
}

impl Tls {
    /// Reads every certificate of `config` and builds the server configuration.
    pub(crate) fn new(config: &TlsConfig) -> Result<Self, TlsError> {
        let resolver = Arc::new(SniResolver::new(load_table(config)?));
        let provider = Arc::new(default_provider());
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| setup_error(&e))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        if config
            .acme
            .as_ref()
            .is_some_and(|a| a.challenge == AcmeChallenge::TlsAlpn01)
        {
            // After http/1.1: only a validation, which offers nothing else, gets it.
            server.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
        }
        server.session_storage = if config.session_cache > 0 {
            ServerSessionMemoryCache::new(config.session_cache)
        } else {
            Arc::new(rustls::server::NoServerSessionStorage {})
        };
        if config.session_tickets {
            server.ticketer = Ticketer::new().map_err(|e| setup_error(&e))?;
        }
        Ok(Self {
            server: Arc::new(server),
            resolver,
        })
    }

    /// The resolver, for the ACME thread to add the certificates it obtains.
    pub(crate) fn resolver(&self) -> Arc<SniResolver> {
        self.resolver.clone()
    }

    /// The configuration every HTTPS handshake uses.
    pub(crate) fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }

    /// Re-reads the certificates of `config` for a reload (nothing changes yet; an error
    /// names the key and the file).
    pub(crate) fn prepare(config: &TlsConfig) -> Result<CertTable, TlsError> {
        load_table(config)
    }

    /// Serves `table` to every handshake from now on; open connections keep their
    /// certificates. (The resumption settings take the restart that builds a new
    /// configuration.)
    pub(crate) fn apply(&self, table: CertTable) {
        self.resolver.replace(table);
    }
}

fn setup_error(e: &rustls::Error) -> TlsError {
    TlsError {
        key: "tls".to_owned(),
        path: String::new(),
        reason: format!("setting up rustls: {e}"),
    }
}

/// Reads every `[[tls.cert]]` with files into a table by SNI name (those with `acme = true` are
/// the ACME thread's); the default is the entry that says so, else the first.
fn load_table(config: &TlsConfig) -> Result<CertTable, TlsError> {
    let mut table = CertTable::default();
    for (i, entry) in config.certs.iter().enumerate() {
        let (Some(cert), Some(key)) = (&entry.cert, &entry.key) else {
            continue;
        };
        let key = Arc::new(load_entry(i, cert, key)?);
        for host in &entry.hosts {
            table.insert(host, key.clone());
        }
        if is_default(config, i) {
            table.set_default(key);
        }
    }
    Ok(table)
}

/// Whether entry `i` is the default: it says so, or none does and it is the first.
pub(crate) fn is_default(config: &TlsConfig, i: usize) -> bool {
    config.certs.get(i).is_some_and(|c| c.default)
        || (i == 0 && !config.certs.iter().any(|c| c.default))
}

/// One entry's chain and key, checked to belong together.
fn load_entry(i: usize, cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let fail = |field: &str, path: &Path, reason: String| TlsError {
        key: format!("tls.cert[{i}].{field}"),
        path: path.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| fail("cert", cert, pem_reason(&e)))?;
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| fail("key", key, pem_reason(&e)))?;
    certified_key(chain, &der).map_err(|(field, reason)| {
        let path = if field == "cert" { cert } else { key };
        // (Which certificate a key does not match: the file's.)
        let reason = reason.replacen(
            "the certificate",
            &format!("the certificate in {}", cert.display()),
            usize::from(field == "key"),
        );
        fail(field, path, reason)
    })
}

/// A chain (leaf first) and its private key as rustls serves them, checked to belong
/// together; an error is `(field, reason)`, the field `cert` or `key`.
pub(crate) fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    der: &PrivateKeyDer<'_>,
) -> Result<CertifiedKey, (&'static str, String)> {
    if chain.is_empty() {
        return Err(("cert", "no CERTIFICATE in the file".to_owned()));
    }
    let signer = rustls::crypto::ring::sign::any_supported_type(der)
        .map_err(|e| ("key", format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(e) => Err(("key", format!("does not match the certificate ({e})"))),
    }
}

pub(crate) fn pem_reason(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => format!("reading the file: {io}"),
        rustls::pki_types::pem::Error::NoItemsFound => {
            "no PEM item of that kind in the file".to_owned()
        }
        other => format!("not valid PEM: {other:?}"),
    }
}
