//! The `sip-ptls` command: runs the demo with no arguments, or a subcommand.
#![forbid(unsafe_code)]

mod cli;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
    /// Run a phone from Aastra configuration files until Ctrl-C (then de-register and exit 0).
    Run {
        /// A configuration file: aastra.cfg, then <model>.cfg, then <mac>.cfg (later ones win).
        /// Certificate file names are resolved against the directory of the first one.
        #[arg(long = "config", value_name = "FILE", required = true)]
        configs: Vec<PathBuf>,
        /// Log one JSON object per line instead of human-readable lines.
        #[arg(long)]
        json: bool,
        /// Answer incoming calls (without it they are rejected with 480).
        #[arg(long)]
        auto_answer: bool,
    },
    /// Validate configuration and certificate files; print the effective configuration
    /// (passwords masked) or every error with file and line. Exit status 0 or 2.
    CheckConfig {
        /// A configuration file: aastra.cfg, then <model>.cfg, then <mac>.cfg (later ones win).
        /// Certificate file names are resolved against the directory of the first one.
        #[arg(long = "config", value_name = "FILE", required = true)]
        configs: Vec<PathBuf>,
    },
    /// The whole feature on real TLS sockets against in-process registrars on loopback
    /// (the default).
    Demo,
    /// The whole feature on the virtual clock against simulated servers (no sockets).
    Simulate,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let ok = match args.command.unwrap_or(Command::Demo) {
        Command::Run { configs, json, auto_answer } => {
            return cli::run::run(&cli::run::Options { configs, json, auto_answer });
        }
        Command::CheckConfig { configs } => return cli::check_config::run(&configs),
        Command::Demo => {
            // The demo narrates on stdout; the log is there on request (RUST_LOG=debug).
            if std::env::var_os("RUST_LOG").is_some() {
                cli::log::init(false);
            }
            cli::demo::run()
        }
        Command::Simulate => cli::simulate::run(),
    };
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
