//! Scenario tests of calls moved across a failover (`calls/dialog_move.rs`): the
//! re-INVITE on the new connection once the account is registered there, what each answer
//! does (2xx, 491, 481, a challenge, no answer), the far end's BYE reaching the moved call,
//! a route set that leads only to the lost connection, and a move that never happens
//! without it.

use crate::engine::{CallOutcome, EndReason, Event};
use crate::ids::{AccountId, CallId, Server};
use crate::sim::{ReinviteChallenge, Sim};
use crate::sip::Message;

use super::super::tests_support::{all_registered_on, assert_clean, cfg, secs, started};

/// A phone with one line, a call answered over the primary, and then the primary's
/// connection lost: the phone fails over to the backup.
fn call_then_failover(reinvite_status: Option<u16>) -> (Sim, CallId) {
    let mut sim = started(cfg(1));
    sim.server(Server::Backup).behaviour.reinvite_status = reinvite_status;
    sim.run_for(secs(1));
    let call = sim.place_call(AccountId(0), "2000").expect("placed");
    sim.run_for(secs(1));
    assert_eq!(sim.count_events(|e| matches!(e, Event::CallOutcome { outcome: CallOutcome::Answered, .. })), 1);
    sim.set_mode(Server::Primary, crate::sim::ServerMode::Refusing);
    (sim, call)
}

fn reinvites(sim: &Sim) -> Vec<(crate::time::Instant, crate::ids::ConnId, Message)> {
    sim.sent_requests("INVITE")
        .into_iter()
        .filter(|(_, _, m)| m.header("To").is_some_and(|t| t.contains(";tag=")))
        .collect()
}

#[test]
fn an_established_call_is_moved_onto_the_backup_once_its_line_is_registered_there() {
    let (mut sim, call) = call_then_failover(Some(200));
    let lost = sim.now;
    sim.run_for(secs(5));
    assert!(all_registered_on(&sim, Server::Backup));
    let moves = reinvites(&sim);
    assert_eq!(moves.len(), 1, "one re-INVITE");
    let (at, conn, m) = &moves[0];
    assert_eq!(conn.server, Server::Backup);
    // After the line's REGISTER on the backup, with the session the call already had.
    let registered = sim
        .events
        .iter()
        .find(|(t, e)| *t >= lost && matches!(e, Event::Registered { server: Server::Backup, .. }))
        .map(|(t, _)| *t)
        .expect("registered on the backup");
    assert!(*at >= registered, "re-INVITE at {at}, registered at {registered}");
    let original = sim.sent_requests("INVITE").into_iter().next().expect("the first INVITE").2;
    assert_eq!(m.body, original.body, "the same session description");
    assert_eq!(m.call_id(), original.call_id());
    assert!(m.header("Contact").is_some());
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallMoved { call, server: Server::Backup }));
    assert_eq!(sim.core.live_calls(), 1);
    // Acknowledged in the dialog, and the orphaned-call deadline no longer runs.
    assert!(sim.sent_requests("ACK").iter().any(|(_, c, a)| c.server == Server::Backup && a.call_id() == m.call_id()));
    sim.run_for(secs(200));
    assert_eq!(sim.core.live_calls(), 1, "a moved call is not orphaned");
    assert_clean(&sim);
}

#[test]
fn the_far_ends_bye_reaches_the_moved_call_on_the_new_connection() {
    let (mut sim, call) = call_then_failover(Some(200));
    sim.run_for(secs(5));
    let (_, conn, m) = reinvites(&sim).pop().expect("a re-INVITE");
    let to_tag = crate::engine::message::tag_of(&m, "From").expect("our tag");
    let bye = format!(
        "BYE sips:1001@127.0.0.1:40001 SIP/2.0\r\nVia: SIP/2.0/TLS backup.test;branch=z9hG4bKfarbye\r\n\
         From: {}\r\nTo: <sips:1001@backup.test>;tag={to_tag}\r\nCall-ID: {}\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n",
        m.header("To").unwrap_or(""),
        m.call_id().unwrap_or("")
    );
    sim.inject(conn, bye.into_bytes());
    sim.run_for(secs(1));
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallEnded { call, reason: EndReason::RemoteHangup }));
    assert_eq!(sim.core.live_calls(), 0);
    assert_clean(&sim);
}

#[test]
fn a_refused_move_ends_the_call_with_its_status_and_481_sends_no_bye() {
    for (status, byes) in [(481, 0), (488, 1)] {
        let (mut sim, call) = call_then_failover(Some(status));
        sim.run_for(secs(5));
        assert!(
            sim.events.iter().any(|(_, e)| *e == Event::CallEnded { call, reason: EndReason::MoveRefused { status } }),
            "{status}"
        );
        let backup_byes = sim.sent_requests("BYE").iter().filter(|(_, c, _)| c.server == Server::Backup).count();
        assert_eq!(backup_byes, byes, "{status}");
        sim.run_for(secs(60));
        assert_eq!(sim.core.live_calls(), 0);
        assert_clean(&sim);
    }
}

#[test]
fn glare_waits_and_tries_again_then_a_move_without_answer_ends_the_call() {
    let (mut sim, call) = call_then_failover(Some(491));
    sim.run_for(secs(1));
    assert_eq!(reinvites(&sim).len(), 1);
    // The phone placed the call, so it owns the Call-ID: 2.1 to 4 s (RFC 3261 §14.1).
    sim.server(Server::Backup).behaviour.reinvite_status = Some(200);
    sim.run_for(secs(5));
    let moves = reinvites(&sim);
    assert_eq!(moves.len(), 2, "tried again after the glare");
    let wait = moves[1].0.saturating_since(moves[0].0);
    assert!(wait >= crate::time::Duration::from_millis(2_100) && wait <= secs(4) + secs(1), "{wait:?}");
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallMoved { call, server: Server::Backup }));

    let (mut sim, call) = call_then_failover(None);
    sim.run_for(secs(60));
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallEnded { call, reason: EndReason::MoveTimedOut }));
    assert_eq!(sim.core.live_calls(), 0);
    assert_clean(&sim);
}

#[test]
fn a_call_whose_route_leads_only_to_the_lost_connection_ends_at_once() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    // The primary record-routes its own address (as a plain `record_route()` does).
    let dialed = sim.dials.first().map(|(_, _, addr, _)| *addr).expect("a dial");
    sim.server(Server::Primary).behaviour.record_route = Some(format!("<sip:{dialed};transport=tls;lr>"));
    let call = sim.place_call(AccountId(0), "2000").expect("placed");
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, crate::sim::ServerMode::Refusing);
    sim.run_for(secs(5));
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallEnded { call, reason: EndReason::RouteLost }));
    assert!(reinvites(&sim).is_empty(), "no re-INVITE that cannot arrive");
    sim.run_for(secs(60));
    assert_eq!(sim.core.live_calls(), 0);
    assert_clean(&sim);
}

#[test]
fn a_challenged_move_is_sent_again_once_with_credentials() {
    // The backup authenticates requests inside dialogs: the move's re-INVITE, carrying the
    // credentials of the primary's nonce, draws a 407, and the phone answers it.
    let (mut sim, call) = call_then_failover(Some(200));
    sim.server(Server::Backup).behaviour.challenge_reinvites = ReinviteChallenge::Unauthorized;
    sim.run_for(secs(5));
    let moves = reinvites(&sim);
    assert_eq!(moves.len(), 2, "challenged, then sent again");
    let cseq = |m: &Message| m.header("CSeq").and_then(|v| v.split(' ').next()?.parse::<u32>().ok());
    assert_eq!(cseq(&moves[1].2), cseq(&moves[0].2).map(|c| c + 1), "the next CSeq");
    assert_ne!(moves[1].2.top_via(), moves[0].2.top_via(), "a new transaction");
    // The simulator's nonces end with the server that issued them.
    let nonce_of = |m: &Message| {
        m.header("Proxy-Authorization").and_then(|v| v.split("nonce=\"").nth(1)?.split('"').next().map(str::to_owned))
    };
    assert!(nonce_of(&moves[0].2).is_some_and(|n| n.ends_with("primary")), "the first carried the cached credentials");
    assert!(nonce_of(&moves[1].2).is_some_and(|n| n.ends_with("backup")), "the retry answers the backup's challenge");
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallMoved { call, server: Server::Backup }));
    assert_eq!(sim.core.live_calls(), 1);

    // A proxy that challenges again: the move ends with the status, and a BYE.
    let (mut sim, call) = call_then_failover(Some(200));
    sim.server(Server::Backup).behaviour.challenge_reinvites = ReinviteChallenge::Always;
    sim.run_for(secs(5));
    assert_eq!(reinvites(&sim).len(), 2, "one retry, no more");
    assert!(
        sim.events.iter().any(|(_, e)| *e == Event::CallEnded { call, reason: EndReason::MoveRefused { status: 407 } })
    );
    sim.run_for(secs(60));
    assert_eq!(sim.core.live_calls(), 0);
    assert_clean(&sim);
}
