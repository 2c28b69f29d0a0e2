//! Scenario tests: the core against the simulated servers on a virtual clock.

use crate::config::TransportMode;
use crate::engine::{CallFailure, CallOutcome, EndReason, Event, FlowError, FlowState, Input, RegError, RegState};
use crate::ids::{AccountId, ConnId, Server};
use crate::sim::{ServerMode, Sim};
use crate::sip::Message;
use crate::time::{Duration, Instant};

use super::tests_support::*;

// Declared here rather than in mod.rs: a change to mod.rs, which mutation testing
// examines, would make the committed mutation shards stale (docs/mutation-testing.md).
#[path = "command_tests.rs"]
mod command_tests;
#[path = "dialog_move_tests.rs"]
mod dialog_move_tests;
#[path = "dialog_tests.rs"]
mod dialog_tests;
#[path = "failback_tests.rs"]
mod failback_tests;
#[path = "flow_tests.rs"]
mod flow_tests;
#[path = "granted_expires_tests.rs"]
mod granted_expires_tests;
#[path = "keepalive_tests.rs"]
mod keepalive_tests;
#[path = "locate_tests.rs"]
mod locate_tests;
#[path = "per_call_tests.rs"]
mod per_call_tests;
#[path = "register_response_tests.rs"]
mod register_response_tests;
#[path = "registration_tests.rs"]
mod registration_tests;
#[path = "status_tests.rs"]
mod status_tests;
#[path = "timer_table_tests.rs"]
mod timer_table_tests;
#[path = "unregister_tests.rs"]
mod unregister_tests;

#[test]
fn one_connection_registers_every_account_with_digest() {
    let mut sim = started(cfg(3));
    sim.run_for(secs(1));
    assert!(all_registered_on(&sim, Server::Primary));
    assert_eq!(sim.servers[0].counters.accepted, 1, "exactly one connection");
    // 3 challenged + 3 authenticated REGISTERs, all on the one connection.
    let regs = sim.sent_requests("REGISTER");
    assert_eq!(regs.len(), 6);
    assert!(regs.iter().all(|(_, c, _)| *c == regs[0].1));
    assert!(regs[3..].iter().all(|(_, _, m)| m.header("Authorization").is_some()));
    assert_eq!(sim.count_events(|e| matches!(e, Event::Registered { .. })), 3);
    assert_eq!(sim.core.flow_state(), FlowState::Up { server: Server::Primary });
    assert_clean(&sim);
}

#[test]
fn register_carries_contact_via_and_scheme() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let (_, _, m) = &sim.sent_requests("REGISTER")[0];
    assert_eq!(m.start, crate::sip::StartLine::Request { method: "REGISTER".into(), uri: "sips:primary.test".into() });
    assert!(m.header("To").unwrap().contains("<sips:1001@primary.test>"));
    assert!(m.top_via().unwrap().starts_with("SIP/2.0/TLS 127.0.0.1:"));
    assert!(m.header("Contact").unwrap().starts_with("<sips:1001@127.0.0.1:"));

    let mut plain = cfg(1);
    plain.sips_scheme = false;
    let mut sim = started(plain);
    sim.run_for(secs(1));
    let (_, _, m) = &sim.sent_requests("REGISTER")[0];
    assert_eq!(m.start, crate::sip::StartLine::Request { method: "REGISTER".into(), uri: "sip:primary.test".into() });
    assert!(m.top_via().unwrap().starts_with("SIP/2.0/TLS "), "TLS either way");
    let contact = m.header("Contact").unwrap();
    assert!(contact.starts_with("<sip:1001@") && contact.contains(";transport=tls"), "{contact}");
}

#[test]
fn outbound_support_sends_instance_and_reg_id() {
    let mut c = cfg(1);
    c.outbound = true;
    let mut sim = started(c);
    sim.run_for(secs(1));
    let (_, _, m) = &sim.sent_requests("REGISTER")[0];
    let contact = m.header("Contact").unwrap();
    assert!(contact.contains("+sip.instance=\"<urn:uuid:") && contact.contains("reg-id=1"), "{contact}");
    assert!(m.header("Supported").unwrap().contains("outbound"));
}

#[test]
fn pings_are_jittered_within_the_interval_and_pongs_keep_the_flow() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(300));
    let pings = sim.ping_times();
    assert!(pings.len() >= 25, "{} pings in 300 s", pings.len());
    let up = sim.first_event_after(Instant::ZERO, |e| matches!(e, Event::FlowUp { .. })).unwrap();
    let first = pings[0].saturating_since(up).as_millis();
    assert!((8000..=10_000).contains(&first), "first ping {first} ms after the flow came up");
    for w in pings.windows(2) {
        let gap = w[1].saturating_since(w[0]).as_millis();
        // The gap is the drawn wait plus the pong's round trip (20 ms).
        assert!((8000..=10_020).contains(&gap), "gap {gap} ms");
    }
    assert_eq!(sim.servers[0].counters.accepted, 1, "no reconnect while pongs come back");
    assert_eq!(sim.count_events(|e| matches!(e, Event::FlowLost { .. })), 0);
    assert_clean(&sim);
}

#[test]
fn a_silent_server_is_detected_by_the_pong_deadline_and_the_backup_takes_over() {
    let mut sim = started(cfg(2));
    sim.run_for(secs(30)); // several pongs: the primary is known to answer pings
    let t0 = sim.now;
    sim.set_mode(Server::Primary, ServerMode::Silent);
    sim.run_for(secs(30));
    let lost = sim.first_event_after(t0, |e| matches!(e, Event::FlowLost { reason: FlowError::PongTimeout, .. }));
    let lost = lost.expect("pong timeout");
    // At most one keep-alive interval plus the pong timeout after the server went silent.
    assert!(lost.saturating_since(t0) <= secs(12), "{}", lost.saturating_since(t0));
    assert!(sim.count_events(|e| matches!(e, Event::FailedOver)) == 1);
    assert!(all_registered_on(&sim, Server::Backup));
    assert_clean(&sim);
}

#[test]
fn a_server_that_never_pongs_is_kept_alive_with_options() {
    let mut sim = started(cfg(1));
    sim.server(Server::Primary).behaviour.answer_pings = false;
    sim.run_for(secs(120));
    assert_eq!(sim.count_events(|e| matches!(e, Event::PongsUnsupported { server: Server::Primary })), 1);
    assert_eq!(sim.count_events(|e| matches!(e, Event::FlowLost { .. })), 0);
    let options = sim.servers[0].counters.options;
    assert!((8..=14).contains(&options), "one OPTIONS per interval of 8-10 s: {options} in 120 s");
    // And a dead one is still detected, by the OPTIONS transaction timer.
    let t0 = sim.now;
    sim.set_mode(Server::Primary, ServerMode::Silent);
    sim.run_for(secs(30));
    let lost =
        sim.first_event_after(t0, |e| matches!(e, Event::FlowLost { reason: FlowError::TransactionTimeout, .. }));
    assert!(lost.expect("detected").saturating_since(t0) <= secs(10 + 4) + Duration::from_millis(100));
    assert_clean(&sim);
}

#[test]
fn primary_refusing_at_start_means_backup_at_once() {
    let mut c = cfg(2);
    c.seed = 7.into();
    let mut sim = Sim::new(c);
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.start();
    sim.run_for(secs(1));
    assert!(all_registered_on(&sim, Server::Backup));
    assert_eq!(sim.count_events(|e| matches!(e, Event::Backoff { .. })), 0, "the backup is tried at once");
    assert_clean(&sim);
}

#[test]
fn primary_reset_fails_over_and_reregisters_everything() {
    let mut sim = started(cfg(3));
    sim.run_for(secs(5));
    let t0 = sim.now;
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.run_for(secs(2));
    assert!(all_registered_on(&sim, Server::Backup));
    let done = sim.first_event_after(
        t0,
        |e| matches!(e, Event::Registered { server: Server::Backup, account, .. } if account.0 == 2),
    );
    // connect (4 one-way delays) + 2 REGISTER round trips = 80 ms in the simulation.
    assert!(done.unwrap().saturating_since(t0) <= Duration::from_millis(120));
    assert_eq!(sim.count_events(|e| matches!(e, Event::RegistrationLost { .. })), 3);
    assert_clean(&sim);
}

#[test]
fn failback_waits_for_stable_probes_then_moves_every_account() {
    let mut sim = started(cfg(2));
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.run_for(secs(10));
    assert!(all_registered_on(&sim, Server::Backup));
    let t_up = sim.now;
    sim.set_mode(Server::Primary, ServerMode::Up);
    sim.run_for(secs(9));
    assert!(all_registered_on(&sim, Server::Backup), "two probes are not enough");
    sim.run_for(secs(9));
    let back = sim.first_event_after(t_up, |e| matches!(e, Event::FailedBack)).expect("failed back");
    // Probes every 5 s: the third good one comes 10 to 15 s after the primary returned.
    let after = back.saturating_since(t_up);
    assert!(after >= secs(10) && after <= secs(16), "{after}");
    assert_eq!(sim.count_events(|e| matches!(e, Event::FailingBack)), 1);
    assert_eq!(sim.servers[0].counters.options, 3, "exactly the three stable probes, answered, before failing back");
    assert!(all_registered_on(&sim, Server::Primary));
    assert_eq!(sim.count_events(|e| matches!(e, Event::Unregistered { .. })), 2, "de-registered from the backup");
    assert_clean(&sim);
}

#[test]
fn a_flapping_primary_never_makes_the_phone_flap() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.run_for(secs(3));
    for _ in 0..10 {
        sim.set_mode(Server::Primary, ServerMode::Up);
        sim.run_for(secs(7));
        sim.set_mode(Server::Primary, ServerMode::Refusing);
        sim.run_for(secs(7));
    }
    assert_eq!(sim.count_events(|e| matches!(e, Event::FailingBack)), 0);
    assert_eq!(sim.core.active_server(), Some(Server::Backup));
    assert_clean(&sim);
}

#[test]
fn an_established_call_pins_the_backup() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.run_for(secs(2));
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallOutcome { call, outcome: CallOutcome::Answered }));
    sim.set_mode(Server::Primary, ServerMode::Up);
    sim.run_for(secs(60));
    assert_eq!(sim.count_events(|e| matches!(e, Event::FailingBack)), 0, "the call holds the phone on the backup");
    sim.hang_up(call);
    sim.run_for(secs(1));
    assert_eq!(sim.count_events(|e| matches!(e, Event::FailedBack)), 1, "fails back once the call ended");
    assert_clean(&sim);
}

#[test]
fn both_down_backs_off_exponentially_then_recovers() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.set_mode(Server::Backup, ServerMode::Refusing);
    sim.run_for(secs(600));
    let waits: Vec<(Duration, u32)> = sim
        .events
        .iter()
        .filter_map(|(_, e)| if let Event::Backoff { wait, failures } = e { Some((*wait, *failures)) } else { None })
        .collect();
    assert!(waits.len() >= 6, "{waits:?}");
    assert!(waits[0].0 <= secs(2), "first retry within seconds: {:?}", waits[0]);
    assert!(waits.iter().all(|(w, _)| *w <= secs(120)), "capped");
    assert!(waits.last().unwrap().0 >= secs(60), "grew to the cap region");
    let t0 = sim.now;
    sim.set_mode(Server::Backup, ServerMode::Up);
    sim.run_for(secs(130));
    let back = sim.first_event_after(t0, |e| matches!(e, Event::Registered { .. })).expect("recovered");
    assert!(back.saturating_since(t0) <= secs(121));
    assert_clean(&sim);
}

#[test]
fn a_call_during_an_outage_is_delivered_after_recovery() {
    let mut sim = started(cfg(2));
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.set_mode(Server::Backup, ServerMode::Refusing);
    sim.run_for(secs(3));
    let call = sim.place_call(AccountId(1), "2000").unwrap();
    sim.run_for(secs(2));
    assert_eq!(sim.core.queued_calls(), 1);
    sim.set_mode(Server::Backup, ServerMode::Up);
    sim.run_for(secs(20));
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallOutcome { call, outcome: CallOutcome::Answered }));
    // The INVITE left only after both accounts were registered on the new connection.
    let invite_at = sim.sent_requests("INVITE")[0].0;
    let last_reg = sim
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Registered { server: Server::Backup, .. }))
        .map(|(t, _)| *t)
        .max()
        .unwrap();
    assert!(invite_at >= last_reg);
    assert_clean(&sim);
}

#[test]
fn a_call_during_a_long_outage_fails_at_its_deadline() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.set_mode(Server::Backup, ServerMode::Refusing);
    sim.run_for(secs(1));
    let t0 = sim.now;
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(60));
    let failed = sim.first_event_after(t0, |e| {
        *e == Event::CallOutcome { call, outcome: CallOutcome::Failed(CallFailure::Deadline) }
    });
    assert_eq!(failed.unwrap().saturating_since(t0), secs(32));
    sim.monitor.check_every_call_finished();
    assert_clean(&sim);
}

#[test]
fn the_call_queue_is_bounded() {
    let mut c = cfg(1);
    c.call_queue_limit = 2;
    let mut sim = Sim::new(c);
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.set_mode(Server::Backup, ServerMode::Refusing);
    sim.start();
    let calls: Vec<_> = (0..3).map(|_| sim.place_call(AccountId(0), "2000").unwrap()).collect();
    assert!(sim.events.iter().any(
        |(_, e)| *e == Event::CallOutcome { call: calls[2], outcome: CallOutcome::Failed(CallFailure::QueueFull) }
    ));
    assert_eq!(sim.core.queued_calls(), 2);
}

#[test]
fn a_call_uses_the_persistent_connection_and_answers_a_proxy_challenge() {
    let mut sim = started(cfg(2));
    sim.run_for(secs(1));
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    let invites = sim.sent_requests("INVITE");
    assert_eq!(invites.len(), 2, "challenged, then with Proxy-Authorization");
    assert!(invites[1].2.header("Proxy-Authorization").is_some());
    assert_eq!(
        invites[0].2.start,
        crate::sip::StartLine::Request { method: "INVITE".into(), uri: "sips:2000@primary.test".into() }
    );
    assert_eq!(sim.servers[0].counters.accepted, 1, "no new connection for the call");
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallOutcome { call, outcome: CallOutcome::Answered }));
    assert_eq!(sim.sent_requests("ACK").len(), 2, "ACK for the 407 and for the 200");
    sim.hang_up(call);
    sim.run_for(secs(1));
    assert_eq!(sim.sent_requests("BYE").len(), 1);
    assert_eq!(sim.core.live_calls(), 0);
    assert_clean(&sim);
}

#[test]
fn cancel_while_ringing_gives_one_outcome() {
    let mut sim = started(cfg(1));
    sim.server(Server::Primary).behaviour.invite_status = None;
    sim.run_for(secs(1));
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallProgress { call, status: 180 }));
    sim.hang_up(call);
    sim.run_for(secs(1));
    assert_eq!(sim.sent_requests("CANCEL").len(), 1);
    assert_eq!(sim.monitor.outcome_count(), 1);
    assert_eq!(sim.core.live_calls(), 0, "487 acknowledged and the call forgotten");
    assert_clean(&sim);
}

#[test]
fn a_rejection_is_retried_after_the_registration_retry_timer_and_a_temporary_failure_waits() {
    let mut sim = Sim::new(cfg(1));
    sim.server(Server::Primary).behaviour.register_status = Some(403);
    sim.start();
    sim.run_for(secs(1799));
    assert_eq!(sim.servers[0].counters.registers, 1, "no retry before `sip registration retry timer`");
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Rejected));
    assert!(sim.events.iter().any(|(_, e)| matches!(
        e,
        Event::RegistrationFailed { reason: RegError::Rejected(403), retry_in: Some(d), .. } if *d == secs(1800)
    )));
    sim.run_for(secs(2));
    assert_eq!(sim.servers[0].counters.registers, 2, "tried again after 1800 s");
    sim.server(Server::Primary).behaviour.register_status = None;
    sim.run_for(secs(1800));
    assert_eq!(
        sim.core.registration(AccountId(0)),
        Some(RegState::Registered { server: Server::Primary }),
        "a line comes back once the server accepts it"
    );
    assert_clean(&sim);

    let mut sim = Sim::new(cfg(1));
    sim.server(Server::Primary).behaviour.register_status = Some(503);
    sim.start();
    sim.run_for(secs(1));
    assert!(sim.events.iter().any(|(_, e)| matches!(e, Event::RegistrationFailed { reason: RegError::Failed(503), retry_in: Some(d), .. } if *d == secs(1800))));
    sim.server(Server::Primary).behaviour.register_status = None;
    sim.run_for(secs(1800));
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Registered { server: Server::Primary }));
    assert_eq!(sim.count_events(|e| matches!(e, Event::FlowLost { .. })), 0, "a 503 does not kill a healthy flow");
}

#[test]
fn registration_is_refreshed_by_the_aastra_rule() {
    let mut c = cfg(1);
    c.registration_period = 600;
    c.registration_renewal = 60;
    let mut sim = started(c);
    sim.run_for(secs(1));
    let first = sim.sent_requests("REGISTER").len();
    sim.run_for(secs(538));
    assert_eq!(sim.sent_requests("REGISTER").len(), first, "not before 540 s");
    sim.run_for(secs(2));
    assert_eq!(sim.sent_requests("REGISTER").len(), first + 1, "60 s before expiry, with cached credentials");
    assert!(sim.sent_requests("REGISTER").last().unwrap().2.header("Authorization").is_some());
    assert_eq!(crate::engine::registration_refresh_delay(100, 60), secs(50));
}

#[test]
fn flow_timer_shortens_the_keepalive() {
    let mut c = cfg(1);
    c.keepalive_interval = Duration::ZERO; // RFC 5626 default of 120 s
    let mut sim = Sim::new(c);
    sim.server(Server::Primary).behaviour.flow_timer = Some(20);
    sim.start();
    sim.run_for(secs(200));
    let pings = sim.ping_times();
    assert!(pings.len() >= 9, "{} pings", pings.len());
    assert!(pings.windows(2).all(|w| w[1].saturating_since(w[0]) <= secs(20) + Duration::from_millis(20)));
}

#[test]
fn garbage_from_the_server_closes_the_connection_and_recovers() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let conn = sim.open_connections()[0];
    sim.inject(conn, b"HELLO WORLD\r\nContent-Length: x\r\n\r\n".to_vec());
    sim.run_for(secs(1));
    assert!(sim.events.iter().any(|(_, e)| matches!(e, Event::FlowLost { reason: FlowError::Protocol(_), .. })));
    assert!(all_registered_on(&sim, Server::Backup));
    assert_clean(&sim);
}

#[test]
fn late_results_for_old_connections_are_ignored() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let mut before = sim.core.clone();
    before.handle_timeout(sim.now);
    let stale = ConnId { server: Server::Primary, generation: 999 };
    sim.core.handle_input(sim.now, Input::Closed { conn: stale, reason: crate::engine::TransportError::Reset });
    sim.core.handle_input(sim.now, Input::Received { conn: stale, data: b"SIP/2.0 200 OK\r\n\r\n" });
    assert!(sim.core.poll_output().is_none());
    assert_eq!(sim.core, before);
}

#[test]
fn incoming_call_answered_then_hung_up_by_the_far_end() {
    let mut sim = started(cfg(2));
    sim.run_for(secs(1));
    let conn = sim.open_connections()[0];
    let invite = "INVITE sips:1002@127.0.0.1:40001 SIP/2.0\r\nVia: SIP/2.0/TLS primary.test;branch=z9hG4bKin1\r\nRecord-Route: <sips:primary.test;lr>\r\nFrom: <sips:3000@primary.test>;tag=far\r\nTo: <sips:1002@primary.test>\r\nCall-ID: in-1\r\nCSeq: 1 INVITE\r\nContact: <sips:3000@primary.test>\r\nContent-Length: 0\r\n\r\n";
    sim.inject(conn, invite.as_bytes().to_vec());
    sim.run_for(secs(1));
    let (call, account) = sim
        .events
        .iter()
        .find_map(
            |(_, e)| if let Event::IncomingCall { call, account, .. } = e { Some((*call, *account)) } else { None },
        )
        .unwrap();
    assert_eq!(account, AccountId(1));
    sim.core.answer(sim.now, call, b"v=0\r\n".to_vec()).unwrap();
    sim.drain();
    let ok = sim
        .sent
        .iter()
        .filter_map(|(_, _, d)| Message::parse(d).ok())
        .find(|m| m.status() == Some(200) && m.call_id() == Some("in-1"))
        .unwrap();
    assert!(ok.header("To").unwrap().contains("tag="));
    assert!(ok.header("Contact").is_some());
    assert_eq!(ok.header("Record-Route"), Some("<sips:primary.test;lr>"), "route set copied into the 2xx");
    let to = format!("To: {}", ok.header("To").unwrap());
    sim.inject(conn, format!("ACK sips:1002@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS primary.test;branch=z9hG4bKin2\r\nFrom: <sips:3000@primary.test>;tag=far\r\n{to}\r\nCall-ID: in-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n").into_bytes());
    sim.inject(conn, format!("BYE sips:1002@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS primary.test;branch=z9hG4bKin3\r\nFrom: <sips:3000@primary.test>;tag=far\r\n{to}\r\nCall-ID: in-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n").into_bytes());
    sim.run_for(secs(1));
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallEnded { call, reason: EndReason::RemoteHangup }));
    assert_eq!(sim.core.live_calls(), 0);
}

#[test]
fn incoming_options_are_answered() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let conn = sim.open_connections()[0];
    sim.inject(conn, b"OPTIONS sips:1001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS p;branch=z9hG4bKo\r\nFrom: <sips:p>;tag=x\r\nTo: <sips:1001@p>\r\nCall-ID: o-1\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n".to_vec());
    sim.run_for(secs(1));
    let resp =
        sim.sent.iter().filter_map(|(_, _, d)| Message::parse(d).ok()).find(|m| m.call_id() == Some("o-1")).unwrap();
    assert_eq!(resp.status(), Some(200));
    assert_eq!(resp.cseq(), Some((7, "OPTIONS")));
}

#[test]
fn per_call_tls_opens_a_connection_per_exchange() {
    let mut c = cfg(2);
    c.mode = TransportMode::PerCallTls;
    let mut sim = started(c);
    sim.run_for(secs(1));
    assert!(all_registered_on(&sim, Server::Primary));
    assert_eq!(sim.servers[0].counters.accepted, 2, "one per registration exchange");
    assert!(sim.open_connections().is_empty(), "closed when the exchange ended");
    let a = sim.place_call(AccountId(0), "2000").unwrap();
    let b = sim.place_call(AccountId(1), "2001").unwrap();
    sim.run_for(secs(1));
    assert_eq!(sim.servers[0].counters.accepted, 4, "one per call");
    assert_eq!(sim.open_connections().len(), 2, "kept for the dialogs");
    sim.hang_up(a);
    sim.hang_up(b);
    sim.run_for(secs(1));
    assert!(sim.open_connections().is_empty());
    assert!(sim.ping_times().is_empty(), "no keep-alive without a persistent connection");
    assert_clean(&sim);
}

#[test]
fn shutdown_deregisters_then_closes() {
    let mut sim = started(cfg(2));
    sim.run_for(secs(1));
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    sim.shutdown(secs(10));
    assert!(sim.core.is_closed());
    assert_eq!(sim.count_events(|e| matches!(e, Event::Unregistered { .. })), 2);
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallEnded { call, reason: EndReason::Shutdown }));
    assert!(sim.open_connections().is_empty());
    assert!(sim.servers[0].bindings.is_empty());
    assert_eq!(sim.core.poll_timeout(), None);
    assert_clean(&sim);
}

#[test]
fn frozen_handshake_hits_the_connect_timeout() {
    let mut sim = Sim::new(cfg(1));
    sim.set_mode(Server::Primary, ServerMode::Frozen);
    sim.start();
    sim.run_for(secs(6));
    assert!(sim.events.iter().any(|(t, e)| matches!(
        e,
        Event::ConnectFailed { server: Server::Primary, reason: FlowError::ConnectTimeout }
    ) && *t == Instant::from_millis(5000)));
    assert!(all_registered_on(&sim, Server::Backup));
    assert_clean(&sim);
}

#[test]
fn a_call_between_two_lines_routed_back_by_the_proxy_is_a_new_incoming_call() {
    let mut sim = started(cfg(2));
    sim.server(Server::Primary).behaviour.invite_status = None; // the proxy only rings
    sim.run_for(secs(1));
    let out = sim.place_call(AccountId(0), "1002").unwrap();
    sim.run_for(secs(1));
    // The proxy forwards line 1's INVITE to line 2 over the same connection, Call-ID and
    // From tag unchanged, no To tag: a new dialog for line 2.
    let (_, conn, invite) = sim.sent_requests("INVITE").pop().unwrap();
    let mut forwarded = invite.clone();
    forwarded.headers.insert(
        0,
        crate::sip::Header { name: "Via".into(), value: "SIP/2.0/TLS primary.test;branch=z9hG4bKfwd".into() },
    );
    sim.inject(conn, forwarded.to_bytes());
    sim.run_for(secs(1));
    let incoming = sim.events.iter().find_map(|(_, e)| {
        if let Event::IncomingCall { call, account, .. } = e { Some((*call, *account)) } else { None }
    });
    let (call, account) = incoming.expect("line 2 rings");
    assert_eq!(account, AccountId(1));
    assert_ne!(call, out);
    let responses: Vec<u16> =
        sim.sent.iter().filter_map(|(_, _, d)| Message::parse(d).ok()).filter_map(|m| m.status()).collect();
    assert!(!responses.contains(&491), "not mistaken for a re-INVITE of line 1's call: {responses:?}");
    sim.core.answer(sim.now, call, Vec::new()).unwrap();
    sim.drain();
    assert!(
        sim.sent
            .iter()
            .filter_map(|(_, _, d)| Message::parse(d).ok())
            .any(|m| m.status() == Some(200) && m.call_id() == invite.call_id())
    );
}

#[test]
fn credentials_cached_for_one_server_are_challenged_afresh_by_the_other() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.run_for(secs(1));
    // The backup refuses the primary's nonce with a new challenge; that is not a failure.
    assert!(all_registered_on(&sim, Server::Backup));
    assert_eq!(sim.count_events(|e| matches!(e, Event::RegistrationFailed { .. })), 0);
}

#[test]
fn a_server_that_drops_every_connection_after_the_handshake_gets_back_off_not_a_loop() {
    let mut sim = Sim::new(cfg(1));
    sim.server(Server::Primary).behaviour.close_after_handshake = true;
    sim.server(Server::Backup).behaviour.close_after_handshake = true;
    sim.start();
    sim.run_for(secs(60));
    let connects = sim.servers[0].counters.accepted + sim.servers[1].counters.accepted;
    assert!(connects <= 20, "{connects} connections in 60 s");
    assert!(sim.count_events(|e| matches!(e, Event::Backoff { .. })) >= 3);
    assert_clean(&sim);
}

#[test]
fn options_answered_with_an_error_still_prove_the_server_alive() {
    let mut sim = started(cfg(1));
    sim.server(Server::Primary).behaviour.answer_pings = false;
    sim.server(Server::Primary).behaviour.options_status = 405;
    sim.run_for(secs(120));
    assert_eq!(sim.count_events(|e| matches!(e, Event::FlowLost { .. })), 0);
    // And a primary that answers probes with 404 is alive enough to fail back to.
    let mut sim = started(cfg(1));
    sim.server(Server::Primary).behaviour.options_status = 404;
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.run_for(secs(2));
    sim.set_mode(Server::Primary, ServerMode::Up);
    sim.run_for(secs(20));
    assert_eq!(sim.count_events(|e| matches!(e, Event::FailedBack)), 1);
}

#[test]
fn unsolicited_crlf_does_not_postpone_the_next_ping() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let conn = sim.open_connections()[0];
    for _ in 0..20 {
        sim.run_for(secs(3));
        sim.inject(conn, b"\r\n".to_vec());
    }
    let pings = sim.ping_times();
    assert!(pings.windows(2).all(|w| w[1].saturating_since(w[0]) <= Duration::from_millis(10_020)));
    assert!(pings.len() >= 6, "{} pings in 61 s", pings.len());
}

#[test]
fn flow_state_reports_connecting_up_and_waiting() {
    let mut sim = Sim::new(cfg(1));
    sim.start();
    assert_eq!(sim.core.flow_state(), FlowState::Connecting { server: Server::Primary });
    sim.run_for(secs(1));
    assert_eq!(sim.core.flow_state(), FlowState::Up { server: Server::Primary });
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.set_mode(Server::Backup, ServerMode::Refusing);
    sim.run_for(Duration::from_millis(200));
    assert_eq!(sim.core.flow_state(), FlowState::Waiting);
    assert_eq!(sim.core.active_server(), None);
}

#[test]
fn backoff_window_doubles_to_its_cap() {
    let core = crate::engine::Core::new(cfg(1), Instant::ZERO);
    let w: Vec<u64> = (0..8).map(|n| core.backoff_window(n).as_millis()).collect();
    assert_eq!(w, [2000, 4000, 8000, 16_000, 32_000, 64_000, 120_000, 120_000]);
}

#[test]
fn a_proven_connection_resets_the_back_off() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.set_mode(Server::Backup, ServerMode::Refusing);
    sim.run_for(secs(100));
    assert!(sim.core.failed_rounds() >= 4);
    sim.set_mode(Server::Primary, ServerMode::Up);
    sim.run_for(secs(130));
    assert_eq!(sim.core.failed_rounds(), 0, "a keep-alive round proves the new connection");
    let t0 = sim.now;
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.run_for(secs(5));
    let first = sim.events.iter().find_map(|(t, e)| match e {
        Event::Backoff { wait, failures } if *t >= t0 => Some((*wait, *failures)),
        _ => None,
    });
    let (wait, failures) = first.expect("a back-off round");
    assert_eq!(failures, 1);
    assert!(wait <= secs(2), "back to the base window: {wait}");
}

#[test]
fn reconnecting_to_the_backup_is_not_a_second_failover() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.run_for(secs(2));
    sim.drop_connections(Server::Backup, crate::engine::TransportError::PeerClosed);
    sim.run_for(secs(10));
    assert!(all_registered_on(&sim, Server::Backup));
    assert_eq!(sim.count_events(|e| matches!(e, Event::FlowUp { server: Server::Backup })), 2);
    assert_eq!(sim.count_events(|e| matches!(e, Event::FailedOver)), 1);
}

#[test]
fn probing_starts_one_interval_after_failover_and_stops_with_the_backup() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Silent);
    sim.drop_connections(Server::Primary, crate::engine::TransportError::Reset);
    sim.run_for(secs(1));
    let up = sim
        .first_event_after(Instant::from_millis(1000), |e| matches!(e, Event::FlowUp { server: Server::Backup }))
        .unwrap();
    sim.run_for(secs(5));
    // The silent primary accepts the probe connection and never answers its OPTIONS.
    let probes: Vec<_> = sim.core.connections().filter(|(_, p, _)| *p == crate::engine::ConnPurpose::Probe).collect();
    assert_eq!(probes.len(), 1, "one probe in flight");
    let probe_at = sim.sent_requests("OPTIONS").first().map(|(t, _, _)| *t).unwrap();
    assert!(probe_at.saturating_since(up) >= secs(5), "the first probe waits one interval");
    sim.drop_connections(Server::Backup, crate::engine::TransportError::Reset);
    sim.run_for(Duration::from_millis(15));
    assert_eq!(
        sim.core.connections().filter(|(_, p, _)| *p == crate::engine::ConnPurpose::Probe).count(),
        0,
        "the probe goes with the backup"
    );
}

#[test]
fn shutdown_against_a_silent_server_ends_at_the_transaction_timer() {
    let mut c = cfg(1);
    c.keepalive_interval = secs(2);
    let mut sim = started(c);
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Silent);
    let t0 = sim.now;
    sim.shutdown(secs(10));
    assert!(sim.core.is_closed());
    let done = sim.first_event_after(t0, |e| matches!(e, Event::ShutdownComplete)).unwrap();
    assert_eq!(done.saturating_since(t0), secs(4));
    assert_clean(&sim);
}

#[test]
fn later_calls_carry_the_proxy_credentials_at_once() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let first = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    sim.hang_up(first);
    sim.run_for(secs(1));
    assert_eq!(sim.sent_requests("INVITE").len(), 2, "the first call is challenged");
    let second = sim.place_call(AccountId(0), "2001").unwrap();
    sim.run_for(secs(1));
    let invites = sim.sent_requests("INVITE");
    assert_eq!(invites.len(), 3, "the second call is not: one INVITE");
    let auth = invites[2].2.header("Proxy-Authorization").unwrap().to_owned();
    assert!(auth.contains("nc=00000002"), "{auth}");
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallOutcome { call: second, outcome: CallOutcome::Answered }));
    // Another server does not know the nonce: it challenges once more, and the call goes on.
    sim.hang_up(second);
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.run_for(secs(2));
    let third = sim.place_call(AccountId(0), "2002").unwrap();
    sim.run_for(secs(1));
    assert_eq!(sim.sent_requests("INVITE").len(), 5);
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallOutcome { call: third, outcome: CallOutcome::Answered }));
    assert_clean(&sim);
}
