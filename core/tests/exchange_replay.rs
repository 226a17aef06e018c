//! Arbitrary event sequences against one exchange (`ringway_core::exchange::replay`): no panic,
//! upstream body bytes always a prefix of what the user sent, no retry once the response started.
//! The same replay is the `exchange` fuzz target.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn any_event_sequence_keeps_the_exchange_invariants(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        ringway_core::exchange::replay::run(&input);
    }
}
