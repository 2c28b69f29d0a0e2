//! `sip-ptls-models`: exhaustive model checking of the sip-ptls core.
//!
//! `check` runs the exhaustive check and prints one summary line (non-zero exit and the
//! shortest counterexample on a violation); `explore` serves the stateright Explorer on
//! 127.0.0.1; `mutants` runs the planted-bug suite (build with `--features planted-bugs`).
#![forbid(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use sip_ptls_models::model::{Bounds, PtlsModel};
use sip_ptls_models::run;
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Model checking of the sip-ptls core with stateright")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Copy)]
struct BoundArgs {
    /// Accounts (lines).
    #[arg(long, default_value_t = Bounds::default().accounts)]
    accounts: u8,
    /// Faults: mode changes, peer closes, lost or rejected replies.
    #[arg(long, default_value_t = Bounds::default().faults)]
    faults: u8,
    /// Calls the user places [default: 1 for check and explore; 2 for mutants, where a
    /// queued call must be able to follow another for every planted bug to be caught].
    #[arg(long)]
    calls: Option<u8>,
    /// Periodic timer firings (keep-alive, refresh, probe).
    #[arg(long, default_value_t = Bounds::default().idle)]
    idle: u8,
    /// Seed of the core's random generator.
    #[arg(long, default_value_t = Bounds::default().seed)]
    seed: u64,
    /// Let timers race network deliveries (no urgency).
    #[arg(long)]
    no_urgency: bool,
    /// Leave out the user's shutdown (on by default: once, at any point).
    #[arg(long)]
    no_shutdown: bool,
    /// TLS mode (a connection per exchange) instead of Persistent TLS.
    #[arg(long)]
    per_call: bool,
    /// Calls the far end places to the phone.
    #[arg(long, default_value_t = Bounds::default().incoming)]
    incoming: u8,
    /// The user may hang up each placed call once, at any point until it ends.
    #[arg(long)]
    hang_up: bool,
    /// The far end may CANCEL a ringing incoming call and re-INVITE an answered one.
    #[arg(long)]
    far_end_requests: bool,
    /// The primary is a name with two SRV targets, the first with an IPv6 and an IPv4
    /// address (models/src/sites.rs).
    #[arg(long)]
    targets: bool,
    /// Checker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Switch on the planted bug with this index in `PlantedBug::ALL` (0-8).
    #[cfg(feature = "planted-bugs")]
    #[arg(long)]
    plant: Option<usize>,
}

impl BoundArgs {
    fn bounds(&self) -> Bounds {
        self.bounds_with_calls(Bounds::default().calls)
    }

    fn bounds_with_calls(&self, default_calls: u8) -> Bounds {
        Bounds {
            accounts: self.accounts,
            faults: self.faults,
            calls: self.calls.unwrap_or(default_calls),
            idle: self.idle,
            seed: self.seed,
            urgency: !self.no_urgency,
            shutdown: !self.no_shutdown,
            incoming: self.incoming,
            per_call: self.per_call,
            hang_up: self.hang_up,
            far_end_requests: self.far_end_requests,
            targets: self.targets,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Exhaustive check of every property within the bounds.
    Check(BoundArgs),
    /// Serve the stateright Explorer (loopback only).
    Explore {
        #[command(flatten)]
        bounds: BoundArgs,
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 3000)]
        port: u16,
    },
    /// Run the planted-bug suite: each bug must be caught.
    Mutants(BoundArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(b) => check(b),
        Command::Explore { bounds, port } => {
            use stateright::Model;
            let addr = ("127.0.0.1", port);
            eprintln!("Explorer on http://127.0.0.1:{port}/ (Ctrl-C to stop)");
            if std::net::TcpListener::bind(addr).is_err() {
                eprintln!("port {port} is taken");
                return ExitCode::FAILURE;
            }
            PtlsModel::new(bounds.bounds()).checker().threads(bounds.threads).serve(addr);
            ExitCode::SUCCESS
        }
        Command::Mutants(b) => mutants(b),
    }
}

fn check(b: BoundArgs) -> ExitCode {
    let bounds = b.bounds();
    let model = PtlsModel::new(bounds);
    #[cfg(feature = "planted-bugs")]
    let model = {
        let bug = b.plant.and_then(|i| sip_ptls_models::model::PlantedBug::ALL.get(i).copied());
        if let Some(bug) = bug {
            eprintln!("planted bug: {bug:?}");
        }
        model.with_bug(bug)
    };
    eprintln!("checking {bounds:?} (K = {}) with DFS, {} threads", model.k, b.threads);
    let report = run::check(model.clone(), b.threads, true, false);
    for (name, path) in &report.failed {
        eprintln!("\nVIOLATED: {name} ({} steps as found); bisecting for the shortest trace…", path.len());
        let best = run::shortest(&model, name, path.clone());
        println!("counterexample to \"{name}\" in {} steps:\n{}", best.len(), run::trace(&model, &best));
    }
    for name in &report.unreached {
        println!("NOT REACHED: {name}");
    }
    println!(
        "{} unique states, {} transitions, depth {}; {} of {} properties held{}{}; {:.2} s",
        report.unique,
        report.transitions,
        report.max_depth,
        report.held.len(),
        report.held.len() + report.failed.len(),
        if report.unreached.is_empty() {
            format!(", all {} reachability goals reached", report.reached.len())
        } else {
            format!(", {} reachability goals NOT reached", report.unreached.len())
        },
        if report.failed.is_empty() { String::new() } else { format!(", {} VIOLATED", report.failed.len()) },
        report.secs
    );
    if report.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

#[cfg(feature = "planted-bugs")]
fn mutants(b: BoundArgs) -> ExitCode {
    let mut missed = 0;
    let bounds = b.bounds_with_calls(Bounds::planted_bug_suite().calls);
    eprintln!("planted-bug suite within {bounds:?}");
    for bug in run::PROPERTY_TESTS_ONLY {
        println!("{:<26} left to tests/core_properties.rs (an oracle of the monitor)", format!("{bug:?}"));
    }
    for c in run::mutants(bounds, b.threads) {
        match c.property {
            Some(p) => println!(
                "{:<26} caught by \"{p}\" ({} steps as found, {} states, {:.2} s)",
                format!("{:?}", c.bug),
                c.steps,
                c.unique,
                c.secs
            ),
            None => {
                missed += 1;
                println!("{:<26} MISSED ({} states)", format!("{:?}", c.bug), c.unique);
            }
        }
    }
    if missed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

#[cfg(not(feature = "planted-bugs"))]
fn mutants(_: BoundArgs) -> ExitCode {
    eprintln!("build with `--features planted-bugs` to run the planted-bug suite");
    ExitCode::FAILURE
}
