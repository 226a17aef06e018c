//! The agent listener's transport: `[agents.tls]` (TLS, the default, optionally with client
//! certificates) or `agents.insecure_plaintext = true`.
//!
//! ```toml
//! [agents.tls]
//! cert = "/etc/ringway/agents.pem"      # the listener's chain, leaf first (PEM)
//! key = "/etc/ringway/agents.key"       # its private key (PEM)
//! client_ca = "/etc/ringway/agent-ca.pem" # optional: agents present certificates it signed
//! require_client_cert = true            # default true when client_ca is set
//! ```
//!
//! The files are read at the start and again on every reload (`crate::agent_tls`); this
//! module only says what the file asked for.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[agents.tls]`: the agent listener's certificate and the agents' client certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentTlsConfig {
    /// The agent listener's certificate chain, leaf first (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// CA certificates (PEM) that sign the agents' client certificates (mutual TLS). A
    /// verified certificate's name is the agent's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// Whether an agent without a client certificate is refused (default: true when
    /// `client_ca` is set). With `false`, an agent may present none (it then authenticates by
    /// token alone), but one it presents must verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_client_cert: Option<bool>,
}

impl AgentTlsConfig {
    /// Whether no key is set (then `--check` prints no `[agents.tls]`).
    pub fn is_unset(&self) -> bool {
        *self == Self::default()
    }

    /// Whether the listener speaks TLS (a certificate is configured).
    pub fn is_on(&self) -> bool {
        self.cert.is_some() || self.key.is_some()
    }

    /// Whether client certificates are asked for (`client_ca`).
    pub fn verifies_clients(&self) -> bool {
        self.client_ca.is_some()
    }

    /// Whether an agent must present a client certificate.
    pub fn requires_client_cert(&self) -> bool {
        self.client_ca.is_some() && self.require_client_cert.unwrap_or(true)
    }

    /// What serde cannot check key by key: `(key, reason)` of the first problem.
    /// `plaintext` is `agents.insecure_plaintext`.
    pub(crate) fn validate(&self, plaintext: bool) -> Result<(), (String, String)> {
        if plaintext && (self.is_on() || self.client_ca.is_some()) {
            return Err((
                "agents.insecure_plaintext".to_owned(),
                "the agent listener is either plaintext or TLS ([agents.tls]), not both".to_owned(),
            ));
        }
        match (&self.cert, &self.key) {
            (Some(_), None) => Err((
                "agents.tls.key".to_owned(),
                "agents.tls.cert needs its private key".to_owned(),
            )),
            (None, Some(_)) => Err((
                "agents.tls.cert".to_owned(),
                "agents.tls.key needs its certificate".to_owned(),
            )),
            (None, None) if self.client_ca.is_some() => Err((
                "agents.tls.cert".to_owned(),
                "agents.tls.client_ca needs the listener's own cert and key".to_owned(),
            )),
            _ if self.require_client_cert.is_some() && self.client_ca.is_none() => Err((
                "agents.tls.require_client_cert".to_owned(),
                "client certificates are verified against agents.tls.client_ca, which is not set"
                    .to_owned(),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn problem(text: &str) -> String {
        let p = Config::parse(text).unwrap_err();
        format!("{}: {}", p.key.unwrap_or_default(), p.reason)
    }

    #[test]
    fn tls_keys_parse_and_round_trip() {
        let c = Config::parse(
            "[agents.tls]\ncert = \"a.pem\"\nkey = \"a.key\"\nclient_ca = \"ca.pem\"\n",
        )
        .unwrap();
        assert!(c.agents.tls.is_on());
        assert!(
            c.agents.tls.requires_client_cert(),
            "default with client_ca"
        );
        let again = Config::parse(&c.to_toml().unwrap()).unwrap();
        assert_eq!(again.agents.tls, c.agents.tls);
        let optional = Config::parse(
            "[agents.tls]\ncert = \"a.pem\"\nkey = \"a.key\"\nclient_ca = \"ca.pem\"\n\
             require_client_cert = false\n",
        )
        .unwrap();
        assert!(optional.agents.tls.verifies_clients());
        assert!(!optional.agents.tls.requires_client_cert());
        let plain = Config::parse("[agents]\ninsecure_plaintext = true\n").unwrap();
        assert!(plain.agents.insecure_plaintext && !plain.agents.tls.is_on());
    }

    #[test]
    fn mistakes_name_the_key() {
        assert!(problem("[agents.tls]\ncert = \"a.pem\"\n").starts_with("agents.tls.key: "));
        assert!(problem("[agents.tls]\nclient_ca = \"ca.pem\"\n").starts_with("agents.tls.cert: "));
        assert!(problem(
            "[agents.tls]\ncert = \"a.pem\"\nkey = \"a.key\"\nrequire_client_cert = true\n"
        )
        .starts_with("agents.tls.require_client_cert: "));
        assert!(problem(
            "[agents]\ninsecure_plaintext = true\n[agents.tls]\ncert = \"a.pem\"\nkey = \"a.key\"\n"
        )
        .starts_with("agents.insecure_plaintext: "));
    }
}
