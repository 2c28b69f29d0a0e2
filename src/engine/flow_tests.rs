//! Scenario tests of the persistent connection's own decisions that mutation testing
//! found unchecked (docs/mutation-testing.md, shard 3): a request on it that gets no
//! answer at all declares it dead, even while it still answers pings.

use crate::engine::{CallFailure, CallOutcome, Event, FlowError};
use crate::ids::{AccountId, Server};

use super::super::tests_support::{assert_clean, cfg, secs, started};
use super::command_tests::outcomes;

#[test]
fn an_invite_without_any_answer_declares_the_connection_dead_though_it_answers_pings() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    sim.server(Server::Primary).behaviour.swallow_invites = true;
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    let placed = sim.now;
    sim.run_for(secs(10));
    assert_eq!(outcomes(&sim, call), [CallOutcome::Failed(CallFailure::ConnectionLost)]);
    let lost = sim.first_event_after(placed, |e| {
        *e == Event::FlowLost { server: Server::Primary, reason: FlowError::TransactionTimeout }
    });
    assert!(lost.is_some_and(|t| t <= placed + secs(5)), "the transaction timeout is 4 s: {lost:?}");
    assert!(sim.first_event_after(placed, |e| *e == Event::FlowUp { server: Server::Backup }).is_some());
    assert_clean(&sim);
}
