//! Scenario tests of TLS mode (a connection per call): the INVITE goes on the call's own
//! connection and the dialog stays there; a primary that refuses the call's connection
//! sends it to the backup once; an established call ends as soon as its connection does;
//! a line's REGISTER exchange goes to the backup the same way.
//! Mutation testing found these unchecked (docs/mutation-testing.md, shard 3).

use crate::config::TransportMode;
use crate::engine::{CallFailure, CallOutcome, EndReason, Event, RegError};
use crate::ids::{AccountId, Server};
use crate::sim::{ServerMode, Sim};

use super::super::tests_support::{assert_clean, cfg, secs, started};
use super::command_tests::outcomes;

/// A phone in TLS mode, registered, whose servers answer INVITEs with 200.
fn per_call() -> Sim {
    let mut c = cfg(1);
    c.mode = TransportMode::PerCallTls;
    let mut sim = started(c);
    sim.server(Server::Primary).behaviour.invite_status = Some(200);
    sim.server(Server::Backup).behaviour.invite_status = Some(200);
    sim.run_for(secs(1));
    sim
}

#[test]
fn a_call_sends_its_invite_on_its_own_connection_and_its_bye_there_too() {
    let mut sim = per_call();
    let registrations = sim.servers[0].counters.accepted;
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    assert_eq!(outcomes(&sim, call), [CallOutcome::Answered]);
    assert_eq!(sim.servers[0].counters.accepted, registrations + 1, "one connection for the call");
    let invites = sim.sent_requests("INVITE");
    let conn = invites[0].1;
    assert!(invites.iter().all(|(_, c, _)| *c == conn), "every INVITE of the call on its connection");
    assert_eq!(sim.open_connections(), [conn], "kept for the dialog");
    sim.hang_up(call);
    sim.run_for(secs(1));
    let byes = sim.sent_requests("BYE");
    assert_eq!(byes.iter().map(|(_, c, _)| *c).collect::<Vec<_>>(), [conn]);
    assert!(sim.open_connections().is_empty(), "closed when the dialog ended");
    assert_clean(&sim);
}

#[test]
fn a_call_whose_primary_refuses_its_connection_goes_to_the_backup_once() {
    let mut sim = per_call();
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    assert_eq!(outcomes(&sim, call), [CallOutcome::Answered], "on the backup");
    assert!(sim.servers[1].counters.invites > 0);
    assert_eq!(sim.servers[0].counters.invites, 0);

    // Both refuse: the call fails at once, without waiting for its deadline.
    sim.set_mode(Server::Backup, ServerMode::Refusing);
    let lost = sim.place_call(AccountId(0), "2001").unwrap();
    sim.run_for(secs(1));
    assert_eq!(outcomes(&sim, lost), [CallOutcome::Failed(CallFailure::ConnectionLost)]);
    assert_clean(&sim);
}

#[test]
fn an_established_call_ends_as_soon_as_its_connection_does() {
    let mut sim = per_call();
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    assert_eq!(outcomes(&sim, call), [CallOutcome::Answered]);
    let lost_at = sim.now;
    sim.drop_connections(Server::Primary, crate::engine::TransportError::Reset);
    sim.run_for(secs(1));
    let ended = sim.first_event_after(lost_at, |e| *e == Event::CallEnded { call, reason: EndReason::ConnectionLost });
    assert!(ended.is_some_and(|t| t <= lost_at + secs(1)), "not after the orphaned-call timeout: {ended:?}");
    assert_eq!(sim.core.live_calls(), 0);
}

/// A line's REGISTER exchange in TLS mode has its own connection too: a primary that
/// refuses it sends it to the backup; when both refuse, the line fails for a transport
/// reason (mutation shard 6).
#[test]
fn a_register_exchange_whose_primary_refuses_goes_to_the_backup_and_fails_when_both_do() {
    let mut c = cfg(1);
    c.mode = TransportMode::PerCallTls;
    let mut sim = Sim::new(c.clone());
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.start();
    sim.run_for(secs(1));
    assert!(sim.events.iter().any(|(_, e)| matches!(e, Event::Registered { server: Server::Backup, .. })));

    let mut sim = Sim::new(c);
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.set_mode(Server::Backup, ServerMode::Refusing);
    sim.start();
    sim.run_for(secs(1));
    let failures: Vec<RegError> = sim
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::RegistrationFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(failures.first(), Some(&RegError::Transport(crate::engine::TransportError::Refused)));
}
