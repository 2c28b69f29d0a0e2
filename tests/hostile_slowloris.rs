//! Item e: slowloris. Once the phone registered, the server sends one byte every 100 ms
//! of a request whose header block never ends, for a minute, on every connection. The
//! phone must not wait for it forever: its pings go unanswered, so the connection is
//! declared dead and a new one opened; its memory stays flat; calls get one outcome each.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod hostile;

use hostile::*;
use std::time::{Duration, Instant};

#[test]
fn child_phone() {
    child_main();
}

#[test]
fn e_slowloris_for_a_minute() {
    let test = "e_slowloris";
    let _w = watchdog(test, Duration::from_secs(150));
    let mut v = Verdict::new(test);
    let lab = lab();
    let server = HostileServer::start(&lab, Script::good());
    let mut phone = ChildPhone::spawn(server.addr, lab.dir.path(), 30);
    let reg = phone.wait_all_registered(Instant::now() - Duration::from_secs(1), "", Duration::from_secs(15));
    v.check(reg.is_some(), "both accounts register first");
    phone.pump(Duration::from_millis(500));
    phone.mark_baseline();
    server.set_action(Action::Slowloris);
    let start = Instant::now();
    let mut calls = Vec::new();
    let mut next_call = start + Duration::from_secs(5);
    while start.elapsed() < Duration::from_secs(60) {
        if Instant::now() >= next_call {
            place_call(&mut v, &mut phone, 0, &mut calls);
            next_call += Duration::from_secs(15);
        }
        phone.pump(Duration::from_millis(200));
    }
    server.set_action(Action::Nothing);
    let healed = Instant::now();
    let log = server.log();
    let dripping: Vec<Duration> = log
        .connections
        .iter()
        .filter_map(|c| Some(c.closed.unwrap_or(healed).saturating_duration_since(c.armed?)))
        .collect();
    figure(test, "bytes dripped", server.dripped());
    figure(test, "connections opened", log.connections.len());
    figure(test, "FlowLost events", phone.count(start, "FlowLost"));
    figure(
        test,
        "time each dripping connection lived (s)",
        format!("{:?}", dripping.iter().map(|d| (d.as_secs_f64() * 10.0).round() / 10.0).collect::<Vec<_>>()),
    );
    v.check(phone.count(start, "FlowLost") >= 1, "the dripping connection is declared dead");
    v.check(
        dripping.iter().all(|d| *d < Duration::from_secs(30)),
        "no connection is held by a message that never ends for 30 s or more",
    );
    let back = phone.wait_all_registered(healed, "", Duration::from_secs(30));
    if let Some(at) = back {
        figure(test, "registered again after the drip stopped", format!("{:?}", at - healed));
    }
    v.check(back.is_some(), "every account registers again once the server behaves");
    place_call(&mut v, &mut phone, 1, &mut calls);
    v.common(&mut phone, &calls);
    v.finish();
}
