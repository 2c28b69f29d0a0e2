//! The phone located by DNS (RFC 3263) against real Kamailio instances, the records'
//! side: what the DNS answers say, and what the phone makes of them. Debian's dnsmasq
//! (`tests/common/dnsmasq.rs`) serves `example.test`; every Kamailio (`tests/kamailio/`)
//! presents a certificate naming only that domain (RFC 5922), so where the phone
//! registers is decided by the records alone, and checked in the registration table of
//! each Kamailio (`ul.dump`). Checked:
//!
//! - once an answer's TTL has run out, the next connection (after the first Kamailio is
//!   killed and started again on the same port) follows the changed SRV record to the
//!   second Kamailio;
//! - with `sip dns query type` 2, a NAPTR for plain TCP (`SIP+D2T`) is ignored and a
//!   `SIPS+D2T` one is followed: the Kamailio behind the wrong transport's record, and
//!   the one behind the default SRV name, get no connection;
//! - a target with an AAAA record whose address drops every packet (a firewall rule of
//!   the test's own, `tests/common/firewall.rs`) and an A record: the phone registers
//!   over IPv4 on the same target's Kamailio, listening on both, after IPv6's head start
//!   (RFC 8305), without the IPv6 attempt having been refused.
//!
//! The measured times are printed for docs/interop.md ("Deployments located by DNS").
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

#[path = "common/dnsmasq.rs"]
mod dnsmasq;
#[path = "common/firewall.rs"]
mod firewall;
mod kamailio;

use dnsmasq::{Dnsmasq, Record, Zone};
use kamailio::instance::{Kamailio, kill_all_live, listening};
use kamailio::phone::{ACCOUNTS, Lab};
use kamailio::pki::{DNS_DOMAIN, ServerCert};
use sip_ptls::config::{Config, ServerAddr};
use sip_ptls::dns::DnsQueryType;
use sip_ptls::engine::Event;
use sip_ptls::ids::Server;
use std::collections::BTreeSet;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, TcpStream};
use std::time::{Duration, Instant};

/// The whole scenario ends within this, or the watchdogs kill Kamailio, dnsmasq, the
/// firewall table and the test binary.
const LIMIT: Duration = Duration::from_secs(90);

/// Generous bound on each registration wait: no timing is asserted beyond it.
const REGISTERED_WITHIN: Duration = Duration::from_secs(30);

/// The second and third Kamailio's loopback addresses (the first listens on 127.0.0.1).
const SIP2_IP: &str = "127.0.0.2";
const SIP3_IP: &str = "127.0.0.3";

fn clean_up() {
    kill_all_live();
    dnsmasq::kill_all();
    firewall::remove_all();
}

/// The address of record of every scenario account bound on `k`.
fn bound_aors(k: &Kamailio) -> BTreeSet<String> {
    k.bindings().into_iter().map(|b| b.aor).collect()
}

fn every_account() -> BTreeSet<String> {
    ACCOUNTS.iter().map(|a| (*a).to_owned()).collect()
}

/// `k` never saw the phone: no binding, no connection, no request in its log.
fn untouched(k: &Kamailio, phone: &kamailio::phone::TestPhone) {
    let name = &k.cfg.name;
    assert!(k.bindings().is_empty(), "{name} bindings {:?}\n{}", k.bindings(), phone.history());
    assert!(k.tcp_connections().is_empty(), "{name} connections {:?}", k.tcp_connections());
    let requests = k.log_lines(&[&format!("REQ {name} ")]);
    assert!(requests.is_empty(), "{name} got requests: {requests:?}");
}

/// The lab's phone configuration with the primary given by name (`example.test`, no
/// port: SRV), no backup server, looked up at `dns`.
fn by_name(lab: &Lab, dns: &Dnsmasq, query: DnsQueryType) -> Config {
    let mut config = lab.config();
    config.proxy = Some(ServerAddr::new(DNS_DOMAIN, 0));
    config.backup_proxy = None;
    config.dns_query_type = query;
    config.dns_servers = vec![dns.addr()];
    config
}

#[test]
fn once_the_ttl_has_run_out_the_next_connection_follows_the_changed_record_to_another_kamailio() {
    let _w = kamailio::watchdog::watchdog_with("kamailio dns ttl", LIMIT, clean_up);
    // The core keeps an answer at least 5 s; dnsmasq gives SRV records the zone's TTL
    // alone, so the zone's TTL is that floor.
    const TTL: u64 = 5;
    let mut lab = Lab::start("dns-ttl", LIMIT + Duration::from_secs(10), |c| {
        c.cert = ServerCert::Domain;
        if c.name == "backup" {
            c.ip = SIP2_IP.to_owned();
        }
    });
    let (port1, port2) = (lab.primary.cfg.port, lab.backup.cfg.port);
    let zone = |port: u16, target: &str| {
        Zone::new(
            TTL as u32,
            vec![
                Record::srv("_sips._tcp.example.test", 10, 10, port, target),
                Record::address("sip1.example.test", "127.0.0.1"),
                Record::address("sip2.example.test", SIP2_IP),
            ],
        )
    };
    let mut dns = Dnsmasq::start(&zone(port1, "sip1.example.test"));
    // Before the phone's first lookup, so that the TTL is counted from no later than it.
    let start = Instant::now();
    let mut phone = lab.phone(by_name(&lab, &dns, DnsQueryType::SrvAndA));
    phone.all_registered(Server::Primary, REGISTERED_WITHIN);
    lab.kamailio_sees_all_on_one_connection(Server::Primary)
        .unwrap_or_else(|e| panic!("sip1 holds every line: {e}\n{}", phone.history()));
    untouched(&lab.backup, &phone);

    // The record now names sip2. Past the TTL, with a margin: the answer has expired,
    // but nothing needed it while the flow was up.
    dns.set_zone(&zone(port2, "sip2.example.test"));
    phone.idle((start + Duration::from_secs(TTL + 2)).saturating_duration_since(Instant::now()));
    assert_eq!(dns.queries(), Vec::<String>::new(), "DNS asked while the flow was up");
    untouched(&lab.backup, &phone);

    // sip1 dies and is back at once on the same port: a phone still using the old
    // answer would register there again.
    let cut = Instant::now();
    lab.primary.restart();
    let registered = phone.all_registered(Server::Primary, REGISTERED_WITHIN);
    let took = registered.duration_since(cut);
    lab.until("sip2 holds every line", Duration::from_secs(20), |l| bound_aors(&l.backup) == every_account());
    lab.kamailio_sees_all_on_one_connection(Server::Backup)
        .unwrap_or_else(|e| panic!("sip2 holds every line on one connection: {e}\n{}", phone.history()));
    // The expired answer was not used: sip1 was not even tried.
    let sip1 = SocketAddr::from(([127, 0, 0, 1], port1));
    let tried = phone.count(cut, |e| matches!(e, Event::AttemptFailed { addr, .. } if *addr == sip1));
    assert_eq!(tried, 0, "{}", phone.history());
    // Still nothing on the restarted sip1, a while after every line registered on sip2.
    phone.idle(Duration::from_secs(2));
    assert!(lab.primary.bindings().is_empty(), "sip1 bindings {:?}\n{}", lab.primary.bindings(), phone.history());
    let asked = dns.queries();
    assert!(asked.iter().any(|q| q == "_sips._tcp.example.test SRV"), "{asked:?}");
    eprintln!(
        "kamailio dns ttl: the SRV record changed and its {TTL} s TTL ran out; sip1 killed (and started \
         again), every line registered on the new record's target sip2 after {} ms (back-off waits: {})",
        took.as_millis(),
        phone.backoff_waits(cut).join(", ")
    );
    drop(phone);
    drop(dns);
}

#[test]
fn a_naptr_for_plain_tcp_is_ignored_and_the_sips_over_tcp_one_is_followed_to_its_kamailio() {
    let _w = kamailio::watchdog::watchdog_with("kamailio dns naptr", LIMIT, clean_up);
    // Three Kamailio instances, each the target of one record: sip1 (127.0.0.1) behind
    // the `SIPS+D2T` NAPTR's replacement, the right one; sip2 (127.0.0.2) behind the
    // `SIP+D2T` NAPTR, first in order; sip3 (127.0.0.3) behind the default SRV name
    // `_sips._tcp.example.test`, which a phone that found the NAPTR does not ask.
    let lab = Lab::start("dns-naptr", LIMIT + Duration::from_secs(10), |c| {
        c.cert = ServerCert::Domain;
        if c.name == "backup" {
            c.ip = SIP2_IP.to_owned();
        }
    });
    let sip3 = lab.start_another("third", |c| c.ip = SIP3_IP.to_owned());
    let dns = Dnsmasq::start(&Zone::new(
        300,
        vec![
            Record::naptr(DNS_DOMAIN, 10, 10, "SIP+D2T", "_sip._tcp.example.test"),
            Record::naptr(DNS_DOMAIN, 20, 10, "SIPS+D2T", "_sips._tcp.naptr.example.test"),
            Record::srv("_sip._tcp.example.test", 10, 10, lab.backup.cfg.port, "sip2.example.test"),
            Record::srv("_sips._tcp.naptr.example.test", 10, 10, lab.primary.cfg.port, "sip1.example.test"),
            Record::srv("_sips._tcp.example.test", 10, 10, sip3.cfg.port, "sip3.example.test"),
            Record::address("sip1.example.test", "127.0.0.1"),
            Record::address("sip2.example.test", SIP2_IP),
            Record::address("sip3.example.test", SIP3_IP),
        ],
    ));
    let start = Instant::now();
    let mut phone = lab.phone(by_name(&lab, &dns, DnsQueryType::NaptrSrvAndA));
    let registered = phone.all_registered(Server::Primary, REGISTERED_WITHIN);
    lab.kamailio_sees_all_on_one_connection(Server::Primary)
        .unwrap_or_else(|e| panic!("sip1 holds every line: {e}\n{}", phone.history()));
    assert_eq!(phone.count(start, |e| matches!(e, Event::AttemptFailed { .. })), 0, "{}", phone.history());
    untouched(&lab.backup, &phone);
    untouched(&sip3, &phone);
    let asked = dns.queries();
    assert!(asked.iter().any(|q| q == "example.test NAPTR"), "{asked:?}");
    assert!(asked.iter().any(|q| q == "_sips._tcp.naptr.example.test SRV"), "{asked:?}");
    assert!(!asked.iter().any(|q| q.starts_with("_sip._tcp.") || q == "_sips._tcp.example.test SRV"), "{asked:?}");
    eprintln!(
        "kamailio dns naptr: SIP+D2T ignored, SIPS+D2T followed; every line registered on sip1 {} ms after \
         the phone started (DNS queries: {})",
        registered.duration_since(start).as_millis(),
        asked.join(", ")
    );
    drop(phone);
    drop(dns);
}

#[test]
fn an_aaaa_address_that_drops_packets_falls_back_to_ipv4_on_the_same_kamailio() {
    let _w = kamailio::watchdog::watchdog_with("kamailio dns happy eyeballs", LIMIT, clean_up);
    // The lab's "backup" instance listens on 127.0.0.3 and [::1], one port: the first
    // SRV target, with an AAAA and an A record. The "primary" instance (127.0.0.1) is the
    // second target, which a phone that gave up on the first target would reach.
    let lab = Lab::start("dns-eyeballs", LIMIT + Duration::from_secs(10), |c| {
        c.cert = ServerCert::Domain;
        if c.name == "backup" {
            c.ip = SIP3_IP.to_owned();
            c.listen_ipv6 = true;
        }
    });
    let port = lab.backup.cfg.port;
    assert!(listening("::1", port), "the dual-stack Kamailio listens on [::1]:{port}");
    let dns = Dnsmasq::start(&Zone::new(
        300,
        vec![
            Record::srv("_sips._tcp.example.test", 10, 10, port, "dual.example.test"),
            Record::srv("_sips._tcp.example.test", 20, 10, lab.primary.cfg.port, "sip1.example.test"),
            Record::address("dual.example.test", "::1"),
            Record::address("dual.example.test", SIP3_IP),
            Record::address("sip1.example.test", "127.0.0.1"),
        ],
    ));
    let v6 = SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0);
    let dropped = firewall::DropTcp::to(v6);
    // The SYN is really dropped: a connection there is neither accepted nor refused.
    let probe = TcpStream::connect_timeout(&SocketAddr::V6(v6), Duration::from_millis(500));
    assert!(
        matches!(&probe, Err(e) if e.kind() == std::io::ErrorKind::TimedOut),
        "a connection to {v6} must time out behind the rule, got {probe:?}\n{}",
        dropped.listing()
    );

    let start = Instant::now();
    let mut phone = lab.phone(by_name(&lab, &dns, DnsQueryType::SrvAndA));
    let (up, _) = phone.wait("the flow up", REGISTERED_WITHIN, |e| matches!(e, Event::FlowUp { .. }));
    let registered = phone.all_registered(Server::Primary, REGISTERED_WITHIN);
    let flow_up = up.duration_since(start);
    lab.kamailio_sees_all_on_one_connection(Server::Backup)
        .unwrap_or_else(|e| panic!("the dual-stack Kamailio holds every line: {e}\n{}", phone.history()));
    let v4_socket = format!("tls:{SIP3_IP}:{port}");
    let bindings = lab.backup.bindings();
    assert!(bindings.iter().all(|b| b.socket == v4_socket), "every line over IPv4 ({v4_socket}): {bindings:?}");
    untouched(&lab.primary, &phone);
    // IPv6 was tried first and never answered: no attempt failed (a refused [::1] would
    // have failed at once), and IPv4 came up only after IPv6's head start.
    let failed_before_up: Vec<String> = phone
        .seen
        .iter()
        .take_while(|(at, _)| *at <= up)
        .filter(|(_, e)| matches!(e.event, Event::AttemptFailed { .. } | Event::ConnectFailed { .. }))
        .map(|(_, e)| format!("{:?}", e.event))
        .collect();
    assert!(failed_before_up.is_empty(), "{failed_before_up:?}\n{}", phone.history());
    assert!(flow_up >= Duration::from_millis(200), "the flow came up after {flow_up:?}: IPv6 was not tried first");
    let asked = dns.queries();
    // dnsmasq gives the target's AAAA and A records with the SRV answer.
    assert!(asked.iter().any(|q| q == "_sips._tcp.example.test SRV"), "{asked:?}");
    eprintln!(
        "kamailio dns happy eyeballs: [::1]:{port} dropped; flow up over IPv4 ({SIP3_IP}) {} ms and every \
         line registered {} ms after the phone started",
        flow_up.as_millis(),
        registered.duration_since(start).as_millis()
    );
    drop(phone);
    drop(dropped);
    drop(dns);
}
