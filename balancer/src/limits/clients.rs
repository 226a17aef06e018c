//! `[limits] max_connections_per_client`: open user connections per client IP address, over
//! the whole process. A client's connections hash to different workers, so this is the one
//! table the workers share; it is touched only when a connection is accepted and when it
//! closes (never per request), behind one of a few locks chosen by the address's hash. An entry
//! goes when its count drops to 0, so the table holds only addresses with a connection open.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The `Retry-After` seconds of a 429 for too many connections: a client is expected to wait
/// for one of its own connections to close, not for the balancer.
pub(crate) const CLIENT_RETRY_AFTER_SECS: u32 = 1;

/// What the per-client limit says of a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAdmission {
    /// No limit is configured: nothing was counted.
    Uncounted,
    /// Counted in the table: its close must be reported (`ClientTable::release`).
    Counted,
    /// The client is at the limit: answered 429 and closed, not counted.
    Refused,
}

/// Open connections by client address, process-wide.
#[derive(Debug)]
pub(crate) struct ClientTable {
    /// Changed by a reload (from one limit to another; on or off takes a restart).
    max: AtomicU32,
    /// Keyed with SipHash: the addresses are the clients' to choose.
    hasher: RandomState,
    shards: Box<[Mutex<HashMap<IpAddr, u32>>]>,
}

impl ClientTable {
    /// A table allowing `max` connections per address, with locks for `workers` threads;
    /// `None` when `max` is 0 (no limit: nothing to count).
    pub(crate) fn new(max: u32, workers: usize) -> Option<Self> {
        if max == 0 {
            return None;
        }
        // Four locks per worker: two workers accepting at once seldom meet on one.
        let shards = (workers.max(1) * 4).next_power_of_two();
        Some(Self {
            max: AtomicU32::new(max),
            hasher: RandomState::new(),
            shards: (0..shards).map(|_| Mutex::default()).collect(),
        })
    }

    /// Counts a new connection from `ip`, unless `ip` holds `max` already: false then (the
    /// connection is refused and not counted).
    pub(crate) fn admit(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let mut shard = self.shard(ip);
        let count = shard.entry(ip).or_insert(0);
        if *count >= self.max.load(Ordering::Relaxed) {
            return false;
        }
        *count += 1;
        true
    }

    /// A reload set another limit (connections over it stay; new ones are refused).
    pub(crate) fn set_max(&self, max: u32) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// A counted connection from `ip` closed.
    pub(crate) fn release(&self, ip: IpAddr) {
        let ip = ip.to_canonical();
        let mut shard = self.shard(ip);
        if let Entry::Occupied(mut e) = shard.entry(ip) {
            *e.get_mut() = e.get().saturating_sub(1);
            if *e.get() == 0 {
                e.remove();
            }
        }
    }

    /// Addresses with a connection open (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }

    fn shard(&self, ip: IpAddr) -> MutexGuard<'_, HashMap<IpAddr, u32>> {
        let hash = self.hasher.hash_one(ip);
        // `shards.len()` is a power of two.
        let i = usize::try_from(hash).unwrap_or_default() & (self.shards.len() - 1);
        // A panic while holding a lock leaves consistent counts (each change is one store).
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn zero_is_no_table() {
        assert!(ClientTable::new(0, 4).is_none());
    }

    #[test]
    fn an_address_gets_max_connections_then_is_refused_until_one_closes() {
        let table = ClientTable::new(2, 2).expect("a limit");
        assert!(table.admit(ip("10.0.0.1")));
        assert!(table.admit(ip("10.0.0.1")));
        assert!(!table.admit(ip("10.0.0.1")), "the third is refused");
        assert!(table.admit(ip("10.0.0.2")), "another address is not");
        table.release(ip("10.0.0.1"));
        assert!(table.admit(ip("10.0.0.1")), "room again after a close");
        assert!(!table.admit(ip("10.0.0.1")));
    }

    #[test]
    fn entries_go_when_their_count_drops_to_zero() {
        let table = ClientTable::new(3, 1).expect("a limit");
        for i in 0..100u8 {
            let a = IpAddr::from([10, 0, 0, i]);
            assert!(table.admit(a));
            assert!(table.admit(a));
        }
        assert_eq!(table.len(), 100);
        for i in 0..100u8 {
            let a = IpAddr::from([10, 0, 0, i]);
            table.release(a);
            table.release(a);
        }
        assert_eq!(table.len(), 0, "nothing left behind");
        // A release without an admit (it cannot happen; should it) changes nothing.
        table.release(ip("10.0.0.1"));
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn an_ipv4_mapped_address_is_the_ipv4_address() {
        let table = ClientTable::new(1, 1).expect("a limit");
        assert!(table.admit(ip("192.0.2.7")));
        assert!(!table.admit(ip("::ffff:192.0.2.7")), "the same client");
        table.release(ip("::ffff:192.0.2.7"));
        assert_eq!(table.len(), 0);
    }
}
