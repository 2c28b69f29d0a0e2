//! Item b: a server that never reads what the phone writes. From the start (its REGISTER
//! is never answered), and the harder case: after the phone registered it stops reading
//! but still writes blind CRLF pongs, so pings look answered, and OPTIONS requests as fast
//! as it can, so the phone's answers pile up. Either way the connection must be declared
//! dead and recovery start, with the phone's memory bounded.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod hostile;

use hostile::*;
use std::time::{Duration, Instant};

#[test]
fn child_phone() {
    child_main();
}

fn never_reads(test: &'static str, script: Script, run_for: Duration) {
    let _w = watchdog(test, Duration::from_secs(120));
    let mut v = Verdict::new(test);
    let lab = lab();
    let server = HostileServer::start(&lab, script);
    let t0 = Instant::now();
    let mut phone = ChildPhone::spawn(server.addr, lab.dir.path(), 30);
    v.check(phone.wait(Duration::from_secs(10), |e| e.starts_with("FlowUp")).is_some(), "the connection comes up");
    // At once: in b2 the server arms (and pumps) as soon as both accounts registered.
    phone.mark_baseline();
    phone.pump(Duration::from_millis(300));
    let mut calls = Vec::new();
    place_call(&mut v, &mut phone, 0, &mut calls);
    let first_lost = phone.wait(run_for, |e| e.starts_with("FlowLost"));
    match first_lost {
        Some(at) => {
            let armed = server.log().connections.first().and_then(|c| c.armed);
            let since = armed.map(|a| at.saturating_duration_since(a));
            figure(test, "connection declared dead after the server stopped reading", format!("{since:?}"));
        }
        None => println!("hostile/{test}: last events:\n{}", phone.history(20)),
    }
    v.check(first_lost.is_some(), format!("the connection is declared dead within {run_for:?}"));
    phone.pump_until(t0 + run_for);
    let log = server.log();
    figure(test, "connections opened", log.connections.len());
    figure(test, "requests pumped at the phone", server.flooded());
    figure(test, "FlowLost events", phone.count(t0, "FlowLost"));
    v.check(log.connections.len() >= 2, "recovery started: the phone opened a new connection");
    server.set_action(Action::Nothing);
    let healed = Instant::now();
    // The connection the server stopped reading stays deaf; the next one is normal.
    let back = phone.wait_all_registered(healed, "", Duration::from_secs(30));
    if let Some(at) = back {
        figure(test, "registered again after the server healed", format!("{:?}", at - healed));
    }
    v.check(back.is_some(), "every account registers again once the server reads again");
    place_call(&mut v, &mut phone, 1, &mut calls);
    v.common(&mut phone, &calls);
    v.finish();
}

#[test]
fn b1_server_never_reads_after_tls() {
    never_reads(
        "b1_never_reads_after_tls",
        Script {
            register: RegisterMode::Ok { expires: 3600 },
            action: Action::StopReading { blind_pongs: false, pump_options: false },
            start: Start::OnTls,
        },
        Duration::from_secs(15),
    );
}

#[test]
fn b2_server_stops_reading_but_pongs_and_pumps_options() {
    never_reads(
        "b2_stops_reading_pongs_and_pumps",
        Script {
            register: RegisterMode::Ok { expires: 3600 },
            action: Action::StopReading { blind_pongs: true, pump_options: true },
            start: Start::AfterRegistered,
        },
        Duration::from_secs(30),
    );
}
