//! HTTPS on the user side: `[listen] https` is the listener, `[tls]` its certificates and
//! session resumption.
//!
//! ```toml
//! [listen]
//! https = "0.0.0.0:8443"
//!
//! [[tls.cert]]
//! hosts = ["example.com", "*.example.com"]
//! cert = "/etc/ringway/example.pem"   # the chain, leaf first (PEM)
//! key = "/etc/ringway/example.key"    # its private key (PEM: PKCS#8, PKCS#1 or SEC1)
//! default = true                      # served to a client whose SNI matches no entry
//! ```
//!
//! Certificate files are read when the balancer starts and again on every reload (`balancer::
//! tls`); this module only says what the file asked for.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::acme::{is_acme_host, AcmeConfig};

/// `[tls]`: the user side's certificates and session resumption.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificates, each for its SNI host names (`[[tls.cert]]`).
    #[serde(rename = "cert", skip_serializing_if = "Vec::is_empty")]
    pub certs: Vec<CertConfig>,
    /// Stateless resumption: session tickets (TLS 1.2 and 1.3), encrypted with keys the
    /// process makes at start and rotates every 6 hours.
    pub session_tickets: bool,
    /// Stateful resumption: how many sessions each process keeps by session ID (TLS 1.2) or
    /// stateful ticket; 0 = none.
    pub session_cache: usize,
    /// The ACME server that provides the certificates of the entries with `acme = true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme: Option<AcmeConfig>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            certs: Vec::new(),
            session_tickets: true,
            session_cache: 1024,
            acme: None,
        }
    }
}

/// `[[tls.cert]]`: one certificate and key, for the host names it serves.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertConfig {
    /// SNI names this certificate answers: exact (`example.com`) or a wildcard of one label
    /// (`*.example.com`: `a.example.com`, not `a.b.example.com` nor `example.com`).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The certificate chain, leaf first (PEM); required unless `acme`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// The leaf's private key (PEM); required unless `acme`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// The certificate comes from the ACME server of `[tls.acme]` (no `cert` or `key`): it is
    /// obtained, stored, renewed and swapped in by the balancer itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub acme: bool,
    /// Served when no entry's hosts match the client's SNI (or it sent none). At most one entry
    /// says so; without one, the first entry is the default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
}

impl TlsConfig {
    /// What serde cannot check key by key: `(key, reason)` of the first problem. `https` is
    /// whether `[listen] https` is set.
    pub(crate) fn validate(&self, https: bool) -> Result<(), (String, String)> {
        if https && self.certs.is_empty() {
            return Err((
                "tls.cert".to_owned(),
                "[listen] https needs at least one certificate ([[tls.cert]])".to_owned(),
            ));
        }
        if let Some(acme) = &self.acme {
            acme.validate()?;
        }
        let mut defaults = 0;
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.certs.iter().enumerate() {
            c.validate_source(i, self.acme.is_some(), https)?;
            defaults += usize::from(c.default);
            if defaults > 1 && c.default {
                return Err((
                    format!("tls.cert[{i}].default"),
                    "only one certificate can be the default".to_owned(),
                ));
            }
            for (j, host) in c.hosts.iter().enumerate() {
                let key = format!("tls.cert[{i}].hosts[{j}]");
                let name = host.to_ascii_lowercase();
                let bare = name.strip_prefix("*.").unwrap_or(&name);
                if bare.is_empty() || bare.contains('*') || bare.starts_with('.') {
                    return Err((
                        key,
                        format!(
                            "{host:?} is not a host name (a wildcard is one leading `*.` label)"
                        ),
                    ));
                }
                if c.acme && !is_acme_host(&name) {
                    return Err((
                        key,
                        format!(
                            "{host:?}: an ACME certificate is for DNS names (no wildcard, no IP \
                             address; HTTP-01 validates each name)"
                        ),
                    ));
                }
                if !seen.insert(name) {
                    return Err((key, format!("{host:?} is listed for two certificates")));
                }
            }
        }
        Ok(())
    }
}

impl CertConfig {
    /// Where the entry's certificate comes from: its files, or ACME (`acme_on`: `[tls.acme]`
    /// is there; `https`: so is `[listen] https`).
    fn validate_source(
        &self,
        i: usize,
        acme_on: bool,
        https: bool,
    ) -> Result<(), (String, String)> {
        let key = |field: &str| format!("tls.cert[{i}].{field}");
        if self.acme {
            if !acme_on {
                return Err((
                    key("acme"),
                    "needs the ACME server's settings ([tls.acme])".to_owned(),
                ));
            }
            if !https {
                return Err((
                    key("acme"),
                    "an ACME certificate is served by the HTTPS listener: set [listen] https"
                        .to_owned(),
                ));
            }
            if self.hosts.is_empty() {
                return Err((
                    key("hosts"),
                    "an ACME certificate needs the names it is for".to_owned(),
                ));
            }
            for (field, given) in [("cert", &self.cert), ("key", &self.key)] {
                if given.is_some() {
                    return Err((
                        key(field),
                        "an entry with acme = true takes no files (the ACME thread stores its \
                         own under tls.acme.storage)"
                            .to_owned(),
                    ));
                }
            }
            return Ok(());
        }
        for (field, given) in [("cert", &self.cert), ("key", &self.key)] {
            if given.is_none() {
                return Err((
                    key(field),
                    "missing: a certificate entry needs cert and key files (or acme = true)"
                        .to_owned(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const CERTS: &str = r#"
[listen]
https = "127.0.0.1:8443"

[[tls.cert]]
hosts = ["shop.test", "*.shop.test"]
cert = "shop.pem"
key = "shop.key"

[[tls.cert]]
cert = "fallback.pem"
key = "fallback.key"
default = true
"#;

    #[test]
    fn certificates_parse_and_round_trip() {
        let config = Config::parse(CERTS).unwrap();
        assert_eq!(config.listen.https, Some("127.0.0.1:8443".parse().unwrap()));
        assert_eq!(config.tls.certs.len(), 2);
        assert!(config.tls.certs[1].default);
        assert!(config.tls.session_tickets);
        let again = Config::parse(&config.to_toml().unwrap()).unwrap();
        assert_eq!(again.tls, config.tls);
        assert_eq!(again.listen.https, config.listen.https);
    }

    fn problem(text: &str) -> String {
        let p = Config::parse(text).unwrap_err();
        format!("{}: {}", p.key.unwrap_or_default(), p.reason)
    }

    #[test]
    fn an_https_listener_needs_a_certificate() {
        let p = problem("[listen]\nhttps = \"127.0.0.1:8443\"\n");
        assert!(p.starts_with("tls.cert: "), "{p}");
    }

    #[test]
    fn two_defaults_and_bad_names_are_refused() {
        let two = CERTS.replace("cert = \"shop.pem\"", "cert = \"shop.pem\"\ndefault = true");
        assert!(problem(&two).starts_with("tls.cert[1].default: "));
        let deep = CERTS.replace("*.shop.test", "*.*.shop.test");
        assert!(problem(&deep).starts_with("tls.cert[0].hosts[1]: "));
        let twice = CERTS.replace("*.shop.test", "SHOP.test");
        assert!(problem(&twice).contains("listed for two certificates"));
    }
}
