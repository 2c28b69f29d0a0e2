//! Call setup: from the application's place-call to the INVITE's first byte at the
//! server and to the 200 OK back at the phone, Persistent TLS against per-call TLS 1.3
//! and TLS 1.2, at 0, 10 and 50 ms emulated RTT. The callee is a second phone registered
//! directly on the registrar (no emulated delay) that answers at once; and, for the
//! Persistent path's true floor, the registrar itself answers (no second phone), so that
//! the floor is one RTT plus the registrar's own time. Built with `--features timing`,
//! the Persistent rows also print where the phone's own time goes ([`crate::phone_time`]).

use crate::measure::{line, ms, thread_faults, thread_sched, tids_named};
use crate::phone_time::{self, GROUPS, SEGMENTS, Split};
use crate::relay::{Crossing, Relay};
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

/// Who answers the INVITE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answerer {
    /// A second phone behind the registrar (no emulated delay), answering at once.
    Callee,
    /// The registrar itself (`RegistrarConfig::answer_invites`): no second phone.
    Registrar,
}

/// A transport variant.
#[derive(Clone, Copy)]
pub struct Mode {
    /// Name in the figures.
    pub name: &'static str,
    /// Transport mode of the caller.
    pub transport: TransportMode,
    /// The registrar offers TLS 1.2 only.
    pub tls12: bool,
    /// Who answers.
    pub answerer: Answerer,
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

/// The variants compared.
pub const MODES: [Mode; 4] = [
    Mode {
        name: "persistent",
        transport: TransportMode::PersistentTls,
        tls12: false,
        answerer: Answerer::Callee,
        floor_rtts: 1.0,
        invite_floor_rtts: 0.5,
        records_before_invite: 0,
    },
    Mode {
        name: "persistent_registrar_answers",
        transport: TransportMode::PersistentTls,
        tls12: false,
        answerer: Answerer::Registrar,
        floor_rtts: 1.0,
        invite_floor_rtts: 0.5,
        records_before_invite: 0,
    },
    Mode {
        name: "per_call_tls13",
        transport: TransportMode::PerCallTls,
        tls12: false,
        answerer: Answerer::Callee,
        floor_rtts: 3.0,
        invite_floor_rtts: 2.5,
        records_before_invite: 1,
    },
    Mode {
        name: "per_call_tls12",
        transport: TransportMode::PerCallTls,
        tls12: true,
        answerer: Answerer::Callee,
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
    /// Persistent TLS only: time spent on the server side (the registrar, and the callee
    /// when a phone answers): from the INVITE's delivery to the server until the 200
    /// reached the relay, ms.
    pub server: Vec<f64>,
    /// Persistent TLS only: the relay's own delay beyond RTT/2 on the INVITE (delivery −
    /// arrival − RTT/2), µs.
    pub relay_up: Vec<f64>,
    /// Persistent TLS only: the same on the 200, µs.
    pub relay_down: Vec<f64>,
    /// Persistent TLS only: 200 OK at phone − (floor + server time), µs.
    pub above_floor_and_server: Vec<f64>,
    /// Persistent TLS only: the above less the relay's excess both ways, µs.
    pub phone_own: Vec<f64>,
    /// Persistent TLS: CPU time and run-queue wait (runnable, not running) of the
    /// caller's driver thread \[0\] and of async-io's reactor thread \[1\], from just
    /// before place-call to just after the outcome, µs (schedstat).
    pub threads: [(Vec<f64>, Vec<f64>); 2],
    /// Persistent TLS: minor page faults of the caller's driver thread over the same span.
    pub faults: Vec<f64>,
    /// Persistent TLS, built with `timing`: where the phone's own time went, per call.
    pub split: Vec<Split>,
    /// Persistent TLS, built with `timing`: calls whose stamps did not line up.
    pub split_dropped: usize,
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
    let callees = tids_named("sip-ptls-phone");
    let phone = Phone::spawn(cfg, lab.dir.path()).expect("start the caller");
    wait_registered(&phone.events, 1, None, Duration::from_secs(10)).expect("caller registered");
    // The caller's driver thread, and async-io's reactor thread (one per process).
    let caller = tids_named("sip-ptls-phone").into_iter().find(|t| !callees.contains(t));
    let reactor = tids_named("async-io").first().copied();
    let sched = || [caller, reactor].map(|t| t.and_then(thread_sched));
    let target = user(1).0;
    let mut point = Point::default();
    // One warm-up call draws the proxy's challenge; the measured calls answer it in advance.
    for n in 0..=calls {
        let warm_up = n == 0;
        std::thread::sleep(Duration::from_millis(100));
        while phone.events.try_next().is_some() {}
        phone_time::clear();
        let sched0 = sched();
        let faults0 = caller.and_then(thread_faults);
        let t0 = Instant::now();
        let call = phone.handle.place_call_blocking(AccountId(0), &target, b"v=0\r\n".to_vec()).expect("place a call");
        let deadline = t0 + Duration::from_secs(10);
        let answered =
            wait_for(&phone.events, deadline, |e| matches!(e, Event::CallOutcome { call: c, .. } if *c == call));
        let Some((t_ok, Event::CallOutcome { outcome: CallOutcome::Answered, .. })) = answered else {
            eprintln!("call_setup: {} call not answered: {answered:?}", mode.name);
            continue;
        };
        let sched1 = sched();
        let faults1 = caller.and_then(thread_faults);
        if !warm_up {
            point.ok.push(ms(t_ok - t0));
            if let Some(t) = invite_delivered(&relay, t0, mode) {
                point.invite.push(ms(t - t0));
            }
        }
        if !warm_up
            && mode.transport == TransportMode::PersistentTls
            && let Some((invite, ok)) = persistent_crossings(&relay, t0, t_ok, rtt)
        {
            let (total, server, rtt_ms) = (ms(t_ok - t0), ms(ok.arrived - invite.delivered), ms(rtt));
            let above = (total - mode.floor_rtts * rtt_ms - server) * 1e3;
            let excess = |c: &Crossing| ms(c.delivered.saturating_duration_since(c.arrived + rtt / 2)) * 1e3;
            point.server.push(server);
            point.relay_up.push(excess(&invite));
            point.relay_down.push(excess(&ok));
            point.above_floor_and_server.push(above);
            point.phone_own.push(above - excess(&invite) - excess(&ok));
            if let (Some(f0), Some(f1)) = (faults0, faults1) {
                point.faults.push(f1.saturating_sub(f0) as f64);
            }
            for (i, (a, b)) in sched0.iter().zip(&sched1).enumerate() {
                if let (Some((cpu0, wait0)), Some((cpu1, wait1))) = (a, b) {
                    point.threads[i].0.push(cpu1.saturating_sub(*cpu0) as f64 / 1e3);
                    point.threads[i].1.push(wait1.saturating_sub(*wait0) as f64 / 1e3);
                }
            }
            match phone_time::split(t0, t_ok, &invite, &ok, mode.answerer == Answerer::Registrar) {
                Some(split) => point.split.push(split),
                None => point.split_dropped += usize::from(phone_time::ENABLED),
            }
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

/// The INVITE's and the 200's crossings of the relay in a Persistent call placed at `t0`
/// and answered at `t_ok`: the client's first application-data record after `t0`, and the
/// server's last one delivered before `t_ok`. The server time between them is the
/// registrar's (and the callee's, which is not behind the relay), so it never holds a
/// round trip: more than half an RTT means the records were attributed wrongly, and the
/// sample is dropped (`None`).
fn persistent_crossings(relay: &Relay, t0: Instant, t_ok: Instant, rtt: Duration) -> Option<(Crossing, Crossing)> {
    let data = |c: &&Crossing| c.content_type == 23 && c.arrived >= t0;
    let up = relay.crossings(true);
    let down = relay.crossings(false);
    if std::env::var_os("SIP_PTLS_BENCH_TRACE").is_some() {
        let rel = |v: &[Crossing]| {
            v.iter().filter(data).map(|c| format!("{:.3}", ms(c.delivered - t0))).collect::<Vec<_>>().join(" ")
        };
        eprintln!("trace: up delivered [{}] down delivered [{}] ok {:.3}", rel(&up), rel(&down), ms(t_ok - t0));
    }
    let invite = *up.iter().find(data)?;
    let ok = *down.iter().filter(data).rfind(|c| c.delivered <= t_ok)?;
    let d = ok.arrived.checked_duration_since(invite.delivered)?;
    (rtt.is_zero() || d < rtt / 2).then_some((invite, ok))
}

/// The goal for the Persistent path: within this of 1 RTT + the registrar's own time, µs.
const GOAL_US: f64 = 300.0;

/// The Persistent figures beyond the setup time: the server's time, what is above the
/// floor with it, the relay's share, and (built with `timing`) the phone's own split.
fn print_persistent(id: &str, mode: Mode, point: &Point) {
    // The floor with the server's time: 1 RTT + server time (the floor); what is
    // left is the phone's own time and the relay's.
    let server = match mode.answerer {
        Answerer::Callee => "server_time",
        Answerer::Registrar => "registrar_time",
    };
    line(&format!("{id}/{server}"), &point.server, "ms", 3);
    let above = line(&format!("{id}/above_floor_plus_{server}"), &point.above_floor_and_server, "us", 0);
    line(&format!("{id}/relay_excess_invite"), &point.relay_up, "us", 0);
    line(&format!("{id}/relay_excess_200"), &point.relay_down, "us", 0);
    let own = line(&format!("{id}/phone_own_time"), &point.phone_own, "us", 0);
    for (name, (cpu, wait)) in ["phone_thread", "reactor_thread"].iter().zip(&point.threads) {
        line(&format!("{id}/{name}/cpu"), cpu, "us", 0);
        line(&format!("{id}/{name}/run_queue_wait"), wait, "us", 0);
    }
    line(&format!("{id}/phone_thread/minor_faults"), &point.faults, "faults", 0);
    if mode.answerer == Answerer::Registrar {
        let verdict = |v: Option<f64>| match v {
            Some(m) if m <= GOAL_US => format!("met ({m:.0} us)"),
            Some(m) => format!("missed ({m:.0} us)"),
            None => "not measured".to_string(),
        };
        println!(
            "{id}/goal_within_{GOAL_US:.0}us: above 1 RTT + registrar time {}; less the relay's excess {}",
            verdict(above),
            verdict(own)
        );
    }
    if !phone_time::ENABLED {
        return;
    }
    for (i, (name, _, _)) in SEGMENTS.iter().enumerate() {
        let v: Vec<f64> = point.split.iter().map(|s| s.phone[i]).collect();
        line(&format!("{id}/phone/{name}"), &v, "us", 1);
    }
    let total: Vec<f64> = point.split.iter().map(Split::phone_total).collect();
    line(&format!("{id}/phone/total"), &total, "us", 1);
    for group in GROUPS {
        let v: Vec<f64> = point.split.iter().map(|s| s.group_total(group)).collect();
        line(&format!("{id}/phone/{group}_total"), &v, "us", 1);
    }
    let to_relay: Vec<f64> = point.split.iter().map(|s| s.to_relay).collect();
    line(&format!("{id}/relay/read_invite"), &to_relay, "us", 1);
    println!(
        "{id}/phone/samples: {} calls split, {} dropped (stamps not lined up)",
        point.split.len(),
        point.split_dropped
    );
}

/// The scenario.
pub fn run(lab: &Lab) {
    let calls = env_num("SIP_PTLS_BENCH_CALLS", if quick() { 3 } else { 10 }) as usize;
    let mut r13 = RegistrarProcess::start(lab.dir.path(), 2, false);
    let mut r12 = RegistrarProcess::start(lab.dir.path(), 2, true);
    let mut answering = RegistrarProcess::start_answering(lab.dir.path(), 2);
    let callees = (Callee::start(lab, &r13), Callee::start(lab, &r12));
    let mut results: Vec<(Mode, u64, Point)> = Vec::new();
    for rtt in RTTS {
        for mode in MODES {
            let registrar = match (mode.answerer, mode.tls12) {
                (Answerer::Registrar, _) => &answering,
                (Answerer::Callee, true) => &r12,
                (Answerer::Callee, false) => &r13,
            };
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
                    print_persistent(&id, mode, &point);
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
    let answered = answering.counts();
    println!(
        "call_setup: answering registrar: {} INVITEs received, {} answered by the registrar itself",
        answered.invites, answered.answered
    );
    drop(callees);
    // The repository's chart changes only when asked: a run made to check something
    // leaves docs/ as it was.
    if std::env::var("SIP_PTLS_BENCH_CHART").as_deref() != Ok("1") {
        println!("call_setup: chart not written (SIP_PTLS_BENCH_CHART=1 writes docs/call-setup-vs-rtt.svg)");
        return;
    }
    let chart = crate::svg::call_setup_chart(&results);
    let path = crate::docs_dir().join("call-setup-vs-rtt.svg");
    match std::fs::write(&path, chart) {
        Ok(()) => println!("call_setup: chart written to {}", path.display()),
        Err(e) => println!("call_setup: chart not written ({}: {e})", path.display()),
    }
}
