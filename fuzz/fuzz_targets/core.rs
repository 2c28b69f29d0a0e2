//! cargo-fuzz target `core`: the body in bodies/core.rs, shared with tests/fuzz_replay.rs.
#![no_main]

#[path = "../bodies/input.rs"]
mod input;

#[path = "../bodies/core.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
