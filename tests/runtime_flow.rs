//! The persistent connection on real TLS sockets: both lines over one connection,
//! keep-alive pings at the configured interval, and pong handling.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod runtime_support;

use runtime_support::{Lab, watchdog};
use sip_ptls::Event;
use sip_ptls::ids::Server;
use std::time::{Duration, Instant};

#[test]
fn both_lines_register_over_a_single_tcp_connection() {
    let _w = watchdog("single connection", Duration::from_secs(60));
    let lab = Lab::new();
    let primary = lab.registrar();
    let mut phone = lab.phone(lab.config(&primary, None));
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    let stats = primary.stats();
    assert_eq!(stats.accepted, 1, "one TCP connection for both lines");
    assert_eq!(stats.handshakes_ok, 1);
    let bindings = primary.bindings();
    assert_eq!(bindings.len(), 2, "{bindings:?}");
    assert_eq!(bindings[0].connection, bindings[1].connection, "both bindings on the same connection");
    assert!(phone.all_registered_on(Server::Primary));
    let events = phone.shutdown();
    assert_eq!(events.iter().filter(|e| matches!(e.event, Event::Unregistered { .. })).count(), 2, "{events:?}");
    assert_eq!(events.last().map(|e| &e.event), Some(&Event::ShutdownComplete));
    assert!(primary.bindings().is_empty(), "shutdown removed the bindings");
    assert_eq!(primary.stats().accepted, 1, "de-registration went over the same connection");
}

#[test]
fn pings_go_out_at_the_configured_interval_and_pongs_keep_the_flow() {
    let _w = watchdog("keep-alive", Duration::from_secs(60));
    let lab = Lab::new();
    let primary = lab.registrar();
    // Interval 1 s, jittered to 0.8–1 s: 4 to 6 pings in 5 s.
    let mut phone = lab.phone(lab.config(&primary, None));
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    let before = primary.stats();
    let since = Instant::now();
    phone.idle(Duration::from_secs(5));
    let after = primary.stats();
    let pings = after.pings - before.pings;
    let pongs = after.pongs - before.pongs;
    assert!((4..=7).contains(&pings), "{pings} pings in 5 s at a 1 s interval");
    assert!(pongs + 1 >= pings, "every ping but maybe the last answered: {pings} pings, {pongs} pongs");
    assert_eq!(phone.count(since, |e| matches!(e, Event::FlowLost { .. })), 0, "{}", phone.history());
    assert_eq!(after.accepted, 1);
}

#[test]
fn a_server_that_never_pongs_is_kept_alive_with_options() {
    let _w = watchdog("no pongs", Duration::from_secs(60));
    let lab = Lab::new();
    let primary = lab.registrar_with(|c| c.answer_pings = false);
    let mut phone = lab.phone(lab.config(&primary, None));
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    phone.wait("PongsUnsupported", Duration::from_secs(10), |e| matches!(e, Event::PongsUnsupported { .. }));
    let before = primary.stats();
    let since = Instant::now();
    phone.idle(Duration::from_secs(3));
    let after = primary.stats();
    assert!(after.options > before.options, "keep-alive continues with OPTIONS: {before:?} -> {after:?}");
    assert_eq!(phone.count(since, |e| matches!(e, Event::FlowLost { .. })), 0, "{}", phone.history());
    assert_eq!(after.accepted, 1, "the connection was kept");
}
