//! Scenario tests of the dialogs themselves: which call a request from the far end
//! belongs to (CANCEL by Call-ID and From tag, the others by Call-ID and our To tag),
//! what an ACK, a re-INVITE, a CANCEL or a BYE does in each state, which line an INVITE
//! rings, and on our side the answers to a CANCEL, a BYE and a ringing INVITE that arrive
//! out of the usual order. Mutation testing found each of these unchecked
//! (docs/mutation-testing.md, shard 2).

use crate::engine::message::{response_to, tag_of};
use crate::engine::{CallFailure, CallOutcome, EndReason, Event};
use crate::ids::{AccountId, CallId, ConnId, Server};
use crate::sim::Sim;
use crate::sip::{Message, StartLine};
use crate::time::{Duration, Instant};

use super::super::tests_support::{assert_clean, cfg, secs, started};
use super::command_tests::{incoming, incoming_invite, outcomes, request_uri, responses};

fn reason_phrase(m: &Message) -> &str {
    match &m.start {
        StartLine::Response { reason, .. } => reason,
        StartLine::Request { .. } => "",
    }
}

/// A request of the far end inside the incoming dialog `call_id`, whose To carries
/// `to_tag` (ours, or another to test the matching).
fn far_request(method: &str, call_id: &str, from_tag: &str, to_tag: Option<&str>, cseq: u32) -> Vec<u8> {
    let to = match to_tag {
        Some(t) => format!("<sips:1001@primary.test>;tag={t}"),
        None => "<sips:1001@primary.test>".to_owned(),
    };
    // A CANCEL shares its INVITE's branch; every other request has a branch of its own.
    let branch = if method == "CANCEL" { call_id.to_owned() } else { format!("{call_id}{method}{cseq}") };
    format!(
        "{method} sips:1001@127.0.0.1:40001 SIP/2.0\r\nVia: SIP/2.0/TLS primary.test;branch=z9hG4bK{branch}\r\n\
         From: <sips:3000@primary.test>;tag={from_tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The statuses the core sent for `call_id` to requests of `method`.
fn statuses_for(sim: &Sim, call_id: &str, method: &str) -> Vec<u16> {
    responses(sim, call_id)
        .iter()
        .filter(|m| m.cseq().is_some_and(|(_, me)| me == method))
        .filter_map(Message::status)
        .collect()
}

/// Our tag in the incoming dialog `call_id`, from the 180 we sent.
fn our_tag(sim: &Sim, call_id: &str) -> String {
    responses(sim, call_id).iter().find_map(|m| tag_of(m, "To")).expect("a 180 with our tag")
}

fn ended(sim: &Sim, call: CallId) -> Vec<EndReason> {
    sim.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::CallEnded { call: c, reason } if *c == call => Some(*reason),
            _ => None,
        })
        .collect()
}

/// A phone registered on the primary, and its connection.
fn registered() -> (Sim, ConnId) {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let conn = sim.open_connections()[0];
    (sim, conn)
}

/// An incoming call on line 1 answered (with `sdp`) and, if `acked`, confirmed by an
/// ACK: the call and our tag.
fn answered(sim: &mut Sim, conn: ConnId, call_id: &str, sdp: &[u8], acked: bool) -> (CallId, String) {
    let call = incoming(sim, conn, "1001", call_id);
    sim.core.answer(sim.now, call, sdp.to_vec()).unwrap();
    sim.drain();
    let tag = our_tag(sim, call_id);
    if acked {
        sim.inject(conn, far_request("ACK", call_id, "far", Some(&tag), 1));
        sim.run_for(Duration::from_millis(100));
    }
    (call, tag)
}

#[test]
fn a_refusal_gives_the_reason_phrase_of_its_status() {
    let (mut sim, conn) = registered();
    for (call_id, status, phrase) in [
        ("in-480", 480, "Temporarily Unavailable"),
        ("in-486", 486, "Busy Here"),
        ("in-603", 603, "Decline"),
        ("in-404", 404, "Rejected"),
    ] {
        let call = incoming(&mut sim, conn, "1001", call_id);
        sim.core.reject(sim.now, call, status).unwrap();
        sim.drain();
        let finals: Vec<(u16, String)> = responses(&sim, call_id)
            .iter()
            .filter(|m| m.status().is_some_and(|s| s >= 200))
            .map(|m| (m.status().unwrap_or(0), reason_phrase(m).to_owned()))
            .collect();
        assert_eq!(finals, [(status, phrase.to_owned())]);
    }
}

/// Two calls ring from the same caller tag; a CANCEL ends the one whose Call-ID and From
/// tag it carries, and no other. A CANCEL that matches no ringing call is answered 481.
#[test]
fn a_cancel_ends_only_the_ringing_call_it_names() {
    let (mut sim, conn) = registered();
    let first = incoming(&mut sim, conn, "1001", "in-first");
    let second = incoming(&mut sim, conn, "1001", "in-second");
    sim.inject(conn, far_request("CANCEL", "in-unknown", "far", None, 1));
    sim.inject(conn, far_request("CANCEL", "in-first", "other", None, 1));
    sim.run_for(Duration::from_millis(100));
    assert_eq!(statuses_for(&sim, "in-unknown", "CANCEL"), [481]);
    assert_eq!(statuses_for(&sim, "in-first", "CANCEL"), [481], "another caller's tag");
    assert_eq!(sim.core.live_calls(), 2);

    sim.inject(conn, far_request("CANCEL", "in-second", "far", None, 1));
    sim.run_for(Duration::from_millis(100));
    assert_eq!(statuses_for(&sim, "in-second", "CANCEL"), [200]);
    let terminated = responses(&sim, "in-second").into_iter().find(|m| m.status() == Some(487)).unwrap();
    assert_eq!(reason_phrase(&terminated), "Request Terminated");
    assert_eq!(ended(&sim, second), [EndReason::RemoteCancel]);
    assert!(ended(&sim, first).is_empty());

    // Answered, the first call can no longer be cancelled.
    sim.core.answer(sim.now, first, Vec::new()).unwrap();
    sim.drain();
    sim.inject(conn, far_request("CANCEL", "in-first", "far", None, 1));
    sim.run_for(Duration::from_millis(100));
    assert_eq!(statuses_for(&sim, "in-first", "CANCEL"), [481, 481]);
    assert!(ended(&sim, first).is_empty());
    assert_eq!(sim.core.live_calls(), 1);
    assert_clean(&sim);
}

/// The ACK confirms the answer, so the call outlives the ACK wait; an ACK gets no answer.
#[test]
fn an_ack_confirms_an_answered_call_and_is_not_answered() {
    let (mut sim, conn) = registered();
    let (call, _) = answered(&mut sim, conn, "in-ack", b"", true);
    sim.run_for(secs(40));
    assert!(ended(&sim, call).is_empty(), "the ACK wait is 32 s");
    assert!(sim.sent_requests("BYE").is_empty());
    assert!(statuses_for(&sim, "in-ack", "ACK").is_empty());
    assert_eq!(sim.core.live_calls(), 1);
    assert_clean(&sim);
}

/// A re-INVITE of a confirmed call is answered 200 with the session the call has (none
/// without SDP); one that arrives before our answer is acknowledged is refused with 491.
#[test]
fn a_reinvite_is_answered_with_the_calls_session_once_the_call_is_confirmed() {
    let (mut sim, conn) = registered();
    let (_, with_tag) = answered(&mut sim, conn, "in-re-sdp", b"v=0\r\n", false);
    sim.inject(conn, far_request("INVITE", "in-re-sdp", "far", Some(&with_tag), 2));
    sim.run_for(Duration::from_millis(100));
    assert_eq!(statuses_for(&sim, "in-re-sdp", "INVITE"), [180, 200, 491], "not confirmed yet");

    sim.inject(conn, far_request("ACK", "in-re-sdp", "far", Some(&with_tag), 1));
    sim.inject(conn, far_request("INVITE", "in-re-sdp", "far", Some(&with_tag), 3));
    let (_, without_tag) = answered(&mut sim, conn, "in-re-none", b"", true);
    sim.inject(conn, far_request("INVITE", "in-re-none", "far", Some(&without_tag), 2));
    sim.run_for(Duration::from_millis(100));
    let refresh = |call_id: &str, cseq: u32| {
        responses(&sim, call_id).into_iter().find(|m| m.cseq() == Some((cseq, "INVITE"))).unwrap()
    };
    let with = refresh("in-re-sdp", 3);
    assert_eq!(with.status(), Some(200));
    assert_eq!(with.body, b"v=0\r\n");
    assert_eq!(with.header("Content-Type"), Some("application/sdp"));
    assert!(with.header("Contact").is_some());
    let without = refresh("in-re-none", 2);
    assert_eq!(without.status(), Some(200));
    assert!(without.body.is_empty());
    assert_eq!(without.header("Content-Type"), None);
    assert_eq!(sim.core.live_calls(), 2);
}

/// A BYE with the call's Call-ID but another To tag is no BYE of this dialog.
#[test]
fn a_bye_must_carry_our_tag_to_end_the_call() {
    let (mut sim, conn) = registered();
    let (call, tag) = answered(&mut sim, conn, "in-bye", b"", true);
    sim.inject(conn, far_request("BYE", "in-bye", "far", Some("not-ours"), 2));
    sim.run_for(Duration::from_millis(100));
    assert_eq!(statuses_for(&sim, "in-bye", "BYE"), [481]);
    assert!(ended(&sim, call).is_empty());
    sim.inject(conn, far_request("BYE", "in-bye", "far", Some(&tag), 3));
    sim.run_for(Duration::from_millis(100));
    assert_eq!(statuses_for(&sim, "in-bye", "BYE"), [481, 200]);
    assert_eq!(ended(&sim, call), [EndReason::RemoteHangup]);
    assert_eq!(sim.core.live_calls(), 0);
}

/// A phone that is shutting down takes no new call.
#[test]
fn an_invite_during_shutdown_is_answered_480() {
    let (mut sim, conn) = registered();
    sim.core.shutdown(sim.now);
    sim.drain();
    assert_eq!(incoming_invite(&mut sim, conn, "1001", "1001", "in-late"), None);
    assert_eq!(statuses_for(&sim, "in-late", "INVITE"), [480]);
}

/// The line is the one the Request-URI names, or failing that the one the To names (a
/// call forwarded to the line keeps the original To).
#[test]
fn an_invite_rings_the_line_its_request_uri_or_its_to_names() {
    let mut sim = started(cfg(2));
    sim.run_for(secs(1));
    let conn = sim.open_connections()[0];
    for (call_id, uri_user, to_user) in [("in-uri", "1002", "reception"), ("in-to", "gateway", "1002")] {
        let before = sim.events.len();
        assert!(incoming_invite(&mut sim, conn, uri_user, to_user, call_id).is_some(), "{call_id}");
        let lines: Vec<AccountId> = sim.events[before..]
            .iter()
            .filter_map(|(_, e)| if let Event::IncomingCall { account, .. } = e { Some(*account) } else { None })
            .collect();
        assert_eq!(lines, [AccountId(1)], "{call_id}");
    }
    assert_eq!(incoming_invite(&mut sim, conn, "nobody", "nobody", "in-none"), None);
    assert_eq!(statuses_for(&sim, "in-none", "INVITE"), [404]);
}

/// A response from the far end to our request `req`, with the far end's tag.
fn answer_to(req: &Message, status: u16, reason: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut m = response_to(req, status, reason, (status > 100).then_some("uas"));
    for (name, value) in extra {
        m.push_header(name, *value);
    }
    m.to_bytes()
}

/// An outgoing call that rings (the primary never answers it): the call and the INVITE
/// that rings.
fn ringing_outgoing() -> (Sim, CallId, ConnId, Message) {
    let mut sim = started(cfg(1));
    sim.server(Server::Primary).behaviour.invite_status = None;
    sim.run_for(secs(1));
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    let (_, conn, invite) = sim.sent_requests("INVITE").pop().unwrap();
    (sim, call, conn, invite)
}

/// The no-answer limit runs from the first provisional answer: later ones do not extend it.
#[test]
fn the_no_answer_limit_runs_from_the_first_provisional_answer() {
    let (mut sim, call, conn, invite) = ringing_outgoing();
    let rang = sim.first_event_after(Instant::ZERO, |e| matches!(e, Event::CallProgress { .. })).unwrap();
    sim.run_for(secs(60));
    sim.inject(conn, answer_to(&invite, 183, "Session Progress", &[]));
    sim.run_for(secs(200));
    assert_eq!(outcomes(&sim, call), [CallOutcome::Failed(CallFailure::NoAnswer)]);
    let gave_up = sim.first_event_after(Instant::ZERO, |e| matches!(e, Event::CallOutcome { .. })).unwrap();
    assert_eq!(gave_up.saturating_since(rang), secs(180));
}

/// A 200 that crosses our CANCEL makes the dialog after all: it is acknowledged to its
/// Contact and ended with a BYE that follows its Record-Route set, reversed.
#[test]
fn an_answer_that_crosses_the_cancel_is_acknowledged_and_ended_with_a_bye() {
    let (mut sim, call, conn, invite) = ringing_outgoing();
    sim.hang_up(call);
    sim.inject(
        conn,
        answer_to(
            &invite,
            200,
            "OK",
            &[("Contact", "<sips:2000@far.test>"), ("Record-Route", "<sips:p1.test;lr>, <sips:p2.test;lr>")],
        ),
    );
    sim.run_for(secs(1));
    let acks = sim.sent_requests("ACK");
    assert!(acks.iter().any(|(_, _, m)| request_uri(m) == "sips:2000@far.test"), "the 2xx acknowledged");
    let byes = sim.sent_requests("BYE");
    assert_eq!(byes.len(), 1);
    let bye = &byes[0].2;
    assert_eq!(request_uri(bye), "sips:2000@far.test");
    assert_eq!(bye.header_values("Route"), ["<sips:p2.test;lr>", "<sips:p1.test;lr>"]);
    assert_eq!(tag_of(bye, "To").as_deref(), Some("uas"));
    assert_eq!(outcomes(&sim, call), [CallOutcome::Failed(CallFailure::Cancelled)]);
    assert_eq!(sim.core.live_calls(), 0);
}

/// After our CANCEL, a provisional answer changes nothing and the 487 ends the call with
/// its ACK and no BYE.
#[test]
fn after_the_cancel_a_provisional_changes_nothing_and_the_487_needs_no_bye() {
    let (mut sim, call, conn, invite) = ringing_outgoing();
    let acks_before = sim.sent_requests("ACK").len();
    sim.hang_up(call);
    sim.inject(conn, answer_to(&invite, 183, "Session Progress", &[]));
    sim.run_for(Duration::from_millis(15));
    assert_eq!(sim.sent_requests("ACK").len(), acks_before, "nothing answers a 183");
    assert_eq!(sim.core.live_calls(), 1, "the 487 is still to come");
    sim.run_for(secs(1));
    assert_eq!(sim.sent_requests("ACK").len(), acks_before + 1, "the 487 acknowledged");
    assert!(sim.sent_requests("BYE").is_empty());
    assert_eq!(sim.core.live_calls(), 0);
}

/// A 3xx after our CANCEL is a final failure like the 487: acknowledged, no BYE.
#[test]
fn after_the_cancel_a_redirect_is_acknowledged_and_needs_no_bye() {
    let (mut sim, call, conn, invite) = ringing_outgoing();
    sim.hang_up(call);
    sim.inject(conn, answer_to(&invite, 300, "Multiple Choices", &[("Contact", "<sips:2000@far.test>")]));
    sim.run_for(Duration::from_millis(15));
    assert!(sim.sent_requests("BYE").is_empty());
    assert_eq!(sim.core.live_calls(), 0, "the 300 ended the call");
}

/// A BYE holds the call until its own final answer: a 100 Trying, or a final answer to
/// another transaction on the same connection, does not end it.
#[test]
fn a_bye_holds_the_call_until_its_own_final_answer() {
    let mut sim = started(cfg(1));
    sim.server(Server::Primary).behaviour.invite_status = Some(200);
    sim.run_for(secs(1));
    let call = sim.place_call(AccountId(0), "2000").unwrap();
    sim.run_for(secs(1));
    assert_eq!(outcomes(&sim, call), [CallOutcome::Answered]);
    sim.hang_up(call);
    let (_, conn, bye) = sim.sent_requests("BYE").pop().unwrap();
    // The BYE follows the dialog the 200 made: its Contact, and the far end's tag.
    assert_eq!(request_uri(&bye), "sips:uas@sim.invalid");
    assert_eq!(tag_of(&bye, "To").as_deref(), Some("uas"));
    let mut stray = bye.clone();
    for h in &mut stray.headers {
        if h.name.eq_ignore_ascii_case("Via") {
            h.value = "SIP/2.0/TLS 127.0.0.1:40001;branch=z9hG4bKnot-the-bye".to_owned();
        }
    }
    sim.inject(conn, answer_to(&bye, 100, "Trying", &[]));
    sim.inject(conn, answer_to(&stray, 200, "OK", &[]));
    sim.run_for(Duration::from_millis(15));
    assert_eq!(sim.core.live_calls(), 1, "the BYE's 200 is two latencies away");
    sim.run_for(secs(1));
    assert_eq!(sim.core.live_calls(), 0);
}

/// A 401 with no challenge to answer fails the call as an authentication failure; any
/// other 4xx is a rejection.
#[test]
fn a_401_without_a_challenge_is_an_authentication_failure_and_a_403_a_rejection() {
    for (status, want) in
        [(401, CallOutcome::Failed(CallFailure::AuthenticationFailed)), (403, CallOutcome::Rejected { status: 403 })]
    {
        let mut sim = started(cfg(1));
        sim.server(Server::Primary).behaviour.require_auth = false;
        sim.server(Server::Primary).behaviour.invite_status = Some(status);
        sim.run_for(secs(1));
        let call = sim.place_call(AccountId(0), "2000").unwrap();
        sim.run_for(secs(1));
        assert_eq!(outcomes(&sim, call), [want], "{status}");
        assert_eq!(sim.sent_requests("INVITE").len(), 1, "{status}: nothing to answer");
    }
}
