//! Calls across a proxy failover (issue 15), timed against the topology of the call-move
//! tests (`tests/kamailio/call_move.rs`): a primary and a backup Kamailio that both
//! record-route the shared name `example.test`, dnsmasq resolving it to both by SRV, and
//! baresip as the far end, registered on both and auto-answering. The phone calls baresip
//! `n` times (1 and 10), the primary is killed (SIGKILL) during the calls, and the time is
//! taken from the kill until each call's re-INVITE is answered 2xx through the backup
//! (`Event::CallMoved`). Two phone set-ups: `srv`, the shared name as the proxy and no
//! backup proxy (the backup is the name's second SRV target, reached in the round after
//! the back-off), and `backup_proxy`, the same with the backup also configured as the
//! backup proxy (reached at once).
//!
//! ```text
//! cargo bench --bench call_move
//! SIP_PTLS_BENCH_MOVES=2 cargo bench --bench call_move   # fewer repetitions
//! ```
//!
//! Every figure is printed as `scenario/figure: median (min..max) unit`, over the
//! repetitions (`SIP_PTLS_BENCH_MOVES`, 5 by default; each a fresh topology):
//! - `call_move/<setup>_<n>_calls/first`, `…/last`: the kill until the first and the last
//!   of the `n` calls moved;
//! - `…/registered`: the kill until the phone's line is registered again (on the backup),
//!   which the moves wait for; `…/backoff`: the back-off wait the phone announced after
//!   the lost flow, part of that (none in `backup_proxy`); `…/reconnect`: the rest of it
//!   (the loss noticed, the backup's connection, TLS handshake and REGISTER);
//! - `…/moves`: from that registration until the last call moved, the moves' own time.
//!
//! The phone runs with the call-move tests' timers (`tests/kamailio/phone.rs`: back-off
//! base 0.5 s, cap 2 s). A call that ends instead of moving fails the benchmark, as does a
//! run whose phone trace the invariant monitor refuses.

#[path = "../tests/kamailio/call_move.rs"]
mod call_move;
#[path = "../tests/common/dnsmasq.rs"]
mod dnsmasq;
#[path = "../tests/kamailio/mod.rs"]
mod kamailio;
#[path = "support/summary.rs"]
mod summary;

use call_move::*;
use sip_ptls::Event;
use sip_ptls::ids::{CallId, Server};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The call counts measured.
const CALLS: [u32; 2] = [1, 10];

/// The times of one repetition, from the kill.
struct Repetition {
    first: Duration,
    last: Duration,
    registered: Duration,
    backoff: Duration,
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if !filter.is_empty() && !filter.iter().any(|f| "call_move".contains(f.as_str())) {
        return;
    }
    let repetitions: usize = std::env::var("SIP_PTLS_BENCH_MOVES").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    for setup in [Setup::Srv, Setup::BackupProxy] {
        for n in CALLS {
            let runs: Vec<Repetition> = (0..repetitions).map(|i| repetition(setup, n, i)).collect();
            let ms =
                |f: &dyn Fn(&Repetition) -> Duration| runs.iter().map(|r| f(r).as_secs_f64() * 1e3).collect::<Vec<_>>();
            let name = format!("call_move/{}_{n}_calls", setup.name());
            print(&format!("{name}/first"), ms(&|r| r.first));
            print(&format!("{name}/last"), ms(&|r| r.last));
            print(&format!("{name}/registered"), ms(&|r| r.registered));
            print(&format!("{name}/backoff"), ms(&|r| r.backoff));
            print(&format!("{name}/reconnect"), ms(&|r| r.registered.saturating_sub(r.backoff)));
            print(&format!("{name}/moves"), ms(&|r| r.last.saturating_sub(r.registered)));
        }
    }
}

/// Where the phone goes when the primary dies.
#[derive(Clone, Copy)]
enum Setup {
    /// The shared name's second SRV target; no backup proxy configured
    /// ([`World::phone`]): the next round, after the back-off.
    Srv,
    /// The backup configured as the backup proxy too
    /// ([`World::phone_with_backup_proxy`]): at once.
    BackupProxy,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::Srv => "srv",
            Setup::BackupProxy => "backup_proxy",
        }
    }
}

fn print(name: &str, values: Vec<f64>) {
    if let Some((median, min, max)) = summary::stats(values) {
        println!("{name}: {median:.1} ({min:.1}..{max:.1}) ms");
    }
}

/// One fresh topology: `n` calls confirmed, the primary killed, every call moved.
fn repetition(setup: Setup, n: u32, index: usize) -> Repetition {
    let _watchdog = kamailio::watchdog::watchdog_with("call-move benchmark", LIMIT, kill_everything);
    let mut world = World::start_holding("bench-call-move", true, n.max(4));
    let mut phone = match setup {
        Setup::Srv => world.phone(),
        Setup::BackupProxy => world.phone_with_backup_proxy(),
    };
    phone.all_registered(Server::Primary, WITHIN);
    let calls: Vec<CallId> = (0..n).map(|_| world.confirmed(&mut phone)).collect();

    let cut = Instant::now();
    world.lab.primary.kill();
    let mut moved: BTreeMap<CallId, Instant> = BTreeMap::new();
    while moved.len() < calls.len() {
        let left = WITHIN.saturating_sub(cut.elapsed());
        let (at, event) = phone.wait(
            "every call moved",
            left,
            |e| matches!(e, Event::CallMoved { call, .. } | Event::CallEnded { call, .. } if calls.contains(call)),
        );
        match event {
            Event::CallMoved { call, .. } => {
                moved.insert(call, at);
            }
            other => panic!("a call ended instead of moving: {other:?}\n{}", phone.history()),
        }
    }
    assert!(bound(&world.lab.backup, PHONE_USER), "the phone's line is bound on the backup after the moves");

    let registered = phone
        .seen
        .iter()
        .find(|(at, e)| *at >= cut && matches!(e.event, Event::Registered { .. }))
        .map(|(at, _)| at.duration_since(cut))
        .unwrap_or_else(|| panic!("no registration after the kill\n{}", phone.history()));
    let backoff = phone
        .seen
        .iter()
        .filter(|(at, _)| *at >= cut)
        .find_map(|(_, e)| match &e.event {
            Event::Backoff { wait, .. } => Some(Duration::from_millis(wait.as_millis())),
            _ => None,
        })
        .unwrap_or_default();
    let first = moved.values().min().map_or(Duration::ZERO, |t| t.duration_since(cut));
    let last = moved.values().max().map_or(Duration::ZERO, |t| t.duration_since(cut));
    eprintln!(
        "call_move: {}, {n} calls, repetition {index}: registered {} ms (back-off {} ms), first moved {} ms, last {} ms",
        setup.name(),
        registered.as_millis(),
        backoff.as_millis(),
        first.as_millis(),
        last.as_millis()
    );

    for call in calls {
        let _ = phone.handle.hang_up_blocking(call);
    }
    drop(phone);
    Repetition { first, last, registered, backoff }
}
