//! cargo-fuzz target `digest`: the body in bodies/digest.rs, shared with tests/fuzz_replay.rs.
#![no_main]

#[path = "../bodies/digest.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
