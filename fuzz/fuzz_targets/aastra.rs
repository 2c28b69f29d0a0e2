//! cargo-fuzz target `aastra`: the body in bodies/aastra.rs, shared with tests/fuzz_replay.rs.
#![no_main]

#[path = "../bodies/input.rs"]
mod input;

#[path = "../bodies/aastra.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
