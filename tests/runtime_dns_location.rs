//! The phone located by DNS end to end: a real DNS server (Debian's dnsmasq on loopback,
//! `tests/common/dnsmasq.rs`) serves SRV and A records for the configured domain, the
//! core asks for the lookups, the shell performs them against that server
//! (`sip persistent tls dns servers`), and the phone registers with the embedded
//! registrar at the address the records lead to. Checked: SRV priority, a target that
//! refuses left for the next one, the backup's name taking over when every primary
//! target fails, and RFC 5922: the certificate must name the configured domain, and one
//! that names only the SRV target is refused.
#![cfg(all(feature = "runtime", feature = "registrar"))]

#[path = "common/dnsmasq.rs"]
mod dnsmasq;
mod runtime_support;

use dnsmasq::{Dnsmasq, Record, Zone};
use runtime_support::{Lab, watchdog};
use sip_ptls::config::{Config, ServerAddr};
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
    let cert = lab.pki.server_cert(names).expect("a server certificate");
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
