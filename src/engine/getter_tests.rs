//! Tests of the public getters the application (and the status of the embedding API)
//! reads: the flow's state in every phase and mode, the active server while failing
//! back, the run of good probes, the instance identifier. Mutation testing found them
//! unchecked (docs/mutation-testing.md).

use super::tests_support::{cfg, secs, started};
use crate::config::TransportMode;
use crate::engine::{Event, FlowState};
use crate::ids::Server;
use crate::sim::{ServerMode, Sim};
use crate::time::Duration;

#[test]
fn the_flow_state_in_each_phase_and_mode() {
    let sim = Sim::new(cfg(1));
    assert_eq!(sim.core.flow_state(), FlowState::Idle, "not started");
    assert_eq!(sim.core.active_server(), None);

    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    assert_eq!(sim.core.flow_state(), FlowState::Up { server: Server::Primary });
    assert_eq!(sim.core.active_server(), Some(Server::Primary));
    sim.shutdown(secs(10));
    assert_eq!(sim.core.flow_state(), FlowState::Closed, "shut down");
    assert_eq!(sim.core.active_server(), None);

    let mut per_call = cfg(1);
    per_call.mode = TransportMode::PerCallTls;
    let mut sim = started(per_call);
    sim.run_for(secs(1));
    assert!(sim.core.connections().count() <= 1, "a registration exchange at most");
    assert_eq!(sim.core.flow_state(), FlowState::Idle, "per-call TLS has no persistent connection");
    assert_eq!(sim.core.active_server(), None);
}

/// While the de-REGISTERs on the backup wait for their answers, the flow is `Switching`
/// and the calls still go to the backup.
#[test]
fn while_failing_back_the_active_server_is_still_the_backup() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.run_for(secs(10));
    assert_eq!(sim.core.active_server(), Some(Server::Backup));
    sim.set_mode(Server::Primary, ServerMode::Up);
    let mut seen = Vec::new();
    let mut switching = 0;
    for _ in 0..30_000 {
        sim.run_for(Duration::from_millis(1));
        seen.push(sim.core.good_probes());
        if sim.core.flow_state() == FlowState::Switching {
            switching += 1;
            assert_eq!(sim.core.active_server(), Some(Server::Backup));
        }
        if sim.count_events(|e| matches!(e, Event::FailedBack)) > 0 {
            break;
        }
    }
    assert!(switching > 0, "the switch lasts a de-REGISTER round trip");
    assert_eq!(sim.core.active_server(), Some(Server::Primary));
    let stable = sim.core.config().failback.stable_probes;
    for n in 1..=stable {
        assert!(seen.contains(&n), "good probes counted up to {stable}: saw {seen:?}");
    }
    assert_eq!(sim.core.good_probes(), 0, "forgotten on the primary");
}

#[test]
fn the_instance_id_is_a_urn_uuid_that_the_register_carries() {
    let mut c = cfg(1);
    c.outbound = true;
    let mut sim = started(c);
    sim.run_for(secs(1));
    let id = sim.core.instance_id().to_owned();
    assert!(id.starts_with("urn:uuid:") && id.len() == "urn:uuid:".len() + 36, "{id}");
    let registers = sim.sent_requests("REGISTER");
    assert!(registers.iter().all(|(_, _, m)| m.header("Contact").is_some_and(|c| c.contains(&id))), "{id}");
}
