//! ACME (RFC 8555): the certificates of the `[[tls.cert]]` entries with `acme = true`,
//! obtained from the server of `[tls.acme]`, stored, renewed `renew_before` their expiry and
//! swapped into the HTTPS listener's resolver without a restart (handshakes from then on get
//! the new certificate; open connections keep theirs).
//!
//! Everything runs on one thread of its own, `ringway-acme`, on a current-thread tokio
//! runtime that the ACME client (instant-acme, over hyper) needs; no worker runs tokio. The
//! thread shares what it publishes with the workers, each swapped whole and only read by
//! them: the resolver's ACME table (`tls::SniResolver::replace_acme`), the pending HTTP-01
//! challenges ([`Challenges`]), which the workers answer on the plain listener (`early`), and
//! with `challenge = "tls-alpn-01"` the validation certificates the resolver serves to a
//! ClientHello offering ALPN `acme-tls/1` (`tls::SniResolver::set_alpn_challenge`).
//!
//! At the start the thread reads what the storage holds (the account for this directory,
//! each entry's certificate) and serves every stored certificate that covers the entry's
//! hosts, even one due for renewal; then it orders what is missing or due. A failed order is
//! logged and tried again after a backoff (5 s doubling, at most `check_interval`); the old
//! certificate, if any, is served meanwhile.

mod challenges;
mod order;
mod store;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

pub(crate) use challenges::{is_challenge_path, Challenges};
use store::{covers, renew_at, Store, Stored};

use crate::config::{AcmeConfig, TlsConfig};
use crate::tls::{is_default, CertTable, SniResolver};

/// The first wait after a failed order; it doubles up to `check_interval`.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// How often the thread looks at the shutdown flag while it waits.
const POLL: Duration = Duration::from_millis(250);
/// The longest one order may take before it counts as failed.
const ORDER_TIMEOUT: Duration = Duration::from_secs(300);

/// One `acme = true` entry and where it stands.
struct Entry {
    /// Its index in `[[tls.cert]]` (for the log and the default).
    index: usize,
    hosts: Vec<String>,
    default: bool,
    current: Option<Arc<rustls::sign::CertifiedKey>>,
    /// When to look at it again.
    next: SystemTime,
    backoff: Duration,
}

/// Starts the ACME thread for `config`'s `acme = true` entries (none: nothing starts). It ends
/// when `shutdown` is set.
pub(crate) fn start(
    config: &TlsConfig,
    resolver: Arc<SniResolver>,
    challenges: Arc<Challenges>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<()> {
    let Some(acme) = config.acme.clone() else {
        return Ok(());
    };
    let entries: Vec<Entry> = config
        .certs
        .iter()
        .enumerate()
        .filter(|(_, c)| c.acme)
        .map(|(index, c)| Entry {
            index,
            hosts: c.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            default: is_default(config, index),
            current: None,
            next: SystemTime::UNIX_EPOCH,
            backoff: FIRST_BACKOFF.min(acme.check_interval),
        })
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    let store =
        Store::open(&acme.storage).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut thread = AcmeThread {
        config: acme,
        store,
        resolver,
        challenges,
        entries,
        account: None,
    };
    thread.load_stored();
    std::thread::Builder::new()
        .name("ringway-acme".to_owned())
        .spawn(move || runtime.block_on(thread.run(&shutdown)))?;
    Ok(())
}

struct AcmeThread {
    config: AcmeConfig,
    store: Store,
    resolver: Arc<SniResolver>,
    challenges: Arc<Challenges>,
    entries: Vec<Entry>,
    /// Made (or read back) at the first order.
    account: Option<instant_acme::Account>,
}

impl AcmeThread {
    /// Serves what the storage holds (before the first handshake: the listener has not
    /// accepted yet); a certificate not due yet is looked at again when it is.
    fn load_stored(&mut self) {
        let now = SystemTime::now();
        for entry in &mut self.entries {
            let host = &entry.hosts[0];
            match self.store.read_cert(host) {
                Ok(Some(stored))
                    if covers(&stored.names, &entry.hosts) && stored.not_after > now =>
                {
                    entry.next = renew_at(stored.not_after, self.config.renew_before);
                    info!(
                        hosts = ?entry.hosts,
                        expires = %humantime::format_rfc3339_seconds(stored.not_after),
                        "ACME certificate loaded from the storage"
                    );
                    entry.current = Some(Arc::new(stored.key));
                }
                Ok(Some(_)) => {
                    info!(hosts = ?entry.hosts, "stored ACME certificate expired or is for other names: ordering a new one");
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(hosts = ?entry.hosts, error = %e, "stored ACME certificate unusable: ordering a new one");
                }
            }
        }
        self.publish();
    }

    async fn run(mut self, shutdown: &AtomicBool) {
        loop {
            let now = SystemTime::now();
            for i in 0..self.entries.len() {
                if shutdown.load(Ordering::Relaxed) {
                    return;
                }
                if self.entries[i].next <= now {
                    self.renew(i).await;
                }
            }
            let next = self
                .entries
                .iter()
                .map(|e| e.next)
                .min()
                .unwrap_or(now + self.config.check_interval)
                .min(SystemTime::now() + self.config.check_interval);
            while SystemTime::now() < next {
                if shutdown.load(Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(POLL).await;
            }
        }
    }

    /// Orders entry `i`'s certificate, stores it and serves it; on a failure, backs off.
    async fn renew(&mut self, i: usize) {
        let hosts = self.entries[i].hosts.clone();
        let index = self.entries[i].index;
        info!(hosts = ?hosts, "ordering an ACME certificate");
        let ordered = tokio::time::timeout(ORDER_TIMEOUT, self.order(&hosts)).await;
        let result = match ordered {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no certificate within {}s",
                ORDER_TIMEOUT.as_secs()
            )),
        };
        let check = self.config.check_interval;
        let entry = &mut self.entries[i];
        match result {
            Ok(stored) => {
                info!(
                    hosts = ?hosts,
                    expires = %humantime::format_rfc3339_seconds(stored.not_after),
                    "ACME certificate obtained and served"
                );
                // Due again `renew_before` the expiry, but looked at no sooner than
                // `check_interval` from now (a validity shorter than `renew_before` would
                // otherwise order without end).
                let due = renew_at(stored.not_after, self.config.renew_before);
                entry.next = due.max(SystemTime::now() + check);
                entry.backoff = FIRST_BACKOFF.min(check);
                entry.current = Some(Arc::new(stored.key));
                self.publish();
            }
            Err(e) => {
                warn!(
                    hosts = ?hosts,
                    key = %format!("tls.cert[{index}]"),
                    error = %e,
                    retry_in = %humantime::format_duration(entry.backoff),
                    "ACME order failed"
                );
                entry.next = SystemTime::now() + entry.backoff;
                entry.backoff = (entry.backoff * 2).min(check);
            }
        }
    }

    /// One order, from the account to the stored certificate.
    async fn order(&mut self, hosts: &[String]) -> Result<Stored, String> {
        let account = match &self.account {
            Some(account) => account.clone(),
            None => {
                let account = order::account(&self.config, &self.store).await?;
                self.account = Some(account.clone());
                account
            }
        };
        let responders = order::Responders {
            kind: self.config.challenge,
            challenges: &self.challenges,
            resolver: &self.resolver,
        };
        let (chain_pem, key_pem) = order::obtain(&account, hosts, &responders).await?;
        let stored = store::parse(chain_pem.as_bytes(), key_pem.as_bytes())
            .map_err(|e| format!("the certificate the server issued: {e}"))?;
        self.store.write_cert(&hosts[0], &chain_pem, &key_pem)?;
        Ok(stored)
    }

    /// Swaps the resolver's ACME table for what the entries hold now.
    fn publish(&self) {
        let mut table = CertTable::default();
        for entry in &self.entries {
            let Some(key) = &entry.current else { continue };
            for host in &entry.hosts {
                table.insert(host, key.clone());
            }
            if entry.default {
                table.set_default(key.clone());
            }
        }
        self.resolver.replace_acme(table);
    }
}
