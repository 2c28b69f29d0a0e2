//! End-to-end benchmarks over real TLS on loopback (harness = false): call setup,
//! failover, idle cost, scale and the registrars' restart, each against the embedded
//! registrar running in separate processes (this binary re-executed with a hidden
//! argument; the scale benchmark's phones too), with round-trip times emulated by an
//! in-process delaying relay.
//!
//! Every figure is printed as `scenario/figure: median (min..max) unit`.
//!
//! ```text
//! cargo bench --bench e2e                        # every scenario, documented defaults
//! cargo bench --bench e2e -- call_setup          # one scenario (also: failover, idle, scale)
//! SIP_PTLS_BENCH_QUICK=1 cargo bench --bench e2e # short runs while developing
//! cargo bench --bench e2e --features timing -- call_setup   # and where the phone's time goes
//! ```
//!
//! Environment (defaults produce the figures in docs/benchmarks.md):
//! `SIP_PTLS_BENCH_QUICK=1` fewer repetitions, 10 s idle, 1,000 phones;
//! `SIP_PTLS_BENCH_CALLS` calls per point (10); `SIP_PTLS_BENCH_FAILOVERS` repetitions
//! per failover case (3); `SIP_PTLS_BENCH_IDLE_SECS` (60); `SIP_PTLS_BENCH_SCALE`
//! phone counts, comma-separated (`10000,50000`); `SIP_PTLS_BENCH_PHONES_PER_PROCESS`
//! phones per fleet process and per registrar process (10000).

mod call_setup;
mod failover;
mod fleet;
mod floor;
mod idle;
mod measure;
mod phone_time;
mod relay;
mod scale;
mod server;
#[path = "../support/summary.rs"]
mod summary;
mod svg;

use sip_ptls::Event;
use sip_ptls::config::{AccountConfig, Config};
use sip_ptls::registrar::lab;
use sip_ptls::runtime::Events;
use sip_ptls::time::Duration as CoreDuration;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The shared lab: the CA (`ca.pem`, trusted by the phones) in the directory that the
/// phones and the registrar processes share.
pub use sip_ptls::registrar::lab::Lab;

/// A fresh lab, with the registrar processes' certificate written beside the CA.
fn create_lab() -> Lab {
    let lab = Lab::new("bench").expect("test PKI and the benchmark directory");
    server::write_server_cert(&lab);
    lab
}

/// A phone configuration: `accounts` lines from user `first_user`, Persistent TLS to
/// `proxy` (and `backup`), a 30 s keep-alive.
pub fn phone_config(proxy: SocketAddr, backup: Option<SocketAddr>, first_user: usize, accounts: usize) -> Config {
    let accounts = (first_user..first_user + accounts)
        .map(|i| {
            let (u, p) = server::user(i);
            AccountConfig::new(&u, &p)
        })
        .collect();
    Config {
        keepalive_interval: CoreDuration::from_secs(30),
        ..lab::phone_config(server::DOMAIN, accounts, proxy, backup)
    }
}

/// Waits until `deadline` for an event matching `want`; returns when it was received.
pub fn wait_for(events: &Events, deadline: Instant, mut want: impl FnMut(&Event) -> bool) -> Option<(Instant, Event)> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let e = events.next_timeout(left)?;
        let at = Instant::now();
        if std::env::var_os("SIP_PTLS_BENCH_TRACE").is_some() {
            eprintln!("trace: phone at {} ms: {:?}", e.at.as_millis(), e.event);
        }
        if want(&e.event) {
            return Some((at, e.event));
        }
    }
}

/// Waits until `n` distinct accounts reported `Registered` (on `server` when given);
/// returns when the last did.
pub fn wait_registered(
    events: &Events,
    n: usize,
    server: Option<sip_ptls::ids::Server>,
    limit: Duration,
) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    let mut seen = std::collections::BTreeSet::new();
    let mut last = None;
    while seen.len() < n {
        let (at, e) = wait_for(
            events,
            deadline,
            |e| matches!(e, Event::Registered { server: s, .. } if server.is_none_or(|want| *s == want)),
        )?;
        if let Event::Registered { account, .. } = e {
            seen.insert(account);
            last = Some(at);
        }
    }
    last
}

/// A number from the environment, or `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// True in quick mode.
pub fn quick() -> bool {
    std::env::var("SIP_PTLS_BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty())
}

/// The repository's `docs/` directory (where the chart is written).
pub fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs")
}

/// A scenario: its name and what runs it.
type Scenario = (&'static str, fn(&Lab));

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(server::ARG) {
        server::child_main(&args[1..]);
        return;
    }
    if args.first().map(String::as_str) == Some(fleet::ARG) {
        fleet::child_main(&args[1..]);
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    println!("machine: {}", measure::machine());
    let lab = create_lab();
    let scenarios: [Scenario; 4] = [
        ("call_setup", call_setup::run),
        ("failover", failover::run),
        ("idle", idle::run),
        ("scale", scale::run_scale),
    ];
    for (name, run) in scenarios {
        if wanted(name) {
            let t = Instant::now();
            println!("== {name}");
            run(&lab);
            println!("== {name} done in {:.1} s; {}", t.elapsed().as_secs_f64(), measure::machine());
        }
    }
}
