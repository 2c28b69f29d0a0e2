//! The command line of `sip-ptls`: its subcommands.

pub mod check_config;
pub mod console;
pub mod demo;
pub mod demo_lab;
pub mod files;
pub mod log;
pub mod narrator;
pub mod replay;
pub mod run;
pub mod simulate;
