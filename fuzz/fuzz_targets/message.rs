//! cargo-fuzz target `message`: the body in bodies/message.rs, shared with tests/fuzz_replay.rs.
#![no_main]

#[path = "../bodies/message.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
