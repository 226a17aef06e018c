//! Balancer addresses: `--balancer` names resolved at start and again every `resolve_interval`.
//!
//! A name with several addresses means several balancers (behind DNS); the agent keeps its
//! connections to every one of them. When a new address appears the first runtime thread opens a
//! probe connection to it; a slot whose address has left DNS stops once its connection is lost.
//! A name that does not resolve yet is retried (the agent may start before DNS knows its
//! balancers), but a name without a port is a configuration error.

use std::collections::HashSet;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::control::{Command, Control};

/// Checks every name has the `HOST:PORT` shape, without resolving it.
pub(crate) fn check_names(names: &[String]) -> io::Result<()> {
    if names.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no balancer address",
        ));
    }
    for name in names {
        let port = name.rsplit_once(':').map(|(_, port)| port.parse::<u16>());
        if !matches!(port, Some(Ok(_))) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("balancer {name:?} is not HOST:PORT"),
            ));
        }
    }
    Ok(())
}

/// Every address of every name, deduplicated, in order; names that do not resolve are logged.
#[cfg(test)]
pub(crate) fn resolve_all(names: &[String]) -> Vec<SocketAddr> {
    resolve_hosts(names)
        .into_iter()
        .map(|(addr, _)| addr)
        .collect()
}

/// [`resolve_all`], each address with the host of the name it came from (the first name, if
/// several give it): the name its TLS certificate is verified against.
pub(crate) fn resolve_hosts(names: &[String]) -> Vec<(SocketAddr, String)> {
    let mut addrs: Vec<(SocketAddr, String)> = Vec::new();
    for name in names {
        let host = name
            .rsplit_once(':')
            .map_or(name.as_str(), |(host, _)| host);
        match name.to_socket_addrs() {
            Ok(resolved) => {
                for addr in resolved {
                    if !addrs.iter().any(|(a, _)| *a == addr) {
                        addrs.push((addr, host.to_owned()));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(balancer = %name, error = %e, "cannot resolve balancer (will retry)");
            }
        }
    }
    addrs
}

/// What changed between two resolutions.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) added: Vec<SocketAddr>,
    pub(crate) removed: Vec<SocketAddr>,
}

/// Compares the previous address set with a new resolution. A resolution that found nothing
/// removes nothing: a DNS outage must not drop live balancers.
pub(crate) fn diff(current: &HashSet<SocketAddr>, fresh: &[SocketAddr]) -> Change {
    if fresh.is_empty() {
        return Change::default();
    }
    let added = fresh
        .iter()
        .filter(|a| !current.contains(a))
        .copied()
        .collect();
    let mut removed: Vec<SocketAddr> = current
        .iter()
        .filter(|a| !fresh.contains(a))
        .copied()
        .collect();
    removed.sort();
    Change { added, removed }
}

/// Starts the thread that re-resolves `names` every `interval` until the agent stops. Only
/// needed when some name is not a literal address.
pub(crate) fn spawn_resolver(
    control: Arc<Control>,
    names: Vec<String>,
    interval: Duration,
) -> io::Result<Option<JoinHandle<()>>> {
    if names.iter().all(|n| n.parse::<SocketAddr>().is_ok()) {
        return Ok(None);
    }
    let handle = std::thread::Builder::new()
        .name("ringway-resolver".into())
        .spawn(move || {
            let mut next = Instant::now() + interval;
            while !control.stopping.load(Ordering::Acquire) {
                if Instant::now() < next {
                    std::thread::sleep(Duration::from_millis(50).min(interval));
                    continue;
                }
                next = Instant::now() + interval;
                let named = resolve_hosts(&names);
                control.learn_hosts(&named);
                let fresh: Vec<SocketAddr> = named.into_iter().map(|(addr, _)| addr).collect();
                let change = {
                    let mut current = control
                        .balancers
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let change = diff(&current, &fresh);
                    current.extend(change.added.iter().copied());
                    for addr in &change.removed {
                        current.remove(addr);
                    }
                    change
                };
                for addr in change.removed {
                    tracing::info!(balancer = %addr, "balancer address left DNS");
                    control.forget_worker_count(addr);
                }
                for addr in change.added {
                    tracing::info!(balancer = %addr, "new balancer address");
                    control.send_first(Command::AddBalancer(addr));
                }
                control.resolutions.fetch_add(1, Ordering::Release);
            }
        })?;
    Ok(Some(handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn names_need_a_port() {
        assert!(check_names(&["lb.example:7000".into(), "127.0.0.1:1".into()]).is_ok());
        let err = check_names(&["lb.example".into()]).unwrap_err();
        assert!(err.to_string().contains("lb.example"), "{err}");
        assert!(check_names(&[]).is_err());
    }

    #[test]
    fn resolves_and_deduplicates_and_survives_bad_names() {
        let addrs = resolve_all(&[
            "127.0.0.1:7000".into(),
            "127.0.0.1:7000".into(),
            "no-such-host.invalid:7000".into(),
            "localhost:7001".into(),
        ]);
        assert_eq!(addrs[0], addr("127.0.0.1:7000"));
        assert!(addrs.len() >= 2, "{addrs:?}");
        assert!(addrs.iter().all(|a| a.port() == 7000 || a.port() == 7001));
    }

    #[test]
    fn diff_reports_new_and_gone_addresses() {
        let current: HashSet<SocketAddr> = [addr("10.0.0.1:7000"), addr("10.0.0.2:7000")].into();
        let change = diff(&current, &[addr("10.0.0.2:7000"), addr("10.0.0.3:7000")]);
        assert_eq!(change.added, [addr("10.0.0.3:7000")]);
        assert_eq!(change.removed, [addr("10.0.0.1:7000")]);
        assert_eq!(
            diff(&current, &[]),
            Change::default(),
            "an empty answer removes nothing"
        );
    }
}
