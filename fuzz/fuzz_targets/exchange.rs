//! Replays arbitrary bytes as events against one proxied request's state machine
//! (`ringway_core::exchange::replay`): no panic, the body bytes sent upstream are always a
//! prefix of what the user sent, nothing is retried once the response started.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ringway_core::exchange::replay::run(data);
});
