//! `sip-ptls simulate`: the whole Persistent-TLS story on the virtual clock, against the
//! simulated servers, with every step checked. No sockets: it shows what the core decides.

use super::narrator::Narrator;
use sip_ptls::config::{AccountConfig, CertificateFiles, Config, Failback, ServerAddr};
use sip_ptls::ids::{AccountId, Server};
use sip_ptls::sim::{ServerMode, Sim};
use sip_ptls::time::{Duration, Instant};
use sip_ptls::{CallOutcome, Event, RegState};

fn all_on(sim: &Sim, server: Server) -> bool {
    (0..2).all(|i| sim.core.registration(AccountId(i)) == Some(RegState::Registered { server }))
}

fn config() -> Config {
    Config {
        proxy: Some(ServerAddr::new("primary.sim", 5061)),
        backup_proxy: Some(ServerAddr::new("backup.sim", 5061)),
        accounts: vec![AccountConfig::new("1001", "secret1"), AccountConfig::new("1002", "secret2")],
        certificates: CertificateFiles { trusted_certificates: Some("ca.pem".into()), ..Default::default() },
        keepalive_interval: Duration::from_secs(30),
        pong_timeout: Duration::from_secs(10),
        failback: Failback { probe_interval: Duration::from_secs(30), stable_probes: 3 },
        seed: 2026.into(),
        ..Config::default()
    }
}

/// Runs the simulation; returns whether every step happened.
pub fn run() -> bool {
    let mut n = Narrator::default();
    let mut sim = Sim::new(config());
    println!("sip-ptls simulate: two lines, primary and backup proxy, virtual clock, 10 ms one-way delay");
    sim.start();
    sim.run_for(Duration::from_secs(1));
    n.step(
        all_on(&sim, Server::Primary) && sim.servers[0].counters.accepted == 1,
        "one TLS connection registers both lines on the primary",
    );
    sim.run_for(Duration::from_secs(120));
    let pings = sim.ping_times().len();
    n.step(
        pings >= 4 && sim.count_events(|e| matches!(e, Event::FlowLost { .. })) == 0,
        &format!("{pings} keep-alive pings in 120 s, every one answered"),
    );

    let placed = sim.now;
    let call = sim.place_call(AccountId(0), "2000");
    sim.run_for(Duration::from_secs(1));
    let answered = call.and_then(|c| {
        sim.first_event_after(placed, |e| *e == Event::CallOutcome { call: c, outcome: CallOutcome::Answered })
    });
    n.step(
        answered.is_some() && sim.servers[0].counters.accepted == 1,
        "a call from line 1 is answered over the same connection",
    );
    if let Some(t) = answered {
        n.note(&format!(
            "call setup: {} ms (INVITE, 407, INVITE, 200 over the open connection)",
            t.saturating_since(placed).as_millis()
        ));
    }
    if let Some(c) = call {
        sim.hang_up(c);
    }
    sim.run_for(Duration::from_secs(1));

    let killed: Instant = sim.now;
    sim.set_mode(Server::Primary, ServerMode::Silent);
    println!("  -- the primary stops answering (its connection stays open) --");
    sim.run_for(Duration::from_secs(60));
    let lost = sim.first_event_after(killed, |e| matches!(e, Event::FlowLost { server: Server::Primary, .. }));
    let both = sim
        .events
        .iter()
        .filter(|(t, e)| *t >= killed && matches!(e, Event::Registered { server: Server::Backup, .. }))
        .map(|(t, _)| *t)
        .max();
    n.step(
        lost.is_some() && all_on(&sim, Server::Backup),
        "the silence is noticed by the pong deadline and both lines move to the backup",
    );
    if let (Some(l), Some(b)) = (lost, both) {
        n.note(&format!(
            "detected after {:.1} s (bound: interval 30 s + pong timeout 10 s); both lines on the backup {:.0} ms later",
            l.saturating_since(killed).as_millis() as f64 / 1000.0,
            b.saturating_since(l).as_millis()
        ));
    }
    let placed = sim.now;
    let call = sim.place_call(AccountId(1), "2000");
    sim.run_for(Duration::from_secs(1));
    let answered = call.and_then(|c| {
        sim.first_event_after(placed, |e| *e == Event::CallOutcome { call: c, outcome: CallOutcome::Answered })
    });
    n.step(answered.is_some(), "a call from line 2 goes over the backup");
    if let Some(c) = call {
        sim.hang_up(c);
    }

    let restored = sim.now;
    sim.set_mode(Server::Primary, ServerMode::Up);
    println!("  -- the primary answers again --");
    sim.run_for(Duration::from_secs(150));
    let back = sim.first_event_after(restored, |e| *e == Event::FailedBack);
    n.step(
        back.is_some() && all_on(&sim, Server::Primary),
        "after three good probes the phone fails back and re-registers both lines",
    );
    if let Some(b) = back {
        n.note(&format!(
            "failback {:.0} s after the primary returned (3 probes, 30 s apart)",
            b.saturating_since(restored).as_millis() as f64 / 1000.0
        ));
    }
    sim.shutdown(Duration::from_secs(10));
    n.step(
        sim.core.is_closed() && sim.count_events(|e| matches!(e, Event::Unregistered { .. })) >= 2,
        "shutdown de-registers both lines and closes the connection",
    );
    n.step(sim.monitor.violations().is_empty(), "no safety invariant was broken");
    for v in sim.monitor.violations() {
        n.note(&format!("violation: {v}"));
    }
    n.finish("simulate")
}
