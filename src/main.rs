//! The `sip-ptls` command.
fn main() {}
