//! cargo-fuzz target `framer`: the body in bodies/framer.rs, shared with tests/fuzz_replay.rs.
#![no_main]

#[path = "../bodies/input.rs"]
mod input;

#[path = "../bodies/framer.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
