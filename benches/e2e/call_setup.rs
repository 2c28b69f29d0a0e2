//! Call setup: from the application's place-call to the INVITE's first byte at the
//! server and to the 200 OK back at the phone, Persistent TLS against per-call TLS 1.3
//! and TLS 1.2, at 0, 10 and 50 ms emulated RTT. The callee is a second phone registered
//! directly on the registrar (no emulated delay) that answers at once.

use crate::measure::{line, ms};
use crate::relay::Relay;
use crate::server::{RegistrarProcess, user};
use crate::{Lab, env_num, phone_config, quick, wait_for, wait_registered};
use sip_ptls::config::TransportMode;
use sip_ptls::ids::AccountId;
use sip_ptls::runtime::Phone;
use sip_ptls::{CallOutcome, Event};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The emulated round-trip times, ms.
pub const RTTS: [u64; 3] = [0, 10, 50];

/// A transport variant.
#[derive(Clone, Copy)]
pub struct Mode {
    /// Name in the figures.
    pub name: &'static str,
    /// Transport mode of the caller.
    pub transport: TransportMode,
    /// The registrar offers TLS 1.2 only.
    pub tls12: bool,
    /// Round trips from place-call to the 200 OK that no implementation can avoid:
    /// TCP (per call), the TLS handshake (per call: 1 RTT for TLS 1.3, and for TLS 1.2
    /// too because rustls resumes the session cached by the registration's connection;
    /// a full TLS 1.2 handshake would take 2), and the INVITE/200 exchange. The registrar
    /// challenges every INVITE, but the core answers the challenge of the account's
    /// previous call in advance, so a measured call (after one warm-up call) is 1 RTT.
    pub floor_rtts: f64,
    /// Round trips until the first INVITE's first byte reaches the server.
    pub invite_floor_rtts: f64,
    /// Client application-data records before the INVITE on a new connection (the TLS
    /// 1.3 client Finished travels as application data).
    pub records_before_invite: usize,
}

/// The three variants compared.
pub const MODES: [Mode; 3] = [
    Mode {
        name: "persistent",
        transport: TransportMode::PersistentTls,
        tls12: false,
        floor_rtts: 1.0,
        invite_floor_rtts: 0.5,
        records_before_invite: 0,
    },
    Mode {
        name: "per_call_tls13",
        transport: TransportMode::PerCallTls,
        tls12: false,
        floor_rtts: 3.0,
        invite_floor_rtts: 2.5,
        records_before_invite: 1,
    },
    Mode {
        name: "per_call_tls12",
        transport: TransportMode::PerCallTls,
        tls12: true,
        floor_rtts: 3.0,
        invite_floor_rtts: 2.5,
        records_before_invite: 0,
    },
];

/// Setup times of one (mode, RTT) point, ms.
#[derive(Clone, Debug, Default)]
pub struct Point {
    /// place-call → first byte of the INVITE delivered to the server.
    pub invite: Vec<f64>,
    /// place-call → 200 OK seen by the application (`CallOutcome::Answered`).
    pub ok: Vec<f64>,
    /// Persistent TLS only: time spent on the server side (registrar and callee), ms.
    pub server: Vec<f64>,
    /// Persistent TLS only: the relay's own delay beyond RTT/2 per traversal, measured on
    /// the client's records of the call (delivery − arrival − RTT/2), µs.
    pub relay_excess: Vec<f64>,
    /// Persistent TLS only: 200 OK at phone − (floor + server time), µs.
    pub above_floor_and_server: Vec<f64>,
    /// Persistent TLS only: the above less four relay traversals' excess, µs.
    pub phone_own: Vec<f64>,
}

/// A callee phone that answers every call at once, on a thread of its own.
struct Callee {
    phone: Option<Phone>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Callee {
    fn start(lab: &Lab, registrar: &RegistrarProcess) -> Callee {
        let cfg = phone_config(registrar.addr, None, 1, 1);
        let phone = Phone::spawn(cfg, lab.dir.path()).expect("start the callee");
        wait_registered(&phone.events, 1, None, Duration::from_secs(10)).expect("callee registered");
        let stop = Arc::new(AtomicBool::new(false));
        let (events, handle, flag) = (phone.events.clone(), phone.handle.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                if let Some(e) = events.next_timeout(Duration::from_millis(50))
                    && let Event::IncomingCall { call, .. } = e.event
                {
                    let _ = handle.answer_blocking(call, b"v=0\r\n".to_vec());
                }
            }
        });
        Callee { phone: Some(phone), stop, thread: Some(thread) }
    }
}

impl Drop for Callee {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(p) = self.phone.take() {
            p.shutdown(Duration::from_secs(2));
        }
    }
}

/// Measures `calls` calls of `mode` through a relay with `rtt` to `registrar`.
fn measure(lab: &Lab, registrar: &RegistrarProcess, mode: Mode, rtt: Duration, calls: usize) -> Point {
    let relay = Relay::start(registrar.addr, rtt);
    let mut cfg = phone_config(relay.addr, None, 0, 1);
    cfg.mode = mode.transport;
    let phone = Phone::spawn(cfg, lab.dir.path()).expect("start the caller");
    wait_registered(&phone.events, 1, None, Duration::from_secs(10)).expect("caller registered");
    let target = user(1).0;
    let mut point = Point::default();
    // One warm-up call draws the proxy's challenge; the measured calls answer it in advance.
    for n in 0..=calls {
        let warm_up = n == 0;
        std::thread::sleep(Duration::from_millis(100));
        while phone.events.try_next().is_some() {}
        let t0 = Instant::now();
        let call = phone.handle.place_call_blocking(AccountId(0), &target, b"v=0\r\n".to_vec()).expect("place a call");
        let deadline = t0 + Duration::from_secs(10);
        let answered =
            wait_for(&phone.events, deadline, |e| matches!(e, Event::CallOutcome { call: c, .. } if *c == call));
        let Some((t_ok, Event::CallOutcome { outcome: CallOutcome::Answered, .. })) = answered else {
            eprintln!("call_setup: {} call not answered: {answered:?}", mode.name);
            continue;
        };
        if !warm_up {
            point.ok.push(ms(t_ok - t0));
            if let Some(t) = invite_delivered(&relay, t0, mode) {
                point.invite.push(ms(t - t0));
            }
        }
        if !warm_up
            && mode.transport == TransportMode::PersistentTls
            && let Some(d) = server_time(&relay, t0, t_ok, rtt)
            && let Some(x) = relay_excess(&relay, t0, rtt)
        {
            let (total, server, rtt_ms) = (ms(t_ok - t0), ms(d), ms(rtt));
            let own = (total - mode.floor_rtts * rtt_ms - server) * 1e3;
            point.server.push(server);
            point.relay_excess.push(x * 1e3);
            point.above_floor_and_server.push(own);
            // Two traversals (INVITE, 200); the server's direction is assumed to cost the
            // relay what the client's does.
            point.phone_own.push(own - 2.0 * x * 1e3);
        }
        let _ = phone.handle.hang_up_blocking(call);
        let _ = wait_for(
            &phone.events,
            Instant::now() + Duration::from_secs(5),
            |e| matches!(e, Event::CallEnded { call: c, .. } if *c == call),
        );
    }
    phone.shutdown(Duration::from_secs(2));
    point
}

/// When the INVITE's first byte reached the server: the first application-data record
/// from the client after `t0` (Persistent TLS), or the right one on the connection opened
/// for the call (per-call TLS).
fn invite_delivered(relay: &Relay, t0: Instant, mode: Mode) -> Option<Instant> {
    let records = relay.records();
    let after: Vec<_> = records.iter().filter(|r| r.delivered >= t0).collect();
    match mode.transport {
        TransportMode::PersistentTls => after.iter().find(|r| r.content_type == 23).map(|r| r.delivered),
        TransportMode::PerCallTls => {
            // The connection whose ClientHello went out after place-call.
            let conn = after.iter().find(|r| r.content_type == 22)?.conn;
            let mut data = after.iter().filter(|r| r.conn == conn && r.content_type == 23);
            data.nth(mode.records_before_invite).map(|r| r.delivered)
        }
    }
}

/// Time a Persistent call spent on the server side (registrar, and the callee behind it):
/// from the INVITE's delivery (it carries credentials) to the 200 leaving the server.
/// "Leaving the server" is when the relay read it. `None` when the records do not fit.
fn server_time(relay: &Relay, t0: Instant, t_ok: Instant, rtt: Duration) -> Option<Duration> {
    let half = rtt / 2;
    let up: Vec<Instant> =
        relay.records().iter().filter(|r| r.delivered >= t0 && r.content_type == 23).map(|r| r.delivered).collect();
    let down: Vec<Instant> =
        relay.arrivals().iter().filter(|a| !a.up && a.at >= t0 && a.content_type == 23).map(|a| a.at).collect();
    if std::env::var_os("SIP_PTLS_BENCH_TRACE").is_some() {
        let rel = |v: &[Instant]| v.iter().map(|t| format!("{:.3}", ms(*t - t0))).collect::<Vec<_>>().join(" ");
        eprintln!("trace: up delivered [{}] down arrived [{}] ok {:.3}", rel(&up), rel(&down), ms(t_ok - t0));
    }
    let invite = *up.first()?;
    let ok = *down.iter().rfind(|a| **a + half <= t_ok)?;
    let d = ok.checked_duration_since(invite)?;
    // The callee is not behind the relay, so server time never holds a round trip: more
    // than half an RTT means the records were attributed wrongly; the sample is dropped.
    (rtt.is_zero() || d < half).then_some(d)
}

/// The relay's mean delay beyond RTT/2 on the client's records since `t0`, ms. A record's
/// arrival and delivery are matched by their order on the connection.
fn relay_excess(relay: &Relay, t0: Instant, rtt: Duration) -> Option<f64> {
    let arrivals: Vec<_> = relay.arrivals().into_iter().filter(|a| a.up).collect();
    let delivered = relay.records();
    let mut excess = Vec::new();
    for conn in delivered.iter().map(|r| r.conn).collect::<std::collections::BTreeSet<_>>() {
        let a = arrivals.iter().filter(|a| a.conn == conn);
        let d = delivered.iter().filter(|r| r.conn == conn);
        for (a, d) in a.zip(d) {
            if a.at >= t0 {
                excess.push(ms(d.delivered.saturating_duration_since(a.at + rtt / 2)));
            }
        }
    }
    (!excess.is_empty()).then(|| excess.iter().sum::<f64>() / excess.len() as f64)
}

/// The scenario.
pub fn run(lab: &Lab) {
    let calls = env_num("SIP_PTLS_BENCH_CALLS", if quick() { 3 } else { 10 }) as usize;
    let mut r13 = RegistrarProcess::start(lab.dir.path(), 2, false);
    let mut r12 = RegistrarProcess::start(lab.dir.path(), 2, true);
    let callees = (Callee::start(lab, &r13), Callee::start(lab, &r12));
    let mut results: Vec<(Mode, u64, Point)> = Vec::new();
    for rtt in RTTS {
        for mode in MODES {
            let registrar = if mode.tls12 { &r12 } else { &r13 };
            let point = measure(lab, registrar, mode, Duration::from_millis(rtt), calls);
            let id = format!("call_setup/{}_rtt{rtt}ms", mode.name);
            line(&format!("{id}/invite_at_server"), &point.invite, "ms", 3);
            let ok = line(&format!("{id}/ok_at_phone"), &point.ok, "ms", 3);
            let floor = mode.floor_rtts * rtt as f64;
            println!(
                "{id}/floor: {floor:.3} ({floor:.3}..{floor:.3}) ms  ({} RTT; INVITE floor {} RTT)",
                mode.floor_rtts, mode.invite_floor_rtts
            );
            if ok.is_some() {
                let over: Vec<f64> = point.ok.iter().map(|t| (t - floor) * 1e3).collect();
                line(&format!("{id}/above_floor"), &over, "us", 0);
                if mode.transport == TransportMode::PersistentTls {
                    // The floor with the server's time: 1 RTT + server time (the issue's
                    // floor); what is left is the phone's own time and the relay's.
                    line(&format!("{id}/server_time"), &point.server, "ms", 3);
                    line(&format!("{id}/above_floor_plus_server_time"), &point.above_floor_and_server, "us", 0);
                    line(&format!("{id}/relay_excess_per_traversal"), &point.relay_excess, "us", 0);
                    line(&format!("{id}/phone_own_time"), &point.phone_own, "us", 0);
                }
            }
            results.push((mode, rtt, point));
        }
        // Ratios per-call / persistent at this RTT.
        let persistent = results.iter().find(|(m, r, _)| m.name == "persistent" && *r == rtt).map(|x| x.2.ok.clone());
        for name in ["per_call_tls13", "per_call_tls12"] {
            let other = results.iter().find(|(m, r, _)| m.name == name && *r == rtt).map(|x| x.2.ok.clone());
            if let (Some(p), Some(o)) = (
                persistent.as_ref().and_then(|v| crate::measure::stats(v)),
                other.as_ref().and_then(|v| crate::measure::stats(v)),
            ) {
                println!(
                    "call_setup/ratio_{name}_vs_persistent_rtt{rtt}ms: {:.2} ({:.2}..{:.2}) x",
                    o.0 / p.0,
                    o.1 / p.2,
                    o.2 / p.1
                );
            }
        }
    }
    let invites = (r13.counts().invites, r12.counts().invites);
    println!("call_setup: registrar INVITEs received (TLS 1.3 / TLS 1.2 registrar): {} / {}", invites.0, invites.1);
    drop(callees);
    let chart = crate::svg::call_setup_chart(&results);
    let path = crate::docs_dir().join("call-setup-vs-rtt.svg");
    match std::fs::write(&path, chart) {
        Ok(()) => println!("call_setup: chart written to {}", path.display()),
        Err(e) => println!("call_setup: chart not written ({}: {e})", path.display()),
    }
}
