//! Host + path-prefix routing table, swapped atomically as immutable snapshots.
