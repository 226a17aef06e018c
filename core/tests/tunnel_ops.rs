//! Random operation sequences against a `Pair` (the fuzz target's state-machine mode, as a
//! property test): no panic, no protocol error without corruption, bodies arrive intact.

use proptest::prelude::*;
use ringway_core::tunnel::pair::ops;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_operations_keep_the_invariants(input in prop::collection::vec(any::<u8>(), 0..600)) {
        ops::run(&input);
    }

    #[test]
    fn random_operations_without_corruption(input in prop::collection::vec(any::<u8>(), 0..600)) {
        // Op 8 corrupts; map it to a drive so the strict invariants are checked on every run.
        let input: Vec<u8> = input.into_iter().map(|b| if b & 0x0F == 8 { b | 0x0F } else { b }).collect();
        ops::run(&input);
    }
}

#[test]
fn a_busy_sequence_moves_data_both_ways() {
    // open ×3, response heads, data both ways, partial deliveries, releases, a reset, drives.
    let input = [
        0, 0, 0, 0, 0, 0, // open streams 1, 3, 5 with bodies
        2, 0, 200, 0, 2, 1, 100, 1, // balancer data on 1 and 3
        6, 13, 9, // partial delivery to the agent, drive
        1, 0, 0, 1, 1, 0, // response heads on 1 and 3
        0x82, 0, 255, 1, 0x82, 1, 50, 0, // agent data on 1 and 3
        6, 7, 0x86, 3, 9, // partial deliveries, drive
        0x84, 1, 5, // agent resets 3
        3, 0, 200, 0x83, 0, 200, 9, 7, 6, 9,
    ];
    ops::run(&input);
}
