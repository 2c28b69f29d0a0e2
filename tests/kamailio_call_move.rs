//! Calls across a proxy failover (issue 15), against the topology the issue asks for: a
//! primary and a backup Kamailio (`tests/kamailio/`) that both record-route one shared
//! name, `example.test`, without outbound flow tokens, answer for it, present a
//! certificate naming it, and route in-dialog requests only on what each holds, its
//! registrations and its connections (`KamailioConfig::shared_name`); Debian's dnsmasq (`tests/common/dnsmasq.rs`) resolving
//! the name to both (`_sips._tcp.example.test` SRV, priority 10 the primary on 127.0.0.1,
//! 20 the backup on 127.0.0.2); and baresip (`tests/kamailio/baresip.rs`) as the far end,
//! registered on both proxies at once (two outbound flows), auto-answering.
//!
//! The phone, configured with the shared name as its proxy and located by SRV, calls
//! baresip with an offer baresip accepts. Checked: the call is confirmed, the route set
//! the phone sends its ACK with is the shared name alone, and baresip's BYE reaches the
//! phone, which reports the end of the call; and the same call after the primary is
//! killed: moved by a re-INVITE through the backup (answered 2xx by baresip), then ended
//! by baresip's BYE, which the backup relays to the phone's new connection.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

#[path = "common/dnsmasq.rs"]
mod dnsmasq;
mod kamailio;

use dnsmasq::{Dnsmasq, Record, Zone};
use kamailio::baresip::{self, Baresip, BaresipConfig};
use kamailio::config::password;
use kamailio::instance::{Kamailio, kill_all_live};
use kamailio::phone::{Lab, TestPhone};
use kamailio::pki::{DNS_DOMAIN, ServerCert};
use sip_ptls::config::{AccountConfig, ServerAddr};
use sip_ptls::dns::DnsQueryType;
use sip_ptls::ids::{AccountId, CallId, Server};
use sip_ptls::{CallOutcome, EndReason, Event};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// The whole scenario ends within this, or the watchdog kills Kamailio, dnsmasq, baresip
/// and the test binary.
const LIMIT: Duration = Duration::from_secs(150);
/// Generous bound on every wait: no timing is asserted beyond it.
const WITHIN: Duration = Duration::from_secs(30);
/// The name both proxies record-route and answer for: the phone's SIP domain.
const SHARED: &str = DNS_DOMAIN;
/// The backup's loopback address (the primary listens on 127.0.0.1).
const BACKUP_IP: &str = "127.0.0.2";
/// The phone's one line and baresip's account.
const PHONE_USER: &str = "alice";
const FAR_USER: &str = "dave";

fn kill_everything() {
    kill_all_live();
    dnsmasq::kill_all();
    baresip::kill_all();
}

/// The topology, in drop order: baresip, then DNS, then the Kamailio lab.
struct World {
    far: Baresip,
    dns: Dnsmasq,
    lab: Lab,
    /// Where the phone's offer says it takes audio; bound so that baresip's RTP has a home.
    rtp: UdpSocket,
}

impl World {
    /// Both proxies with the shared name, the DNS records, and baresip registered on both.
    fn start(name: &'static str) -> World {
        let lab = Lab::start(name, LIMIT + Duration::from_secs(10), |c| {
            c.cert = ServerCert::Domain;
            c.shared_name = Some(SHARED.to_owned());
            if c.name == "backup" {
                c.ip = BACKUP_IP.to_owned();
            }
        });
        let (p, b) = (lab.primary.cfg.port, lab.backup.cfg.port);
        let dns = Dnsmasq::start(&Zone::new(
            300,
            vec![
                Record::srv(&format!("_sips._tcp.{SHARED}"), 10, 10, p, &format!("sip1.{SHARED}")),
                Record::srv(&format!("_sips._tcp.{SHARED}"), 20, 10, b, &format!("sip2.{SHARED}")),
                Record::address(&format!("sip1.{SHARED}"), "127.0.0.1"),
                Record::address(&format!("sip2.{SHARED}"), BACKUP_IP),
            ],
        ));
        let far = Baresip::start(
            lab.dir.path(),
            &BaresipConfig {
                user: FAR_USER.to_owned(),
                password: password(FAR_USER).to_owned(),
                domain: SHARED.to_owned(),
                outbound: vec![
                    format!("sip:127.0.0.1:{p};transport=tls"),
                    format!("sip:{BACKUP_IP}:{b};transport=tls"),
                ],
                dns: dns.addr(),
                ca: lab.pki.ca.clone(),
            },
        );
        lab.until("baresip registered on both proxies (two flows)", WITHIN, |l| {
            bound(&l.primary, FAR_USER) && bound(&l.backup, FAR_USER)
        });
        let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind the phone's RTP port");
        World { far, dns, lab, rtp }
    }

    /// The phone: one line, the shared name as its proxy, located by SRV through dnsmasq.
    fn phone(&self) -> TestPhone {
        let mut config = self.lab.config();
        config.accounts = vec![AccountConfig::new(PHONE_USER, password(PHONE_USER))];
        config.proxy = Some(ServerAddr::new(SHARED, 0));
        config.backup_proxy = None;
        config.dns_query_type = DnsQueryType::SrvAndA;
        config.dns_servers = vec![self.dns.addr()];
        self.lab.phone(config)
    }

    /// An audio offer baresip accepts (G.711, which its `g711` module has).
    fn offer(&self) -> Vec<u8> {
        let port = self.rtp.local_addr().expect("RTP address").port();
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=sip-ptls\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n"
        )
        .into_bytes()
    }

    /// The phone calls baresip; both see the call confirmed. Returns the call and its
    /// Call-ID (from the primary's log of the phone's ACK).
    fn confirmed_call(&mut self, phone: &mut TestPhone) -> (CallId, String) {
        let call = phone.handle.place_call_blocking(AccountId(0), FAR_USER, self.offer()).expect("place the call");
        let (_, outcome) = phone.outcome(call, WITHIN);
        assert_eq!(
            outcome,
            Event::CallOutcome { call, outcome: CallOutcome::Answered },
            "{}\nbaresip log: {}",
            phone.history(),
            self.far.log_path().display()
        );
        self.far.wait_event("CALL_ESTABLISHED", WITHIN);
        self.lab.until("the phone's ACK through the primary", WITHIN, |l| {
            !l.primary.log_lines(&["INDIALOG primary ACK"]).is_empty()
        });
        let line = self.lab.primary.log_lines(&["INDIALOG primary ACK"]).remove(0);
        (call, value_of(&line, "callid").to_owned())
    }
}

/// Whether `user` has a binding on `k`.
fn bound(k: &Kamailio, user: &str) -> bool {
    k.try_kamcmd(&["ul.dump"]).is_ok_and(|d| kamailio::kamcmd::parse_ul_dump(&d).iter().any(|b| b.aor == user))
}

/// The value of `key=` in a Kamailio log line (up to the next space).
fn value_of<'a>(line: &'a str, key: &str) -> &'a str {
    let at = line.find(&format!(" {key}=")).unwrap_or_else(|| panic!("no {key}= in {line:?}"));
    line[at + key.len() + 2..].split(' ').next().unwrap_or("")
}

/// The route set the phone's in-dialog request carried (its one Route), as the proxy logged
/// it: the shared name, with no user part (no flow token) and no other hop.
fn assert_shared_route(line: &str) {
    let route = value_of(line, "route");
    assert!(
        route.starts_with(&format!("<sip:{SHARED};transport=tls;")) && route.contains(";lr"),
        "the route set names the shared name alone, without a flow token: {line}"
    );
}

/// RTP datagrams baresip sent to the phone's offer within `d` (none is required: the
/// figure is printed).
fn rtp_received(rtp: &UdpSocket, d: Duration) -> usize {
    rtp.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let end = Instant::now() + d;
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while Instant::now() < end {
        if rtp.recv(&mut buf).is_ok() {
            n += 1;
        }
    }
    n
}

#[test]
fn a_call_to_baresip_through_the_shared_name_is_confirmed_and_ended_by_baresip() {
    let _w = kamailio::watchdog::watchdog_with("kamailio call move (today)", LIMIT, kill_everything);
    let mut world = World::start("call-shared-rr");
    let mut phone = world.phone();
    phone.all_registered(Server::Primary, WITHIN);
    assert!(bound(&world.lab.primary, PHONE_USER), "the phone registered on the SRV priority-10 proxy");

    let (call, call_id) = world.confirmed_call(&mut phone);
    let ack = world.lab.primary.log_lines(&["INDIALOG primary ACK", &call_id]).remove(0);
    assert_shared_route(&ack);
    assert!(
        !world.lab.primary.log_lines(&["RELAY primary ACK"]).is_empty(),
        "the primary relayed the ACK to baresip from its own registration"
    );
    eprintln!("call move: confirmed; the phone's ACK: {ack}");
    eprintln!("call move: {} RTP datagrams from baresip in 1 s", rtp_received(&world.rtp, Duration::from_secs(1)));

    let hung_up = Instant::now();
    world.far.hang_up();
    let (at, _) = phone.wait(
        "baresip's BYE",
        WITHIN,
        |e| matches!(e, Event::CallEnded { call: c, reason: EndReason::RemoteHangup } if *c == call),
    );
    world.far.wait_event("CALL_CLOSED", WITHIN);
    let bye = world.lab.primary.log_lines(&["INDIALOG primary BYE", &call_id]);
    assert_eq!(bye.len(), 1, "baresip's BYE went through the primary, the shared name's first target");
    assert_shared_route(&bye[0]);
    eprintln!(
        "call move: baresip hung up; the phone reported the end {} ms later; the BYE: {}",
        at.duration_since(hung_up).as_millis(),
        bye[0]
    );
    drop(phone);
}

#[test]
fn a_call_moved_to_the_backup_after_the_primary_dies_is_ended_by_baresip() {
    let _w = kamailio::watchdog::watchdog_with("kamailio call move (failover)", LIMIT, kill_everything);
    let mut world = World::start("call-move");
    let mut phone = world.phone();
    phone.all_registered(Server::Primary, WITHIN);
    let (call, call_id) = world.confirmed_call(&mut phone);

    // The primary dies during the call; the phone registers again on the shared name's
    // other target, the backup, and baresip keeps its second flow there.
    let cut = Instant::now();
    world.lab.primary.kill();
    phone.wait("the flow lost", WITHIN, |e| matches!(e, Event::FlowLost { .. }));
    phone.all_registered(Server::Primary, WITHIN);
    world.lab.until("the phone registered on the backup", WITHIN, |l| bound(&l.backup, PHONE_USER));
    eprintln!("call move: primary killed; the phone registered on the backup after {} ms", cut.elapsed().as_millis());

    // Issue 15: the call is refreshed onto the new connection, a target refresh through the
    // backup (a re-INVITE: baresip does not allow UPDATE) answered 2xx by baresip. Noted,
    // not asserted yet, so that the hang-up below is seen whatever happened here.
    let refresh = format!("INDIALOG backup INVITE callid={call_id}");
    let moved = loop {
        let seen = !world.lab.backup.log_lines(&[&refresh]).is_empty()
            && !world.lab.backup.log_lines(&["REPLY backup 200 INVITE"]).is_empty();
        if seen || cut.elapsed() > WITHIN {
            break seen.then(|| cut.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("call move: refresh through the backup answered 2xx: {moved:?}");

    // baresip hangs up: its BYE follows its route set (the shared name), which now leads to
    // the backup, which routes it to the phone's binding there.
    world.far.hang_up();
    let ended = phone
        .try_wait(WITHIN, |e| matches!(e, Event::CallEnded { call: c, reason: EndReason::RemoteHangup } if *c == call));
    let through_backup = world.lab.backup.log_lines(&["INDIALOG backup BYE", &call_id]);
    let failed = world.lab.backup.log_lines(&["RELAYFAIL backup BYE"]);
    eprintln!(
        "call move: baresip's BYE at the backup: {through_backup:?}; relay failed: {failed:?}; the phone saw it: {}",
        ended.is_some()
    );
    assert!(
        ended.is_some(),
        "the phone did not see baresip's BYE after the failover\n{}\nbackup log: {}\nbaresip log: {}",
        phone.history(),
        world.lab.backup.log_path().display(),
        world.far.log_path().display()
    );
    assert!(
        moved.is_some(),
        "no target refresh of call {call_id} through the backup answered 2xx (issue 15)\n{}",
        phone.history()
    );
    drop(phone);
}
