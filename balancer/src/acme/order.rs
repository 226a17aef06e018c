//! One ACME order over instant-acme: the account (read back from the storage, else created
//! and stored), then new-order, an HTTP-01 challenge per pending authorization (published to
//! the workers before the server is told to validate, withdrawn after), finalize with a fresh
//! key and CSR, and the chain.

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use tracing::info;

use super::store::Store;
use super::Challenges;
use crate::config::AcmeConfig;

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
    let json = serde_json::to_string(&credentials)
        .map_err(|e| format!("serialising the account: {e}"))?;
    store.write_account(&config.directory, &json)?;
    info!(account = %account.id(), "ACME account created and stored");
    Ok(account)
}

/// Orders a certificate for `hosts` (HTTP-01), returns the chain and its key (PEM).
pub(super) async fn obtain(
    account: &Account,
    hosts: &[String],
    challenges: &Challenges,
) -> Result<(String, String), String> {
    let identifiers: Vec<Identifier> = hosts.iter().cloned().map(Identifier::Dns).collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| format!("new order: {e}"))?;
    let mut tokens = Vec::new();
    let ready = validate(&mut order, challenges, &mut tokens).await;
    for token in &tokens {
        challenges.remove(token);
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

/// Publishes a challenge per pending authorization (its token in `tokens`), asks the server
/// to validate each, and waits until the order is ready.
async fn validate(
    order: &mut instant_acme::Order,
    challenges: &Challenges,
    tokens: &mut Vec<String>,
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
        let mut challenge = authorization
            .challenge(ChallengeType::Http01)
            .ok_or_else(|| format!("the server offers no http-01 challenge for {name}"))?;
        challenges.add(&challenge.token, challenge.key_authorization().as_str());
        tokens.push(challenge.token.clone());
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
