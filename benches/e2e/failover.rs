//! Failover: the primary closes (FIN, with TLS close_notify), resets (FIN without
//! close_notify: see the note on `Registrar::reset`) or goes silent; the time until every
//! account (1, 3, 9) is registered on the backup, digest authentication on. Compared
//! with the floor measured in the same run (connect + handshake + REGISTER/401/REGISTER
//! round trips by a minimal client) and, for the silent case, with the bound the
//! configuration promises (keep-alive interval + pong timeout).

use crate::floor::register_floor;
use crate::measure::{line, ms, stats};
use crate::server::RegistrarProcess;
use crate::{Lab, env_num, phone_config, quick, wait_registered};
use sip_ptls::ids::Server;
use sip_ptls::runtime::Phone;
use sip_ptls::time::Duration as CoreDuration;
use std::time::{Duration, Instant};

/// Keep-alive interval of the silent case, ms.
const KEEPALIVE_MS: u64 = 2000;
/// Pong timeout of the silent case, ms.
const PONG_TIMEOUT_MS: u64 = 1000;

/// The scenario.
pub fn run(lab: &Lab) {
    let reps = env_num("SIP_PTLS_BENCH_FAILOVERS", if quick() { 1 } else { 3 }) as usize;
    let mut primary = RegistrarProcess::start(lab.dir.path(), 9, false);
    let backup = RegistrarProcess::start(lab.dir.path(), 9, false);
    let mut floors = std::collections::BTreeMap::new();
    let mut n = 0;
    for k in [1usize, 3, 9] {
        let v: Vec<f64> = (0..15)
            .map(|_| {
                n += 1;
                ms(register_floor(backup.addr, &lab.pki.ca_pem, k, n))
            })
            .collect();
        let m = line(&format!("failover/floor_{k}_accounts"), &v, "ms", 3);
        floors.insert(k, m.unwrap_or(0.0));
    }
    for (kind, command, undo) in [("fin", "kill", "restore"), ("rst", "reset", "restore"), ("silent", "freeze", "thaw")]
    {
        for k in [1usize, 3, 9] {
            let mut times = Vec::new();
            for _ in 0..reps {
                let mut cfg = phone_config(primary.addr, Some(backup.addr), 0, k);
                cfg.keepalive_interval = CoreDuration::from_millis(KEEPALIVE_MS);
                cfg.pong_timeout = CoreDuration::from_millis(PONG_TIMEOUT_MS);
                let phone = Phone::spawn(cfg, lab.dir.path()).expect("start the phone");
                if wait_registered(&phone.events, k, Some(Server::Primary), Duration::from_secs(10)).is_none() {
                    eprintln!("failover: {k} accounts not registered on the primary");
                    phone.shutdown(Duration::from_secs(1));
                    continue;
                }
                if kind == "silent" {
                    // Freeze right after the second pong, so the wait is the full promised
                    // bound. Not the first: when the freeze followed the first ping, the
                    // phone sometimes had not credited a pong from the primary yet, checked
                    // it with OPTIONS instead, and declared it dead only after the 4 s
                    // transaction timer (see docs/benchmarks.md).
                    let pings = primary.counts().pings;
                    let deadline = Instant::now() + Duration::from_secs(8);
                    while primary.counts().pings < pings + 2 && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_micros(500));
                    }
                }
                let t0 = Instant::now();
                primary.send(command);
                let done = wait_registered(&phone.events, k, Some(Server::Backup), Duration::from_secs(15));
                let _ = primary.answer();
                match done {
                    Some(t) => times.push(ms(t - t0)),
                    None => eprintln!("failover: {kind} with {k} accounts: not all registered on the backup"),
                }
                phone.shutdown(Duration::from_secs(2));
                let _ = primary.cmd(undo);
            }
            let id = format!("failover/{kind}_{k}_accounts");
            line(&id, &times, "ms", 3);
            let floor = floors[&k];
            if kind == "silent" {
                let bound = (KEEPALIVE_MS + PONG_TIMEOUT_MS) as f64 + floor;
                println!(
                    "{id}/bound: {bound:.3} ({bound:.3}..{bound:.3}) ms  (keep-alive {KEEPALIVE_MS} + pong timeout {PONG_TIMEOUT_MS} + floor)"
                );
                if let Some((m, lo, hi)) = stats(&times) {
                    let pct = |t: f64| (t / bound - 1.0) * 100.0;
                    println!("{id}/vs_bound: {:+.1} ({:+.1}..{:+.1}) %", pct(m), pct(lo), pct(hi));
                }
            } else {
                let over: Vec<f64> = times.iter().map(|t| t - floor).collect();
                line(&format!("{id}/above_floor"), &over, "ms", 3);
            }
        }
    }
}
