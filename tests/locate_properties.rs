//! Property tests of where connections go, on random deployments: a primary found by SRV
//! with one to three targets of one or two addresses each (IPv6, IPv4 or both), every
//! address up, refusing or swallowing the handshake, and a backup that is up or refuses.
//! The real core runs in the simulator (its zone answering the lookups), watched by the
//! invariant monitor, which states the one-connection rule for races: attempts to one
//! server, none up, and no SIP before the losers are closed.
//!
//! Besides the monitor, stated from the deployment alone (not from the core's code):
//! - **every target tried:** the primary fails (`ConnectFailed`) only if no address of it
//!   is up, and only after every one of its addresses was dialed;
//! - **the first good address is found in time:** a primary with an address that is up
//!   is up, on the primary, within one connect timeout per earlier target that has no
//!   good address, plus the head starts and a second;
//! - **stickiness:** once up on the primary with nothing failing, no other connection
//!   is asked for in the next minute.
//!
//! With `--features planted-bugs`, `every_location_bug_is_caught` plants each bug of
//! this area and checks that these properties catch it.

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence, RngAlgorithm, TestRng, TestRunner};
use sip_ptls::config::{AccountConfig, CertificateFiles, Config, DnsQueryType, ServerAddr};
use sip_ptls::dns::records::{AddressRecord, Answer, Negative, NegativeKind, QueryType, SrvRecord};
use sip_ptls::dns::{AnyAnswer, Query};
use sip_ptls::engine::{ConnPurpose, Event, FlowState};
use sip_ptls::ids::Server;
use sip_ptls::sim::{ServerMode, Sim};
use sip_ptls::time::{Duration, Instant};
use std::net::{IpAddr, SocketAddr};

/// One address of a target and how it behaves.
#[derive(Clone, Copy, Debug)]
struct Address {
    v6: bool,
    mode: ServerMode,
}

#[derive(Clone, Debug)]
struct Deployment {
    /// The primary's targets in SRV priority order, each with its addresses.
    targets: Vec<Vec<Address>>,
    backup_up: bool,
    seed: u64,
}

fn mode() -> impl Strategy<Value = ServerMode> {
    prop_oneof![Just(ServerMode::Up), Just(ServerMode::Refusing), Just(ServerMode::Frozen)]
}

fn target() -> impl Strategy<Value = Vec<Address>> {
    prop_oneof![
        mode().prop_map(|m| vec![Address { v6: false, mode: m }]),
        mode().prop_map(|m| vec![Address { v6: true, mode: m }]),
        (mode(), mode()).prop_map(|(a, b)| vec![Address { v6: true, mode: a }, Address { v6: false, mode: b }]),
    ]
}

fn deployment() -> impl Strategy<Value = Deployment> {
    (prop::collection::vec(target(), 1..=3), any::<bool>(), any::<u64>())
        .prop_map(|(targets, backup_up, seed)| Deployment { targets, backup_up, seed })
}

/// The address of target `t`'s address `a`: IPv6 `2001:db8::t:a`, IPv4 `192.0.2.(10t+a)`.
fn ip(t: usize, a: usize, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, t as u16 + 1, a as u16 + 1])
    } else {
        IpAddr::from([192, 0, 2, (10 * (t + 1) + a) as u8])
    }
}

const BACKUP: &str = "192.0.2.200";
const PORT: u16 = 5061;

fn world(d: &Deployment) -> Sim {
    let config = Config {
        proxy: Some(ServerAddr::new("example.test", 0)),
        backup_proxy: Some(ServerAddr::new(BACKUP, PORT)),
        dns_query_type: DnsQueryType::SrvAndA,
        accounts: vec![AccountConfig::new("1001", "pw")],
        certificates: CertificateFiles { trusted_certificates: Some("ca.pem".into()), ..Default::default() },
        keepalive_interval: Duration::from_secs(15),
        seed: d.seed.into(),
        ..Config::default()
    };
    let mut sim = Sim::new(config);
    #[cfg(feature = "planted-bugs")]
    sim.core.plant(PLANTED.with(std::cell::Cell::get));
    let records = (0..d.targets.len())
        .map(|t| SrvRecord {
            priority: 10 * (t as u16 + 1),
            weight: 0,
            port: PORT,
            target: format!("t{t}.example.test"),
            ttl: 3600,
        })
        .collect();
    let srv = Query::new("_sips._tcp.example.test", QueryType::Srv);
    sim.zone.set(srv, Ok(AnyAnswer::Srv(Answer::Records { records, additional: Vec::new() })));
    for (t, addrs) in d.targets.iter().enumerate() {
        for (qtype, v6) in [(QueryType::A, false), (QueryType::Aaaa, true)] {
            let records: Vec<AddressRecord> = addrs
                .iter()
                .enumerate()
                .filter(|(_, a)| a.v6 == v6)
                .map(|(i, _)| AddressRecord { addr: ip(t, i, v6), ttl: 3600 })
                .collect();
            let answer = if records.is_empty() {
                Answer::Negative(Negative { kind: NegativeKind::NoData, ttl: Some(3600) })
            } else {
                Answer::Records { records, additional: Vec::new() }
            };
            sim.zone.set(Query::new(format!("t{t}.example.test"), qtype), Ok(AnyAnswer::Addresses(answer)));
        }
        for (i, a) in addrs.iter().enumerate() {
            sim.address_modes.insert(ip(t, i, a.v6), a.mode);
        }
    }
    if !d.backup_up {
        sim.set_mode(Server::Backup, ServerMode::Refusing);
    }
    sim
}

fn primary_addrs(d: &Deployment) -> Vec<SocketAddr> {
    let mut all = Vec::new();
    for (t, addrs) in d.targets.iter().enumerate() {
        for (i, a) in addrs.iter().enumerate() {
            all.push(SocketAddr::new(ip(t, i, a.v6), PORT));
        }
    }
    all
}

/// Checks one deployment; `Err` names the broken property.
fn check(d: &Deployment) -> Result<(), String> {
    let mut sim = world(d);
    sim.start();
    let timeout = sim.core.config().connect_timeout;
    // Long enough for every target's connect timeout and a back-off round.
    sim.run_for(Duration::from_secs(60));
    if !sim.monitor.violations().is_empty() {
        return Err(format!("monitor: {:?}", sim.monitor.violations()));
    }
    let good = d.targets.iter().position(|t| t.iter().any(|a| a.mode == ServerMode::Up));
    let failed_at =
        sim.first_event_after(Instant::ZERO, |e| matches!(e, Event::ConnectFailed { server: Server::Primary, .. }));
    match good {
        Some(first_good) => {
            if let Some(at) = failed_at {
                return Err(format!("the primary failed at {at} although an address of target {first_good} is up"));
            }
            // One connect timeout per earlier target, whose last address may swallow the
            // handshake; head starts inside a target (two addresses at most); a second
            // for the round trips.
            let bound = Instant::ZERO + timeout.saturating_mul(first_good as u64) + Duration::from_millis(1500);
            let up = sim.first_event_after(Instant::ZERO, |e| *e == Event::FlowUp { server: Server::Primary });
            match up {
                Some(at) if at <= bound => {}
                other => return Err(format!("flow up on the primary at {other:?}, bound {bound}")),
            }
            // Stickiness: a minute on, with nothing failing, no other connection.
            let dials = sim.dials.len();
            sim.run_for(Duration::from_secs(60));
            if sim.dials.len() != dials {
                return Err(format!("a connection asked for while up: {:?}", &sim.dials[dials..]));
            }
            if sim.core.flow_state() != (FlowState::Up { server: Server::Primary }) {
                return Err(format!("left the primary: {:?}", sim.core.flow_state()));
            }
        }
        None => {
            let Some(at) = failed_at else { return Err("no address is up, and the primary never failed".into()) };
            let dialed: Vec<SocketAddr> = sim.dials.iter().filter(|(t, _, _, _)| *t <= at).map(|d| d.2).collect();
            let missed: Vec<SocketAddr> = primary_addrs(d).into_iter().filter(|a| !dialed.contains(a)).collect();
            if !missed.is_empty() {
                return Err(format!("the primary failed at {at} before {missed:?} were tried"));
            }
        }
    }
    if !sim.monitor.violations().is_empty() {
        return Err(format!("monitor: {:?}", sim.monitor.violations()));
    }
    let flows = sim.core.connections().filter(|(_, p, up)| *p == ConnPurpose::Flow && *up).count();
    if flows > 1 {
        return Err(format!("{flows} persistent connections up"));
    }
    Ok(())
}

/// The fixed-seed runner: the same deployments every run, so that the planted bugs are
/// caught by the same cases. A failure is kept for the next runs, except a planted
/// bug's, which is expected.
fn runner(cases: u32, keep_failures: bool) -> TestRunner {
    let persistence = FileFailurePersistence::SourceParallel("proptest-regressions");
    let config = ProptestConfig {
        cases,
        failure_persistence: keep_failures
            .then(|| Box::new(persistence) as Box<dyn proptest::test_runner::FailurePersistence>),
        ..ProptestConfig::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]))
}

fn run_all(cases: u32) -> Result<(), String> {
    runner(cases, true).run(&deployment(), |d| check(&d).map_err(TestCaseError::fail)).map_err(|e| e.to_string())
}

#[test]
fn where_connections_go_holds_on_random_deployments() {
    if let Err(e) = run_all(256) {
        panic!("{e}");
    }
}

#[cfg(feature = "planted-bugs")]
#[test]
fn every_location_bug_is_caught() {
    use sip_ptls::engine::PlantedBug;
    let bugs = [PlantedBug::BackoffAfterFirstTarget, PlantedBug::NoHeadStartRace, PlantedBug::RaceLoserLeftOpen];
    let mut missed = Vec::new();
    for bug in bugs {
        PLANTED.with(|p| p.set(Some(bug)));
        let caught = runner(256, false).run(&deployment(), |d| check(&d).map_err(TestCaseError::fail));
        PLANTED.with(|p| p.set(None));
        match caught {
            Err(e) => eprintln!("planted {bug:?}: caught: {}", e.to_string().chars().take(200).collect::<String>()),
            Ok(()) => missed.push(bug),
        }
    }
    assert!(missed.is_empty(), "bugs the properties did not catch: {missed:?}");
}

#[cfg(feature = "planted-bugs")]
thread_local! {
    static PLANTED: std::cell::Cell<Option<sip_ptls::engine::PlantedBug>> = const { std::cell::Cell::new(None) };
}
