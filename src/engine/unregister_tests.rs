//! Scenario tests of which accounts shutdown de-registers and what it does to the
//! others, which mutation testing found unchecked (docs/mutation-testing.md,
//! `registration.rs`, `Core::unregister_all`): a registered line sends its de-REGISTER;
//! a line waiting to retry after a failure is unregistered at once, its retry timer
//! stopped; a line whose REGISTER is in flight is left to it (still registering).

use crate::engine::{Event, RegError, RegState, TimerKey};
use crate::ids::{AccountId, Server};
use crate::sim::Sim;
use crate::time::Duration;

use super::super::tests_support::{assert_clean, cfg, secs};

/// A two-line phone whose second line's password the primary does not accept: line 0
/// registers, line 1 fails authentication and waits `retry` seconds to try again.
fn second_line_refused(retry: u32) -> Sim {
    let mut c = cfg(2);
    c.registration_retry = retry;
    let mut sim = Sim::new(c);
    sim.server(Server::Primary).users.insert("1002".into(), "not-pw".into());
    sim.start();
    sim.run_for(secs(1));
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Registered { server: Server::Primary }));
    assert_eq!(sim.core.registration(AccountId(1)), Some(RegState::RetryWait));
    assert!(
        sim.count_events(|e| matches!(
            e,
            Event::RegistrationFailed { account: AccountId(1), reason: RegError::AuthenticationFailed, .. }
        )) == 1
    );
    sim
}

/// The timers of account `i`.
fn account_timers(sim: &Sim, i: u8) -> Vec<TimerKey> {
    sim.core
        .decision_view()
        .timers
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| matches!(k, TimerKey::RegTx(a) | TimerKey::RegRefresh(a) | TimerKey::RegRetry(a) if *a == i))
        .collect()
}

#[test]
fn shutdown_unregisters_a_line_waiting_to_retry_and_stops_its_retry() {
    let mut sim = second_line_refused(30);
    assert_eq!(account_timers(&sim, 1), [TimerKey::RegRetry(1)]);
    sim.shutdown(Duration::ZERO);
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Unregistering), "line 0 de-registers");
    assert_eq!(sim.core.registration(AccountId(1)), Some(RegState::Unregistered), "line 1 has nothing to undo");
    assert_eq!(account_timers(&sim, 1), [], "no retry during shutdown");
    sim.shutdown(secs(5));
    assert!(sim.core.is_closed());
    assert_clean(&sim);
}

#[test]
fn shutdown_leaves_a_register_in_flight_to_its_transaction() {
    let mut sim = second_line_refused(30);
    let sent = sim.sent_requests("REGISTER").len();
    let deadline = sim.now + secs(40);
    while sim.sent_requests("REGISTER").len() == sent {
        sim.run_for(Duration::from_millis(1));
        assert!(sim.now < deadline, "line 1 never retried");
    }
    assert_eq!(sim.core.registration(AccountId(1)), Some(RegState::Registering), "the retry is in flight");
    sim.shutdown(Duration::ZERO);
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Unregistering), "line 0 de-registers");
    assert_eq!(
        sim.core.registration(AccountId(1)),
        Some(RegState::Registering),
        "line 1's REGISTER is still in flight"
    );
    assert_eq!(account_timers(&sim, 1), [TimerKey::RegTx(1)], "its transaction timer still runs");
    sim.shutdown(secs(5));
    assert!(sim.core.is_closed());
    assert_clean(&sim);
}
