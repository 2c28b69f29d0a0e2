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
//! After the move, too: the phone hangs up (its BYE reaches baresip through the backup);
//! baresip re-INVITEs (the phone answers 200 over its new connection, through the backup)
//! and then hangs up. And without the shared name (each proxy record-routes its own
//! address, an outbound flow token `sips:TOKEN@127.0.0.1:PORT` of the primary): killing the
//! primary ends the call at once, `EndReason::RouteLost`, with no call left live.
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
        World::start_with(name, true)
    }

    /// [`World::start`]; without `shared`, each proxy record-routes its own address (the
    /// default `KamailioConfig`: `record_route()`), everything else alike.
    fn start_with(name: &'static str, shared: bool) -> World {
        let lab = Lab::start(name, LIMIT + Duration::from_secs(10), |c| {
            c.cert = ServerCert::Domain;
            c.shared_name = shared.then(|| SHARED.to_owned());
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
        let call = self.confirmed(phone);
        self.lab.until("the phone's ACK through the primary", WITHIN, |l| {
            !l.primary.log_lines(&["INDIALOG primary ACK"]).is_empty()
        });
        let line = self.lab.primary.log_lines(&["INDIALOG primary ACK"]).remove(0);
        (call, value_of(&line, "callid").to_owned())
    }

    /// The phone calls baresip; both see the call confirmed.
    fn confirmed(&mut self, phone: &mut TestPhone) -> CallId {
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
        call
    }

    /// Kills the primary during `call` and waits until the phone reports the call moved to
    /// the backup; returns when it did, after the kill.
    fn kill_primary_and_move(&mut self, phone: &mut TestPhone, call: CallId) -> Duration {
        let cut = Instant::now();
        self.lab.primary.kill();
        let (at, moved) = phone.wait(
            "the call moved",
            WITHIN,
            |e| matches!(e, Event::CallMoved { call: c, .. } | Event::CallEnded { call: c, .. } if *c == call),
        );
        assert!(matches!(moved, Event::CallMoved { .. }), "{moved:?}\n{}", phone.history());
        at.duration_since(cut)
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

/// Waits until the phone has no call left (`Status::live_calls`); returns how long it took.
fn no_live_call(phone: &TestPhone) -> Duration {
    let start = Instant::now();
    while phone.status().live_calls > 0 {
        assert!(start.elapsed() < WITHIN, "a call is still live: {:?}", phone.status().calls);
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

#[test]
fn a_call_moved_to_the_backup_is_ended_by_the_phone() {
    let _w = kamailio::watchdog::watchdog_with("kamailio call move (phone hangs up)", LIMIT, kill_everything);
    let mut world = World::start("call-move-hangup");
    let mut phone = world.phone();
    phone.all_registered(Server::Primary, WITHIN);
    let (call, call_id) = world.confirmed_call(&mut phone);
    let moved = world.kill_primary_and_move(&mut phone, call);
    eprintln!("call move (phone hangs up): moved {} ms after the primary was killed", moved.as_millis());

    let hung_up = Instant::now();
    phone.handle.hang_up_blocking(call).expect("hang up");
    let (at, _) =
        phone.wait("the end of the call", WITHIN, |e| matches!(e, Event::CallEnded { call: c, .. } if *c == call));
    assert_eq!(
        phone.seen.last().map(|(_, e)| e.event.clone()),
        Some(Event::CallEnded { call, reason: EndReason::LocalHangup }),
        "{}",
        phone.history()
    );
    // baresip's CALL_CLOSED carries its last socket error (the primary's reset) as its
    // reason, whatever closed the call: its SIP trace shows the BYE it received.
    let closed = world.far.wait_event("CALL_CLOSED", WITHIN);
    let far_closed = hung_up.elapsed();
    assert!(
        world.far.log().lines().any(|l| l.starts_with(&format!("BYE sip:{FAR_USER}"))),
        "baresip received the phone's BYE: {}",
        world.far.log_path().display()
    );
    let bye = world.lab.backup.log_lines(&["INDIALOG backup BYE", &call_id, "to=sips:dave@"]);
    assert_eq!(bye.len(), 1, "the phone's BYE went through the backup, on the new connection\n{}", phone.history());
    let live = no_live_call(&phone);
    eprintln!(
        "call move (phone hangs up): CallEnded {} ms after the hang-up; baresip closed the call after {} ms ({closed}); \
         no live call {} ms later; the BYE: {}",
        at.duration_since(hung_up).as_millis(),
        far_closed.as_millis(),
        live.as_millis(),
        bye[0]
    );
    drop(phone);
}

#[test]
fn a_reinvite_from_baresip_after_the_move_is_answered_over_the_new_connection() {
    let _w = kamailio::watchdog::watchdog_with("kamailio call move (far re-INVITE)", LIMIT, kill_everything);
    let mut world = World::start("call-move-reinvite");
    let mut phone = world.phone();
    phone.all_registered(Server::Primary, WITHIN);
    let (call, call_id) = world.confirmed_call(&mut phone);
    let moved = world.kill_primary_and_move(&mut phone, call);
    eprintln!("call move (far re-INVITE): moved {} ms after the primary was killed", moved.as_millis());

    // baresip's re-INVITE (To: the phone) goes through the backup to the phone's new
    // connection; the phone's 2xx comes back through the backup.
    let theirs = ["INDIALOG backup INVITE", call_id.as_str(), "to=sips:alice@"];
    let replies_before = world.lab.backup.log_lines(&["REPLY backup 200 INVITE"]).len();
    let sent = Instant::now();
    let response = world.far.command("reinvite", "");
    eprintln!("call move (far re-INVITE): baresip's response to `reinvite`: {response}");
    let answered = world.lab.until("baresip's re-INVITE answered 200 through the backup", WITHIN, |l| {
        !l.backup.log_lines(&theirs).is_empty()
            && l.backup.log_lines(&["REPLY backup 200 INVITE"]).len() > replies_before
    });
    let line = world.lab.backup.log_lines(&theirs).remove(0);
    eprintln!("call move (far re-INVITE): answered 200 after {} ms: {line}", answered.as_millis());
    // The call is still up on the phone after it (and on baresip: its BYE below).
    phone.idle(Duration::from_secs(1));
    assert_eq!(phone.count(sent, |e| matches!(e, Event::CallEnded { .. })), 0, "{}", phone.history());
    assert_eq!(phone.status().live_calls, 1, "{:?}", phone.status().calls);

    // And it ends cleanly: baresip hangs up, through the backup.
    let hung_up = Instant::now();
    world.far.hang_up();
    let (at, _) = phone.wait(
        "baresip's BYE",
        WITHIN,
        |e| matches!(e, Event::CallEnded { call: c, reason: EndReason::RemoteHangup } if *c == call),
    );
    world.far.wait_event("CALL_CLOSED", WITHIN);
    let live = no_live_call(&phone);
    eprintln!(
        "call move (far re-INVITE): baresip hung up; the phone reported the end {} ms later; no live call {} ms after",
        at.duration_since(hung_up).as_millis(),
        live.as_millis()
    );
    drop(phone);
}

#[test]
fn a_call_whose_route_names_the_dead_primary_ends_with_route_lost() {
    let _w = kamailio::watchdog::watchdog_with("kamailio call move (route lost)", LIMIT, kill_everything);
    // No shared name: each proxy record-routes its own address.
    let mut world = World::start_with("call-route-lost", false);
    let mut phone = world.phone();
    phone.all_registered(Server::Primary, WITHIN);
    let call = world.confirmed(&mut phone);
    world.lab.until("the phone's ACK through the primary", WITHIN, |l| {
        !l.primary.log_lines(&["REQ primary ACK"]).is_empty()
    });
    // The route set the phone holds is the Record-Route baresip answered with: the
    // primary's own address first.
    let primary = format!("127.0.0.1:{}", world.lab.primary.cfg.port);
    let log = world.far.log();
    let rr: Vec<&str> = log.lines().filter(|l| l.to_ascii_lowercase().starts_with("record-route:")).collect();
    eprintln!("call move (route lost): Record-Route in baresip's trace: {rr:?}");
    assert!(
        !rr.is_empty() && rr.iter().all(|l| l.contains(&primary)),
        "the route names the primary {primary}: {rr:?}\nbaresip log: {}",
        world.far.log_path().display()
    );

    let cut = Instant::now();
    world.lab.primary.kill();
    let (at, ended) = phone.wait(
        "the end of the call",
        WITHIN,
        |e| matches!(e, Event::CallMoved { call: c, .. } | Event::CallEnded { call: c, .. } if *c == call),
    );
    assert_eq!(ended, Event::CallEnded { call, reason: EndReason::RouteLost }, "{}", phone.history());
    let live = no_live_call(&phone);
    phone.idle(Duration::from_secs(1));
    assert_eq!(phone.count(cut, |e| matches!(e, Event::CallMoved { .. })), 0, "{}", phone.history());
    assert_eq!(phone.status().live_calls, 0, "{:?}", phone.status().calls);
    eprintln!(
        "call move (route lost): CallEnded(RouteLost) {} ms after the primary was killed; no live call {} ms later; \
         backup saw: {:?}",
        at.duration_since(cut).as_millis(),
        live.as_millis(),
        world.lab.backup.log_lines(&["BYE"])
    );
    drop(phone);
}
