//! The command line of `sip-ptls`: its subcommands.

pub mod simulate;
