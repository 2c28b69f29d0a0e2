//! The phone (`sip_ptls::runtime`) against two real Kamailio 5.6 instances over TLS on
//! loopback, with faults injected by signals to their process groups. Each scenario
//! asserts on what Kamailio reports (`ul.dump`, `core.tcp_list`, `tls.list`, its log)
//! and on the phone's events, within bounds derived from the timer constants of
//! `tests/kamailio/phone.rs` and printed as `MEASURED` lines for docs/interop.md. Every
//! phone records its trace, which is replayed and checked by the invariant monitor once
//! the phone has shut down (`tests/common/trace_check.rs`).
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod kamailio;

use kamailio::phone::{
    ACCOUNTS, BACKOFF_MAX, CONNECT_TIMEOUT, KEEPALIVE, Lab, MARGIN, PONG_TIMEOUT, PROBE_INTERVAL, STABLE_PROBES,
};
use kamailio::pki::ServerCert;
use sip_ptls::config::CertificateFiles;
use sip_ptls::ids::{AccountId, Server};
use sip_ptls::time::Duration as CoreDuration;
use sip_ptls::{CallFailure, CallOutcome, EndReason, Event, FlowError, TransportError};
use std::time::{Duration, Instant};

/// Every scenario ends within this, or its watchdog kills Kamailio and the test binary.
const LIMIT: Duration = Duration::from_secs(60);

/// First registration of every account: connect + TLS handshake (~2 ms measured) + the
/// pipelined REGISTER/401/REGISTER/200 of three accounts (~2 ms) + the margin.
const FIRST_REGISTRATION: Duration = Duration::from_millis(3000);

fn measured(scenario: &str, what: &str, took: Duration, bound: Duration) {
    println!("MEASURED {scenario}: {what}: {} ms (bound {} ms)", took.as_millis(), bound.as_millis());
    assert!(took <= bound, "{scenario}: {what} took {took:?}, bound {bound:?}");
}

fn is_flow_loss(e: &Event) -> bool {
    matches!(e, Event::FlowLost { .. } | Event::ConnectFailed { .. } | Event::FlowUp { .. })
}

/// Kamailio's reader process holds a connection for 5 s after the last byte received (a
/// CRLF ping included); `core.tcp_list` shows the seconds left in `timeout`, counting
/// 5 → 0. A connection idle longer goes back to the main process and `timeout` jumps to
/// its lifetime. Samples within `[HOLD - idle, HOLD]` prove a byte at least every `idle`.
const HOLD: i64 = 5;

/// Samples the `timeout` of the one connection on `server` every 200 ms for `window`:
/// returns (min, max, samples).
fn sample_idle_timer(lab: &Lab, server: Server, port: u16, window: Duration) -> (i64, i64, usize) {
    let start = Instant::now();
    let mut min = i64::MAX;
    let mut max = i64::MIN;
    let mut samples = 0;
    let mut series = String::new();
    while start.elapsed() < window {
        let conns = lab.instance(server).tcp_connections();
        assert_eq!(conns.len(), 1, "exactly one connection on the {server}: {conns:?}");
        assert_eq!(conns[0].src_port, port, "the same connection throughout");
        if let Some(t) = conns[0].fields.get("timeout").and_then(|t| t.parse::<i64>().ok()) {
            min = min.min(t);
            max = max.max(t);
            samples += 1;
            series.push_str(&format!("{t} "));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("Kamailio idle-timer samples: {series}");
    (min, max, samples)
}

/// Scenario 1: Three accounts registered over one TLS connection: Kamailio binds all three to the
/// one connection it holds from the phone; shutdown removes the bindings and closes it.
#[test]
fn s1_three_accounts_over_one_tls_connection() {
    let lab = Lab::start("s1", LIMIT, |_| {});
    let t0 = Instant::now();
    let mut phone = lab.phone(lab.config());
    let done = phone.all_registered(Server::Primary, FIRST_REGISTRATION);
    measured("s1", "start to every account registered", done - t0, FIRST_REGISTRATION);
    let port = lab.primary_one_connection();
    let bindings = lab.primary.bindings();
    assert!(bindings.iter().all(|b| b.reg_id == 1 && b.instance.starts_with("<urn:uuid:")), "{bindings:?}");
    assert!(bindings.iter().all(|b| b.instance == bindings[0].instance), "one instance id: {bindings:?}");
    assert_eq!(lab.primary.tls_connections().len(), 1);
    assert!(lab.backup.tcp_connections().is_empty() && lab.backup.bindings().is_empty());
    let saved = lab.primary.log_lines(&["SAVED primary", &format!("src=127.0.0.1:{port} ")]);
    assert_eq!(saved.len(), 3, "{saved:?}");

    let events = phone.shutdown();
    let unregistered = events.iter().filter(|e| matches!(e.event, Event::Unregistered { .. })).count();
    assert_eq!(unregistered, 3, "{events:?}");
    assert!(matches!(events.last().map(|e| &e.event), Some(Event::ShutdownComplete)), "{events:?}");
    lab.until("Kamailio drops the bindings and the connection", Duration::from_secs(2), |l| {
        l.primary.bindings().is_empty() && l.primary.tcp_connections().is_empty()
    });
}

/// Scenario 2: Keep-alive: Kamailio pongs every ping for several intervals; no reconnect. Kamailio's
/// own idle timer of the connection (`timeout` in `core.tcp_list`, reset by every byte
/// received) shows the pings arriving at least every keep-alive interval.
#[test]
fn s2_keepalive_pongs_without_spurious_reconnect() {
    let lab = Lab::start("s2", LIMIT, |_| {});
    let mut phone = lab.phone(lab.config());
    phone.all_registered(Server::Primary, FIRST_REGISTRATION);
    let port = lab.primary_one_connection();
    let conn_id = lab.primary.tcp_connections()[0].id;
    let since = Instant::now();
    let window = KEEPALIVE * 6;
    let (min, max, samples) = sample_idle_timer(&lab, Server::Primary, port, window);
    phone.idle(Duration::from_millis(100));
    // Pings every <= KEEPALIVE (2 s) keep the timer in [HOLD - 2 - 1, HOLD] (whole seconds).
    let floor = HOLD - i64::try_from(KEEPALIVE.as_secs()).unwrap() - 1;
    println!("MEASURED s2: Kamailio idle timer over {window:?}: {min}..{max} of {HOLD} ({samples} samples)");
    assert!(samples > 20 && min >= floor && max <= HOLD, "Kamailio saw the connection idle too long: {min}..{max}");
    assert_eq!(lab.primary.tcp_connections()[0].id, conn_id, "same Kamailio connection");
    assert_eq!(phone.count(since, is_flow_loss), 0, "no reconnect:\n{}", phone.history());
    assert_eq!(phone.count(since, |e| matches!(e, Event::PongsUnsupported { .. })), 0, "Kamailio pongs");
    assert!(lab.primary.log_lines(&["TCPCLOSED"]).is_empty() && lab.primary.log_lines(&["TCPTIMEOUT"]).is_empty());
    assert_eq!(lab.primary.bindings().len(), 3);
}

/// Scenario 3: A call from alice to bob (two accounts of the same phone) goes to Kamailio and comes
/// back over the same persistent connection (Kamailio may not open connections:
/// `set_forward_no_connect`), is answered and hung up.
#[test]
fn s3_call_routed_back_over_the_same_connection() {
    let lab = Lab::start("s3", LIMIT, |_| {});
    let mut phone = lab.phone(lab.config());
    phone.all_registered(Server::Primary, FIRST_REGISTRATION);
    let port = lab.primary_one_connection();
    let t0 = Instant::now();
    let call = phone.place(0, "bob");
    let (_, incoming) = phone.wait("bob's incoming call", Duration::from_secs(3), |e| {
        matches!(e, Event::IncomingCall { account: AccountId(1), .. })
    });
    let Event::IncomingCall { call: callee, from, .. } = incoming else { unreachable!() };
    assert!(from.contains("alice"), "{from}");
    let (answered, outcome) = phone.outcome(call, Duration::from_secs(3));
    assert!(matches!(outcome, Event::CallOutcome { outcome: CallOutcome::Answered, .. }), "{outcome:?}");
    measured("s3", "INVITE to answered (auto-answer)", answered - t0, Duration::from_secs(2));
    let relayed = lab.primary.log_lines(&["RELAY primary INVITE", &format!("127.0.0.1:{port}")]);
    assert_eq!(relayed.len(), 1, "Kamailio relayed the INVITE to the phone's connection: {}", lab.primary.log());
    assert_eq!(lab.primary.tcp_connections().len(), 1, "still one connection");

    phone.handle.hang_up_blocking(call).expect("hang up");
    phone.wait(
        "caller's call ended",
        Duration::from_secs(3),
        |e| matches!(e, Event::CallEnded { call: c, reason: EndReason::LocalHangup } if *c == call),
    );
    phone.wait(
        "callee's call ended by the BYE",
        Duration::from_secs(3),
        |e| matches!(e, Event::CallEnded { call: c, reason: EndReason::RemoteHangup } if *c == callee),
    );
    assert_eq!(lab.primary.log_lines(&["RELAY primary BYE"]).len(), 1);
    assert!(lab.primary.log_lines(&["RELAYFAIL"]).is_empty());
    assert_eq!(lab.primary_one_connection(), port, "the same connection throughout");
}

/// Scenario 4: Primary killed (SIGKILL to its process group): every account is registered on the
/// backup. Bound: the kernel resets the connection of a killed process at once, so
/// detection is immediate; then connect + TLS handshake + two pipelined REGISTER round
/// trips (a few ms measured) + MARGIN.
#[test]
fn s4_primary_killed_failover_to_backup() {
    let lab = Lab::start("s4", LIMIT, |_| {});
    let mut lab = lab;
    let mut phone = lab.phone(lab.config());
    phone.all_registered(Server::Primary, FIRST_REGISTRATION);
    lab.primary_one_connection();
    let bound = MARGIN;
    let t0 = Instant::now();
    lab.primary.kill();
    let (_, lost) = phone.wait("the flow lost", bound, |e| matches!(e, Event::FlowLost { .. }));
    assert!(matches!(lost, Event::FlowLost { server: Server::Primary, .. }), "{lost:?}");
    phone.wait("failover", bound, |e| matches!(e, Event::FailedOver));
    let done = phone.all_registered(Server::Backup, bound);
    measured("s4", "SIGKILL to every account registered on the backup (phone)", done - t0, bound);
    let seen = lab.until("Kamailio backup binds every account", bound, |l| {
        l.kamailio_sees_all_on_one_connection(Server::Backup).is_ok()
    });
    measured("s4", "SIGKILL to every binding in the backup's ul.dump", t0.elapsed().min(seen + (done - t0)), bound);
}

/// Scenario 5: Primary frozen (SIGSTOP: its sockets stay open and silent): the missing pong is
/// noticed, every account moves to the backup within keep-alive interval + pong timeout
/// plus MARGIN; after SIGCONT the primary must answer STABLE_PROBES probes in a row before
/// the phone fails back.
#[test]
fn s5_primary_frozen_failover_then_failback_after_stable_probes() {
    let mut lab = Lab::start("s5", LIMIT, |_| {});
    let mut phone = lab.phone(lab.config());
    phone.all_registered(Server::Primary, FIRST_REGISTRATION);
    lab.primary_one_connection();
    phone.idle(KEEPALIVE); // at least one ping answered: the primary is known to pong
    let bound = KEEPALIVE + PONG_TIMEOUT + MARGIN;
    let t0 = Instant::now();
    lab.primary.freeze();
    let (lost_at, lost) = phone.wait("the frozen primary detected", bound, |e| matches!(e, Event::FlowLost { .. }));
    assert!(
        matches!(lost, Event::FlowLost { server: Server::Primary, reason: FlowError::PongTimeout }),
        "detected by the pong deadline: {lost:?}"
    );
    measured("s5", "SIGSTOP to pong-timeout detection", lost_at - t0, KEEPALIVE + PONG_TIMEOUT + MARGIN);
    let done = phone.all_registered(Server::Backup, bound.saturating_sub(t0.elapsed()));
    measured("s5", "SIGSTOP to every account registered on the backup", done - t0, bound);
    lab.until("Kamailio backup binds every account", Duration::from_secs(1), |l| {
        l.kamailio_sees_all_on_one_connection(Server::Backup).is_ok()
    });

    // Stay frozen a little: probes fail (TLS handshake never finishes), no failback.
    phone.idle(PROBE_INTERVAL * 2);
    assert!(phone.all_registered_on(Server::Backup));
    let options_before = lab.primary_log_count("REQ primary OPTIONS");
    let t1 = Instant::now();
    lab.primary.thaw();
    let fb_min = PROBE_INTERVAL * u32::from(STABLE_PROBES - 1);
    let fb_bound = CONNECT_TIMEOUT + PROBE_INTERVAL * u32::from(STABLE_PROBES + 1) + MARGIN;
    let (going, _) = phone.wait("failing back", fb_bound, |e| matches!(e, Event::FailingBack));
    let back = phone.all_registered(Server::Primary, fb_bound.saturating_sub(t1.elapsed()));
    measured("s5", "SIGCONT to every account registered on the primary again", back - t1, fb_bound);
    assert!(going - t1 >= fb_min, "failback after {:?}, before {STABLE_PROBES} probes could pass", going - t1);
    let probes = lab.primary_log_count("REQ primary OPTIONS") - options_before;
    assert!(probes >= usize::from(STABLE_PROBES), "Kamailio answered {probes} probes before failback");
    lab.until("Kamailio primary binds every account again, backup empty", Duration::from_secs(2), |l| {
        l.kamailio_sees_all_on_one_connection(Server::Primary).is_ok()
            && l.backup.bindings().is_empty()
            && l.backup.tcp_connections().is_empty()
    });
}

/// Scenario 6: Both servers down; a call placed during the outage fails at its deadline; the backup
/// comes back alone: recovery, and a call placed meanwhile is delivered (routed by
/// Kamailio back to the phone); then the primary comes back: failback.
#[test]
fn s6_both_down_then_backup_then_primary() {
    let mut lab = Lab::start("s6", LIMIT, |_| {});
    let mut config = lab.config();
    let call_timeout = Duration::from_secs(3);
    config.call_setup_timeout = CoreDuration::from_millis(3000);
    let mut phone = lab.phone(config);
    phone.all_registered(Server::Primary, FIRST_REGISTRATION);
    lab.primary.kill();
    lab.backup.kill();
    phone.wait("the flow lost", MARGIN, |e| matches!(e, Event::FlowLost { .. }));
    phone.wait("a back-off after both servers failed", MARGIN, |e| matches!(e, Event::Backoff { .. }));

    // A call during an outage longer than its deadline fails at the deadline.
    let t_doomed = Instant::now();
    let doomed = phone.place(0, "bob");
    let (failed_at, outcome) = phone.outcome(doomed, call_timeout + MARGIN);
    assert!(
        matches!(outcome, Event::CallOutcome { outcome: CallOutcome::Failed(CallFailure::Deadline), .. }),
        "{outcome:?}"
    );
    let waited = failed_at - t_doomed;
    measured("s6", "queued call failed at its deadline", waited, call_timeout + MARGIN);
    assert!(waited + Duration::from_millis(100) >= call_timeout, "failed early: {waited:?}");

    // A call placed now is held until the backup is back and every account registered.
    let call = phone.place(0, "bob");
    phone.idle(Duration::from_millis(500));
    let t_backup = Instant::now();
    lab.backup.restart();
    // Bound: the longest back-off wait of a round (BACKOFF_MAX) + connect + REGISTERs + MARGIN.
    let bound = BACKOFF_MAX + MARGIN;
    let done = phone.all_registered(Server::Backup, bound);
    measured("s6", "backup restarted to every account registered on it", done - t_backup, bound);
    let (_, outcome) = phone.outcome(call, call_timeout);
    assert!(matches!(outcome, Event::CallOutcome { outcome: CallOutcome::Answered, .. }), "{outcome:?}");
    assert_eq!(lab.backup.log_lines(&["RELAY backup INVITE"]).len(), 1, "delivered through the backup");
    lab.kamailio_sees_all_on_one_connection(Server::Backup).expect("backup bindings");
    phone.handle.hang_up_blocking(call).expect("hang up");
    phone.wait("call ended", Duration::from_secs(2), |e| matches!(e, Event::CallEnded { .. }));
    phone.idle(Duration::from_millis(300));

    let t_primary = Instant::now();
    lab.primary.restart();
    let fb_bound = PROBE_INTERVAL * u32::from(STABLE_PROBES + 1) + MARGIN;
    let back = phone.all_registered(Server::Primary, fb_bound);
    measured("s6", "primary restarted to every account registered on it", back - t_primary, fb_bound);
    lab.until("Kamailio primary binds every account", Duration::from_secs(1), |l| {
        l.kamailio_sees_all_on_one_connection(Server::Primary).is_ok() && l.backup.bindings().is_empty()
    });
    let outcomes = phone.count(t_doomed, |e| matches!(e, Event::CallOutcome { .. }));
    assert_eq!(outcomes, 2, "exactly one outcome per placed call:\n{}", phone.history());
}

/// Scenario 7: A primary with a certificate of the wrong name, an expired one, or one from another
/// CA: refused with a reason naming the problem, the backup used, and nothing sent to the
/// primary in clear (its SIP layer never sees a request).
#[test]
fn s7_bad_primary_certificates_refused_backup_used() {
    let cases = [
        (ServerCert::WrongName, "not valid for name"),
        (ServerCert::Expired, "expired"),
        (ServerCert::OtherCa, "not in the trusted certificates"),
    ];
    for (cert, reason) in cases {
        let lab = Lab::start("s7", LIMIT, move |c| {
            if c.name == "primary" {
                c.cert = cert;
            }
        });
        let mut phone = lab.phone(lab.config());
        let (_, failed) = phone.wait("the primary refused", FIRST_REGISTRATION, |e| {
            matches!(e, Event::ConnectFailed { server: Server::Primary, .. })
        });
        let Event::ConnectFailed { reason: FlowError::Transport(TransportError::Certificate(why)), .. } = &failed
        else {
            panic!("{cert:?}: expected a certificate error, got {failed:?}");
        };
        assert!(why.to_lowercase().contains(reason), "{cert:?}: reason {why:?} should say {reason:?}");
        phone.all_registered(Server::Backup, FIRST_REGISTRATION);
        lab.kamailio_sees_all_on_one_connection(Server::Backup).expect("backup bindings");
        // Probes of the primary keep failing on the certificate: no failback.
        phone.idle(PROBE_INTERVAL * u32::from(STABLE_PROBES + 1));
        assert!(phone.all_registered_on(Server::Backup), "{cert:?}: stayed on the backup");
        assert_eq!(phone.count(Instant::now() - LIMIT, |e| matches!(e, Event::FailingBack)), 0);
        assert!(lab.primary.log_lines(&["REQ primary"]).is_empty(), "{cert:?}: a request reached the primary");
        assert!(lab.primary.bindings().is_empty());
        println!("MEASURED s7: {cert:?} refused: {why}");
        drop(phone);
    }
}

/// Scenario 8: Mutual TLS: Kamailio requires a client certificate from our CA; the phone with one
/// registers, a phone without one is refused by both servers and registers nowhere.
#[test]
fn s8_mutual_tls() {
    let lab = Lab::start("s8", LIMIT, |c| c.require_client_cert = true);
    let mut with = lab.config();
    with.certificates = CertificateFiles {
        trusted_certificates: Some(lab.pki.ca.display().to_string()),
        local_certificate: Some(lab.pki.client.cert.display().to_string()),
        private_key: Some(lab.pki.client.key.display().to_string()),
        root_and_intermediate: None,
        revocation_list: None,
    };
    let mut phone = lab.phone(with);
    phone.all_registered(Server::Primary, FIRST_REGISTRATION);
    lab.primary_one_connection();

    let mut without = lab.config();
    without.accounts.truncate(1);
    without.accounts[0] = sip_ptls::config::AccountConfig::new("dave", kamailio::config::password("dave"));
    let mut bare = lab.phone(without);
    let window = Duration::from_secs(3);
    let registered = bare.try_wait(window, |e| matches!(e, Event::Registered { .. }));
    assert!(registered.is_none(), "a phone without a client certificate registered:\n{}", bare.history());
    assert!(bare.count(Instant::now() - LIMIT, is_flow_loss) > 0, "refusals reported:\n{}", bare.history());
    println!("MEASURED s8: phone without a client certificate:\n{}", bare.history());
    for server in [Server::Primary, Server::Backup] {
        let k = lab.instance(server);
        assert!(k.bindings().iter().all(|b| b.aor != "dave"), "{server} bound dave");
        assert!(k.log_lines(&["REQ", "dave"]).is_empty(), "{server} got a request from dave");
    }
    assert!(phone.all_registered_on(Server::Primary), "the phone with a certificate was not disturbed");
}

/// Scenario 8b: A server that completes the TLS 1.3 handshake and then refuses the client
/// certificate must not make the phone reconnect in a tight loop.
#[test]
fn s8b_refused_client_certificate_backs_off() {
    let lab = Lab::start("s8b", LIMIT, |c| c.require_client_cert = true);
    let mut phone = lab.phone(lab.config());
    let window = Duration::from_secs(3);
    phone.idle(window);
    let attempts =
        phone.count(Instant::now() - LIMIT, |e| matches!(e, Event::FlowUp { .. } | Event::ConnectFailed { .. }));
    // Back-off: rounds of two attempts, waits of at least BACKOFF_BASE/2 growing to BACKOFF_MAX.
    assert!(attempts <= 16, "{attempts} connection attempts in {window:?}:\n{}", phone.history());
}

/// Scenario 9: `sip send sips over tls`: 1 puts `sips:` in the Request-URI and Contact, 0 puts
/// `sip:` (and `transport=tls` on the Contact); as logged by Kamailio.
#[test]
fn s9_sips_scheme_setting() {
    let lab = Lab::start("s9", LIMIT, |_| {});
    for sips in [true, false] {
        let mut config = lab.config();
        config.sips_scheme = sips;
        let mut phone = lab.phone(config);
        phone.all_registered(Server::Primary, FIRST_REGISTRATION);
        let port = lab.primary_one_connection();
        // The INVITE's schemes as Kamailio logs them on arrival (its outcome is scenario 3's).
        let call = phone.place(0, "bob");
        let _ = phone.outcome(call, Duration::from_secs(3));
        let src = format!("src=127.0.0.1:{port} ");
        let registers = lab.primary.log_lines(&["REQ primary REGISTER", &src]);
        let invites = lab.primary.log_lines(&["REQ primary INVITE", &src]);
        assert!(!registers.is_empty() && !invites.is_empty());
        for line in registers.iter().chain(&invites) {
            let (scheme, contact) =
                if sips { ("rscheme=sips ", "contact=<sips:") } else { ("rscheme=sip ", "contact=<sip:") };
            assert!(line.contains(scheme) && line.contains(contact), "sips={sips}: {line}");
            if !sips {
                assert!(line.contains("transport=tls"), "sip: Contact says transport=tls: {line}");
            }
        }
        println!("MEASURED s9: sips={sips}: {}", registers[0]);
        let _ = phone.shutdown();
        lab.until("connection closed", Duration::from_secs(2), |l| l.primary.tcp_connections().is_empty());
    }
}

/// Scenario 10: Kamailio sends `Flow-Timer: 3` (registrar `flow_timer`); the phone, configured for
/// 30 s, pings at least every 3 s, as Kamailio's idle timer of the connection shows.
#[test]
fn s10_flow_timer_sets_the_keepalive_interval() {
    let flow_timer = 3u32;
    let lab = Lab::start("s10", LIMIT, |c| c.flow_timer = flow_timer);
    let mut config = lab.config();
    config.keepalive_interval = CoreDuration::from_secs(30);
    let mut phone = lab.phone(config);
    phone.all_registered(Server::Primary, FIRST_REGISTRATION);
    let port = lab.primary_one_connection();
    let since = Instant::now();
    let window = Duration::from_secs(12);
    let (min, max, samples) = sample_idle_timer(&lab, Server::Primary, port, window);
    phone.idle(Duration::from_millis(100));
    // Pings every <= 3 s keep the timer in [HOLD - 3 - 1, HOLD]; at the configured 30 s
    // the connection would sit idle past HOLD and the timer would jump to its lifetime.
    let floor = HOLD - i64::from(flow_timer) - 1;
    println!("MEASURED s10: Kamailio idle timer over {window:?} with Flow-Timer {flow_timer}: {min}..{max} of {HOLD}");
    assert!(samples > 20 && min >= floor && max <= HOLD, "pings less often than the Flow-Timer: {min}..{max}");
    assert_eq!(phone.count(since, is_flow_loss), 0, "no reconnect:\n{}", phone.history());
    let _ = ACCOUNTS;
}
