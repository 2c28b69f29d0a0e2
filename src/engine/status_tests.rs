//! Tests of what the core reports for the phone's status (keep-alive counters and round
//! trip, connection age, binding expiry, back-off countdown, calls in progress) and of
//! [`Core::reconfigure`]: timer changes taken at once, identity changes refused.

use super::super::tests_support::{all_registered_on, assert_clean, cfg, secs, started};
use crate::config::{Backoff, ServerAddr};
use crate::engine::{CallStage, Event, FlowState, LinkStats, NeedsRestart};
use crate::ids::{AccountId, Server};
use crate::sim::{ServerMode, Sim};
use crate::time::{Duration, Instant};

/// A started phone whose servers both refuse connections.
fn refused_everywhere(config: crate::config::Config) -> Sim {
    let mut sim = Sim::new(config);
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.set_mode(Server::Backup, ServerMode::Refusing);
    sim.start();
    sim
}

#[test]
fn keepalives_are_counted_with_their_round_trip_for_the_current_connection() {
    let mut sim = started(cfg(1));
    assert_eq!(sim.core.link_stats(), LinkStats::default(), "nothing is up yet");
    sim.run_for(secs(1));
    let up_at = sim.first_event_after(Instant::ZERO, |e| matches!(e, Event::FlowUp { .. })).expect("flow up");
    let stats = sim.core.link_stats();
    assert_eq!(stats.up_since, Some((Server::Primary, up_at)));
    assert_eq!((stats.pings_sent, stats.pongs_received, stats.connections_up), (0, 0, 1));

    sim.run_for(secs(60));
    let pings = sim.ping_times().len() as u64;
    let stats = sim.core.link_stats();
    assert!(pings >= 5, "10 s interval over a minute: {pings}");
    assert_eq!(stats.pings_sent, pings);
    // The last ping may still wait for its pong.
    assert!(stats.pongs_received + 1 >= pings && stats.pongs_received <= pings, "{stats:?}");
    assert_eq!(stats.last_pong_rtt, Some(sim.latency + sim.latency), "one network round trip");

    sim.set_mode(Server::Primary, ServerMode::Frozen);
    sim.run_for(secs(30));
    assert!(all_registered_on(&sim, Server::Backup));
    let stats = sim.core.link_stats();
    assert_eq!(stats.up_since.map(|(s, _)| s), Some(Server::Backup), "age counts from the backup's connection");
    assert_eq!(stats.connections_up, 2);
    assert!(stats.pings_sent <= 3, "counted for the new connection only: {stats:?}");
    assert_clean(&sim);
}

#[test]
fn a_binding_expires_at_the_lifetime_granted_and_is_forgotten_when_lost() {
    let mut config = cfg(2);
    config.registration_period = 600;
    let mut sim = started(config);
    sim.server(Server::Primary).behaviour.grant_expires = Some(300);
    sim.run_for(secs(1));
    for account in [AccountId(0), AccountId(1)] {
        let at = sim
            .first_event_after(Instant::ZERO, |e| matches!(e, Event::Registered { account: a, .. } if *a == account))
            .expect("registered");
        assert_eq!(sim.core.binding_expiry(account), Some(at + secs(300)), "the registrar's 300 s, not our 600");
    }
    assert_eq!(sim.core.binding_expiry(AccountId(2)), None, "no such line");
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.set_mode(Server::Backup, ServerMode::Refusing);
    sim.drop_connections(Server::Primary, crate::engine::TransportError::Reset);
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.core.binding_expiry(AccountId(0)), None, "the binding went with its connection");
}

#[test]
fn the_backoff_countdown_is_the_next_round() {
    let mut sim = refused_everywhere(cfg(1));
    sim.run_for(secs(1));
    assert_eq!(sim.core.flow_state(), FlowState::Waiting);
    let wait = sim
        .events
        .iter()
        .find_map(|(at, e)| match e {
            Event::Backoff { wait, .. } => Some(*at + *wait),
            _ => None,
        })
        .expect("back-off");
    assert_eq!(sim.core.next_retry(), Some(wait));
    sim.set_mode(Server::Primary, ServerMode::Up);
    sim.run_until(wait + secs(1));
    assert_eq!(sim.core.next_retry(), None, "connected again");
}

#[test]
fn calls_in_progress_show_their_stage_and_peer() {
    let mut sim = started(cfg(1));
    let queued = sim.place_call(AccountId(0), "2001").expect("placed");
    let info = sim.core.calls_in_progress();
    assert_eq!(info.len(), 1);
    assert_eq!((info[0].call, info[0].account, info[0].outgoing), (queued, AccountId(0), true));
    assert_eq!(info[0].stage, CallStage::Queued, "before the registration");
    assert_eq!(info[0].peer, "2001");
    sim.run_for(secs(2));
    assert_eq!(sim.core.calls_in_progress()[0].stage, CallStage::Established);
    sim.hang_up(queued);
    assert_eq!(sim.core.calls_in_progress()[0].stage, CallStage::Ending, "the BYE waits for its answer");
    sim.run_for(secs(1));
    assert!(sim.core.calls_in_progress().is_empty());
}

#[test]
fn a_new_keepalive_interval_applies_at_once_without_registering_again() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(30));
    let registers = sim.sent_requests("REGISTER").len();
    let mut faster = sim.core.config().clone();
    faster.keepalive_interval = secs(2);
    let changed_at = sim.now;
    assert_eq!(sim.reconfigure(faster), Ok(()));
    sim.run_for(secs(20));
    let pings: Vec<Instant> = sim.ping_times().into_iter().filter(|t| *t > changed_at).collect();
    assert!(pings.len() >= 9, "a ping every 1.6 to 2 s: {pings:?}");
    assert!(pings[0] <= changed_at + secs(2), "the armed ping was drawn again");
    assert!(pings.windows(2).all(|w| w[1].saturating_since(w[0]) <= secs(2) + sim.latency + sim.latency));
    assert_eq!(sim.sent_requests("REGISTER").len(), registers, "same connection, same binding");
    assert_eq!(sim.core.link_stats().connections_up, 1);
    assert_clean(&sim);
}

#[test]
fn a_shorter_backoff_cap_and_probe_interval_bring_the_armed_deadlines_forward() {
    let mut config = cfg(1);
    config.backoff = Backoff { base: secs(60), max: secs(600) };
    let mut sim = refused_everywhere(config);
    sim.run_for(secs(1));
    let retry = sim.core.next_retry().expect("waiting");
    assert!(retry > sim.now + secs(30), "a long wait: {retry}");
    let mut quick = sim.core.config().clone();
    quick.backoff = Backoff { base: secs(1), max: secs(5) };
    assert_eq!(sim.reconfigure(quick), Ok(()));
    assert_eq!(sim.core.next_retry(), Some(sim.now + secs(5)));

    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Frozen);
    sim.run_for(secs(30));
    assert!(all_registered_on(&sim, Server::Backup));
    let mut slow = sim.core.config().clone();
    slow.failback.stable_probes = 1;
    slow.failback.probe_interval = secs(1);
    assert_eq!(sim.reconfigure(slow), Ok(()));
    sim.set_mode(Server::Primary, ServerMode::Up);
    let healthy_at = sim.now;
    sim.run_for(secs(20));
    // The probe under way when the primary thawed times out first (connect timeout);
    // then one good probe, 1 s later, is enough, where three 5 s apart were.
    let back = sim.first_event_after(healthy_at, |e| matches!(e, Event::FailedBack)).expect("failed back");
    let limit = healthy_at + sim.core.config().connect_timeout + secs(3);
    assert!(back <= limit, "failed back at {back}, by {limit} expected");
    assert_clean(&sim);
}

#[test]
fn a_change_of_servers_lines_or_identity_needs_a_restart_and_changes_nothing() {
    let mut sim = started(cfg(2));
    sim.run_for(secs(1));
    let before = sim.core.config().clone();
    let mut moved = before.clone();
    moved.proxy = Some(ServerAddr::new("elsewhere.test", 5061));
    moved.accounts.pop();
    moved.keepalive_interval = secs(3);
    assert_eq!(sim.reconfigure(moved), Err(NeedsRestart { changed: vec!["servers".into(), "lines".into()] }));
    assert_eq!(*sim.core.config(), before, "nothing taken, not even the timer");
    for change in [
        |c: &mut crate::config::Config| c.sips_scheme = !c.sips_scheme,
        |c: &mut crate::config::Config| c.mode = crate::config::TransportMode::PerCallTls,
        |c: &mut crate::config::Config| c.seed = 7.into(),
    ] {
        let mut changed = before.clone();
        change(&mut changed);
        assert!(sim.reconfigure(changed).is_err());
    }
}

#[test]
fn every_tunable_value_is_read_back_as_written_and_taken_at_once() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let values = crate::engine::tunable_values(sim.core.config());
    assert_eq!(values.len(), 19);
    // Each value moved by one unit, one at a time: the core takes it and reports it back.
    for (name, value) in values {
        let moved = vec![(name.to_owned(), value + 1)];
        let config = crate::engine::with_tunable_values(sim.core.config(), &moved).expect("a tunable");
        let read = crate::engine::tunable_values(&config);
        assert!(read.contains(&(name, value + 1)), "{name} written and read back");
        assert_eq!(sim.reconfigure(config), Ok(()), "{name} is taken at once");
    }
    assert_eq!(
        crate::engine::with_tunable_values(sim.core.config(), &[("proxy".to_owned(), 1)]),
        Err("proxy".to_owned()),
        "not a tunable"
    );
    let mut display = sim.core.config().clone();
    display.accounts[0].display_name = "Reception".into();
    assert_eq!(sim.reconfigure(display), Err(NeedsRestart { changed: vec!["lines".into()] }));
    assert_clean(&sim);
}

#[test]
fn new_certificate_file_names_are_taken_at_once_since_the_shell_loads_them() {
    let mut sim = started(cfg(2));
    sim.run_for(secs(1));
    let mut renamed = sim.core.config().clone();
    renamed.certificates.trusted_certificates = Some("new-ca.pem".into());
    renamed.certificates.revocation_list = Some("crl.pem".into());
    renamed.keepalive_interval = secs(3);
    assert_eq!(sim.reconfigure(renamed.clone()), Ok(()));
    assert_eq!(*sim.core.config(), renamed);
}

#[test]
fn any_one_server_changed_alone_needs_a_restart() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let before = sim.core.config().clone();
    let elsewhere = Some(ServerAddr::new("elsewhere.test", 5061));
    for change in [
        |c: &mut crate::config::Config, s: Option<ServerAddr>| c.proxy = s,
        |c: &mut crate::config::Config, s: Option<ServerAddr>| c.backup_proxy = s,
        |c: &mut crate::config::Config, s: Option<ServerAddr>| c.registrar = s,
        |c: &mut crate::config::Config, s: Option<ServerAddr>| c.backup_registrar = s,
    ] {
        let mut changed = before.clone();
        change(&mut changed, elsewhere.clone());
        assert_eq!(sim.reconfigure(changed), Err(NeedsRestart { changed: vec!["servers".into()] }));
    }
    assert_eq!(*sim.core.config(), before);
}

#[test]
fn a_timer_change_on_the_backup_leaves_the_next_probe_of_the_primary_where_it_was() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.drop_connections(Server::Primary, crate::engine::TransportError::Reset);
    sim.run_for(secs(2));
    assert!(all_registered_on(&sim, Server::Backup));
    // Probes every 5 s fail against the refusing primary; between two of them a change of
    // the keep-alive interval must not bring the next one forward.
    let probes = |sim: &Sim| sim.count_events(|e| matches!(e, Event::ConnectFailed { server: Server::Primary, .. }));
    sim.run_for(secs(6));
    let before = probes(&sim);
    let mut faster = sim.core.config().clone();
    faster.keepalive_interval = secs(3);
    assert_eq!(sim.reconfigure(faster), Ok(()));
    sim.run_for(Duration::from_millis(500));
    assert_eq!(probes(&sim), before, "no probe brought forward by the change");
    sim.run_for(secs(6));
    assert!(probes(&sim) > before, "probing goes on");
    assert_clean(&sim);
}
