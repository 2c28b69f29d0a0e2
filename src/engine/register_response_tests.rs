//! Scenario tests of how the phone takes a registrar's answers, which mutation testing
//! found unchecked (docs/mutation-testing.md, `registration.rs`): a 423 Interval Too
//! Brief raises the period to its Min-Expires (never lowers it, never follows a Min-Expires
//! of 0) at most twice in a row; a 408 is a timeout, retried after the timeout retry timer;
//! a 403 to a de-REGISTER is no rejection; a challenge that repeats the nonce just answered
//! means the credentials failed unless it says the nonce was stale; a first 2xx proves the
//! persistent connection; a lost connection leaves its accounts unregistered with no timer
//! of theirs, a rejected one still rejected, and a rejection whose retry time is the very
//! instant a new flow comes up is over; a finished shutdown forgets a rejection; and in TLS
//! mode a line is registering from the moment its exchange's connection is asked for.

use crate::config::TransportMode;
use crate::engine::{Event, RegError, RegState, TimerKey};
use crate::ids::{AccountId, Server};
use crate::sim::{ServerMode, Sim};
use crate::sip::Message;
use crate::time::Duration;

use super::super::tests_support::{assert_clean, cfg, secs, started};

/// Runs `sim` in steps of a millisecond until the phone has sent `n` REGISTERs.
fn run_until_registers(sim: &mut Sim, n: usize) {
    let deadline = sim.now + secs(30);
    while sim.sent_requests("REGISTER").len() < n {
        sim.run_for(Duration::from_millis(1));
        assert!(sim.now < deadline, "REGISTER {n} never went out");
    }
}

/// The `Expires` header of every REGISTER the phone sent, in order.
fn asked_expires(sim: &Sim) -> Vec<Option<String>> {
    sim.sent_requests("REGISTER").iter().map(|(_, _, m)| m.header("Expires").map(str::to_owned)).collect()
}

/// Every `RegistrationFailed` of account 0: the reason and the announced retry.
fn failures(sim: &Sim) -> Vec<(RegError, Option<Duration>)> {
    sim.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::RegistrationFailed { account: AccountId(0), reason, retry_in } => Some((reason.clone(), *retry_in)),
            _ => None,
        })
        .collect()
}

/// A phone with one line asking for `period` seconds, whose primary answers its first
/// REGISTER `423` with `Min-Expires: min` and then behaves (challenge, then 200).
fn answered_423_once(period: u32, min: &str) -> Sim {
    let mut c = cfg(1);
    c.registration_period = period;
    let mut sim = Sim::new(c);
    sim.server(Server::Primary).behaviour.register_status = Some(423);
    sim.server(Server::Primary).behaviour.register_headers = vec![("Min-Expires".into(), min.into())];
    sim.start();
    // The server computes its answer as the REGISTER arrives: the 423 is on its way.
    run_until_registers(&mut sim, 1);
    sim.server(Server::Primary).behaviour.register_status = None;
    sim.run_for(secs(1));
    sim
}

#[test]
fn a_423_raises_the_period_asked_to_its_min_expires() {
    let sim = answered_423_once(300, "600");
    let asked = asked_expires(&sim);
    assert_eq!(asked.first(), Some(&Some("300".to_owned())), "the configured period first: {asked:?}");
    assert!(asked.len() >= 2, "the 423 is answered by a new REGISTER: {asked:?}");
    assert!(asked[1..].iter().all(|e| e.as_deref() == Some("600")), "every later REGISTER asks Min-Expires: {asked:?}");
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Registered { server: Server::Primary }));
    assert!(
        sim.events.iter().any(|(_, e)| matches!(e, Event::Registered { expires: 600, .. })),
        "registered for the 600 s the registrar asked for"
    );
    assert!(failures(&sim).is_empty(), "a 423 with Min-Expires is a correction, not a failure: {:?}", failures(&sim));
    assert_clean(&sim);
}

#[test]
fn a_423_naming_less_than_the_period_does_not_shorten_it() {
    // A registrar's minimum below what the phone asks changes nothing: the phone never
    // asks less than its configured period.
    let sim = answered_423_once(300, "60");
    let asked = asked_expires(&sim);
    assert!(asked.len() >= 2, "the 423 is answered by a new REGISTER: {asked:?}");
    assert!(asked.iter().all(|e| e.as_deref() == Some("300")), "every REGISTER asks the period: {asked:?}");
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Registered { server: Server::Primary }));
    assert_clean(&sim);
}

#[test]
fn a_423_without_a_usable_min_expires_fails_at_once_and_one_with_is_followed_twice_in_a_row() {
    // `Min-Expires: 0` names no period to ask for: the registration fails at the first 423.
    let mut c = cfg(1);
    c.registration_period = 300;
    let mut sim = Sim::new(c.clone());
    sim.server(Server::Primary).behaviour.register_status = Some(423);
    sim.server(Server::Primary).behaviour.register_headers = vec![("Min-Expires".into(), "0".into())];
    sim.start();
    sim.run_for(secs(1));
    assert_eq!(sim.sent_requests("REGISTER").len(), 1, "no second REGISTER for a Min-Expires of 0");
    assert_eq!(failures(&sim), [(RegError::IntervalTooBrief(0), Some(secs(1800)))]);
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::RetryWait));
    assert_clean(&sim);

    // A registrar that answers 423 whatever is asked gets two corrections, then the line
    // waits for the retry timer.
    let mut sim = Sim::new(c);
    sim.server(Server::Primary).behaviour.register_status = Some(423);
    sim.server(Server::Primary).behaviour.register_headers = vec![("Min-Expires".into(), "600".into())];
    sim.start();
    sim.run_for(secs(1));
    assert_eq!(asked_expires(&sim), [Some("300".to_owned()), Some("600".to_owned()), Some("600".to_owned())]);
    assert_eq!(failures(&sim), [(RegError::IntervalTooBrief(600), Some(secs(1800)))]);
    assert_clean(&sim);
}

#[test]
fn a_408_is_a_timeout_retried_after_the_timeout_retry_timer() {
    let mut sim = Sim::new(cfg(1));
    sim.server(Server::Primary).behaviour.register_status = Some(408);
    sim.start();
    sim.run_for(secs(1));
    // `sip registration timeout retry timer` (120 s), not `sip registration retry timer`
    // (1800 s): a 408 is the registrar's own timeout.
    assert_eq!(failures(&sim), [(RegError::Timeout, Some(secs(120)))]);
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::RetryWait));
    let (failed_at, _) = *sim.events.iter().find(|(_, e)| matches!(e, Event::RegistrationFailed { .. })).unwrap();
    sim.server(Server::Primary).behaviour.register_status = None;
    sim.run_until(failed_at + secs(121));
    let retried = sim.sent_requests("REGISTER").into_iter().map(|(t, _, _)| t).find(|t| *t > failed_at);
    assert_eq!(retried, Some(failed_at + secs(120)), "retried after the timeout retry timer");
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Registered { server: Server::Primary }));
    assert_eq!(sim.count_events(|e| matches!(e, Event::FlowLost { .. })), 0, "a 408 does not kill the flow");
    assert_clean(&sim);
}

#[test]
fn a_403_to_a_de_register_is_no_rejection() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Registered { server: Server::Primary }));
    sim.server(Server::Primary).behaviour.register_status = Some(403);
    sim.shutdown(secs(10));
    assert!(sim.core.is_closed());
    // The de-REGISTER failed; nothing is retried, and no rejection is announced.
    assert_eq!(failures(&sim), [(RegError::Failed(403), None)]);
    assert_eq!(sim.count_events(|e| matches!(e, Event::Unregistered { .. })), 0);
    assert_clean(&sim);
}

/// A 401 to `register` offering `nonce`, flagged stale if `stale`.
fn challenge(register: &Message, nonce: &str, stale: bool) -> Vec<u8> {
    let mut r = Message::response(401, "Unauthorized");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if let Some(v) = register.header(name) {
            r.push_header(name, v.to_owned());
        }
    }
    let stale = if stale { ", stale=true" } else { "" };
    r.push_header("WWW-Authenticate", format!("Digest realm=\"sim\", nonce=\"{nonce}\", qop=\"auth\"{stale}"));
    r.to_bytes()
}

#[test]
fn a_challenge_repeating_the_answered_nonce_fails_the_credentials_unless_it_says_stale() {
    // The registrar is silent: every answer is the test's.
    let mut sim = Sim::new(cfg(1));
    sim.set_mode(Server::Primary, ServerMode::Silent);
    sim.start();
    run_until_registers(&mut sim, 1);
    let nonce_of = |m: &Message| m.header("Authorization").map(|v| v.contains("nonce=\"fixed\""));
    let (_, conn, first) = sim.sent_requests("REGISTER")[0].clone();
    assert_eq!(nonce_of(&first), None, "the first REGISTER carries no credentials");
    sim.inject(conn, challenge(&first, "fixed", false));
    run_until_registers(&mut sim, 2);
    let (_, _, second) = sim.sent_requests("REGISTER")[1].clone();
    assert_eq!(nonce_of(&second), Some(true), "the challenge is answered");
    // The same nonce again, but stale: the credentials were right, the nonce is answered again.
    sim.inject(conn, challenge(&second, "fixed", true));
    run_until_registers(&mut sim, 3);
    let (_, _, third) = sim.sent_requests("REGISTER")[2].clone();
    assert_eq!(nonce_of(&third), Some(true), "a stale challenge is answered again");
    assert!(failures(&sim).is_empty());
    // The same nonce refused again, not stale: the credentials are wrong.
    sim.inject(conn, challenge(&third, "fixed", false));
    sim.run_for(secs(1));
    assert_eq!(sim.sent_requests("REGISTER").len(), 3, "wrong credentials are not sent again");
    assert_eq!(failures(&sim), [(RegError::AuthenticationFailed, Some(secs(1800)))]);
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::RetryWait));
}

#[test]
fn a_first_registration_proves_the_persistent_connection_and_only_it() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Registered { server: Server::Primary }));
    assert!(sim.ping_times().is_empty(), "no keep-alive round yet");
    assert!(sim.core.decision_view().flow.proven, "the REGISTER's 2xx proves the flow");
    assert_clean(&sim);

    // TLS mode has no persistent connection: a registration proves none.
    let mut c = cfg(1);
    c.mode = TransportMode::PerCallTls;
    let mut sim = started(c);
    sim.run_for(secs(1));
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Registered { server: Server::Primary }));
    assert!(!sim.core.decision_view().flow.proven, "an exchange's connection is no flow");
    assert_clean(&sim);
}

/// The registration timers of the core.
fn registration_timers(sim: &Sim) -> Vec<TimerKey> {
    sim.core
        .decision_view()
        .timers
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| matches!(k, TimerKey::RegTx(_) | TimerKey::RegRefresh(_) | TimerKey::RegRetry(_)))
        .collect()
}

#[test]
fn a_lost_flow_leaves_its_accounts_unregistered_and_without_registration_timers() {
    let mut sim = started(cfg(2));
    sim.run_for(secs(1));
    assert_eq!(registration_timers(&sim), [TimerKey::RegRefresh(0), TimerKey::RegRefresh(1)], "refreshes armed");
    sim.set_mode(Server::Backup, ServerMode::Refusing);
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.count_events(|e| matches!(e, Event::RegistrationLost { .. })), 2);
    assert!(sim.count_events(|e| matches!(e, Event::Backoff { .. })) > 0, "both servers are down");
    for i in 0..2 {
        assert_eq!(sim.core.registration(AccountId(i)), Some(RegState::Unregistered), "account {i}");
    }
    assert_eq!(registration_timers(&sim), [], "no refresh of a binding that is gone");
    assert_clean(&sim);
}

#[test]
fn a_rejected_line_stays_rejected_while_the_flow_reconnects() {
    let mut c = cfg(1);
    c.backup_proxy = None;
    let mut sim = Sim::new(c);
    sim.server(Server::Primary).behaviour.register_status = Some(403);
    sim.start();
    sim.run_for(secs(1));
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Rejected));
    let lost = sim.now;
    sim.drop_connections(Server::Primary, crate::engine::TransportError::Reset);
    sim.run_for(Duration::from_millis(100));
    assert!(sim.first_event_after(lost, |e| matches!(e, Event::FlowLost { .. })).is_some());
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Rejected), "the rejection outlives the flow");
    sim.run_for(secs(10));
    let up = sim.first_event_after(lost, |e| *e == Event::FlowUp { server: Server::Primary });
    assert!(up.is_some(), "the flow is back");
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Rejected));
    assert_eq!(sim.sent_requests("REGISTER").len(), 1, "not tried again before the retry timer");
    assert_clean(&sim);
}

#[test]
fn a_finished_shutdown_forgets_a_rejection() {
    let mut sim = Sim::new(cfg(1));
    sim.server(Server::Primary).behaviour.register_status = Some(403);
    sim.start();
    sim.run_for(secs(1));
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Rejected));
    sim.shutdown(secs(10));
    assert!(sim.core.is_closed());
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Unregistered), "a closed phone registers nothing");
    assert_clean(&sim);
}

#[test]
fn tls_mode_registers_from_the_moment_the_exchange_connection_is_asked_for_and_a_rejected_line_stays_rejected() {
    let mut c = cfg(1);
    c.mode = TransportMode::PerCallTls;
    let mut sim = Sim::new(c);
    sim.server(Server::Primary).behaviour.register_status = Some(403);
    sim.start();
    assert_eq!(sim.open_connections().len(), 1, "the exchange's connection is opening");
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Registering));
    sim.run_for(secs(1));
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Rejected));
    let (rejected_at, _) = *sim.events.iter().find(|(_, e)| matches!(e, Event::RegistrationFailed { .. })).unwrap();
    // The retry timer opens a new exchange; the line is still rejected until it is answered.
    sim.run_until(rejected_at + secs(1800));
    assert_eq!(sim.open_connections().len(), 1, "the retry's connection is opening");
    assert_eq!(sim.sent_requests("REGISTER").len(), 1);
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Rejected));
    sim.server(Server::Primary).behaviour.register_status = None;
    sim.run_for(secs(1));
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Registered { server: Server::Primary }));
    assert_clean(&sim);
}

#[test]
fn a_rejection_whose_retry_time_is_the_instant_the_flow_comes_up_is_over() {
    // `sip registration retry timer` after a 403 the rejection is over: a flow that comes
    // up at that very instant registers the line as a new connection does, at once and
    // outside the pacing budget of answer-driven REGISTERs.
    let mut c = cfg(1);
    c.backup_proxy = None;
    c.registration_retry = 30;
    // The default keep-alive (120 s): no ping, so no random draw, before the reconnection.
    c.keepalive_interval = Duration::ZERO;
    let mut sim = Sim::new(c);
    sim.server(Server::Primary).behaviour.register_status = Some(403);
    sim.start();
    sim.run_for(secs(1));
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Rejected));
    let (rejected_at, _) = *sim.events.iter().find(|(_, e)| matches!(e, Event::RegistrationFailed { .. })).unwrap();
    let until = rejected_at + secs(30);
    // From now on the registrar accepts, for 6 s at a time: a refresh every 3 s.
    sim.server(Server::Primary).behaviour.register_status = None;
    sim.server(Server::Primary).behaviour.grant_expires = Some(6);
    // When to reset the connection so that the reconnection (after a back-off drawn by
    // the core) comes up exactly at `until`: found on copies of the world.
    let mut delay = secs(2);
    let mut drop_at = None;
    for _ in 0..10 {
        let at = until - delay;
        let mut probe = sim.clone();
        probe.run_until(at);
        probe.drop_connections(Server::Primary, crate::engine::TransportError::Reset);
        probe.run_for(secs(10));
        let up = probe.first_event_after(at, |e| *e == Event::FlowUp { server: Server::Primary }).expect("reconnects");
        if up == until {
            drop_at = Some(at);
            break;
        }
        delay = up.saturating_since(at);
    }
    let drop_at = drop_at.expect("a reset time that brings the flow back at the retry time");
    sim.run_until(drop_at);
    sim.drop_connections(Server::Primary, crate::engine::TransportError::Reset);
    sim.run_until(until);
    assert_eq!(sim.first_event_after(drop_at, |e| *e == Event::FlowUp { server: Server::Primary }), Some(until));
    let (sent, _, _) = sim.sent_requests("REGISTER").pop().unwrap();
    assert_eq!(sent, until, "the line is registered on the new flow at once");
    assert!(!sim.core.decision_view().accounts[0].round_done, "the new round has no outcome yet");
    // Registered, then refreshed every 3 s: the new connection's REGISTER is not counted
    // among the answer-driven ones, so the fifth of those (the fourth refresh) is on time.
    sim.run_until(until + secs(13));
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Registered { server: Server::Primary }));
    let registers: Vec<_> =
        sim.sent_requests("REGISTER").into_iter().map(|(t, _, _)| t).filter(|t| *t >= until).collect();
    assert_eq!(registers.len(), 6, "REGISTER, its challenge's answer and four refreshes: {registers:?}");
    assert_clean(&sim);
}
