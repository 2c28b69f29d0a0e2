//! Calls on real TLS sockets: over the persistent connection, and during an outage.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod runtime_support;

use runtime_support::{Lab, Relay, watchdog};
use sip_ptls::config::{AccountConfig, Config, ServerAddr};
use sip_ptls::ids::{AccountId, Server};
use sip_ptls::time::Duration as CoreDuration;
use sip_ptls::{CallFailure, CallOutcome, EndReason, Event};
use std::time::Duration;

/// A phone with one line, `index` into the test users.
fn one_line(mut config: Config, index: usize) -> Config {
    let (u, p) = runtime_support::USERS[index];
    config.accounts = vec![AccountConfig::new(u, p)];
    config
}

#[test]
fn a_call_between_two_phones_reuses_each_persistent_connection() {
    let _w = watchdog("call between phones", Duration::from_secs(60));
    let lab = Lab::new();
    let primary = lab.registrar();
    let mut caller = lab.phone(one_line(lab.config(&primary, None), 0));
    let mut callee = lab.phone(one_line(lab.config(&primary, None), 1));
    caller.wait("caller registered", Duration::from_secs(10), |e| matches!(e, Event::Registered { .. }));
    callee.wait("callee registered", Duration::from_secs(10), |e| matches!(e, Event::Registered { .. }));
    assert_eq!(primary.stats().accepted, 2);
    let id = caller.handle.place_call_blocking(AccountId(0), "1002", b"v=0\r\n".to_vec()).expect("place");
    callee.wait("the incoming call", Duration::from_secs(10), |e| matches!(e, Event::IncomingCall { .. }));
    let (_, outcome) = caller.wait(
        "the outcome",
        Duration::from_secs(10),
        |e| matches!(e, Event::CallOutcome { call, .. } if *call == id),
    );
    assert_eq!(outcome, Event::CallOutcome { call: id, outcome: CallOutcome::Answered });
    caller.handle.hang_up_blocking(id).expect("hang up");
    callee.wait("the remote hang-up", Duration::from_secs(10), |e| {
        matches!(e, Event::CallEnded { reason: EndReason::RemoteHangup, .. })
    });
    let stats = primary.stats();
    assert_eq!(stats.accepted, 2, "no connection was opened for the call");
    assert!(stats.invites >= 2, "INVITE, challenged, then with credentials: {stats:?}");
}

#[test]
fn a_call_from_line_1_to_line_2_of_one_phone_goes_over_its_one_connection() {
    let _w = watchdog("call between lines", Duration::from_secs(60));
    let lab = Lab::new();
    let primary = lab.registrar();
    let mut phone = lab.phone(lab.config(&primary, None));
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    let (id, outcome) = phone.call(AccountId(0), "1002", Duration::from_secs(10));
    assert_eq!(outcome, Event::CallOutcome { call: id, outcome: CallOutcome::Answered }, "{}", phone.history());
    assert_eq!(
        phone.count(std::time::Instant::now() - Duration::from_secs(60), |e| {
            matches!(e, Event::IncomingCall { account: AccountId(1), .. })
        }),
        1
    );
    assert_eq!(primary.stats().accepted, 1);
}

#[test]
fn a_call_placed_during_an_outage_goes_out_after_recovery() {
    let _w = watchdog("call after recovery", Duration::from_secs(60));
    let lab = Lab::new();
    let primary = lab.registrar();
    let mut callee = lab.phone(one_line(lab.config(&primary, None), 1));
    callee.wait("callee registered", Duration::from_secs(10), |e| matches!(e, Event::Registered { .. }));
    // The caller reaches the registrar through a relay, so that only its path breaks.
    let relay = Relay::start(primary.addr());
    let mut config = one_line(lab.config(&primary, None), 0);
    config.proxy = Some(ServerAddr::new("127.0.0.1", relay.addr.port()));
    let mut caller = lab.phone(config);
    caller.wait("caller registered", Duration::from_secs(10), |e| matches!(e, Event::Registered { .. }));
    relay.cut();
    caller.wait("the flow lost", Duration::from_secs(10), |e| matches!(e, Event::FlowLost { .. }));
    let id =
        caller.handle.place_call_blocking(AccountId(0), "1002", Vec::new()).expect("a call is accepted while down");
    caller.idle(Duration::from_millis(500));
    assert_eq!(caller.status().queued_calls, 1, "the call waits for the connection");
    relay.restore();
    caller.wait("caller re-registered", Duration::from_secs(10), |e| matches!(e, Event::Registered { .. }));
    callee.wait("the incoming call", Duration::from_secs(10), |e| matches!(e, Event::IncomingCall { .. }));
    let (_, outcome) = caller.wait(
        "the outcome",
        Duration::from_secs(10),
        |e| matches!(e, Event::CallOutcome { call, .. } if *call == id),
    );
    assert_eq!(outcome, Event::CallOutcome { call: id, outcome: CallOutcome::Answered }, "{}", caller.history());
}

#[test]
fn a_call_placed_during_an_outage_fails_at_its_deadline() {
    let _w = watchdog("call deadline", Duration::from_secs(60));
    let lab = Lab::new();
    let primary = lab.registrar();
    let mut config = lab.config(&primary, None);
    config.call_setup_timeout = CoreDuration::from_secs(2);
    let mut phone = lab.phone(config);
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    primary.kill();
    phone.wait("the flow lost", Duration::from_secs(10), |e| matches!(e, Event::FlowLost { .. }));
    let placed = std::time::Instant::now();
    let id = phone.handle.place_call_blocking(AccountId(0), "1002", Vec::new()).expect("accepted while down");
    let (at, outcome) = phone.wait(
        "the outcome",
        Duration::from_secs(10),
        |e| matches!(e, Event::CallOutcome { call, .. } if *call == id),
    );
    assert_eq!(outcome, Event::CallOutcome { call: id, outcome: CallOutcome::Failed(CallFailure::Deadline) });
    let waited = at.duration_since(placed);
    assert!(waited >= Duration::from_millis(1900) && waited < Duration::from_secs(5), "failed after {waited:?}");
}
