//! Scenario tests of failback's probes that mutation testing found unchecked
//! (docs/mutation-testing.md, shard 3): the count of good probes starts again on every new
//! connection to the backup; a probe that gets no answer fails, and the probes go on; an
//! answer on the probe's connection to another request is not the probe's.

use crate::engine::{Event, FlowError};
use crate::ids::Server;
use crate::sim::{ServerMode, Sim};
use crate::sip::Message;
use crate::time::{Duration, Instant};

use super::super::tests_support::{cfg, secs};

/// A phone on the backup: the primary refused it at start. Probes every 5 s, 3 good ones
/// in a row to fail back.
fn on_the_backup() -> Sim {
    let mut sim = Sim::new(cfg(1));
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.start();
    sim.run_for(secs(1));
    assert_eq!(sim.core.flow_state(), crate::engine::FlowState::Up { server: Server::Backup });
    sim
}

fn failing_back_after(sim: &Sim, since: Instant) -> Option<Instant> {
    sim.first_event_after(since, |e| *e == Event::FailingBack)
}

#[test]
fn a_new_connection_to_the_backup_starts_the_count_of_good_probes_again() {
    let mut sim = on_the_backup();
    sim.set_mode(Server::Primary, ServerMode::Up);
    // Two good probes, then the backup drops the phone while the primary refuses again:
    // the phone comes back on the backup.
    while sim.core.good_probes() < 2 {
        sim.run_for(Duration::from_millis(100));
        assert!(sim.now < Instant::ZERO + secs(60), "no two good probes");
    }
    // Frozen, the primary hangs the phone's next connection in its handshake without
    // breaking a probe (none is in flight between two): no probe fails, and only the new
    // connection can start the count again.
    sim.set_mode(Server::Primary, ServerMode::Frozen);
    sim.drop_connections(Server::Backup, crate::engine::TransportError::Reset);
    let lost = sim.now;
    // The primary's handshake times out, the backup takes the phone.
    sim.run_for(secs(20));
    let back = sim.first_event_after(lost, |e| *e == Event::FlowUp { server: Server::Backup }).unwrap();
    assert_eq!(sim.core.good_probes(), 0);
    sim.set_mode(Server::Primary, ServerMode::Up);
    sim.run_for(secs(30));
    // Three new good probes, the first one probe interval after the connection came up.
    let failing_back = failing_back_after(&sim, lost).expect("failback");
    assert!(failing_back >= back + secs(15), "failback at {failing_back:?}, back on the backup at {back:?}");
}

#[test]
fn a_probe_that_gets_no_answer_fails_and_the_probes_go_on() {
    let mut sim = on_the_backup();
    // The primary accepts connections and answers nothing: each probe's OPTIONS times out.
    sim.set_mode(Server::Primary, ServerMode::Silent);
    let silent = sim.now;
    sim.run_for(secs(20));
    let timeouts = sim.count_events(|e| {
        *e == Event::ConnectFailed { server: Server::Primary, reason: FlowError::TransactionTimeout }
    });
    assert!(timeouts >= 2, "{timeouts} probes timed out in 20 s");
    assert_eq!(failing_back_after(&sim, silent), None);
    // Once it answers again, three good probes bring the phone back.
    sim.set_mode(Server::Primary, ServerMode::Up);
    let up = sim.now;
    sim.run_for(secs(40));
    assert!(failing_back_after(&sim, up).is_some(), "no failback once the primary answered again");
}

#[test]
fn an_answer_on_the_probe_connection_to_another_request_is_not_the_probes() {
    let mut sim = on_the_backup();
    sim.set_mode(Server::Primary, ServerMode::Silent);
    // The first probe: its connection, and its OPTIONS, which the primary leaves unanswered.
    while sim.sent_requests("OPTIONS").iter().all(|(_, c, _)| c.server != Server::Primary) {
        sim.run_for(Duration::from_millis(100));
        assert!(sim.now < Instant::ZERO + secs(30), "no probe");
    }
    let (_, probe, options) =
        sim.sent_requests("OPTIONS").into_iter().find(|(_, c, _)| c.server == Server::Primary).unwrap();
    let mut stray = Message::response(200, "OK");
    stray.push_header("Via", "SIP/2.0/TLS 127.0.0.1:40001;branch=z9hG4bKnot-the-probe");
    for name in ["From", "To", "Call-ID", "CSeq"] {
        if let Some(v) = options.header(name) {
            stray.push_header(name, v.to_owned());
        }
    }
    sim.inject(probe, stray.to_bytes());
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.core.good_probes(), 0, "a 200 to another branch counted as the probe's answer");
}
