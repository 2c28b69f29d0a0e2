//! The phone located by DNS end to end: a real DNS server (Debian's dnsmasq on loopback,
//! `tests/common/dnsmasq.rs`) serves SRV and A records for the configured domain, the
//! core asks for the lookups, the shell performs them against that server
//! (`sip persistent tls dns servers`), and the phone registers with the embedded
//! registrar at the address the records lead to. Checked: SRV priority, a target that
//! refuses left for the next one, the backup's name taking over when every primary
//! target fails, and RFC 5922: the certificate must name the configured domain, and one
//! that names only the SRV target is refused. Also: an answer whose TTL ran out is asked
//! again when the phone next connects, and the new record is followed; a NAPTR record for
//! another transport is ignored while a `SIPS+D2T` one is followed; and a first target
//! whose certificate a revocation list names is left for the next target.
#![cfg(all(feature = "runtime", feature = "registrar"))]

#[path = "common/dnsmasq.rs"]
mod dnsmasq;
mod runtime_support;

use dnsmasq::{Dnsmasq, Record, Zone};
use runtime_support::{Lab, watchdog};
use sip_ptls::config::{Config, ServerAddr};
use sip_ptls::dns::DnsQueryType;
use sip_ptls::engine::{Event, FlowError, TransportError};
use sip_ptls::ids::Server;
use sip_ptls::registrar::Registrar;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// The configured domain of the primary and of the backup.
const PRIMARY: &str = "example.test";
const BACKUP: &str = "backup.test";

/// A loopback port on `ip` where nothing listens: bound, then let go.
fn closed_port(ip: &str) -> u16 {
    let listener = TcpListener::bind((ip, 0)).expect("bind a port to let go");
    listener.local_addr().expect("its address").port()
}

/// A registrar on `ip` whose certificate names only `names`.
fn registrar_on(lab: &Lab, ip: &str, names: &[&str]) -> Registrar {
    registrar_with_cert(lab, ip, lab.pki.server_cert(names).expect("a server certificate"))
}

/// A registrar on `ip` presenting `cert`.
fn registrar_with_cert(lab: &Lab, ip: &str, cert: sip_ptls::registrar::CertKey) -> Registrar {
    lab.registrar_with(|c| {
        c.bind = SocketAddr::new(ip.parse::<IpAddr>().expect("an address"), 0);
        c.cert = cert;
    })
}

/// The lab's phone configuration, with servers given by name and no port (SRV), looked
/// up at `dns`.
fn by_name(lab: &Lab, any: &Registrar, dns: &Dnsmasq, backup: bool) -> Config {
    let mut config = lab.config(any, None);
    config.proxy = Some(ServerAddr::new(PRIMARY, 0));
    config.backup_proxy = backup.then(|| ServerAddr::new(BACKUP, 0));
    config.dns_servers = vec![dns.addr()];
    config
}

fn srv(domain: &str, priority: u16, port: u16, target: &str) -> Record {
    Record::srv(&format!("_sips._tcp.{domain}"), priority, 10, port, target)
}

#[test]
fn srv_priority_is_followed_and_a_refusing_target_is_left_for_the_next() {
    let _w = watchdog("srv walk", Duration::from_secs(60));
    let lab = Lab::new();
    let sip2 = registrar_on(&lab, "127.0.0.2", &[PRIMARY]);
    let refusing = closed_port("127.0.0.1");
    let dns = Dnsmasq::start(&Zone::new(
        300,
        vec![
            // Out of priority order in the file, so that order is not what decides.
            srv(PRIMARY, 20, sip2.addr().port(), "sip2.example.test"),
            srv(PRIMARY, 10, refusing, "sip1.example.test"),
            Record::address("sip1.example.test", "127.0.0.1"),
            Record::address("sip2.example.test", "127.0.0.2"),
        ],
    ));
    let start = Instant::now();
    let mut phone = lab.phone(by_name(&lab, &sip2, &dns, false));
    phone.all_registered(Server::Primary, Duration::from_secs(15));
    let refused = SocketAddr::from(([127, 0, 0, 1], refusing));
    assert_eq!(
        phone.count(start, |e| matches!(e, Event::AttemptFailed { addr, .. } if *addr == refused)),
        1,
        "{}",
        phone.history()
    );
    assert_eq!(phone.count(start, |e| matches!(e, Event::ConnectFailed { .. })), 0, "{}", phone.history());
    assert_eq!(sip2.stats().handshakes_ok, 1);
    let asked = dns.queries();
    assert!(asked.iter().any(|q| q.contains("_sips._tcp.example.test")), "{asked:?}");
}

#[test]
fn the_backup_name_takes_over_when_every_primary_target_fails() {
    let _w = watchdog("backup name", Duration::from_secs(60));
    let lab = Lab::new();
    let backup = registrar_on(&lab, "127.0.0.3", &[BACKUP]);
    let dns = Dnsmasq::start(&Zone::new(
        300,
        vec![
            srv(PRIMARY, 10, closed_port("127.0.0.1"), "sip1.example.test"),
            srv(PRIMARY, 20, closed_port("127.0.0.2"), "sip2.example.test"),
            srv(BACKUP, 10, backup.addr().port(), "sip3.backup.test"),
            Record::address("sip1.example.test", "127.0.0.1"),
            Record::address("sip2.example.test", "127.0.0.2"),
            Record::address("sip3.backup.test", "127.0.0.3"),
        ],
    ));
    let start = Instant::now();
    let mut phone = lab.phone(by_name(&lab, &backup, &dns, true));
    phone.all_registered(Server::Backup, Duration::from_secs(15));
    let attempts = phone.count(start, |e| matches!(e, Event::AttemptFailed { server: Server::Primary, .. }));
    let failed = phone.count(start, |e| matches!(e, Event::ConnectFailed { server: Server::Primary, .. }));
    assert_eq!((attempts, failed), (1, 1), "both primary targets tried, then the backup: {}", phone.history());
}

#[test]
fn the_certificate_must_name_the_configured_domain_not_the_srv_target() {
    let _w = watchdog("rfc 5922", Duration::from_secs(60));
    let lab = Lab::new();
    // Names only the SRV target: refused, although the target's name is right.
    let target_only = registrar_on(&lab, "127.0.0.2", &["sip2.example.test"]);
    let dns = Dnsmasq::start(&Zone::new(
        300,
        vec![
            srv(PRIMARY, 10, target_only.addr().port(), "sip2.example.test"),
            Record::address("sip2.example.test", "127.0.0.2"),
        ],
    ));
    let mut phone = lab.phone(by_name(&lab, &target_only, &dns, false));
    let (_, failed) = phone.wait("the connection refused for its certificate", Duration::from_secs(15), |e| {
        matches!(e, Event::ConnectFailed { .. })
    });
    assert!(
        matches!(failed, Event::ConnectFailed { reason: FlowError::Transport(TransportError::Certificate(_)), .. }),
        "{failed:?}"
    );
    assert!(!phone.all_registered_on(Server::Primary));
    drop(phone);
    drop(target_only);

    // Names only the domain, at the same SRV target: accepted.
    let domain_only = registrar_on(&lab, "127.0.0.2", &[PRIMARY]);
    let mut dns = dns;
    dns.set_zone(&Zone::new(
        300,
        vec![
            srv(PRIMARY, 10, domain_only.addr().port(), "sip2.example.test"),
            Record::address("sip2.example.test", "127.0.0.2"),
        ],
    ));
    let mut phone = lab.phone(by_name(&lab, &domain_only, &dns, false));
    phone.all_registered(Server::Primary, Duration::from_secs(15));
}

/// A TCP listener on `addr` that accepts every connection and never answers: a server
/// whose address swallows the TLS handshake. Counts what it accepted.
struct Swallower {
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Swallower {
    fn start(addr: SocketAddr) -> Swallower {
        let listener = TcpListener::bind(addr).expect("bind the swallowing listener");
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(stream);
            }
        });
        Swallower { accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn an_ipv6_address_that_swallows_the_handshake_is_raced_by_ipv4_after_its_head_start() {
    let _w = watchdog("happy eyeballs", Duration::from_secs(60));
    let lab = Lab::new();
    let v4 = registrar_on(&lab, "127.0.0.2", &[PRIMARY]);
    let port = v4.addr().port();
    let v6 = Swallower::start(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)));
    let dns = Dnsmasq::start(&Zone::new(
        300,
        vec![
            srv(PRIMARY, 10, port, "sip1.example.test"),
            Record::address("sip1.example.test", "::1"),
            Record::address("sip1.example.test", "127.0.0.2"),
        ],
    ));
    let start = Instant::now();
    let mut phone = lab.phone(by_name(&lab, &v4, &dns, false));
    let (up, _) = phone.wait("the flow up", Duration::from_secs(15), |e| matches!(e, Event::FlowUp { .. }));
    phone.all_registered(Server::Primary, Duration::from_secs(15));
    // IPv6 was tried first and never answered; IPv4 won the race before the IPv6
    // attempt's own timeout (2 s here), so nothing failed.
    assert_eq!(v6.accepted(), 1, "{}", phone.history());
    assert_eq!(phone.count(start, |e| matches!(e, Event::AttemptFailed { .. })), 0, "{}", phone.history());
    assert_eq!(v4.stats().handshakes_ok, 1);
    eprintln!("IPv6 swallowed, flow up over IPv4 after {} ms", up.duration_since(start).as_millis());
}

#[test]
fn once_the_ttl_has_run_out_the_next_connection_follows_the_changed_record() {
    let _w = watchdog("ttl", Duration::from_secs(90));
    // The core keeps an answer at least 5 s; dnsmasq gives SRV records the zone's TTL
    // alone, so the zone's TTL is that floor.
    const TTL: u64 = 5;
    let lab = Lab::new();
    let old = registrar_on(&lab, "127.0.0.2", &[PRIMARY]);
    let new = registrar_on(&lab, "127.0.0.3", &[PRIMARY]);
    let zone = |port: u16, target: &str| {
        Zone::new(
            TTL as u32,
            vec![
                srv(PRIMARY, 10, port, target),
                Record::address("sip2.example.test", "127.0.0.2"),
                Record::address("sip3.example.test", "127.0.0.3"),
            ],
        )
    };
    let mut dns = Dnsmasq::start(&zone(old.addr().port(), "sip2.example.test"));
    // Before the phone's first lookup, so that the TTL is counted from no later than it.
    let start = Instant::now();
    let mut phone = lab.phone(by_name(&lab, &old, &dns, false));
    phone.all_registered(Server::Primary, Duration::from_secs(15));
    dns.set_zone(&zone(new.addr().port(), "sip3.example.test"));
    // Past the TTL, with a margin: the answer has expired, but nothing needed it.
    phone.idle((start + Duration::from_secs(TTL + 2)).saturating_duration_since(Instant::now()));
    assert_eq!(dns.queries(), Vec::<String>::new(), "DNS asked while the flow was up");
    assert_eq!(new.stats().accepted, 0);

    // The old registrar closes the flow and listens again: a phone still using the old
    // answer would register there once more.
    let cut = Instant::now();
    old.kill();
    old.restore().expect("the old registrar listens again");
    let registered = phone.all_registered(Server::Primary, Duration::from_secs(15));
    assert!(new.stats().handshakes_ok >= 1, "{:?}\n{}", new.stats(), phone.history());
    assert_eq!(new.bindings().len(), runtime_support::USERS.len(), "one binding a line: {:?}", new.bindings());
    assert_eq!(old.stats().handshakes_ok, 1, "the old target was not connected again: {}", phone.history());
    let asked = dns.queries();
    assert!(asked.iter().any(|q| q == "_sips._tcp.example.test SRV"), "{asked:?}");
    let backoff = phone.backoff_waits(cut);
    eprintln!(
        "registered on the changed record's target {} ms after the old flow was closed (back-off waits: {})",
        registered.duration_since(cut).as_millis(),
        backoff.join(", ")
    );
}

#[test]
fn a_naptr_for_another_transport_is_ignored_and_one_for_sips_over_tcp_is_followed() {
    let _w = watchdog("naptr", Duration::from_secs(60));
    let lab = Lab::new();
    let right = registrar_on(&lab, "127.0.0.2", &[PRIMARY]);
    // Would accept the phone, were it reached: its counters tell.
    let wrong = registrar_on(&lab, "127.0.0.3", &[PRIMARY]);
    let zone = |records: Vec<Record>| {
        let mut all = vec![
            Record::address("right.example.test", "127.0.0.2"),
            Record::address("wrong.example.test", "127.0.0.3"),
            // Plain TCP, first in order: followed, it would lead to the wrong registrar.
            Record::naptr(PRIMARY, 10, 10, "SIP+D2T", "_sip._tcp.example.test"),
            Record::srv("_sip._tcp.example.test", 10, 10, wrong.addr().port(), "wrong.example.test"),
        ];
        all.extend(records);
        Zone::new(300, all)
    };
    let config = |dns: &Dnsmasq| {
        let mut config = by_name(&lab, &right, dns, false);
        config.dns_query_type = DnsQueryType::NaptrSrvAndA;
        config
    };

    // No NAPTR for SIPS over TCP: the default SRV name.
    let mut dns = Dnsmasq::start(&zone(vec![srv(PRIMARY, 10, right.addr().port(), "right.example.test")]));
    let mut phone = lab.phone(config(&dns));
    phone.all_registered(Server::Primary, Duration::from_secs(15));
    assert_eq!(wrong.stats().accepted, 0, "{}", phone.history());
    assert_eq!(right.stats().handshakes_ok, 1);
    let asked = dns.queries();
    assert!(asked.iter().any(|q| q == "example.test NAPTR"), "{asked:?}");
    assert!(asked.iter().any(|q| q == "_sips._tcp.example.test SRV"), "{asked:?}");
    assert!(!asked.iter().any(|q| q.starts_with("_sip._tcp.")), "{asked:?}");
    drop(phone);

    // A `SIPS+D2T` NAPTR of a later order: its SRV name is used, and the default one,
    // which now leads to the wrong registrar, is not asked.
    dns.set_zone(&zone(vec![
        Record::naptr(PRIMARY, 20, 10, "SIPS+D2T", "_sips._tcp.naptr.example.test"),
        srv("naptr.example.test", 10, right.addr().port(), "right.example.test"),
        srv(PRIMARY, 10, wrong.addr().port(), "wrong.example.test"),
    ]));
    let mut phone = lab.phone(config(&dns));
    phone.all_registered(Server::Primary, Duration::from_secs(15));
    assert_eq!(wrong.stats().accepted, 0, "{}", phone.history());
    assert_eq!(right.stats().handshakes_ok, 2);
    let asked = dns.queries();
    assert!(asked.iter().any(|q| q == "_sips._tcp.naptr.example.test SRV"), "{asked:?}");
    assert!(!asked.iter().any(|q| q == "_sips._tcp.example.test SRV" || q.starts_with("_sip._tcp.")), "{asked:?}");
}

#[test]
fn a_first_target_with_a_revoked_certificate_is_left_for_the_next_target() {
    let _w = watchdog("revoked target", Duration::from_secs(60));
    let lab = Lab::new();
    let cert = |serial| lab.pki.server_cert_with_serial(&[PRIMARY], serial).expect("a server certificate");
    let revoked = registrar_with_cert(&lab, "127.0.0.1", cert(0x5e1));
    let good = registrar_with_cert(&lab, "127.0.0.2", cert(0x5e2));
    let list = lab.pki.revocation_list(&[0x5e1], false).expect("a revocation list");
    lab.dir.write("crl.pem", list).expect("write the revocation list");
    let dns = Dnsmasq::start(&Zone::new(
        300,
        vec![
            srv(PRIMARY, 10, revoked.addr().port(), "sip1.example.test"),
            srv(PRIMARY, 20, good.addr().port(), "sip2.example.test"),
            Record::address("sip1.example.test", "127.0.0.1"),
            Record::address("sip2.example.test", "127.0.0.2"),
        ],
    ));
    let mut config = by_name(&lab, &good, &dns, false);
    // Relative, like the CA file: resolved against the lab's directory.
    config.certificates.revocation_list = Some("crl.pem".into());
    let start = Instant::now();
    let mut phone = lab.phone(config);
    let registered = phone.all_registered(Server::Primary, Duration::from_secs(15));
    let refused = revoked.addr();
    let revoked_attempt = |e: &Event| {
        matches!(e, Event::AttemptFailed {
            server: Server::Primary,
            addr,
            reason: FlowError::Transport(TransportError::Certificate(why)),
        } if *addr == refused && why.contains("revoked"))
    };
    assert_eq!(phone.count(start, revoked_attempt), 1, "{}", phone.history());
    assert_eq!(phone.count(start, |e| matches!(e, Event::AttemptFailed { .. })), 1, "{}", phone.history());
    assert_eq!(phone.count(start, |e| matches!(e, Event::ConnectFailed { .. })), 0, "{}", phone.history());
    assert!(revoked.stats().accepted >= 1, "the revoked target was tried: {:?}", revoked.stats());
    assert_eq!(revoked.stats().registers, 0, "no REGISTER reaches a server whose certificate is revoked");
    assert_eq!(good.stats().handshakes_ok, 1);
    eprintln!(
        "revoked first target left, registered on the second {} ms after the phone started",
        registered.duration_since(start).as_millis()
    );
}
