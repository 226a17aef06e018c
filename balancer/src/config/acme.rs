//! `[tls.acme]`: certificates obtained from an ACME server (RFC 8555) for the `[[tls.cert]]`
//! entries that say `acme = true`.
//!
//! ```toml
//! [tls.acme]
//! directory = "https://acme-v02.api.letsencrypt.org/directory"
//! contact = ["mailto:ops@example.com"]
//! accept_terms = true                 # the CA's terms of service (required)
//! storage = "/var/lib/ringway/acme"   # account key, certificates and keys (0600)
//! renew_before = "30d"
//!
//! [[tls.cert]]
//! hosts = ["shop.example.com", "www.shop.example.com"]
//! acme = true                         # no cert/key files: the ACME thread provides them
//! ```
//!
//! The balancer answers the CA's HTTP-01 challenges itself on the plain listener
//! (`balancer::acme`); this module only says what the file asked for.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{de_duration, ser_duration};

/// `[tls.acme]`: the ACME server, the account and when certificates are renewed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// The ACME server's directory URL (`https://…`).
    pub directory: String,
    /// The account's contact URLs (`mailto:…`); may be empty.
    #[serde(default)]
    pub contact: Vec<String>,
    /// Agreement to the CA's terms of service, which account creation requires: must be `true`.
    #[serde(default)]
    pub accept_terms: bool,
    /// Directory of the account key and the certificates and keys obtained (created 0700;
    /// keys written 0600). Reused across restarts.
    #[serde(default = "default_storage")]
    pub storage: PathBuf,
    /// A PEM root certificate the ACME server's own HTTPS certificate chains to, trusted
    /// instead of the system's roots (a private or test CA, such as pebble's); none = the
    /// system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// A certificate is renewed this long before it expires.
    #[serde(
        default = "default_renew_before",
        deserialize_with = "de_duration",
        serialize_with = "ser_duration"
    )]
    pub renew_before: Duration,
    /// How often the ACME thread looks at the certificates again (and how long it waits
    /// before it tries a failed order again, at most).
    #[serde(
        default = "default_check_interval",
        deserialize_with = "de_duration",
        serialize_with = "ser_duration"
    )]
    pub check_interval: Duration,
    /// How the server validates the names: `http-01` (a request to the plain listener, port
    /// 80 for a public CA) or `tls-alpn-01` (a TLS handshake with ALPN `acme-tls/1` on the
    /// HTTPS listener, port 443 for a public CA).
    #[serde(default)]
    pub challenge: AcmeChallenge,
}

/// `tls.acme.challenge`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum AcmeChallenge {
    /// RFC 8555, section 8.3.
    #[default]
    #[serde(rename = "http-01")]
    Http01,
    /// RFC 8737.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

/// Default of `tls.acme.storage`.
pub(super) const DEFAULT_ACME_STORAGE: &str = "/var/lib/ringway/acme";
/// Default of `tls.acme.renew_before`: 30 days (a third of a 90-day certificate).
pub(super) const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default of `tls.acme.check_interval`.
pub(super) const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

fn default_storage() -> PathBuf {
    PathBuf::from(DEFAULT_ACME_STORAGE)
}

fn default_renew_before() -> Duration {
    DEFAULT_RENEW_BEFORE
}

fn default_check_interval() -> Duration {
    DEFAULT_CHECK_INTERVAL
}

impl AcmeConfig {
    /// What serde cannot check key by key: `(key, reason)` of the first problem.
    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        if !self.directory.starts_with("https://") {
            return Err((
                "tls.acme.directory".to_owned(),
                format!("{:?} is not an https:// URL", self.directory),
            ));
        }
        if !self.accept_terms {
            return Err((
                "tls.acme.accept_terms".to_owned(),
                "the ACME server requires agreement to its terms of service: set it to true \
                 once you have read them"
                    .to_owned(),
            ));
        }
        if self.check_interval.is_zero() {
            return Err((
                "tls.acme.check_interval".to_owned(),
                "must be above zero".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Whether `host` can be asked for over HTTP-01: a DNS name of letters, digits, `-` and `.`
/// (no wildcard, no IP address), which also makes it a safe file name in the storage.
pub(crate) fn is_acme_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && host.parse::<std::net::IpAddr>().is_err()
        && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::is_acme_host;
    use crate::config::Config;

    const ACME: &str = r#"
[listen]
https = "127.0.0.1:8443"

[tls.acme]
directory = "https://acme.test/dir"
contact = ["mailto:ops@shop.test"]
accept_terms = true
storage = "/tmp/acme"
renew_before = "10d"

[[tls.cert]]
hosts = ["shop.test", "www.shop.test"]
acme = true
"#;

    fn problem(text: &str) -> String {
        let p = Config::parse(text).unwrap_err();
        format!("{}: {}", p.key.unwrap_or_default(), p.reason)
    }

    #[test]
    fn an_acme_entry_parses_and_round_trips() {
        let config = Config::parse(ACME).unwrap();
        let acme = config.tls.acme.as_ref().unwrap();
        assert_eq!(acme.renew_before.as_secs(), 10 * 24 * 3600);
        assert_eq!(acme.check_interval, super::DEFAULT_CHECK_INTERVAL);
        assert_eq!(acme.challenge, super::AcmeChallenge::Http01);
        let alpn = ACME.replace("renew_before", "challenge = \"tls-alpn-01\"\nrenew_before");
        let alpn = Config::parse(&alpn).unwrap();
        let challenge = alpn.tls.acme.as_ref().unwrap().challenge;
        assert_eq!(challenge, super::AcmeChallenge::TlsAlpn01);
        assert!(config.tls.certs[0].acme);
        assert!(config.tls.certs[0].cert.is_none());
        let again = Config::parse(&config.to_toml().unwrap()).unwrap();
        assert_eq!(again.tls, config.tls);
    }

    #[test]
    fn acme_entries_are_checked() {
        let no_terms = ACME.replace("accept_terms = true", "");
        assert!(problem(&no_terms).starts_with("tls.acme.accept_terms: "));
        let plain = ACME.replace("https://acme.test/dir", "http://acme.test/dir");
        assert!(problem(&plain).starts_with("tls.acme.directory: "));
        let wild = ACME.replace("\"www.shop.test\"", "\"*.shop.test\"");
        assert!(
            problem(&wild).starts_with("tls.cert[0].hosts[1]: "),
            "{}",
            problem(&wild)
        );
        let files = ACME.replace("acme = true", "acme = true\ncert = \"a.pem\"");
        assert!(problem(&files).starts_with("tls.cert[0].cert: "));
        let no_section = ACME.replace("[tls.acme]", "[tls.other]");
        assert!(problem(&no_section).starts_with("tls"));
        let without = &ACME[..ACME.find("[tls.acme]").unwrap()];
        let orphan = format!("{without}[[tls.cert]]\nhosts = [\"a.test\"]\nacme = true\n");
        assert!(problem(&orphan).starts_with("tls.cert[0].acme: "));
        let nohosts = ACME.replace("hosts = [\"shop.test\", \"www.shop.test\"]", "");
        assert!(problem(&nohosts).starts_with("tls.cert[0].hosts: "));
    }

    #[test]
    fn a_file_entry_still_needs_its_files() {
        let text = "[[tls.cert]]\nhosts = [\"a.test\"]\ncert = \"a.pem\"\n";
        assert!(problem(text).starts_with("tls.cert[0].key: "));
    }

    #[test]
    fn acme_hosts_are_plain_dns_names() {
        assert!(is_acme_host("shop.example.com"));
        assert!(is_acme_host("localhost"));
        for bad in [
            "",
            "*.a.test",
            "a..test",
            "-a.test",
            "a/b",
            "127.0.0.1",
            "::1",
            "a.test.",
        ] {
            assert!(!is_acme_host(bad), "{bad:?}");
        }
    }
}
