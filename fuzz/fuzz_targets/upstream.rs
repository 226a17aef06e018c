//! Replays arbitrary bytes as events against one request over one backend connection
//! (`ringway_core::upstream::replay`): no panic, the backend always receives the request head and
//! a prefix of its body, body credit is never released twice, nothing is retried once a response
//! byte came back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ringway_core::upstream::replay::run(data);
});
