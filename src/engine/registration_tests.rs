//! Scenario tests of TLS mode's REGISTER exchange that mutation testing found unchecked
//! (docs/mutation-testing.md, shard 4): a call that arrived on the exchange's connection
//! and ends while the REGISTER is still in flight leaves the exchange its connection.

use crate::config::TransportMode;
use crate::engine::{EndReason, Event, RegState};
use crate::ids::{AccountId, Server};
use crate::sim::Sim;
use crate::time::{Duration, Instant};

use super::super::tests_support::{assert_clean, cfg, secs};

#[test]
fn a_call_ending_on_the_register_exchange_connection_leaves_the_exchange_its_connection() {
    let mut c = cfg(1);
    c.mode = TransportMode::PerCallTls;
    let mut sim = Sim::new(c);
    sim.start();
    // The exchange's connection comes up and carries the first REGISTER.
    while sim.sent_requests("REGISTER").is_empty() {
        sim.run_for(Duration::from_millis(1));
        assert!(sim.now < Instant::ZERO + secs(1), "no REGISTER");
    }
    let (_, conn, _) = sim.sent_requests("REGISTER")[0].clone();
    // Before the registrar answers (one round trip, 20 ms), the proxy sends a call on the
    // same connection, and the user rejects it at once.
    let invite = "INVITE sips:1001@127.0.0.1:40001 SIP/2.0\r\nVia: SIP/2.0/TLS primary.test;branch=z9hG4bKreg-in\r\n\
         From: <sips:3000@primary.test>;tag=far\r\nTo: <sips:1001@primary.test>\r\nCall-ID: reg-in\r\n\
         CSeq: 1 INVITE\r\nContact: <sips:3000@primary.test>\r\nContent-Length: 0\r\n\r\n";
    sim.inject(conn, invite.as_bytes().to_vec());
    sim.run_for(sim.latency);
    let call = sim
        .events
        .iter()
        .find_map(|(_, e)| if let Event::IncomingCall { call, .. } = e { Some(*call) } else { None })
        .expect("the INVITE rings a call");
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Registering), "the REGISTER is still in flight");
    sim.core.reject(sim.now, call, 486).unwrap();
    sim.drain();
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallEnded { call, reason: EndReason::Rejected }));
    assert!(sim.open_connections().contains(&conn), "the call's end closed the connection its REGISTER waits on");
    // The exchange finishes there, and only then is the connection closed.
    sim.run_for(secs(1));
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Registered { server: Server::Primary }));
    let registers = sim.sent_requests("REGISTER");
    assert!(registers.iter().all(|(_, c, _)| *c == conn), "the whole exchange on its one connection");
    assert!(sim.open_connections().is_empty(), "closed once the exchange was done");
    assert_clean(&sim);
}
