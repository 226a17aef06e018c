//! Maps keyed by small integers (stream ids, route ids, connection keys).

use std::hash::{BuildHasherDefault, Hasher};

/// A hasher for small integer keys: the key itself, spread by one multiplication. Maps on the
/// request path use it instead of SipHash.
///
/// Not meant for keys an attacker chooses freely: the balancer makes its own route ids and
/// connection keys, and tunnel stream ids are opened only by the balancer, strictly increasing
/// (core enforces it), with at most `max_streams` of them open per connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A `HashMap` keyed by small integers, hashed with [`IdHasher`].
pub type IdMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, BuildHasherDefault};

    use super::*;

    #[test]
    fn spreads_sequential_ids() {
        let b = BuildHasherDefault::<IdHasher>::default();
        let hashes: std::collections::HashSet<u64> = (0u32..1000).map(|i| b.hash_one(i)).collect();
        assert_eq!(hashes.len(), 1000);
    }

    #[test]
    fn stream_ids_are_keys() {
        let mut map: IdMap<ringway_core::tunnel::StreamId, &str> = IdMap::default();
        map.insert(ringway_core::tunnel::StreamId(3), "three");
        assert_eq!(map.get(&ringway_core::tunnel::StreamId(3)), Some(&"three"));
        assert_eq!(map.get(&ringway_core::tunnel::StreamId(5)), None);
    }
}
