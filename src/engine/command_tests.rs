//! Scenario tests of the application's call commands and of what they put on the wire:
//! targets refused or kept as given, the SDP carried only when there is one, answers and
//! rejections of incoming calls, a CANCEL that waits for its 487, a BYE held through an
//! outage, queued calls of a line that is refused or only failing for now, a shutdown
//! that ends as soon as its last de-REGISTER is answered, a 100 Trying that is no
//! progress, a 300 that is a rejection, and a challenge to a call already hung up.
//! Mutation testing found each of these unchecked (docs/mutation-testing.md).

use crate::engine::{CallFailure, CallOutcome, CommandError, EndReason, Event, RegState};
use crate::ids::{AccountId, CallId, ConnId, Server};
use crate::sim::{ServerMode, Sim};
use crate::sip::{Message, StartLine};
use crate::time::Duration;

use super::super::tests_support::{assert_clean, cfg, secs, started};

pub(super) fn request_uri(m: &Message) -> String {
    match &m.start {
        StartLine::Request { uri, .. } => uri.clone(),
        StartLine::Response { .. } => String::new(),
    }
}

/// The responses the core sent for the dialog `call_id`.
pub(super) fn responses(sim: &Sim, call_id: &str) -> Vec<Message> {
    sim.sent
        .iter()
        .filter_map(|(_, _, d)| Message::parse(d).ok())
        .filter(|m| m.status().is_some() && m.call_id() == Some(call_id))
        .collect()
}

/// A new INVITE from the proxy to line `user` on `conn`, and the call it rings.
pub(super) fn incoming(sim: &mut Sim, conn: ConnId, user: &str, call_id: &str) -> CallId {
    incoming_invite(sim, conn, user, user, call_id).expect("the INVITE rings a call")
}

/// A new INVITE on `conn` whose Request-URI names `uri_user` and whose To names
/// `to_user`, and the call it rings, if it rings one.
pub(super) fn incoming_invite(
    sim: &mut Sim,
    conn: ConnId,
    uri_user: &str,
    to_user: &str,
    call_id: &str,
) -> Option<CallId> {
    let invite = format!(
        "INVITE sips:{uri_user}@127.0.0.1:40001 SIP/2.0\r\nVia: SIP/2.0/TLS primary.test;branch=z9hG4bK{call_id}\r\n\
         From: <sips:3000@primary.test>;tag=far\r\nTo: <sips:{to_user}@primary.test>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\nContact: <sips:3000@primary.test>\r\nContent-Length: 0\r\n\r\n"
    );
    let before = sim.events.len();
    sim.inject(conn, invite.into_bytes());
    sim.run_for(Duration::from_millis(100));
    sim.events[before..]
        .iter()
        .find_map(|(_, e)| if let Event::IncomingCall { call, .. } = e { Some(*call) } else { None })
}

#[test]
fn targets_that_would_break_the_request_line_are_refused() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    for bad in ["", "a b", "2000\t", "20\r\n00", "<sips:2000@x>", "\"2000\"", "2000>", "20\u{7f}00"] {
        let r = sim.core.place_call(sim.now, AccountId(0), bad, Vec::new());
        assert_eq!(r, Err(CommandError::InvalidTarget(bad.to_owned())), "{bad:?}");
    }
    for good in ["2000", "alice@example.com", "sip:bob@example.com", "sips:carol@example.com;transport=tls"] {
        assert!(sim.core.place_call(sim.now, AccountId(0), good, Vec::new()).is_ok(), "{good:?}");
    }
}

#[test]
fn a_uri_target_is_the_request_uri_as_given_and_others_get_the_scheme_and_domain() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    for target in ["sip:bob@example.com", "sips:carol@example.com", "dave@example.com", "2000"] {
        sim.place_call(AccountId(0), target).unwrap();
    }
    sim.run_for(secs(1));
    // Each INVITE is challenged once and sent again: the set of request URIs.
    let uris: std::collections::BTreeSet<String> =
        sim.sent_requests("INVITE").iter().map(|(_, _, m)| request_uri(m)).collect();
    let want = ["sip:bob@example.com", "sips:carol@example.com", "sips:dave@example.com", "sips:2000@primary.test"];
    assert_eq!(uris, want.into_iter().map(str::to_owned).collect());
    assert_clean(&sim);
}

#[test]
fn an_invite_carries_a_body_only_when_the_application_gave_sdp() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    sim.place_call(AccountId(0), "2000").unwrap();
    sim.core.place_call(sim.now, AccountId(0), "2001", Vec::new()).unwrap();
    sim.drain();
    sim.run_for(secs(1));
    let invites = sim.sent_requests("INVITE");
    let with = invites.iter().find(|(_, _, m)| request_uri(m).contains("2000")).unwrap();
    assert_eq!(with.2.body, b"v=0\r\n");
    assert_eq!(with.2.header("Content-Type"), Some("application/sdp"));
    let without = invites.iter().find(|(_, _, m)| request_uri(m).contains("2001")).unwrap();
    assert!(without.2.body.is_empty());
    assert_eq!(without.2.header("Content-Type"), None);
}

#[test]
fn an_answer_carries_the_sdp_it_was_given_and_no_body_without_one() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let conn = sim.open_connections()[0];
    let with = incoming(&mut sim, conn, "1001", "in-sdp");
    sim.core.answer(sim.now, with, b"v=0\r\n".to_vec()).unwrap();
    let without = incoming(&mut sim, conn, "1001", "in-nosdp");
    sim.core.answer(sim.now, without, Vec::new()).unwrap();
    sim.drain();
    let ok = responses(&sim, "in-sdp").into_iter().find(|m| m.status() == Some(200)).unwrap();
    assert_eq!(ok.body, b"v=0\r\n");
    assert_eq!(ok.header("Content-Type"), Some("application/sdp"));
    let ok = responses(&sim, "in-nosdp").into_iter().find(|m| m.status() == Some(200)).unwrap();
    assert!(ok.body.is_empty());
    assert_eq!(ok.header("Content-Type"), None);
}

#[test]
fn a_rejection_sends_its_status_or_603_and_ends_the_call() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let conn = sim.open_connections()[0];
    for (call_id, asked, sent) in
        [("in-486", 486, 486), ("in-200", 200, 603), ("in-302", 302, 603), ("in-700", 700, 603)]
    {
        let call = incoming(&mut sim, conn, "1001", call_id);
        sim.core.reject(sim.now, call, asked).unwrap();
        sim.drain();
        let finals: Vec<u16> =
            responses(&sim, call_id).iter().filter_map(Message::status).filter(|s| *s >= 200).collect();
        assert_eq!(finals, [sent], "reject({asked})");
        assert!(sim.events.iter().any(|(_, e)| *e == Event::CallEnded { call, reason: EndReason::Rejected }));
        assert_eq!(sim.core.reject(sim.now, call, 486), Err(CommandError::UnknownCall(call)), "only once");
    }
}

/// A CANCEL is a transaction of its own: the call stays until the 487 (or twice the
/// transaction timeout), so that the 487 is acknowledged.
#[test]
fn a_cancel_waits_for_the_487_and_acknowledges_it() {
    let mut sim = started(cfg(1));
    sim.server(Server::Primary).behaviour.invite_status = None;
    sim.run_for(secs(1));
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    sim.hang_up(call);
    assert_eq!(sim.core.live_calls(), 1, "waiting for the 487");
    sim.run_for(Duration::from_millis(5));
    assert_eq!(sim.core.live_calls(), 1, "the 487 is two latencies away");
    sim.run_for(secs(1));
    // The INVITE was challenged (407) and sent again with credentials: the 487 ends that one.
    let invites = sim.sent_requests("INVITE");
    let cseq = invites.last().and_then(|(_, _, m)| m.cseq()).map(|(n, _)| n).unwrap();
    let acks = sim.sent_requests("ACK");
    assert_eq!(acks.len(), invites.len(), "every final answer acknowledged");
    assert!(acks.iter().any(|(_, _, m)| m.cseq() == Some((cseq, "ACK"))), "the 487 acknowledged");
    assert_eq!(sim.core.live_calls(), 0);
    assert_clean(&sim);
}

/// A hang-up while the connection is down is held, and its BYE goes out on the next
/// connection once the line is registered there again.
#[test]
fn a_hang_up_during_an_outage_sends_its_bye_after_recovery() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallOutcome { call, outcome: CallOutcome::Answered }));
    let call_id = sim.sent_requests("INVITE")[0].2.call_id().unwrap().to_owned();
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.set_mode(Server::Backup, ServerMode::Refusing);
    sim.run_for(secs(2));
    sim.hang_up(call);
    sim.run_for(secs(5));
    assert!(sim.sent_requests("BYE").is_empty(), "no connection to send it on");
    assert_eq!(sim.core.live_calls(), 1, "the BYE is pending");
    sim.set_mode(Server::Primary, ServerMode::Up);
    sim.run_for(secs(30));
    let byes = sim.sent_requests("BYE");
    assert_eq!(byes.len(), 1, "sent once, after recovery");
    assert_eq!(byes[0].2.call_id(), Some(call_id.as_str()));
    let registered =
        sim.events.iter().filter(|(_, e)| matches!(e, Event::Registered { .. })).map(|(t, _)| *t).max().unwrap();
    assert!(byes[0].0 >= registered, "after the line is registered again");
    assert_eq!(sim.core.live_calls(), 0);
    assert_clean(&sim);
}

/// A call placed before the line's first registration answer: refused lines fail it at
/// once, a temporary failure keeps it queued for the next attempt.
#[test]
fn a_queued_call_fails_when_its_line_is_refused_and_waits_when_it_fails_for_now() {
    let mut sim = Sim::new(cfg(1));
    sim.server(Server::Primary).behaviour.register_status = Some(403);
    sim.start();
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    assert_eq!(sim.core.registration(AccountId(0)), Some(RegState::Rejected));
    assert!(
        sim.events
            .iter()
            .any(|(_, e)| *e
                == Event::CallOutcome { call, outcome: CallOutcome::Failed(CallFailure::AccountUnavailable) })
    );
    assert_eq!(sim.core.live_calls(), 0);

    let mut sim = Sim::new(cfg(1));
    sim.server(Server::Primary).behaviour.register_status = Some(503);
    sim.start();
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    assert_eq!(sim.core.queued_calls(), 1, "a 503 is not a refusal: the call waits");
    assert_eq!(sim.monitor.outcome_count(), 0);
    sim.run_for(secs(60));
    assert!(
        sim.events
            .iter()
            .any(|(_, e)| *e == Event::CallOutcome { call, outcome: CallOutcome::Failed(CallFailure::Deadline) })
    );
}

/// Shutdown ends when the last de-REGISTER is answered, not at its deadline.
#[test]
fn shutdown_completes_as_soon_as_the_last_deregister_is_answered() {
    let mut sim = started(cfg(2));
    sim.run_for(secs(1));
    let t0 = sim.now;
    sim.shutdown(secs(10));
    let done = sim.first_event_after(t0, |e| *e == Event::ShutdownComplete).expect("shut down");
    assert!(
        done.saturating_since(t0) <= Duration::from_millis(100),
        "closed {:?} after the request",
        done.saturating_since(t0)
    );
    assert_clean(&sim);
}

/// Decisions wait for no input: when a timer ends the last call that pinned the phone to
/// the backup (an incoming call nobody answered), failback starts at that instant, not at
/// the next answer from the network.
#[test]
fn a_timer_that_ends_the_pinning_call_starts_failback_at_once() {
    let mut c = cfg(1);
    c.ringing_timeout = secs(60);
    let mut sim = started(c);
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    sim.run_for(secs(5));
    assert_eq!(sim.core.active_server(), Some(Server::Backup));
    let conn = sim.open_connections().into_iter().find(|c| c.server == Server::Backup).unwrap();
    let call = incoming(&mut sim, conn, "1001", "in-ring");
    sim.set_mode(Server::Primary, ServerMode::Up);
    sim.run_for(secs(90));
    let ended = sim
        .first_event_after(crate::time::Instant::ZERO, |e| {
            *e == Event::CallEnded { call, reason: EndReason::Unanswered }
        })
        .expect("the ringing deadline ends the call");
    let failing_back = sim.first_event_after(crate::time::Instant::ZERO, |e| *e == Event::FailingBack).unwrap();
    assert_eq!(failing_back, ended, "failback waited for the ringing call, and no longer");
    assert_clean(&sim);
}

/// The outcomes announced for `call`.
pub(super) fn outcomes(sim: &Sim, call: CallId) -> Vec<CallOutcome> {
    sim.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::CallOutcome { call: c, outcome } if *c == call => Some(outcome.clone()),
            _ => None,
        })
        .collect()
}

/// A 100 Trying says nothing to the application; a 180 Ringing is progress.
#[test]
fn a_100_trying_is_not_progress_and_a_180_ringing_is() {
    let mut sim = started(cfg(1));
    sim.server(Server::Primary).behaviour.invite_status = None;
    sim.run_for(secs(1));
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    let progress: Vec<u16> = sim
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::CallProgress { call: c, status } if *c == call => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(progress, [180], "the server sent 100 then 180");
}

/// 300 Multiple Choices is a final failure like any 3xx: acknowledged, the call rejected,
/// no dialog.
#[test]
fn a_300_answer_rejects_the_call_and_makes_no_dialog() {
    let mut sim = started(cfg(1));
    sim.server(Server::Primary).behaviour.invite_status = Some(300);
    sim.run_for(secs(1));
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    assert_eq!(outcomes(&sim, call), [CallOutcome::Rejected { status: 300 }]);
    assert_eq!(sim.core.live_calls(), 0);
    assert!(sim.sent_requests("BYE").is_empty(), "no dialog to end");
    assert_clean(&sim);
}

/// A call hung up before any answer, whose INVITE is then challenged, ends there: the
/// challenge is acknowledged and no INVITE with credentials follows.
#[test]
fn a_challenge_after_a_hang_up_ends_the_call_without_another_invite() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.hang_up(call);
    sim.run_for(secs(1));
    assert_eq!(sim.sent_requests("INVITE").len(), 1, "no INVITE answers the 407 of a call hung up");
    assert_eq!(sim.sent_requests("ACK").len(), 1, "the 407 acknowledged");
    assert_eq!(outcomes(&sim, call), [CallOutcome::Failed(CallFailure::Cancelled)]);
    assert_eq!(sim.core.live_calls(), 0);
    assert_clean(&sim);
}
