//! The phone located by DNS (RFC 3263) against real Kamailio instances, the
//! certificates' side: Debian's dnsmasq (`tests/common/dnsmasq.rs`) serves two SRV
//! targets of `example.test`, one Kamailio each (`tests/kamailio/`: sip1 on 127.0.0.1,
//! priority 10; sip2 on 127.0.0.2, priority 20), and what the first one presents decides
//! whether the phone stays there. Checked, in each Kamailio's registration table
//! (`ul.dump`) and log as well as in the phone's events:
//!
//! - sip1's certificate is revoked by the phone's revocation list (`sips certificate
//!   revocation list`): that target is left, for a certificate reason, and every line
//!   registers on sip2; no request ever reaches sip1;
//! - RFC 5922: sip1's certificate names only its SRV target `sip1.example.test`, not the
//!   configured domain: refused likewise; sip2's, naming `example.test`, is accepted;
//! - the trusted certificates replaced while the phone runs: sip2 presents a certificate
//!   from a CA the phone does not trust at first; once sip1 is killed the phone is
//!   refused by both targets, until its trusted-certificates file gains that CA and is
//!   read again (`PhoneHandle::reload_certificates`, the path of SIGHUP and of the
//!   command's file watch); the next connection then registers every line on sip2.
//!
//! The measured times are printed for docs/interop.md ("Deployments located by DNS").
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

#[path = "common/dnsmasq.rs"]
mod dnsmasq;
mod kamailio;

use dnsmasq::{Dnsmasq, Record, Zone};
use kamailio::instance::{Kamailio, kill_all_live};
use kamailio::phone::{ACCOUNTS, Lab, TestPhone};
use kamailio::pki::{DNS_DOMAIN, DNS_TARGET, ServerCert};
use sip_ptls::config::{Config, ServerAddr};
use sip_ptls::dns::DnsQueryType;
use sip_ptls::engine::{Event, FlowError, TransportError};
use sip_ptls::ids::Server;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The whole scenario ends within this, or the watchdogs kill Kamailio, dnsmasq and the
/// test binary.
const LIMIT: Duration = Duration::from_secs(90);

/// Generous bound on each registration wait: no timing is asserted beyond it.
const REGISTERED_WITHIN: Duration = Duration::from_secs(30);

/// The second Kamailio's loopback address (the first listens on 127.0.0.1).
const SIP2_IP: &str = "127.0.0.2";

fn kill_kamailio_and_dnsmasq() {
    kill_all_live();
    dnsmasq::kill_all();
}

/// The address of record of every scenario account bound on `k`.
fn bound_aors(k: &Kamailio) -> BTreeSet<String> {
    k.bindings().into_iter().map(|b| b.aor).collect()
}

fn every_account() -> BTreeSet<String> {
    ACCOUNTS.iter().map(|a| (*a).to_owned()).collect()
}

/// `k` never saw a SIP request: no binding, no request in its log.
fn no_sip_reached(k: &Kamailio, phone: &TestPhone) {
    let name = &k.cfg.name;
    assert!(k.bindings().is_empty(), "{name} bindings {:?}\n{}", k.bindings(), phone.history());
    let requests = k.log_lines(&[&format!("REQ {name} ")]);
    assert!(requests.is_empty(), "{name} got requests: {requests:?}");
}

/// The lab: sip1 ("primary", 127.0.0.1) presents `first`, sip2 ("backup", 127.0.0.2)
/// presents `second`.
fn start_lab(name: &'static str, first: ServerCert, second: ServerCert) -> Lab {
    Lab::start(name, LIMIT + Duration::from_secs(10), |c| {
        if c.name == "backup" {
            c.ip = SIP2_IP.to_owned();
            c.cert = second;
        } else {
            c.cert = first;
        }
    })
}

/// dnsmasq serving the two SRV targets of `example.test`: `sip1_name` (127.0.0.1,
/// priority 10) and `sip2.example.test` (127.0.0.2, priority 20).
fn two_targets(lab: &Lab, sip1_name: &str) -> Dnsmasq {
    Dnsmasq::start(&Zone::new(
        300,
        vec![
            Record::srv("_sips._tcp.example.test", 10, 10, lab.primary.cfg.port, sip1_name),
            Record::srv("_sips._tcp.example.test", 20, 10, lab.backup.cfg.port, "sip2.example.test"),
            Record::address(sip1_name, "127.0.0.1"),
            Record::address("sip2.example.test", SIP2_IP),
        ],
    ))
}

/// The lab's phone configuration with the primary given by name (`example.test`, no
/// port: SRV), no backup server, looked up at `dns`.
fn by_name(lab: &Lab, dns: &Dnsmasq) -> Config {
    let mut config = lab.config();
    config.proxy = Some(ServerAddr::new(DNS_DOMAIN, 0));
    config.backup_proxy = None;
    config.dns_query_type = DnsQueryType::SrvAndA;
    config.dns_servers = vec![dns.addr()];
    config
}

/// The certificate reason of a failed attempt at `addr`, if `e` is one.
fn certificate_refusal(e: &Event, at: SocketAddr) -> Option<String> {
    match e {
        Event::AttemptFailed { addr, reason: FlowError::Transport(TransportError::Certificate(why)), .. }
            if *addr == at =>
        {
            Some(why.clone())
        }
        _ => None,
    }
}

/// The phone started on `config` registers every line on sip2 after leaving sip1 once,
/// for a certificate reason which `reason_ok` accepts; sip1 sees no SIP request. Returns
/// the reason and the time from the start to every line registered.
fn first_target_refused_for_its_certificate(
    lab: &Lab,
    config: Config,
    reason_ok: impl Fn(&str) -> bool,
) -> (String, Duration) {
    let sip1 = SocketAddr::from(([127, 0, 0, 1], lab.primary.cfg.port));
    let start = Instant::now();
    let mut phone = lab.phone(config);
    let registered = phone.all_registered(Server::Primary, REGISTERED_WITHIN);
    let reasons: Vec<String> = phone.seen.iter().filter_map(|(_, e)| certificate_refusal(&e.event, sip1)).collect();
    assert!(matches!(reasons.as_slice(), [why] if reason_ok(why)), "{reasons:?}\n{}", phone.history());
    assert_eq!(phone.count(start, |e| matches!(e, Event::AttemptFailed { .. })), 1, "{}", phone.history());
    assert_eq!(phone.count(start, |e| matches!(e, Event::ConnectFailed { .. })), 0, "{}", phone.history());
    lab.until("sip2 holds every line", Duration::from_secs(20), |l| bound_aors(&l.backup) == every_account());
    lab.kamailio_sees_all_on_one_connection(Server::Backup)
        .unwrap_or_else(|e| panic!("sip2 holds every line on one connection: {e}\n{}", phone.history()));
    no_sip_reached(&lab.primary, &phone);
    (reasons[0].clone(), registered.duration_since(start))
}

#[test]
fn a_first_kamailio_whose_certificate_is_revoked_is_left_for_the_next_target() {
    let _w = kamailio::watchdog::watchdog_with("kamailio dns revoked", LIMIT, kill_kamailio_and_dnsmasq);
    let lab = start_lab("dns-revoked", ServerCert::DomainRevoked, ServerCert::Domain);
    let dns = two_targets(&lab, "sip1.example.test");
    let mut config = by_name(&lab, &dns);
    config.certificates.revocation_list = Some(lab.pki.crl.display().to_string());
    let (why, took) = first_target_refused_for_its_certificate(&lab, config, |why| why.contains("revoked"));
    eprintln!(
        "kamailio dns revoked: sip1 refused ({why}), every line registered on sip2 {} ms after the phone started",
        took.as_millis()
    );
    drop(dns);
}

#[test]
fn a_kamailio_whose_certificate_names_only_the_srv_target_is_refused_and_one_naming_the_domain_accepted() {
    let _w = kamailio::watchdog::watchdog_with("kamailio dns rfc 5922", LIMIT, kill_kamailio_and_dnsmasq);
    let lab = start_lab("dns-rfc5922", ServerCert::SrvTargetOnly, ServerCert::Domain);
    // sip1's SRV target name is the one name its certificate holds.
    let dns = two_targets(&lab, DNS_TARGET);
    let (why, took) =
        first_target_refused_for_its_certificate(&lab, by_name(&lab, &dns), |why| why.contains(DNS_DOMAIN));
    eprintln!(
        "kamailio dns rfc 5922: sip1 ({DNS_TARGET} only) refused ({why}), every line registered on sip2 \
         (naming {DNS_DOMAIN}) {} ms after the phone started",
        took.as_millis()
    );
    drop(dns);
}

#[test]
fn trusted_certificates_replaced_while_running_let_the_next_connection_register_on_another_cas_kamailio() {
    let _w = kamailio::watchdog::watchdog_with("kamailio dns reload", LIMIT, kill_kamailio_and_dnsmasq);
    let mut lab = start_lab("dns-reload", ServerCert::Domain, ServerCert::DomainOtherCa);
    let dns = two_targets(&lab, "sip1.example.test");
    let sip2 = SocketAddr::new(SIP2_IP.parse().expect("an address"), lab.backup.cfg.port);
    // The phone's own trusted-certificates file, our CA only at first.
    let ours = std::fs::read_to_string(&lab.pki.ca).expect("read our CA");
    lab.dir.write("trusted.pem", &ours).expect("write the trusted certificates");
    let mut config = by_name(&lab, &dns);
    // Relative: read from the lab's directory, as the phone and the reload both do.
    config.certificates.trusted_certificates = Some("trusted.pem".into());
    let (files, mode) = (config.certificates.clone(), config.mode);
    let mut phone = lab.phone(config);
    phone.all_registered(Server::Primary, REGISTERED_WITHIN);
    lab.kamailio_sees_all_on_one_connection(Server::Primary)
        .unwrap_or_else(|e| panic!("sip1 holds every line: {e}\n{}", phone.history()));

    // sip1 dies: sip2 is tried and refused, its CA not trusted; the phone backs off.
    lab.primary.kill();
    let (_, refused) = phone.wait("sip2 refused for its certificate", REGISTERED_WITHIN, |e| {
        certificate_refusal(e, sip2).is_some()
            || matches!(e, Event::ConnectFailed { reason: FlowError::Transport(TransportError::Certificate(_)), .. })
    });
    let refused = match refused {
        Event::AttemptFailed { reason: FlowError::Transport(TransportError::Certificate(why)), .. }
        | Event::ConnectFailed { reason: FlowError::Transport(TransportError::Certificate(why)), .. } => why,
        other => unreachable!("{other:?}"),
    };
    assert!(refused.contains("not in the trusted certificates"), "{refused}");
    let (backoff_at, pending) =
        match phone.wait("a back-off", REGISTERED_WITHIN, |e| matches!(e, Event::Backoff { .. })) {
            (at, Event::Backoff { wait, .. }) => (at, wait),
            (_, other) => unreachable!("{other:?}"),
        };
    no_sip_reached(&lab.backup, &phone);

    // The file gains sip2's CA and is read again; the next connection (the next round
    // after the back-off) uses it.
    let other = std::fs::read_to_string(&lab.pki.other_ca).expect("read the other CA");
    lab.dir.write("trusted.pem", format!("{ours}{other}")).expect("write the trusted certificates");
    let reload = Instant::now();
    let closed = phone.handle.reload_certificates_blocking(&files, mode, lab.dir.path()).expect("the new file loads");
    assert_eq!(closed, Some(0), "no connection was up to close");
    let registered = phone.all_registered(Server::Primary, REGISTERED_WITHIN);
    lab.until("sip2 holds every line", Duration::from_secs(20), |l| bound_aors(&l.backup) == every_account());
    lab.kamailio_sees_all_on_one_connection(Server::Backup)
        .unwrap_or_else(|e| panic!("sip2 holds every line on one connection: {e}\n{}", phone.history()));
    eprintln!(
        "kamailio dns reload: sip2 refused ({refused}); trusted certificates replaced, every line registered \
         on sip2 {} ms after the reload (a back-off of {pending:?} had begun {} ms before it; waits since: {})",
        registered.duration_since(reload).as_millis(),
        reload.duration_since(backoff_at).as_millis(),
        phone.backoff_waits(reload).join(", ")
    );
    drop(phone);
    drop(dns);
}
