//! Calls across a proxy failover (issue 15), against the topology the issue asks for: a
//! primary and a backup Kamailio (`tests/kamailio/`) that both record-route one shared
//! name, `example.test`, without outbound flow tokens, answer for it, present a
//! certificate naming it, and route in-dialog requests only on what each holds, its
//! registrations and its connections (`KamailioConfig::shared_name`); Debian's dnsmasq (`tests/common/dnsmasq.rs`) resolving
//! the name to both (`_sips._tcp.example.test` SRV, priority 10 the primary on 127.0.0.1,
//! 20 the backup on 127.0.0.2); and baresip (`tests/kamailio/baresip.rs`) as the far end,
//! registered on both proxies at once (two outbound flows), auto-answering.
//!
//! The phone, configured with the shared name as its proxy and located by SRV, calls
//! baresip with an offer baresip accepts. Checked: the call is confirmed, the route set
//! the phone sends its ACK with is the shared name alone, and baresip's BYE reaches the
//! phone, which reports the end of the call; and the same call after the primary is
//! killed: moved by a re-INVITE through the backup (answered 2xx by baresip), then ended
//! by baresip's BYE, which the backup relays to the phone's new connection.
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
fn a_call_to_baresip_through_the_shared_name_is_confirmed_and_ended_by_baresip() {
    let _w = kamailio::watchdog::watchdog_with("kamailio call move (today)", LIMIT, kill_everything);
    let mut world = World::start("call-shared-rr");
    let mut phone = world.phone();
    phone.all_registered(Server::Primary, WITHIN);
    assert!(bound(&world.lab.primary, PHONE_USER), "the phone registered on the SRV priority-10 proxy");

    let (call, call_id) = world.confirmed_call(&mut phone);
    let ack = world.lab.primary.log_lines(&["INDIALOG primary ACK", &call_id]).remove(0);
    assert_shared_route(&ack);
    assert!(
        !world.lab.primary.log_lines(&["RELAY primary ACK"]).is_empty(),
        "the primary relayed the ACK to baresip from its own registration"
    );
    eprintln!("call move: confirmed; the phone's ACK: {ack}");
    eprintln!("call move: {} RTP datagrams from baresip in 1 s", rtp_received(&world.rtp, Duration::from_secs(1)));

    let hung_up = Instant::now();
    world.far.hang_up();
    let (at, _) = phone.wait(
        "baresip's BYE",
        WITHIN,
        |e| matches!(e, Event::CallEnded { call: c, reason: EndReason::RemoteHangup } if *c == call),
    );
    world.far.wait_event("CALL_CLOSED", WITHIN);
    let bye = world.lab.primary.log_lines(&["INDIALOG primary BYE", &call_id]);
    assert_eq!(bye.len(), 1, "baresip's BYE went through the primary, the shared name's first target");
    assert_shared_route(&bye[0]);
    eprintln!(
        "call move: baresip hung up; the phone reported the end {} ms later; the BYE: {}",
        at.duration_since(hung_up).as_millis(),
        bye[0]
    );
    drop(phone);
}

#[test]
fn a_call_moved_to_the_backup_after_the_primary_dies_is_ended_by_baresip() {
    let _w = kamailio::watchdog::watchdog_with("kamailio call move (failover)", LIMIT, kill_everything);
    let mut world = World::start("call-move");
    let mut phone = world.phone();
    phone.all_registered(Server::Primary, WITHIN);
    let (call, call_id) = world.confirmed_call(&mut phone);

    // The primary dies during the call; the phone registers again on the shared name's
    // other target, the backup, and baresip keeps its second flow there.
    let cut = Instant::now();
    world.lab.primary.kill();
    phone.wait("the flow lost", WITHIN, |e| matches!(e, Event::FlowLost { .. }));
    phone.all_registered(Server::Primary, WITHIN);
    world.lab.until("the phone registered on the backup", WITHIN, |l| bound(&l.backup, PHONE_USER));
    eprintln!("call move: primary killed; the phone registered on the backup after {} ms", cut.elapsed().as_millis());

    // Issue 15: the call is refreshed onto the new connection, a target refresh through the
    // backup (a re-INVITE: baresip does not allow UPDATE) answered 2xx by baresip. Noted,
    // not asserted yet, so that the hang-up below is seen whatever happened here.
    let refresh = format!("INDIALOG backup INVITE callid={call_id}");
    let moved = loop {
        let seen = !world.lab.backup.log_lines(&[&refresh]).is_empty()
            && !world.lab.backup.log_lines(&["REPLY backup 200 INVITE"]).is_empty();
        if seen || cut.elapsed() > WITHIN {
            break seen.then(|| cut.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("call move: refresh through the backup answered 2xx: {moved:?}");

    // baresip hangs up: its BYE follows its route set (the shared name), which now leads to
    // the backup, which routes it to the phone's binding there.
    world.far.hang_up();
    let ended = phone
        .try_wait(WITHIN, |e| matches!(e, Event::CallEnded { call: c, reason: EndReason::RemoteHangup } if *c == call));
    let through_backup = world.lab.backup.log_lines(&["INDIALOG backup BYE", &call_id]);
    let failed = world.lab.backup.log_lines(&["RELAYFAIL backup BYE"]);
    eprintln!(
        "call move: baresip's BYE at the backup: {through_backup:?}; relay failed: {failed:?}; the phone saw it: {}",
        ended.is_some()
    );
    assert!(
        ended.is_some(),
        "the phone did not see baresip's BYE after the failover\n{}\nbackup log: {}\nbaresip log: {}",
        phone.history(),
        world.lab.backup.log_path().display(),
        world.far.log_path().display()
    );
    assert!(
        moved.is_some(),
        "no target refresh of call {call_id} through the backup answered 2xx (issue 15)\n{}",
        phone.history()
    );
    drop(phone);
}
