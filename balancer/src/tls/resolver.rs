//! Which certificate a TLS handshake gets: the client's SNI name looked up exactly, then as a
//! one-label wildcard (`a.example.com` → `*.example.com`), else the default certificate.
//!
//! The table is swapped whole by a reload ([`SniResolver::replace`]); a handshake reads the
//! table current when its ClientHello arrives, and a connection keeps the certificate it got.
//! The certificates of `acme = true` entries are a second table, which the ACME thread swaps
//! whenever it obtains one ([`SniResolver::replace_acme`]) and a reload leaves alone; their
//! names are never in the first (the config refuses a name listed twice).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificates by SNI name, built from `[[tls.cert]]` (see `certs`).
#[derive(Default)]
pub(crate) struct CertTable {
    /// Lower-case host names.
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by what follows `*.`, lower-case.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl CertTable {
    /// Adds `key` for `host` (`example.com` or `*.example.com`; the config checked its form).
    pub(crate) fn insert(&mut self, host: &str, key: Arc<CertifiedKey>) {
        let host = host.to_ascii_lowercase();
        match host.strip_prefix("*.") {
            Some(suffix) => self.wildcard.insert(suffix.to_owned(), key),
            None => self.exact.insert(host, key),
        };
    }

    /// Sets the certificate served when no name matches.
    pub(crate) fn set_default(&mut self, key: Arc<CertifiedKey>) {
        self.default = Some(key);
    }

    /// The certificate for a client that asked for `sni` (rustls hands it lower-case, without a
    /// trailing dot; this lower-cases again all the same).
    pub(crate) fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        self.pick_named(sni).or_else(|| self.default.clone())
    }

    /// The certificate for `sni` by name only (no default).
    fn pick_named(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let name = sni?.trim_end_matches('.').to_ascii_lowercase();
        if let Some(key) = self.exact.get(&name) {
            return Some(key.clone());
        }
        let (_, parent) = name.split_once('.')?;
        self.wildcard.get(parent).cloned()
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty() && self.default.is_none()
    }
}

/// rustls' certificate resolver for the HTTPS listener: the current [`CertTable`].
pub(crate) struct SniResolver {
    table: ArcSwap<CertTable>,
    /// What the ACME thread obtained (empty without `[tls.acme]`).
    acme: ArcSwap<CertTable>,
    /// The ACME thread's pending TLS-ALPN-01 challenge certificates, by host name: served only
    /// to a ClientHello that offers ALPN `acme-tls/1` (RFC 8737), and never to another.
    alpn_challenges: ArcSwap<HashMap<String, Arc<CertifiedKey>>>,
}

/// The ALPN protocol of a TLS-ALPN-01 validation (RFC 8737).
pub(crate) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

impl SniResolver {
    pub(crate) fn new(table: CertTable) -> Self {
        Self {
            table: ArcSwap::from_pointee(table),
            acme: ArcSwap::from_pointee(CertTable::default()),
            alpn_challenges: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    /// Serves `table` to every handshake from now on; open connections keep what they got.
    pub(crate) fn replace(&self, table: CertTable) {
        self.table.store(Arc::new(table));
    }

    /// Serves the ACME certificates of `table` from now on (the files' table stays).
    pub(crate) fn replace_acme(&self, table: CertTable) {
        self.acme.store(Arc::new(table));
    }

    /// Serves `key` to a TLS-ALPN-01 validation of `host` (`None`: stops).
    pub(crate) fn set_alpn_challenge(&self, host: &str, key: Option<&Arc<CertifiedKey>>) {
        let host = host.to_ascii_lowercase();
        self.alpn_challenges.rcu(|map| {
            let mut map = HashMap::clone(map);
            match &key {
                Some(key) => map.insert(host.clone(), Arc::clone(key)),
                None => map.remove(&host),
            };
            map
        });
    }

    fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let acme = self.acme.load();
        if acme.is_empty() {
            return self.table.load().pick(sni);
        }
        acme.pick_named(sni)
            .or_else(|| self.table.load().pick(sni))
            .or_else(|| acme.default.clone())
    }
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = self.table.load();
        f.debug_struct("SniResolver")
            .field("exact", &table.exact.len())
            .field("wildcard", &table.wildcard.len())
            .field("default", &table.default.is_some())
            .field("acme", &self.acme.load().exact.len())
            .finish()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if hello
            .alpn()
            .is_some_and(|mut offered| offered.any(|p| p == ACME_TLS_ALPN))
        {
            let name = hello
                .server_name()?
                .trim_end_matches('.')
                .to_ascii_lowercase();
            return self.alpn_challenges.load().get(&name).cloned();
        }
        self.pick(hello.server_name())
    }
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::CertificateDer;

    use super::*;

    /// A key that stands for `label`: its "certificate" is the label's bytes (never used in a
    /// handshake here).
    fn key(label: &str) -> Arc<CertifiedKey> {
        let signing = rcgen::KeyPair::generate().unwrap();
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(signing.serialize_der().into());
        let signer = rustls::crypto::ring::sign::any_supported_type(&der).unwrap();
        Arc::new(CertifiedKey::new(
            vec![CertificateDer::from(label.as_bytes().to_vec())],
            signer,
        ))
    }

    fn label(key: Option<Arc<CertifiedKey>>) -> String {
        key.map_or_else(
            || "none".to_owned(),
            |k| String::from_utf8(k.cert[0].to_vec()).unwrap(),
        )
    }

    fn table() -> CertTable {
        let mut t = CertTable::default();
        t.insert("*.example.com", key("wild"));
        t.insert("api.example.com", key("api"));
        t.insert("Other.TEST", key("other"));
        t
    }

    #[test]
    fn exact_beats_wildcard() {
        let t = table();
        assert_eq!(label(t.pick(Some("api.example.com"))), "api");
        assert_eq!(label(t.pick(Some("www.example.com"))), "wild");
    }

    #[test]
    fn a_wildcard_matches_one_label_only() {
        let t = table();
        assert_eq!(label(t.pick(Some("a.b.example.com"))), "none");
        assert_eq!(label(t.pick(Some("example.com"))), "none");
    }

    #[test]
    fn names_match_in_any_case_and_with_a_trailing_dot() {
        let t = table();
        assert_eq!(label(t.pick(Some("other.test"))), "other");
        assert_eq!(label(t.pick(Some("WWW.Example.com."))), "wild");
    }

    #[test]
    fn no_match_or_no_sni_gets_the_default() {
        let mut t = table();
        t.set_default(key("default"));
        assert_eq!(label(t.pick(Some("unknown.test"))), "default");
        assert_eq!(label(t.pick(None)), "default");
        assert_eq!(label(t.pick(Some("api.example.com"))), "api");
    }

    #[test]
    fn acme_names_come_first_and_its_default_last() {
        let resolver = SniResolver::new(table());
        let mut acme = CertTable::default();
        acme.insert("shop.test", key("acme"));
        acme.set_default(key("acme-default"));
        resolver.replace_acme(acme);
        assert_eq!(label(resolver.pick(Some("shop.test"))), "acme");
        assert_eq!(label(resolver.pick(Some("api.example.com"))), "api");
        assert_eq!(label(resolver.pick(Some("unknown.test"))), "acme-default");
        let mut files = table();
        files.set_default(key("default"));
        resolver.replace(files);
        assert_eq!(label(resolver.pick(Some("unknown.test"))), "default");
        assert_eq!(label(resolver.pick(Some("shop.test"))), "acme");
    }
}
