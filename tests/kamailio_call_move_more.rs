//! More calls across a proxy failover (issue 15), in the topology of
//! `tests/kamailio_call_move.rs` (its `World` is in `tests/kamailio/call_move.rs`).
//!
//! After the move: the phone hangs up (its BYE reaches baresip through the backup);
//! baresip re-INVITEs (the phone answers 200 over its new connection, through the backup)
//! and then hangs up. And without the shared name (each proxy record-routes its own
//! address, an outbound flow token `sips:TOKEN@127.0.0.1:PORT` of the primary): killing
//! the primary ends the call at once, `EndReason::RouteLost`, with no call left live.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

#[path = "kamailio/call_move.rs"]
mod call_move;
#[path = "common/dnsmasq.rs"]
mod dnsmasq;
mod kamailio;

use call_move::*;
use sip_ptls::ids::Server;
use sip_ptls::{EndReason, Event};
use std::time::{Duration, Instant};

#[test]
fn a_call_moved_to_the_backup_is_ended_by_the_phone() {
    let _w = kamailio::watchdog::watchdog_with("kamailio call move (phone hangs up)", LIMIT, kill_everything);
    let mut world = World::start("call-move-hangup");
    let mut phone = world.phone();
    phone.all_registered(Server::Primary, WITHIN);
    let (call, call_id) = world.confirmed_call(&mut phone);
    let moved = world.kill_primary_and_move(&mut phone, call);
    eprintln!("call move (phone hangs up): moved {} ms after the primary was killed", moved.as_millis());

    let hung_up = Instant::now();
    phone.handle.hang_up_blocking(call).expect("hang up");
    let (at, _) =
        phone.wait("the end of the call", WITHIN, |e| matches!(e, Event::CallEnded { call: c, .. } if *c == call));
    assert_eq!(
        phone.seen.last().map(|(_, e)| e.event.clone()),
        Some(Event::CallEnded { call, reason: EndReason::LocalHangup }),
        "{}",
        phone.history()
    );
    // baresip's CALL_CLOSED carries its last socket error (the primary's reset) as its
    // reason, whatever closed the call: its SIP trace shows the BYE it received.
    let closed = world.far.wait_event("CALL_CLOSED", WITHIN);
    let far_closed = hung_up.elapsed();
    assert!(
        world.far.log().lines().any(|l| l.starts_with(&format!("BYE sip:{FAR_USER}"))),
        "baresip received the phone's BYE: {}",
        world.far.log_path().display()
    );
    let bye = world.lab.backup.log_lines(&["INDIALOG backup BYE", &call_id, "to=sips:dave@"]);
    assert_eq!(bye.len(), 1, "the phone's BYE went through the backup, on the new connection\n{}", phone.history());
    let live = no_live_call(&phone);
    eprintln!(
        "call move (phone hangs up): CallEnded {} ms after the hang-up; baresip closed the call after {} ms ({closed}); \
         no live call {} ms later; the BYE: {}",
        at.duration_since(hung_up).as_millis(),
        far_closed.as_millis(),
        live.as_millis(),
        bye[0]
    );
    drop(phone);
}

#[test]
fn a_reinvite_from_baresip_after_the_move_is_answered_over_the_new_connection() {
    let _w = kamailio::watchdog::watchdog_with("kamailio call move (far re-INVITE)", LIMIT, kill_everything);
    let mut world = World::start("call-move-reinvite");
    let mut phone = world.phone();
    phone.all_registered(Server::Primary, WITHIN);
    let (call, call_id) = world.confirmed_call(&mut phone);
    let moved = world.kill_primary_and_move(&mut phone, call);
    eprintln!("call move (far re-INVITE): moved {} ms after the primary was killed", moved.as_millis());

    // baresip's re-INVITE (To: the phone) goes through the backup to the phone's new
    // connection; the phone's 2xx comes back through the backup.
    let theirs = ["INDIALOG backup INVITE", call_id.as_str(), "to=sips:alice@"];
    let replies_before = world.lab.backup.log_lines(&["REPLY backup 200 INVITE"]).len();
    let sent = Instant::now();
    let response = world.far.command("reinvite", "");
    eprintln!("call move (far re-INVITE): baresip's response to `reinvite`: {response}");
    let answered = world.lab.until("baresip's re-INVITE answered 200 through the backup", WITHIN, |l| {
        !l.backup.log_lines(&theirs).is_empty()
            && l.backup.log_lines(&["REPLY backup 200 INVITE"]).len() > replies_before
    });
    let line = world.lab.backup.log_lines(&theirs).remove(0);
    eprintln!("call move (far re-INVITE): answered 200 after {} ms: {line}", answered.as_millis());
    // The call is still up on the phone after it (and on baresip: its BYE below).
    phone.idle(Duration::from_secs(1));
    assert_eq!(phone.count(sent, |e| matches!(e, Event::CallEnded { .. })), 0, "{}", phone.history());
    assert_eq!(phone.status().live_calls, 1, "{:?}", phone.status().calls);

    // And it ends cleanly: baresip hangs up, through the backup.
    let hung_up = Instant::now();
    world.far.hang_up();
    let (at, _) = phone.wait(
        "baresip's BYE",
        WITHIN,
        |e| matches!(e, Event::CallEnded { call: c, reason: EndReason::RemoteHangup } if *c == call),
    );
    world.far.wait_event("CALL_CLOSED", WITHIN);
    let live = no_live_call(&phone);
    eprintln!(
        "call move (far re-INVITE): baresip hung up; the phone reported the end {} ms later; no live call {} ms after",
        at.duration_since(hung_up).as_millis(),
        live.as_millis()
    );
    drop(phone);
}

#[test]
fn a_call_whose_route_names_the_dead_primary_ends_with_route_lost() {
    let _w = kamailio::watchdog::watchdog_with("kamailio call move (route lost)", LIMIT, kill_everything);
    // No shared name: each proxy record-routes its own address.
    let mut world = World::start_with("call-route-lost", false);
    let mut phone = world.phone();
    phone.all_registered(Server::Primary, WITHIN);
    let call = world.confirmed(&mut phone);
    world.lab.until("the phone's ACK through the primary", WITHIN, |l| {
        !l.primary.log_lines(&["REQ primary ACK"]).is_empty()
    });
    // The route set the phone holds is the Record-Route baresip answered with: the
    // primary's own address first.
    let primary = format!("127.0.0.1:{}", world.lab.primary.cfg.port);
    let log = world.far.log();
    let rr: Vec<&str> = log.lines().filter(|l| l.to_ascii_lowercase().starts_with("record-route:")).collect();
    eprintln!("call move (route lost): Record-Route in baresip's trace: {rr:?}");
    assert!(
        !rr.is_empty() && rr.iter().all(|l| l.contains(&primary)),
        "the route names the primary {primary}: {rr:?}\nbaresip log: {}",
        world.far.log_path().display()
    );

    let cut = Instant::now();
    world.lab.primary.kill();
    let (at, ended) = phone.wait(
        "the end of the call",
        WITHIN,
        |e| matches!(e, Event::CallMoved { call: c, .. } | Event::CallEnded { call: c, .. } if *c == call),
    );
    assert_eq!(ended, Event::CallEnded { call, reason: EndReason::RouteLost }, "{}", phone.history());
    let live = no_live_call(&phone);
    phone.idle(Duration::from_secs(1));
    assert_eq!(phone.count(cut, |e| matches!(e, Event::CallMoved { .. })), 0, "{}", phone.history());
    assert_eq!(phone.status().live_calls, 0, "{:?}", phone.status().calls);
    eprintln!(
        "call move (route lost): CallEnded(RouteLost) {} ms after the primary was killed; no live call {} ms later; \
         backup saw: {:?}",
        at.duration_since(cut).as_millis(),
        live.as_millis(),
        world.lab.backup.log_lines(&["BYE"])
    );
    drop(phone);
}
