//! Transport choices on real TLS sockets: per-call TLS opens a connection per call, and
//! `sip send sips over tls` decides between `sips:` and `sip:` on the wire.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod runtime_support;

use runtime_support::{Lab, watchdog};
use sip_ptls::Event;
use sip_ptls::config::TransportMode;
use sip_ptls::ids::{AccountId, Server};
use std::time::Duration;

#[test]
fn per_call_tls_opens_one_connection_per_call() {
    let _w = watchdog("per-call TLS", Duration::from_secs(60));
    let lab = Lab::new();
    let primary = lab.registrar();
    let mut config = lab.config(&primary, None);
    config.mode = TransportMode::PerCallTls;
    let mut phone = lab.phone(config);
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    phone.idle(Duration::from_millis(300));
    let after_register = primary.stats().accepted;
    assert!(after_register >= 2, "each registration exchange has its own connection: {after_register}");
    for i in 0..2u64 {
        let id = phone.handle.place_call_blocking(AccountId(0), "1002", Vec::new()).expect("place");
        phone.wait(
            "the call's outcome",
            Duration::from_secs(10),
            |e| matches!(e, Event::CallOutcome { call, .. } if *call == id),
        );
        let _ = phone.handle.hang_up_blocking(id);
        phone.idle(Duration::from_millis(200));
        assert_eq!(primary.stats().accepted, after_register + i + 1, "call {} opened one connection", i + 1);
    }
}

fn wire_log(sips: bool) -> Vec<String> {
    let lab = Lab::new();
    let primary = lab.registrar();
    let mut config = lab.config(&primary, None);
    config.sips_scheme = sips;
    let mut phone = lab.phone(config);
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    primary.log()
}

#[test]
fn sips_uris_on_the_wire_when_configured() {
    let _w = watchdog("sips", Duration::from_secs(60));
    let log = wire_log(true);
    let registers: Vec<&String> = log.iter().filter(|l| l.contains(" REGISTER ")).collect();
    assert!(!registers.is_empty());
    for l in registers {
        assert!(l.contains(" REGISTER sips:"), "{l}");
        assert!(l.contains("Contact: <sips:"), "{l}");
    }
}

#[test]
fn sip_uris_with_transport_tls_otherwise() {
    let _w = watchdog("sip", Duration::from_secs(60));
    let log = wire_log(false);
    let registers: Vec<&String> = log.iter().filter(|l| l.contains(" REGISTER ")).collect();
    assert!(!registers.is_empty());
    for l in registers {
        assert!(l.contains(" REGISTER sip:"), "{l}");
        assert!(l.contains("Contact: <sip:") && l.contains("transport=tls"), "{l}");
        assert!(!l.contains("sips:"), "{l}");
    }
}

#[test]
fn a_host_name_is_resolved_and_verified_by_name() {
    let _w = watchdog("host name", Duration::from_secs(60));
    let lab = Lab::new();
    let primary = lab.registrar();
    let mut config = lab.config(&primary, None);
    config.proxy = Some(sip_ptls::config::ServerAddr::new("localhost", primary.addr().port()));
    let mut phone = lab.phone(config);
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    assert_eq!(primary.stats().handshakes_ok, 1);
}

#[test]
fn a_tls_1_2_only_server_is_accepted() {
    let _w = watchdog("TLS 1.2", Duration::from_secs(60));
    let lab = Lab::new();
    let primary = lab.registrar_with(|c| c.tls12_only = true);
    let mut phone = lab.phone(lab.config(&primary, None));
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    assert_eq!(primary.stats().accepted, 1);
}
