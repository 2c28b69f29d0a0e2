//! The topology of the call-move tests (`tests/kamailio_call_move.rs`,
//! `tests/kamailio_call_move_more.rs`): two Kamailio, dnsmasq and baresip ([`World`]), and
//! the checks they share. Included by path from each test binary, next to its `dnsmasq`
//! and `kamailio` modules.
#![allow(dead_code)]

use crate::dnsmasq::{self, Dnsmasq, Record, Zone};
use crate::kamailio::baresip::{self, Baresip, BaresipConfig};
use crate::kamailio::config::password;
use crate::kamailio::instance::{Kamailio, kill_all_live};
use crate::kamailio::phone::{Lab, TestPhone};
use crate::kamailio::pki::{DNS_DOMAIN, ServerCert};
use sip_ptls::config::{AccountConfig, ServerAddr};
use sip_ptls::dns::DnsQueryType;
use sip_ptls::ids::{AccountId, CallId};
use sip_ptls::{CallOutcome, Event};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// The whole scenario ends within this, or the watchdog kills Kamailio, dnsmasq, baresip
/// and the test binary.
pub const LIMIT: Duration = Duration::from_secs(150);
/// Generous bound on every wait: no timing is asserted beyond it.
pub const WITHIN: Duration = Duration::from_secs(30);
/// The name both proxies record-route and answer for: the phone's SIP domain.
pub const SHARED: &str = DNS_DOMAIN;
/// The backup's loopback address (the primary listens on 127.0.0.1).
pub const BACKUP_IP: &str = "127.0.0.2";
/// The phone's one line and baresip's account.
pub const PHONE_USER: &str = "alice";
pub const FAR_USER: &str = "dave";

pub fn kill_everything() {
    kill_all_live();
    dnsmasq::kill_all();
    baresip::kill_all();
}

/// The topology, in drop order: baresip, then DNS, then the Kamailio lab.
pub struct World {
    pub far: Baresip,
    pub dns: Dnsmasq,
    pub lab: Lab,
    /// Where the phone's offer says it takes audio; bound so that baresip's RTP has a home.
    pub rtp: UdpSocket,
}

impl World {
    /// Both proxies with the shared name, the DNS records, and baresip registered on both.
    pub fn start(name: &'static str) -> World {
        World::start_with(name, true)
    }

    /// [`World::start`]; without `shared`, each proxy record-routes its own address (the
    /// default `KamailioConfig`: `record_route()`), everything else alike.
    pub fn start_with(name: &'static str, shared: bool) -> World {
        World::start_holding(name, shared, 4)
    }

    /// [`World::start_with`], baresip holding up to `max_calls` calls at once (the
    /// benchmark's ten calls need more than baresip's default of 4).
    pub fn start_holding(name: &'static str, shared: bool, max_calls: u32) -> World {
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
                // The shared name's own address, for a phone that names the backup as its
                // backup proxy (the shared name with the backup's port: [`World::phone_with_backup_proxy`]).
                Record::address(SHARED, BACKUP_IP),
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
                max_calls,
            },
        );
        lab.until("baresip registered on both proxies (two flows)", WITHIN, |l| {
            bound(&l.primary, FAR_USER) && bound(&l.backup, FAR_USER)
        });
        let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind the phone's RTP port");
        World { far, dns, lab, rtp }
    }

    /// The phone: one line, the shared name as its proxy, located by SRV through dnsmasq.
    pub fn phone(&self) -> TestPhone {
        self.lab.phone(self.phone_config())
    }

    fn phone_config(&self) -> sip_ptls::config::Config {
        let mut config = self.lab.config();
        config.accounts = vec![AccountConfig::new(PHONE_USER, password(PHONE_USER))];
        config.proxy = Some(ServerAddr::new(SHARED, 0));
        config.backup_proxy = None;
        config.dns_query_type = DnsQueryType::SrvAndA;
        config.dns_servers = vec![self.dns.addr()];
        config
    }

    /// [`World::phone`], with the backup also configured as the backup proxy: the shared
    /// name (its own A record, the backup's address) with the backup's port, so that its
    /// certificate, which names the shared name, is verified as the primary's is. The
    /// phone then fails over to it at once, without the back-off between rounds.
    pub fn phone_with_backup_proxy(&self) -> TestPhone {
        let mut config = self.phone_config();
        config.backup_proxy = Some(ServerAddr::new(SHARED, self.lab.backup.cfg.port));
        self.lab.phone(config)
    }

    /// An audio offer baresip accepts (G.711, which its `g711` module has).
    pub fn offer(&self) -> Vec<u8> {
        let port = self.rtp.local_addr().expect("RTP address").port();
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=sip-ptls\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n"
        )
        .into_bytes()
    }

    /// The phone calls baresip; both see the call confirmed. Returns the call and its
    /// Call-ID (from the primary's log of the phone's ACK).
    pub fn confirmed_call(&mut self, phone: &mut TestPhone) -> (CallId, String) {
        let call = self.confirmed(phone);
        self.lab.until("the phone's ACK through the primary", WITHIN, |l| {
            !l.primary.log_lines(&["INDIALOG primary ACK"]).is_empty()
        });
        let line = self.lab.primary.log_lines(&["INDIALOG primary ACK"]).remove(0);
        (call, value_of(&line, "callid").to_owned())
    }

    /// The phone calls baresip; both see the call confirmed.
    pub fn confirmed(&mut self, phone: &mut TestPhone) -> CallId {
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
    pub fn kill_primary_and_move(&mut self, phone: &mut TestPhone, call: CallId) -> Duration {
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
pub fn bound(k: &Kamailio, user: &str) -> bool {
    k.try_kamcmd(&["ul.dump"]).is_ok_and(|d| crate::kamailio::kamcmd::parse_ul_dump(&d).iter().any(|b| b.aor == user))
}

/// The value of `key=` in a Kamailio log line (up to the next space).
pub fn value_of<'a>(line: &'a str, key: &str) -> &'a str {
    let at = line.find(&format!(" {key}=")).unwrap_or_else(|| panic!("no {key}= in {line:?}"));
    line[at + key.len() + 2..].split(' ').next().unwrap_or("")
}

/// The route set the phone's in-dialog request carried (its one Route), as the proxy logged
/// it: the shared name, with no user part (no flow token) and no other hop.
pub fn assert_shared_route(line: &str) {
    let route = value_of(line, "route");
    assert!(
        route.starts_with(&format!("<sip:{SHARED};transport=tls;")) && route.contains(";lr"),
        "the route set names the shared name alone, without a flow token: {line}"
    );
}

/// RTP datagrams baresip sent to the phone's offer within `d` (none is required: the
/// figure is printed).
pub fn rtp_received(rtp: &UdpSocket, d: Duration) -> usize {
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

/// Waits until the phone has no call left (`Status::live_calls`); returns how long it took.
pub fn no_live_call(phone: &TestPhone) -> Duration {
    let start = Instant::now();
    while phone.status().live_calls > 0 {
        assert!(start.elapsed() < WITHIN, "a call is still live: {:?}", phone.status().calls);
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}
