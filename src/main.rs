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
    ///
    /// With --record, every input given to the core and every output it produced is
    /// written to a trace that `sip-ptls replay` plays back against the model.
    ///
    /// While it runs it takes commands on standard input, one per line, and answers each
    /// on standard output (the log goes to standard error): `dial LINE TARGET`,
    /// `answer CALL`, `reject CALL [STATUS]`, `hangup CALL`, `status`, `help`. An incoming
    /// call rings until answered or rejected there (or until the ringing timeout); the end
    /// of standard input leaves the phone running, and from then on incoming calls are
    /// rejected with 480 unless --auto-answer.
    Run {
        /// A configuration file: aastra.cfg, then <model>.cfg, then <mac>.cfg (later ones win).
        /// Certificate file names are resolved against the directory of the first one.
        #[arg(long = "config", value_name = "FILE", required = true)]
        configs: Vec<PathBuf>,
        /// Log one JSON object per line instead of human-readable lines.
        #[arg(long)]
        json: bool,
        /// Answer incoming calls (without it they ring for the `answer` command while
        /// standard input is open, and are rejected with 480 once it has ended).
        #[arg(long)]
        auto_answer: bool,
        /// Record every input given to the core and every output it produced, with their
        /// times, to FILE (JSON lines; see docs/record-replay.md), for `sip-ptls replay`.
        /// FILE must not exist; it is created readable by its owner only, since it holds
        /// the seed and the digest responses (no password or key: the configuration is
        /// not in it). If writing fails later, the phone goes on and logs the error once.
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        /// Serve the web interface on ADDR (a loopback address and port, e.g.
        /// 127.0.0.1:8080; port 0 picks a free one, and the log says which): the
        /// connection live, the lines, calls placed and taken, and the settings pages,
        /// which save to the local file and restart the phone with it (docs/web-ui.md).
        /// With `admin password` in the configuration it asks for a login.
        #[arg(long, value_name = "ADDR")]
        web: Option<std::net::SocketAddr>,
        /// The local configuration file: read after the --config files (its values win),
        /// and the only file the web interface writes (atomically, keeping the previous
        /// version as FILE.bak). Default: sip-ptls-local.cfg beside the first --config
        /// file; a missing file is the same as an empty one.
        #[arg(long, value_name = "FILE")]
        local_config: Option<PathBuf>,
        /// The web interface's certificate (PEM, leaf first, then its chain): it serves
        /// HTTPS, required off loopback (with `admin password`).
        #[arg(long, value_name = "FILE", requires = "web_key", requires = "web")]
        web_cert: Option<PathBuf>,
        /// The private key of --web-cert (PEM).
        #[arg(long, value_name = "FILE", requires = "web_cert")]
        web_key: Option<PathBuf>,
    },
    /// Replay a trace recorded with `run --record` and check it against the model.
    ///
    /// Builds a fresh core from the same configuration and the recorded seed, gives it the
    /// recorded inputs at their recorded times, prints the timeline, and checks that every
    /// output is identical and that no invariant is broken (docs/record-replay.md). Exit
    /// status 0, 1 (a difference, named by its line, or a broken invariant) or 2 (an
    /// unreadable trace or configuration).
    Replay {
        /// The trace file.
        #[arg(value_name = "TRACE")]
        trace: PathBuf,
        /// The configuration files the phone ran with, in the same order as for `run`
        /// (certificate files are not read).
        #[arg(long = "config", value_name = "FILE", required = true)]
        configs: Vec<PathBuf>,
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
    Demo {
        /// After the narrated steps, keep the phone and its registrars running and serve
        /// the phone's web interface on ADDR (a loopback address, e.g. 127.0.0.1:8080)
        /// until Ctrl-C: the feature in a browser (docs/web-ui.md).
        #[arg(long, value_name = "ADDR")]
        web: Option<std::net::SocketAddr>,
    },
    /// The whole feature on the virtual clock against simulated servers (no sockets).
    Simulate,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let ok = match args.command.unwrap_or(Command::Demo { web: None }) {
        Command::Run { configs, json, auto_answer, record, web, local_config, web_cert, web_key } => {
            let opts = cli::run::Options { configs, json, auto_answer, record, web, local_config, web_cert, web_key };
            return cli::run::run(&opts);
        }
        Command::Replay { trace, configs } => return cli::replay::run(&trace, &configs),
        Command::CheckConfig { configs } => return cli::check_config::run(&configs),
        Command::Demo { web } => {
            // The demo narrates on stdout; the log is there on request (RUST_LOG=debug).
            if std::env::var_os("RUST_LOG").is_some() {
                cli::log::init(false);
            }
            cli::demo::run(web)
        }
        Command::Simulate => cli::simulate::run(),
    };
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
