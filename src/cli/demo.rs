//! `sip-ptls demo` (also `cargo run --release` with no arguments): the whole feature on
//! real TLS sockets. A primary and a backup registrar run in-process on loopback; a
//! phone with two lines runs against them; every step is checked, and a summary with
//! measured times is printed. Returns success only if every step happened.

use super::demo_lab::{KEEPALIVE, Lab, PROBE_INTERVAL, STABLE_PROBES, Watcher};
use super::narrator::Narrator;
use sip_ptls::engine::RegState;
use sip_ptls::ids::{AccountId, Server};
use sip_ptls::runtime::{Phone, PhoneHandle};
use sip_ptls::{CallOutcome, EndReason, Event};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The bound on any one step.
const STEP: Duration = Duration::from_secs(12);

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Waits until both lines reported `Registered` on `server`; returns when the second did.
fn both_registered(w: &mut Watcher, server: Server) -> Option<Instant> {
    let deadline = Instant::now() + STEP;
    let mut lines = BTreeSet::new();
    let mut last = None;
    while lines.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let (at, e) = w.wait(left, |e| matches!(e, Event::Registered { server: s, .. } if *s == server))?;
        if let Event::Registered { account, .. } = e {
            lines.insert(account);
            last = Some(at);
        }
    }
    last
}

fn registered_on(handle: &PhoneHandle, server: Server) -> bool {
    handle.status_blocking().is_some_and(|s| s.registrations.iter().all(|r| *r == RegState::Registered { server }))
}

/// Places a call and waits for its answer; returns the setup time, or what went wrong.
/// The watcher answers the incoming side (the phone calls its own other line).
fn call(
    w: &mut Watcher,
    handle: &PhoneHandle,
    from: AccountId,
    to: &str,
    callee: AccountId,
) -> Result<Duration, String> {
    let placed = Instant::now();
    let id = handle.place_call_blocking(from, to, b"v=0\r\n".to_vec()).map_err(|e| format!("refused: {e}"))?;
    let (at, e) = w
        .wait(STEP, |e| matches!(e, Event::CallOutcome { call, .. } if *call == id))
        .ok_or_else(|| format!("no outcome within {STEP:?}"))?;
    if e != (Event::CallOutcome { call: id, outcome: CallOutcome::Answered }) {
        return Err(format!("outcome {e:?}"));
    }
    let rang = w
        .seen
        .iter()
        .any(|(t, e)| *t >= placed && matches!(e.event, Event::IncomingCall { account, .. } if account == callee));
    if !rang {
        return Err(format!("answered, but not by {callee}"));
    }
    let setup = at.duration_since(placed);
    handle.hang_up_blocking(id).map_err(|e| format!("hang up refused: {e}"))?;
    w.wait(STEP, |e| matches!(e, Event::CallEnded { reason: EndReason::RemoteHangup, .. }))
        .ok_or_else(|| "the called line did not see the hang-up".to_owned())?;
    Ok(setup)
}

/// Runs the demo; true if every step happened. With `web`, the phone and its registrars
/// keep running after the steps, with the web interface on that address, until Ctrl-C.
pub fn run(web: Option<std::net::SocketAddr>) -> bool {
    let start = Instant::now();
    println!("sip-ptls demo: a phone with two lines over Persistent TLS, a primary and a backup registrar on loopback");
    let lab = match Lab::start() {
        Ok(l) => l,
        Err(e) => {
            println!("demo: cannot set up: {e}");
            return false;
        }
    };
    println!(
        "  primary registrar on {}, backup on {} (TLS, certificates from a test CA)",
        lab.primary.addr(),
        lab.backup.addr()
    );
    let phone = match Phone::spawn(lab.config(), lab.dir()) {
        Ok(p) => p,
        Err(e) => {
            println!("demo: the phone cannot start: {e}");
            return false;
        }
    };
    let handle = phone.handle.clone();
    let mut w = Watcher::new(phone.events.clone(), handle.clone());
    let mut n = Narrator::default();
    let ok = steps(&lab, &handle, &mut w, &mut n);
    if n.failed() {
        n.note("the phone's last events:");
        for (_, e) in w.seen.iter().rev().take(12).rev() {
            println!("          {} {:?}", e.at, e.event);
        }
    }
    let mut watched = Duration::ZERO;
    if let Some(addr) = web.filter(|_| ok) {
        let since = Instant::now();
        if let Err(e) = serve_web(addr, &handle, &phone.events, &w) {
            n.step(false, &format!("the web interface: {e}"));
            return n.finish("demo");
        }
        watched = since.elapsed();
    }

    let events = phone.shutdown(STEP);
    let unregistered = events.iter().filter(|e| matches!(e.event, Event::Unregistered { .. })).count();
    let complete = events.last().is_some_and(|e| e.event == Event::ShutdownComplete);
    n.step(
        ok && unregistered == 2 && complete && lab.primary.bindings().is_empty(),
        "shutdown de-registers both lines and closes the connection",
    );
    // The time spent in the browser is the person's, not the demo's.
    let total = start.elapsed().saturating_sub(watched);
    n.step(
        total < Duration::from_secs(60),
        &format!("the demo finished in {:.1} s (bound: 60 s)", total.as_secs_f64()),
    );
    n.finish("demo")
}

/// Serves the web interface of the demo's phone on `addr`, its timeline starting with
/// every event the demo saw, until Ctrl-C. Incoming calls ring for the page.
fn serve_web(
    addr: std::net::SocketAddr,
    handle: &PhoneHandle,
    events: &sip_ptls::runtime::Events,
    watched: &Watcher,
) -> Result<(), String> {
    use futures_lite::{StreamExt, future};
    let options = sip_ptls::web::WebOptions { line_numbers: vec![1, 2], ..Default::default() };
    let (web, url, server) = super::run::start_web(addr, handle, &options)?;
    smol::spawn(server).detach();
    for (_, e) in &watched.seen {
        web.event(e);
    }
    let mut signals = async_signal::Signals::new([async_signal::Signal::Int, async_signal::Signal::Term])
        .map_err(|e| format!("cannot watch for Ctrl-C: {e}"))?;
    println!("  the web interface is on {url}: the phone and its registrars keep running for it; Ctrl-C ends the demo");
    smol::block_on(async {
        loop {
            let next = future::or(async { events.next().await }, async {
                signals.next().await;
                None
            })
            .await;
            match next {
                Some(e) => web.event(&e),
                None => break,
            }
        }
    });
    println!("  Ctrl-C: shutting down");
    Ok(())
}

/// The scenario up to shutdown; false as soon as a step fails (the rest would not mean
/// anything).
fn steps(lab: &Lab, handle: &PhoneHandle, w: &mut Watcher, n: &mut Narrator) -> bool {
    let t0 = Instant::now();
    let up = both_registered(w, Server::Primary);
    let stats = lab.primary.stats();
    let bindings = lab.primary.bindings();
    let one_conn = bindings.len() == 2 && bindings.iter().all(|b| b.connection == bindings[0].connection);
    if !n.step(
        up.is_some() && stats.accepted == 1 && one_conn,
        &format!("one TLS connection registers both lines on the primary (accepted: {})", stats.accepted),
    ) {
        return false;
    }
    if let Some(t) = up {
        n.summarize(format!("start to both lines registered over one connection: {}", ms(t.duration_since(t0))));
    }

    let before = lab.primary.stats();
    let watch = Duration::from_millis(KEEPALIVE.as_millis() * 7 / 2);
    let since = Instant::now();
    w.idle(watch);
    let after = lab.primary.stats();
    let (pings, pongs) = (after.pings - before.pings, after.pongs - before.pongs);
    let lost = w.count_since(since, |e| matches!(e, Event::FlowLost { .. }));
    if !n.step(
        pings >= 2 && pongs == pings && lost == 0,
        &format!("{pings} keep-alive pings in {:.1} s, {pongs} pongs, connection kept", watch.as_secs_f64()),
    ) {
        return false;
    }
    n.summarize(format!(
        "keep-alive: {pings} CRLF pings answered in {:.1} s (interval {KEEPALIVE})",
        watch.as_secs_f64()
    ));

    let setup = call(w, handle, AccountId(0), "1002", AccountId(1));
    let stats = lab.primary.stats();
    // A failed call does not stop the demo: failover and failback still mean something.
    n.step(
        setup.is_ok() && stats.accepted == 1,
        "line 1 calls line 2: answered over the same connection, then hung up",
    );
    if let Err(why) = &setup {
        n.note(why);
    }
    if let Ok(d) = setup {
        n.note(&format!("call setup {} (INVITE, 407, INVITE with credentials, 200, ACK)", ms(d)));
        n.summarize(format!("call setup over the persistent connection: {}", ms(d)));
    }

    println!("  -- the primary registrar is killed (connections closed, port refused) --");
    let killed = Instant::now();
    lab.primary.kill();
    let on_backup = both_registered(w, Server::Backup);
    let failed_over = w.count_since(killed, |e| *e == Event::FailedOver) == 1;
    if !n.step(
        on_backup.is_some() && failed_over && registered_on(handle, Server::Backup),
        "failover to the backup, both lines re-registered there",
    ) {
        return false;
    }
    if let Some(t) = on_backup {
        let d = t.duration_since(killed);
        n.note(&format!("primary loss to both lines registered on the backup: {}", ms(d)));
        n.summarize(format!("primary loss to both lines registered on the backup: {}", ms(d)));
    }

    let setup = call(w, handle, AccountId(1), "1001", AccountId(0));
    n.step(setup.is_ok() && lab.backup.stats().accepted >= 1, "line 2 calls line 1 over the backup");
    if let Err(why) = &setup {
        n.note(why);
    }
    if let Ok(d) = setup {
        n.summarize(format!("call setup over the backup connection: {}", ms(d)));
    }

    println!("  -- the primary registrar is restored --");
    let restored = Instant::now();
    if let Err(e) = lab.primary.restore() {
        n.step(false, &format!("restore the primary: {e}"));
        return false;
    }
    let back = w.wait(STEP * 2, |e| *e == Event::FailedBack);
    let on_primary = both_registered(w, Server::Primary);
    let stable = PROBE_INTERVAL.saturating_mul(u64::from(STABLE_PROBES - 1));
    let waited = back.as_ref().map(|(t, _)| t.duration_since(restored));
    if !n.step(
        waited.is_some_and(|d| d.as_millis() >= u128::from(stable.as_millis()))
            && on_primary.is_some()
            && registered_on(handle, Server::Primary),
        &format!("failback to the primary after {STABLE_PROBES} good probes, both lines registered there again"),
    ) {
        return false;
    }
    if let Some(d) = waited {
        n.note(&format!(
            "failback {:.1} s after the primary returned (probes every {PROBE_INTERVAL})",
            d.as_secs_f64()
        ));
        n.summarize(format!(
            "failback {:.1} s after the primary returned ({STABLE_PROBES} good probes, {PROBE_INTERVAL} apart)",
            d.as_secs_f64()
        ));
    }
    true
}
