//! The flood scenarios (items a and g): the server sends requests as fast as the socket
//! takes them; the phone must keep its keep-alive and registration going (or declare the
//! connection dead and recover), answer commands, give every call one outcome, and hold
//! its memory.

use super::*;
use std::time::{Duration, Instant};

/// How long the server floods.
const FLOOD_FOR: Duration = Duration::from_secs(25);

pub fn flood(test: &'static str, action: Action) {
    let _w = watchdog(test, Duration::from_secs(150));
    let mut v = Verdict::new(test);
    let lab = lab();
    let server = HostileServer::start(&lab, Script::good());
    let mut phone = ChildPhone::spawn(server.addr, lab.dir.path(), 30);
    let reg = phone.wait_all_registered(Instant::now() - Duration::from_secs(1), "", Duration::from_secs(15));
    v.check(reg.is_some(), "both accounts register before the flood");
    phone.pump(Duration::from_secs(1));
    phone.mark_baseline();

    server.set_action(action.clone());
    let start = Instant::now();
    let mut calls = Vec::new();
    let mut next_call = start + Duration::from_secs(3);
    while start.elapsed() < FLOOD_FOR {
        if Instant::now() >= next_call {
            place_call(&mut v, &mut phone, 0, &mut calls);
            next_call += Duration::from_secs(6);
        }
        phone.pump(Duration::from_millis(200));
        if phone.memory().killed_at_cap {
            break;
        }
    }
    let flood_secs = start.elapsed().as_secs_f64();
    server.set_action(Action::Nothing);
    let stopped = Instant::now();
    let log = server.log();
    let sent = server.flooded();
    figure(test, "requests flooded", format!("{sent} in {flood_secs:.1} s ({:.0}/s)", sent as f64 / flood_secs));
    figure(test, "responses read by the server", format!("{:?}", log.responses));
    figure(test, "incoming calls reported by the phone", phone.incoming);
    figure(test, "calls ended reported by the phone", phone.ended);
    let pings = log.pings.iter().filter(|(t, _)| *t >= start && *t < stopped).count();
    let lost = phone.count(start, "FlowLost");
    let connections = log.connections.iter().filter(|c| c.accepted >= start).count();
    figure(test, "pings read by the server during the flood", pings);
    figure(test, "connections lost / opened during the flood", format!("{lost} / {connections}"));
    let m = phone.memory();
    memory_figures(test, &m);
    // Keep-alive went on (a ping at least every 3 s), or the connection was declared
    // dead and a new one opened.
    let kept_alive = pings as f64 >= flood_secs / 3.0;
    v.check(
        kept_alive || (lost > 0 && connections > 0),
        format!("keep-alive kept going ({pings} pings in {flood_secs:.0} s) or the connection was declared dead and recovery started ({lost} lost, {connections} opened)"),
    );
    // After the flood: the phone is well again.
    let pinged = (0..150).any(|_| {
        phone.pump(Duration::from_millis(200));
        server.with_log(|l| l.pings_since(stopped + Duration::from_millis(500))) >= 2
    });
    v.check(pinged, "pings reach the server within 30 s after the flood");
    let registered = server
        .with_log(|l| USERS.iter().all(|(u, _)| l.requests.iter().any(|r| r.method == "REGISTER" && &r.user == u)));
    v.check(registered, "every account registered with the server");
    place_call(&mut v, &mut phone, 1, &mut calls);
    v.common(&mut phone, &calls);
    v.finish();
}
