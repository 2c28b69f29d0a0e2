//! The `sip-ptls` command: runs the demo with no arguments, or a subcommand.
#![forbid(unsafe_code)]

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Persistent TLS for SIP endpoints.
#[derive(Parser)]
#[command(name = "sip-ptls", version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Show the whole feature on the virtual clock against simulated servers (no sockets).
    Simulate,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let ok = match args.command.unwrap_or(Command::Simulate) {
        Command::Simulate => cli::simulate::run(),
    };
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
