//! The phone located by DNS (RFC 3263) against real Kamailio instances: Debian's dnsmasq
//! (`tests/common/dnsmasq.rs`) serves `_sips._tcp.example.test` with two SRV targets, one
//! Kamailio each (`tests/kamailio/`), both presenting a certificate that names only the
//! configured domain `example.test` (RFC 5922). Checked: the phone registers every line
//! on the target of the lower SRV priority, as that Kamailio's registration table shows,
//! and once that Kamailio is killed it registers every line on the other target, still
//! its primary server (both are targets of the primary's name), without the server ever
//! failing. The time from the kill to every line registered again is printed for
//! docs/interop.md ("Deployments located by DNS"). A second test has every target of
//! `example.test` down (a killed Kamailio, a closed port) and checks that the backup's name
//! `backup.test` takes over: every line registered on the backup server's Kamailio, whose
//! certificate names `backup.test`, after the primary failed exactly once.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

#[path = "common/dnsmasq.rs"]
mod dnsmasq;
mod kamailio;

use dnsmasq::{Dnsmasq, Record, Zone};
use kamailio::instance::kill_all_live;
use kamailio::phone::{ACCOUNTS, Lab};
use kamailio::pki::{DNS_BACKUP_DOMAIN, DNS_DOMAIN, ServerCert};
use sip_ptls::config::ServerAddr;
use sip_ptls::dns::DnsQueryType;
use sip_ptls::engine::Event;
use sip_ptls::ids::Server;
use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// The whole scenario ends within this, or the watchdogs kill Kamailio, dnsmasq and the
/// test binary.
const LIMIT: Duration = Duration::from_secs(90);

/// Generous bound on each registration wait: no timing is asserted beyond it.
const REGISTERED_WITHIN: Duration = Duration::from_secs(30);

/// The second Kamailio's loopback address (the first listens on 127.0.0.1).
const SIP2_IP: &str = "127.0.0.2";

/// A loopback port on `ip` where nothing listens: bound, then let go.
fn closed_port(ip: &str) -> u16 {
    let listener = TcpListener::bind((ip, 0)).expect("bind a port to let go");
    listener.local_addr().expect("its address").port()
}

fn kill_kamailio_and_dnsmasq() {
    kill_all_live();
    dnsmasq::kill_all();
}

/// The address of record of every scenario account bound on `k`.
fn bound_aors(k: &kamailio::instance::Kamailio) -> BTreeSet<String> {
    k.bindings().into_iter().map(|b| b.aor).collect()
}

#[test]
fn srv_priority_is_followed_and_the_next_target_takes_over_when_the_first_kamailio_dies() {
    // Lab's own watchdog kills the Kamailio instances only; this one, earlier, also dnsmasq.
    let _w = kamailio::watchdog::watchdog_with("kamailio dns", LIMIT, kill_kamailio_and_dnsmasq);
    // The lab's "primary" instance is the first SRV target (sip1, 127.0.0.1), its "backup"
    // instance the second (sip2, 127.0.0.2); the phone has no backup server configured.
    let mut lab = Lab::start("dns", LIMIT + Duration::from_secs(10), |c| {
        c.cert = ServerCert::Domain;
        if c.name == "backup" {
            c.ip = SIP2_IP.to_owned();
        }
    });
    let sip1 = SocketAddr::from(([127, 0, 0, 1], lab.primary.cfg.port));
    let sip2 = SocketAddr::new(SIP2_IP.parse().expect("an address"), lab.backup.cfg.port);
    let srv = |priority, port, target: &str| Record::srv("_sips._tcp.example.test", priority, 10, port, target);
    let dns = Dnsmasq::start(&Zone::new(
        300,
        vec![
            // Out of priority order in the file, so that order is not what decides.
            srv(20, sip2.port(), "sip2.example.test"),
            srv(10, sip1.port(), "sip1.example.test"),
            Record::address("sip1.example.test", "127.0.0.1"),
            Record::address("sip2.example.test", SIP2_IP),
        ],
    ));
    let mut config = lab.config();
    config.proxy = Some(ServerAddr::new(DNS_DOMAIN, 0));
    config.backup_proxy = None;
    config.dns_query_type = DnsQueryType::SrvAndA;
    config.dns_servers = vec![dns.addr()];
    let every: BTreeSet<String> = ACCOUNTS.iter().map(|a| (*a).to_owned()).collect();

    // (a) SRV priority: every line registered on sip1, over one connection; sip2 untouched.
    let start = Instant::now();
    let mut phone = lab.phone(config);
    let registered = phone.all_registered(Server::Primary, REGISTERED_WITHIN);
    lab.kamailio_sees_all_on_one_connection(Server::Primary)
        .unwrap_or_else(|e| panic!("sip1 holds every line: {e}\n{}", phone.history()));
    assert!(lab.backup.bindings().is_empty(), "sip2 bindings {:?}", lab.backup.bindings());
    assert!(lab.backup.tcp_connections().is_empty(), "sip2 connections {:?}", lab.backup.tcp_connections());
    assert_eq!(phone.count(start, |e| matches!(e, Event::AttemptFailed { .. })), 0, "{}", phone.history());
    let asked = dns.queries();
    assert!(asked.iter().any(|q| q == "_sips._tcp.example.test SRV"), "{asked:?}");
    eprintln!(
        "kamailio dns: every line registered on sip1 ({sip1}) {} ms after the phone started",
        registered.duration_since(start).as_millis()
    );

    // (b) sip1 dies: the phone walks on to sip2, the other target of the same name.
    let cut = Instant::now();
    lab.primary.kill();
    let again = phone.all_registered(Server::Primary, REGISTERED_WITHIN);
    let took = again.duration_since(cut);
    lab.until("sip2 holds every line", Duration::from_secs(20), |l| bound_aors(&l.backup) == every);
    lab.kamailio_sees_all_on_one_connection(Server::Backup)
        .unwrap_or_else(|e| panic!("sip2 holds every line on one connection: {e}\n{}", phone.history()));
    let saved = lab.backup.log_lines(&["SAVED backup"]);
    assert_eq!(saved.len(), ACCOUNTS.len(), "one REGISTER saved a line on sip2: {saved:?}");
    // The server never failed: a failed target is left for the next one.
    assert_eq!(phone.count(cut, |e| matches!(e, Event::ConnectFailed { .. })), 0, "{}", phone.history());
    assert!(phone.all_registered_on(Server::Primary));
    let sip1_refused =
        phone.count(cut, |e| matches!(e, Event::AttemptFailed { server: Server::Primary, addr, .. } if *addr == sip1));
    let backoff = phone.backoff_waits(cut);
    eprintln!(
        "kamailio dns: sip1 killed, every line registered again on sip2 ({sip2}) after {} ms \
         (back-off waits: {}; sip1 tried and refused {sip1_refused} time(s) meanwhile)",
        took.as_millis(),
        backoff.join(", ")
    );
    drop(phone);
    drop(dns);
}

#[test]
fn the_backup_name_takes_over_when_every_primary_target_is_down() {
    let _w = kamailio::watchdog::watchdog_with("kamailio dns backup", LIMIT, kill_kamailio_and_dnsmasq);
    // The lab's "primary" instance is killed at once: its port is the first target of
    // `example.test`. The second target is a closed port on 127.0.0.3. The lab's "backup"
    // instance (127.0.0.2) is the only target of `backup.test`, the phone's backup server.
    let mut lab = Lab::start("dns-backup", LIMIT + Duration::from_secs(10), |c| {
        if c.name == "backup" {
            c.ip = SIP2_IP.to_owned();
            c.cert = ServerCert::BackupDomain;
        } else {
            c.cert = ServerCert::Domain;
        }
    });
    lab.primary.kill();
    let dead1 = SocketAddr::from(([127, 0, 0, 1], lab.primary.cfg.port));
    let dead2 = SocketAddr::from(([127, 0, 0, 3], closed_port("127.0.0.3")));
    let sip3 = SocketAddr::new(SIP2_IP.parse().expect("an address"), lab.backup.cfg.port);
    let dns = Dnsmasq::start(&Zone::new(
        300,
        vec![
            Record::srv("_sips._tcp.example.test", 10, 10, dead1.port(), "sip1.example.test"),
            Record::srv("_sips._tcp.example.test", 20, 10, dead2.port(), "sip2.example.test"),
            Record::srv("_sips._tcp.backup.test", 10, 10, sip3.port(), "sip3.backup.test"),
            Record::address("sip1.example.test", "127.0.0.1"),
            Record::address("sip2.example.test", "127.0.0.3"),
            Record::address("sip3.backup.test", SIP2_IP),
        ],
    ));
    let mut config = lab.config();
    config.proxy = Some(ServerAddr::new(DNS_DOMAIN, 0));
    config.backup_proxy = Some(ServerAddr::new(DNS_BACKUP_DOMAIN, 0));
    config.dns_query_type = DnsQueryType::SrvAndA;
    config.dns_servers = vec![dns.addr()];
    let every: BTreeSet<String> = ACCOUNTS.iter().map(|a| (*a).to_owned()).collect();

    let start = Instant::now();
    let mut phone = lab.phone(config);
    let registered = phone.all_registered(Server::Backup, REGISTERED_WITHIN);
    assert!(phone.all_registered_on(Server::Backup), "{}", phone.history());
    lab.until("the backup's Kamailio holds every line", Duration::from_secs(20), |l| bound_aors(&l.backup) == every);
    lab.kamailio_sees_all_on_one_connection(Server::Backup).unwrap_or_else(|e| {
        panic!("the backup's Kamailio holds every line on one connection: {e}\n{}", phone.history())
    });
    // Before the backup's flow came up: both primary targets tried (one failed attempt
    // left for the next target), the primary server failed exactly once. Later failures
    // of the primary are failback probes.
    let up = phone
        .seen
        .iter()
        .position(|(_, e)| matches!(e.event, Event::FlowUp { server: Server::Backup }))
        .unwrap_or_else(|| panic!("no flow up on the backup\n{}", phone.history()));
    let before = &phone.seen[..up];
    let failed =
        before.iter().filter(|(_, e)| matches!(e.event, Event::ConnectFailed { server: Server::Primary, .. })).count();
    let attempts: Vec<SocketAddr> = before
        .iter()
        .filter_map(|(_, e)| match &e.event {
            Event::AttemptFailed { server: Server::Primary, addr, .. } => Some(*addr),
            _ => None,
        })
        .collect();
    assert_eq!(failed, 1, "the primary failed once before the backup: {}", phone.history());
    assert_eq!(attempts, vec![dead1], "the first primary target left for the second: {}", phone.history());
    let asked = dns.queries();
    assert!(asked.iter().any(|q| q == "_sips._tcp.example.test SRV"), "{asked:?}");
    assert!(asked.iter().any(|q| q == "_sips._tcp.backup.test SRV"), "{asked:?}");
    eprintln!(
        "kamailio dns: every primary target down ({dead1}, {dead2}), every line registered on the \
         backup's name ({sip3}) {} ms after the phone started",
        registered.duration_since(start).as_millis()
    );
    drop(phone);
    drop(dns);
}
