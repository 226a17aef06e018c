//! One ACME order over instant-acme: the account (read back from the storage, else created
//! and stored), then new-order, a challenge per pending authorization (published to the
//! workers before the server is told to validate, withdrawn after: an HTTP-01 key
//! authorization, or a TLS-ALPN-01 certificate for the resolver), finalize with a fresh key
//! and CSR, and the chain.

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use tracing::info;

use super::store::Store;
use super::Challenges;
use crate::config::{AcmeChallenge, AcmeConfig};
use crate::tls::SniResolver;

/// Where a challenge's answer is published for the workers.
pub(super) struct Responders<'a> {
    pub(super) kind: AcmeChallenge,
    pub(super) challenges: &'a Challenges,
    pub(super) resolver: &'a SniResolver,
}

/// What to withdraw once the order is validated (or failed).
enum Published {
    Token(String),
    AlpnHost(String),
}

/// How long the server gets to validate the challenges, then to issue.
fn retries() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(std::time::Duration::from_millis(250))
        .timeout(std::time::Duration::from_secs(90))
}

/// The account for `config.directory`: the stored one, else a new one (then stored).
pub(super) async fn account(config: &AcmeConfig, store: &Store) -> Result<Account, String> {
    let builder = || match &config.ca_file {
        Some(path) => Account::builder_with_root(path)
            .map_err(|e| format!("tls.acme.ca_file = {:?}: {e}", path.display())),
        None => Account::builder().map_err(|e| format!("the system's root certificates: {e}")),
    };
    if let Some(json) = store.read_account(&config.directory)? {
        let path = store.account_path(&config.directory);
        let credentials: AccountCredentials = serde_json::from_str(&json)
            .map_err(|e| format!("{}: not an account file: {e}", path.display()))?;
        let account = builder()?
            .from_credentials(credentials)
            .await
            .map_err(|e| format!("the ACME server at {}: {e}", config.directory))?;
        info!(account = %account.id(), "ACME account read from the storage");
        return Ok(account);
    }
    let contact: Vec<&str> = config.contact.iter().map(String::as_str).collect();
    let new = NewAccount {
        contact: &contact,
        terms_of_service_agreed: config.accept_terms,
        only_return_existing: false,
    };
    let (account, credentials) = builder()?
        .create(&new, config.directory.clone(), None)
        .await
        .map_err(|e| format!("creating an account at {}: {e}", config.directory))?;
    let json =
        serde_json::to_string(&credentials).map_err(|e| format!("serialising the account: {e}"))?;
    store.write_account(&config.directory, &json)?;
    info!(account = %account.id(), "ACME account created and stored");
    Ok(account)
}

/// Orders a certificate for `hosts` (HTTP-01), returns the chain and its key (PEM).
pub(super) async fn obtain(
    account: &Account,
    hosts: &[String],
    responders: &Responders<'_>,
) -> Result<(String, String), String> {
    let identifiers: Vec<Identifier> = hosts.iter().cloned().map(Identifier::Dns).collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| format!("new order: {e}"))?;
    let mut published = Vec::new();
    let ready = validate(&mut order, responders, &mut published).await;
    for p in &published {
        match p {
            Published::Token(token) => responders.challenges.remove(token),
            Published::AlpnHost(host) => responders.resolver.set_alpn_challenge(host, None),
        }
    }
    ready?;
    let key_pem = order
        .finalize()
        .await
        .map_err(|e| format!("finalizing the order: {e}"))?;
    let chain_pem = order
        .poll_certificate(&retries())
        .await
        .map_err(|e| format!("fetching the certificate: {e}"))?;
    Ok((chain_pem, key_pem))
}

/// Publishes a challenge per pending authorization (noted in `published`), asks the server
/// to validate each, and waits until the order is ready.
async fn validate(
    order: &mut instant_acme::Order,
    responders: &Responders<'_>,
    published: &mut Vec<Published>,
) -> Result<(), String> {
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.map_err(|e| format!("authorization: {e}"))?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => return Err(format!("an authorization is {other:?}")),
        }
        let name = authorization.identifier().to_string();
        let (kind, label) = match responders.kind {
            AcmeChallenge::Http01 => (ChallengeType::Http01, "http-01"),
            AcmeChallenge::TlsAlpn01 => (ChallengeType::TlsAlpn01, "tls-alpn-01"),
        };
        let mut challenge = authorization
            .challenge(kind)
            .ok_or_else(|| format!("the server offers no {label} challenge for {name}"))?;
        let key_authorization = challenge.key_authorization();
        match responders.kind {
            AcmeChallenge::Http01 => {
                let token = challenge.token.clone();
                responders
                    .challenges
                    .add(&token, key_authorization.as_str());
                published.push(Published::Token(token));
            }
            AcmeChallenge::TlsAlpn01 => {
                let key = alpn_certificate(&name, key_authorization.digest().as_ref())?;
                responders
                    .resolver
                    .set_alpn_challenge(&name, Some(&std::sync::Arc::new(key)));
                published.push(Published::AlpnHost(name.clone()));
            }
        }
        challenge
            .set_ready()
            .await
            .map_err(|e| format!("challenge for {name}: {e}"))?;
    }
    let status = order
        .poll_ready(&retries())
        .await
        .map_err(|e| format!("waiting for validation: {e}"))?;
    if status != OrderStatus::Ready {
        let detail = order
            .state()
            .error
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        return Err(format!("the order is {status:?} after validation {detail}"));
    }
    Ok(())
}

/// The self-signed certificate of a TLS-ALPN-01 validation of `name`: the name as its only
/// SAN and the critical acmeIdentifier extension holding the key authorization's SHA-256
/// (RFC 8737, section 3).
fn alpn_certificate(name: &str, digest: &[u8]) -> Result<rustls::sign::CertifiedKey, String> {
    let fail = |e: rcgen::Error| format!("the tls-alpn-01 certificate for {name}: {e}");
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).map_err(fail)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let cert = params.self_signed(&key).map_err(fail)?;
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    // Not `certified_key`: its check that key and certificate match parses the certificate
    // with webpki, which refuses the critical extension nothing but the CA understands.
    let signer = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| format!("the tls-alpn-01 certificate for {name}: {e}"))?;
    Ok(rustls::sign::CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    ))
}
