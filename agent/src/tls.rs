//! The agent's end of the tunnel's TLS: the rustls client configuration built once at the
//! start (the roots that vouch for the balancer, from `--ca-file` or the system's trust store;
//! the agent's own certificate for mutual TLS) and the name each balancer is verified against.
//!
//! TLS 1.3 only and ALPN `ringway-tunnel`, as the balancer's agent listener asks. The handshake
//! itself is `ringway_io::tls::TlsStream::connect`.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::config::TlsSettings;

/// The ALPN protocol of the tunnel (the balancer's agent listener offers only it).
const TUNNEL_ALPN: &[u8] = b"ringway-tunnel";

/// What every TLS tunnel connection of the agent uses.
#[derive(Debug)]
pub(crate) struct ClientTls {
    pub(crate) config: Arc<ClientConfig>,
    /// `--server-name`: verify every balancer against this name instead of its host.
    server_name: Option<ServerName<'static>>,
}

impl ClientTls {
    /// Reads the files `settings` names (an error names the flag and the file).
    pub(crate) fn new(settings: &TlsSettings) -> io::Result<Self> {
        let mut roots = RootCertStore::empty();
        match &settings.ca_file {
            Some(path) => {
                for cert in read_certs("--ca-file", path)? {
                    roots
                        .add(cert)
                        .map_err(|e| bad("--ca-file", path, &e.to_string()))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "no system root certificates found to verify the balancer ({} \
                             errors): pass --ca-file with the CA that signed its certificate",
                            found.errors.len()
                        ),
                    ));
                }
            }
        }
        let builder = ClientConfig::builder_with_provider(Arc::new(default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| io::Error::other(format!("setting up rustls: {e}")))?
            .with_root_certificates(roots);
        let mut config = match (&settings.cert, &settings.key) {
            (Some(cert), Some(key)) => {
                let chain = read_certs("--cert", cert)?;
                let der = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| bad("--key", key, &format!("{e:?}")))?;
                builder
                    .with_client_auth_cert(chain, der)
                    .map_err(|e| bad("--key", key, &format!("does not fit --cert: {e}")))?
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![TUNNEL_ALPN.to_vec()];
        let server_name = match &settings.server_name {
            Some(name) => Some(parse_name(name).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("--server-name: {e}"))
            })?),
            None => None,
        };
        Ok(Self {
            config: Arc::new(config),
            server_name,
        })
    }

    /// The name balancer `host` (from its `--balancer HOST:PORT`) is verified against.
    pub(crate) fn name_for(&self, host: &str) -> io::Result<ServerName<'static>> {
        match &self.server_name {
            Some(name) => Ok(name.clone()),
            None => parse_name(host).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("--balancer {host}: {e}"),
                )
            }),
        }
    }
}

/// What most likely went wrong, for the log line of a failed handshake.
pub(crate) fn handshake_hint(e: &io::Error) -> &'static str {
    let text = e.to_string();
    if text.contains("UnknownIssuer") || text.contains("BadSignature") {
        "the balancer's certificate is not signed by a CA this agent trusts (--ca-file)"
    } else if text.contains("NotValidForName") {
        "the balancer's certificate is not for this name (--balancer host, or --server-name)"
    } else if text.contains("InvalidContentType") || text.contains("corrupt message") {
        "the balancer does not speak TLS: is its agent listener plaintext \
         (agents.insecure_plaintext)? then start this agent with --insecure-plaintext"
    } else if text.contains("CertificateRequired") {
        "the balancer requires a client certificate (--cert, --key)"
    } else if text.contains("peer closed") {
        "the balancer closed the connection during the handshake: is its agent listener \
         plaintext (agents.insecure_plaintext)? then start this agent with --insecure-plaintext"
    } else {
        "see the error"
    }
}

fn parse_name(host: &str) -> Result<ServerName<'static>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|e| format!("{host:?} is not a server name: {e}"))
}

fn read_certs(flag: &str, path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| bad(flag, path, &format!("{e:?}")))?;
    if certs.is_empty() {
        return Err(bad(flag, path, "no CERTIFICATE in the file"));
    }
    Ok(certs)
}

fn bad(flag: &str, path: &Path, reason: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{flag} {}: {reason}", path.display()),
    )
}
