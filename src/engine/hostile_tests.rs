//! Scenario tests of a hostile or broken peer: a peer that does not read, floods of
//! incoming calls, and server answers that would make the phone send in a loop.

use super::tests_support::{assert_clean, cfg, secs, started};
use crate::engine::{Event, FlowError, Input};
use crate::ids::{ConnId, Server};
use crate::sim::Sim;

fn flow_conn(sim: &Sim) -> ConnId {
    sim.core
        .connections()
        .find(|(_, p, up)| *p == crate::engine::ConnPurpose::Flow && *up)
        .map(|(id, _, _)| id)
        .expect("a persistent connection is up")
}

#[test]
fn a_peer_that_takes_nothing_for_the_stall_timeout_is_dead() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let conn = flow_conn(&sim);
    let now = sim.now;
    sim.core.handle_input(now, Input::WriteBacklog { conn, bytes: 300 });
    sim.drain();
    // Progress (the backlog shrinks) restarts the stall timer.
    sim.run_for(secs(9));
    let now = sim.now;
    sim.core.handle_input(now, Input::WriteBacklog { conn, bytes: 200 });
    sim.drain();
    sim.run_for(secs(9));
    assert!(sim.core.connections().any(|(id, _, _)| id == conn), "still alive: it made progress 9 s ago");
    sim.run_for(secs(2));
    let lost = sim.events.iter().find_map(|(_, e)| match e {
        Event::FlowLost { server: Server::Primary, reason } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(lost, Some(FlowError::WriteStalled(200)));
    assert!(sim.count_events(|e| matches!(e, Event::FlowUp { server: Server::Backup })) == 1, "recovery started");
    assert_clean(&sim);
}

#[test]
fn a_backlog_beyond_the_limit_is_dead_at_once_and_a_drained_one_is_fine() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let conn = flow_conn(&sim);
    let now = sim.now;
    sim.core.handle_input(now, Input::WriteBacklog { conn, bytes: 5000 });
    sim.core.handle_input(now, Input::WriteBacklog { conn, bytes: 0 });
    sim.drain();
    sim.run_for(secs(30));
    assert!(sim.core.connections().any(|(id, _, _)| id == conn), "a drained backlog is no stall");
    let limit = sim.core.config().max_write_backlog;
    let now = sim.now;
    sim.core.handle_input(now, Input::WriteBacklog { conn, bytes: limit + 1 });
    sim.drain();
    assert!(!sim.core.connections().any(|(id, _, _)| id == conn));
    assert_eq!(sim.count_events(|e| matches!(e, Event::FlowLost { reason: FlowError::WriteStalled(_), .. })), 1);
    assert_clean(&sim);
}
