//! Scenario tests of a hostile or broken peer: a peer that does not read, floods of
//! incoming calls, and server answers that would make the phone send in a loop.

use super::tests_support::{assert_clean, cfg, secs, started};
use crate::engine::{EndReason, Event, FlowError, Input, RegError};
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

fn report_backlog(sim: &mut Sim, conn: ConnId, bytes: usize) {
    let now = sim.now;
    sim.core.handle_input(now, Input::WriteBacklog { conn, bytes });
    sim.drain();
}

fn alive(sim: &Sim, conn: ConnId) -> bool {
    sim.core.connections().any(|(id, _, _)| id == conn)
}

/// The boundaries of the write-stall rule, which mutation testing found unchecked: a
/// single report of waiting bytes starts the stall timer, a report of the same size is
/// no progress, and a backlog exactly at the limit is not yet dead.
#[test]
fn write_stall_boundaries() {
    let stall_ms = cfg(1).write_stall_timeout.as_millis();
    let ms = crate::time::Duration::from_millis;
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let conn = flow_conn(&sim);
    report_backlog(&mut sim, conn, 300);
    sim.run_for(ms(stall_ms - 1000));
    assert!(alive(&sim, conn), "not yet stalled");
    sim.run_for(secs(2));
    assert!(!alive(&sim, conn), "one report and no progress for the stall timeout: dead");

    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let conn = flow_conn(&sim);
    report_backlog(&mut sim, conn, 300);
    sim.run_for(secs(6));
    report_backlog(&mut sim, conn, 300);
    sim.run_for(ms(stall_ms - 6000 + 1000));
    assert!(!alive(&sim, conn), "the same backlog again is no progress: the timer ran on");

    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let conn = flow_conn(&sim);
    let limit = sim.core.config().max_write_backlog;
    report_backlog(&mut sim, conn, limit);
    assert!(alive(&sim, conn), "a backlog at the limit is within it");
    assert_clean(&sim);
}

/// The most REGISTERs sent in any 60 s window.
fn max_registers_per_minute(sim: &Sim) -> usize {
    let times: Vec<u64> = sim.sent_requests("REGISTER").iter().map(|(t, _, _)| t.as_millis()).collect();
    times.iter().map(|&start| times.iter().filter(|&&t| t >= start && t < start + 60_000).count()).max().unwrap_or(0)
}

fn hostile(configure: impl FnOnce(&mut crate::sim::Behaviour)) -> Sim {
    let mut sim = Sim::new(cfg(1));
    configure(&mut sim.server(Server::Primary).behaviour);
    sim.start();
    sim
}

/// A 2xx granting our Contact a lifetime of 0 leaves no binding (fuzz finding core-2): no
/// `Registered`, no INVITE on it, no storm; tried again after the registration retry timer.
#[test]
fn a_2xx_granting_expires_0_is_no_registration_and_no_storm() {
    let mut sim = hostile(|b| b.grant_expires = Some(0));
    sim.run_for(secs(1));
    let call = sim.place_call(crate::ids::AccountId(0), "2000").expect("placed");
    sim.run_for(secs(3600));
    let peak = max_registers_per_minute(&sim);
    assert!(peak <= 6, "{peak} REGISTERs in one minute");
    assert_eq!(sim.count_events(|e| matches!(e, Event::Registered { .. })), 0);
    let retry = secs(u64::from(sim.core.config().registration_retry));
    let failures: Vec<_> = sim
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::RegistrationFailed { reason: RegError::NoLifetime(200), retry_in, .. } => Some((*t, *retry_in)),
            _ => None,
        })
        .collect();
    assert!(failures.len() >= 2, "failed, then tried again and failed again: {failures:?}");
    assert!(failures.iter().all(|(_, r)| *r == Some(retry)), "waits the registration retry timer: {failures:?}");
    assert!(sim.sent_requests("INVITE").is_empty(), "no INVITE on a binding that does not exist");
    let outcomes = sim.count_events(|e| matches!(e, Event::CallOutcome { call: c, .. } if *c == call));
    assert_eq!(outcomes, 1, "the queued call still gets its one outcome");
    assert_clean(&sim);
}

/// A per-call connection's timeout and the call's own deadline fire in one late
/// `handle_timeout` (fuzz finding core-1): the call fails on its deadline and no
/// connection to the backup is asked for (and withdrawn) on its behalf.
#[test]
fn a_late_timeout_starts_no_backup_attempt_for_a_call_past_its_deadline() {
    let mut c = cfg(1);
    c.mode = crate::config::TransportMode::PerCallTls;
    let mut sim = started(c);
    sim.run_for(secs(1));
    sim.set_mode(Server::Primary, crate::sim::ServerMode::Frozen);
    let call = sim.place_call(crate::ids::AccountId(0), "2000").expect("placed");
    let asked = sim.servers[1].counters.accepted;
    sim.now = sim.now + secs(1000);
    let now = sim.now;
    sim.core.handle_timeout(now);
    sim.drain();
    let outcome = sim.events.iter().find_map(|(_, e)| match e {
        Event::CallOutcome { call: c, outcome } if *c == call => Some(outcome.clone()),
        _ => None,
    });
    assert_eq!(outcome, Some(crate::engine::CallOutcome::Failed(crate::engine::CallFailure::Deadline)));
    sim.run_for(secs(5));
    assert_eq!(sim.servers[1].counters.accepted, asked, "nothing opened on the backup for the failed call");
    assert_clean(&sim);
}

#[test]
fn retry_after_0_and_an_endless_stream_of_fresh_challenges_are_paced() {
    for configure in [
        (|b: &mut crate::sim::Behaviour| {
            b.register_status = Some(503);
            b.register_headers = vec![("Retry-After".into(), "0".into())];
        }) as fn(&mut crate::sim::Behaviour),
        |b| b.always_challenge = true,
        |b| {
            b.register_status = Some(423);
            b.register_headers = vec![("Min-Expires".into(), "7200".into())];
        },
    ] {
        let mut sim = hostile(configure);
        sim.run_for(secs(600));
        let peak = max_registers_per_minute(&sim);
        assert!(peak <= 6, "{peak} REGISTERs in one minute");
        assert_eq!(sim.count_events(|e| matches!(e, Event::FlowLost { .. })), 0, "a bad answer kills no flow");
        assert_clean(&sim);
    }
}

/// The runtime reads its clock in whole milliseconds, rounded down: a REGISTER stamped
/// at millisecond `t` went out at some real time in `[t, t + 1)`. The seventh REGISTER
/// must go out a whole window after the end of the first one's millisecond, or a server
/// can see seven in 59.999 s (CI found this over real TLS, where the 503 comes back in
/// the same millisecond). With no latency every answer arrives in the millisecond of its
/// request, which is that case exactly.
#[test]
fn the_pacing_window_counts_from_the_end_of_the_first_requests_millisecond() {
    let mut sim = hostile(|b| {
        b.register_status = Some(503);
        b.register_headers = vec![("Retry-After".into(), "0".into())];
    });
    sim.latency = crate::time::Duration::ZERO;
    sim.run_for(secs(300));
    let times: Vec<u64> = sim.sent_requests("REGISTER").iter().map(|(t, _, _)| t.as_millis()).collect();
    assert!(times.len() >= 12, "the phone goes on trying: {times:?}");
    for w in times.windows(7) {
        assert!(w[6] - w[0] > 60_000, "seven REGISTERs within 60 s of real time: {w:?}");
    }
    assert_clean(&sim);
}

#[test]
fn a_huge_retry_after_is_capped_at_an_hour_and_the_phone_comes_back() {
    let mut sim = hostile(|b| {
        b.register_status = Some(503);
        b.register_headers = vec![("Retry-After".into(), "4000000000".into())];
    });
    sim.run_for(secs(10));
    assert!(sim.events.iter().any(|(_, e)| matches!(
        e,
        Event::RegistrationFailed { retry_in: Some(d), .. } if *d == secs(3600)
    )));
    sim.server(Server::Primary).behaviour.register_status = None;
    sim.run_for(secs(3600));
    assert_eq!(
        sim.core.registration(crate::ids::AccountId(0)),
        Some(crate::engine::RegState::Registered { server: Server::Primary })
    );
}

#[test]
fn a_server_that_never_pongs_and_sets_a_tiny_flow_timer_gets_options_at_most_every_10_s() {
    let mut sim = hostile(|b| {
        b.flow_timer = Some(1);
        b.answer_pings = false;
    });
    sim.run_for(secs(300));
    let options: Vec<u64> = sim.sent_requests("OPTIONS").iter().map(|(t, _, _)| t.as_millis()).collect();
    assert!(options.len() >= 10, "keep-alive goes on: {} OPTIONS", options.len());
    let gaps: Vec<u64> = options.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|&g| g >= 8_000), "OPTIONS at least 0.8 x 10 s apart: {gaps:?}");
    assert_eq!(sim.count_events(|e| matches!(e, Event::FlowLost { .. })), 0);
    assert_clean(&sim);
}

fn invite(n: u32) -> Vec<u8> {
    format!(
        "INVITE sips:1001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.9;branch=z9hG4bKflood{n}\r\n\
         From: <sips:evil@example.test>;tag=f{n}\r\nTo: <sips:1001@example.test>\r\nCall-ID: flood-{n}\r\n\
         CSeq: 1 INVITE\r\nContact: <sips:evil@10.0.0.9>\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn an_invite_flood_rings_at_most_the_limit_and_each_ringing_call_times_out() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let conn = flow_conn(&sim);
    for n in 0..1000 {
        sim.inject(conn, invite(n));
    }
    sim.run_for(secs(1));
    let limit = usize::from(sim.core.config().max_ringing_calls);
    assert_eq!(sim.core.live_calls(), limit, "ringing calls are bounded");
    assert_eq!(sim.count_events(|e| matches!(e, Event::IncomingCall { .. })), limit);
    let busy = sim.sent.iter().filter(|(_, _, d)| d.starts_with(b"SIP/2.0 486")).count();
    assert_eq!(busy, 1000 - limit, "every other INVITE is answered 486 Busy Here");
    sim.run_for(secs(180));
    assert_eq!(sim.core.live_calls(), 0, "Timer C ends every unanswered call");
    assert_eq!(sim.count_events(|e| matches!(e, Event::CallEnded { reason: EndReason::Unanswered, .. })), limit);
    let unanswered = sim.sent.iter().filter(|(_, _, d)| d.starts_with(b"SIP/2.0 480")).count();
    assert_eq!(unanswered, limit, "each with a final response");
    assert_clean(&sim);
}

#[test]
fn an_established_call_whose_connection_is_gone_ends_after_the_orphaned_call_timeout() {
    let mut sim = started(cfg(1));
    // The backup refuses the line, so the call cannot be moved there: it waits out its
    // deadline (a call that can move is src/engine/dialog_move_tests.rs's).
    sim.server(Server::Backup).behaviour.register_status = Some(403);
    sim.run_for(secs(1));
    let call = sim.place_call(crate::ids::AccountId(0), "2000").expect("placed");
    sim.run_for(secs(1));
    assert_eq!(
        sim.count_events(|e| matches!(e, Event::CallOutcome { outcome: crate::engine::CallOutcome::Answered, .. })),
        1
    );
    sim.drop_connections(Server::Primary, crate::engine::TransportError::Reset);
    sim.run_for(secs(119));
    assert_eq!(sim.core.live_calls(), 1, "the media may go on for a while");
    sim.run_for(secs(2));
    assert_eq!(sim.core.live_calls(), 0);
    assert!(sim.events.iter().any(|(_, e)| *e == Event::CallEnded { call, reason: EndReason::ConnectionLost }));
    assert_eq!(sim.sent_requests("BYE").len(), 1, "its BYE goes over the backup");
    assert_clean(&sim);
}

#[test]
fn a_server_that_accepts_register_then_drops_the_connection_gets_back_off_not_a_loop() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    let start = sim.now;
    // Both servers answer REGISTER with 2xx, then drop the connection at once.
    for _ in 0..600 {
        sim.run_for(crate::time::Duration::from_millis(100));
        sim.drop_connections(Server::Primary, crate::engine::TransportError::Reset);
        sim.drop_connections(Server::Backup, crate::engine::TransportError::Reset);
    }
    let minutes = sim.now.saturating_since(start).as_millis() as f64 / 60_000.0;
    let accepted = f64::from(sim.servers[0].counters.accepted + sim.servers[1].counters.accepted);
    assert!(sim.core.failed_rounds() >= 3, "the rounds grow: {}", sim.core.failed_rounds());
    eprintln!("{accepted} connections in {minutes:.1} min, {} failed rounds", sim.core.failed_rounds());
    assert!(accepted / minutes < 15.0, "{accepted} connections in {minutes:.1} min");
    assert_clean(&sim);
}

/// A probe of the primary falls due and the backup's flow is found dead in the same late
/// `handle_timeout` (fuzz finding core-4): the probe's `Connect` is withdrawn with the
/// probe, so the runtime never opens a connection the core has already dropped. The
/// backup goes silent at every quarter second of a keep-alive period; then time jumps a
/// minute in one call, so that a probe and the pong deadline fire in one batch in some.
#[test]
fn a_probe_dropped_in_the_batch_that_asked_for_it_never_reaches_the_runtime() {
    let mut base = started(cfg(1));
    base.run_for(secs(1));
    base.set_mode(Server::Primary, crate::sim::ServerMode::Refusing);
    base.run_for(secs(2));
    assert_eq!(base.count_events(|e| matches!(e, Event::FlowUp { server: Server::Backup })), 1, "on the backup");
    let mut lost_in_batch = 0;
    for quarter in 0..48 {
        let mut sim = base.clone();
        sim.set_mode(Server::Backup, crate::sim::ServerMode::Silent);
        sim.run_for(crate::time::Duration::from_millis(250 * quarter));
        let lost_before = sim.count_events(|e| matches!(e, Event::FlowLost { .. }));
        sim.now = sim.now + secs(60);
        let now = sim.now;
        sim.core.handle_timeout(now);
        sim.drain();
        if sim.count_events(|e| matches!(e, Event::FlowLost { .. })) > lost_before {
            lost_in_batch += 1;
        }
        assert_clean(&sim);
    }
    assert!(lost_in_batch > 0, "no variant lost the flow inside the late batch");
}

/// A server that kept answering with a stale challenge for a nonce it never issued makes
/// the phone give up the exchange (`AuthenticationFailed`); once it answers well again,
/// the retry registers. Found by the model checker: the challenge count and the refused
/// credentials outlived the exchange, so every later retry failed at its first challenge.
#[test]
fn after_authentication_failed_the_retry_starts_afresh_and_registers() {
    let mut c = cfg(1);
    c.registration_retry = 30;
    let mut sim = Sim::new(c);
    {
        let b = &mut sim.server(Server::Primary).behaviour;
        b.register_status = Some(401);
        b.register_headers = vec![(
            "WWW-Authenticate".into(),
            "Digest realm=\"sim\", nonce=\"never-issued\", qop=\"auth\", algorithm=MD5, stale=true".into(),
        )];
    }
    sim.start();
    sim.run_for(secs(1));
    let failed = |sim: &Sim| {
        sim.count_events(|e| {
            matches!(e, Event::RegistrationFailed { reason: RegError::AuthenticationFailed, retry_in: Some(_), .. })
        })
    };
    assert_eq!(failed(&sim), 1, "gave up the exchange after its challenges");
    {
        let b = &mut sim.server(Server::Primary).behaviour;
        b.register_status = None;
        b.register_headers.clear();
    }
    sim.run_for(secs(40));
    assert_eq!(failed(&sim), 1, "the retry was not refused at its first challenge");
    assert_eq!(
        sim.core.registration(crate::ids::AccountId(0)),
        Some(crate::engine::RegState::Registered { server: Server::Primary })
    );
    assert_clean(&sim);
}
