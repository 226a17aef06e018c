//! Arbitrary event sequences against one backend exchange (`ringway_core::upstream::replay`):
//! no panic, the backend always receives the request head and a prefix of its body, credit never
//! released twice, nothing retried once a response byte came back. The same replay is the
//! `upstream` fuzz target.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn any_event_sequence_keeps_the_upstream_invariants(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        ringway_core::upstream::replay::run(&input);
    }
}
