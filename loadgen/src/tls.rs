//! The client side of `https://` targets: one rustls `ClientConfig` per run, built from the
//! flags (`--ca-file` or `--insecure`, `--sni`, `--tls-cipher`, `--tls-group`), and the name
//! each connection's handshake sends and verifies.
//!
//! A load generator measures the server's handshake, so the configuration never resumes a
//! session: every new connection is a full handshake (tickets the server sends are ignored).
//! ALPN is `http/1.1`. The handshake itself is `ringway_io::tls::TlsStream::connect`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::ring::default_provider;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// What the TLS flags asked for.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// CA certificates (PEM) that vouch for the server.
    pub ca_file: Option<String>,
    /// Do not verify the server's certificate at all.
    pub insecure: bool,
    /// The name sent as SNI and verified (default: the URL's host).
    pub sni: Option<String>,
    /// Cipher suites offered, by rustls name (`TLS13_AES_128_GCM_SHA256`); empty: all.
    pub ciphers: Vec<String>,
    /// Key-exchange groups offered (`X25519`, `secp256r1`); empty: all.
    pub groups: Vec<String>,
}

/// The configuration every connection to one target uses, and the server's name.
#[derive(Clone)]
pub struct TlsClient {
    /// rustls' client configuration (no resumption).
    pub config: Arc<ClientConfig>,
    /// SNI and the name the certificate is verified against.
    pub name: ServerName<'static>,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Builds the configuration for a target whose URL host is `host`; an error names the
    /// flag at fault.
    pub fn new(opts: &TlsOptions, host: &str) -> Result<Self, (&'static str, String)> {
        let provider = Arc::new(provider(opts)?);
        let versions: Vec<&'static rustls::SupportedProtocolVersion> =
            [&rustls::version::TLS13, &rustls::version::TLS12]
                .into_iter()
                .filter(|v| provider.cipher_suites.iter().any(|s| s.version() == *v))
                .collect();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| ("tls-cipher", format!("setting up rustls: {e}")))?;
        let mut config = if opts.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerifier(provider)))
                .with_no_client_auth()
        } else {
            builder
                .with_root_certificates(roots(opts.ca_file.as_deref())?)
                .with_no_client_auth()
        };
        config.resumption = Resumption::disabled();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = opts.sni.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.trim_start_matches('[').trim_end_matches(']'))
            .map_err(|e| ("sni", format!("{name:?}: {e}")))?
            .to_owned();
        Ok(Self {
            config: Arc::new(config),
            name,
        })
    }
}

/// ring's provider with only the suites and groups asked for (in the order given).
fn provider(opts: &TlsOptions) -> Result<CryptoProvider, (&'static str, String)> {
    let mut p = default_provider();
    if !opts.ciphers.is_empty() {
        p.cipher_suites = pick(&p.cipher_suites, &opts.ciphers, |s| {
            format!("{:?}", s.suite())
        })
        .map_err(|why| ("tls-cipher", why))?;
    }
    if !opts.groups.is_empty() {
        p.kx_groups = pick(&p.kx_groups, &opts.groups, |g| format!("{:?}", g.name()))
            .map_err(|why| ("tls-group", why))?;
    }
    Ok(p)
}

/// The items of `all` whose `name` matches each of `wanted` (ASCII case ignored), in the order
/// of `wanted`; an error names the first unknown one and lists the names there are.
fn pick<T: Copy>(
    all: &[T],
    wanted: &[String],
    name: impl Fn(&T) -> String,
) -> Result<Vec<T>, String> {
    wanted
        .iter()
        .map(|want| {
            all.iter()
                .find(|item| name(item).eq_ignore_ascii_case(want))
                .copied()
                .ok_or_else(|| {
                    let names: Vec<String> = all.iter().map(&name).collect();
                    format!("{want:?} is not one of {}", names.join(", "))
                })
        })
        .collect()
}

/// The roots of `--ca-file`; without it, none (then only `--insecure` connects).
fn roots(ca_file: Option<&str>) -> Result<RootCertStore, (&'static str, String)> {
    let mut roots = RootCertStore::empty();
    let Some(path) = ca_file else {
        return Err((
            "ca-file",
            "an https:// target needs --ca-file (the CA that signed the server's certificate) \
             or --insecure"
                .to_owned(),
        ));
    };
    let certs = CertificateDer::pem_file_iter(Path::new(path))
        .map_err(|e| ("ca-file", format!("{path}: {e:?}")))?;
    for cert in certs {
        let cert = cert.map_err(|e| ("ca-file", format!("{path}: {e:?}")))?;
        roots
            .add(cert)
            .map_err(|e| ("ca-file", format!("{path}: {e}")))?;
    }
    if roots.is_empty() {
        return Err(("ca-file", format!("{path}: no certificate in it")));
    }
    Ok(roots)
}

/// `--insecure`: any certificate is accepted; signatures are still checked (the handshake
/// costs the server what it costs with a real client).
#[derive(Debug)]
struct NoVerifier(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_one_suite_and_group() {
        let opts = TlsOptions {
            insecure: true,
            ciphers: vec!["tls13_aes_128_gcm_sha256".into()],
            groups: vec!["X25519".into()],
            ..TlsOptions::default()
        };
        let p = provider(&opts).unwrap();
        assert_eq!(p.cipher_suites.len(), 1);
        assert_eq!(p.kx_groups.len(), 1);
        let c = TlsClient::new(&opts, "127.0.0.1").unwrap();
        assert!(matches!(c.name, ServerName::IpAddress(_)));
        assert_eq!(c.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn an_unknown_suite_is_named() {
        let opts = TlsOptions {
            insecure: true,
            ciphers: vec!["TLS_NOPE".into()],
            ..TlsOptions::default()
        };
        let (flag, why) = provider(&opts).unwrap_err();
        assert_eq!(flag, "tls-cipher");
        assert!(why.contains("TLS13_AES_128_GCM_SHA256"), "{why}");
    }

    #[test]
    fn an_unknown_group_is_named_and_order_is_kept() {
        let opts = TlsOptions {
            insecure: true,
            groups: vec!["NOPE25519".into()],
            ..TlsOptions::default()
        };
        let (flag, why) = provider(&opts).unwrap_err();
        assert_eq!(flag, "tls-group");
        assert!(why.contains("X25519"), "{why}");
        let opts = TlsOptions {
            groups: vec!["secp256r1".into(), "x25519".into()],
            ..TlsOptions::default()
        };
        let names: Vec<String> = provider(&opts)
            .unwrap()
            .kx_groups
            .iter()
            .map(|g| format!("{:?}", g.name()))
            .collect();
        assert_eq!(names, ["secp256r1", "X25519"]);
    }

    #[test]
    fn without_roots_it_says_what_to_pass() {
        let (flag, _) = TlsClient::new(&TlsOptions::default(), "x.test").unwrap_err();
        assert_eq!(flag, "ca-file");
    }
}
