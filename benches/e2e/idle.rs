//! Idle cost: one registered phone (one account) for 60 s with a 5 s keep-alive, behind
//! a 0 ms relay that counts the bytes: CPU time and wakeups of the phone's threads, the
//! core's own deadlines in the same window (pings sent), and bytes on the wire per hour.

use crate::measure::{ThreadSample, threads};
use crate::relay::Relay;
use crate::server::RegistrarProcess;
use crate::{Lab, env_num, phone_config, quick, wait_registered};
use sip_ptls::runtime::Phone;
use sip_ptls::time::Duration as CoreDuration;
use std::time::{Duration, Instant};

/// Per thread: (name, CPU ns, voluntary + involuntary switches) between two samples.
fn delta(before: &[ThreadSample], after: &[ThreadSample], skip: u64) -> Vec<(String, u64, u64, u64)> {
    after
        .iter()
        .filter(|t| t.tid != skip && !t.name.starts_with("relay"))
        .map(|a| {
            let b = before.iter().find(|b| b.tid == a.tid);
            let (cpu, vol, inv) = b.map_or((0, 0, 0), |b| (b.cpu_ns, b.voluntary, b.involuntary));
            (a.name.clone(), a.cpu_ns - cpu, a.voluntary - vol, a.involuntary - inv)
        })
        .collect()
}

/// The scenario.
pub fn run(lab: &Lab) {
    let secs = env_num("SIP_PTLS_BENCH_IDLE_SECS", if quick() { 10 } else { 60 });
    let mut registrar = RegistrarProcess::start(lab.dir.path(), 1, false);
    let relay = Relay::start(registrar.addr, Duration::ZERO);
    let mut cfg = phone_config(relay.addr, None, 0, 1);
    cfg.keepalive_interval = CoreDuration::from_secs(5);
    let phone = Phone::spawn(cfg, lab.dir.path()).expect("start the phone");
    wait_registered(&phone.events, 1, None, Duration::from_secs(10)).expect("registered");
    std::thread::sleep(Duration::from_secs(1));
    let me: u64 = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let pings0 = registrar.counts().pings;
    let traffic0 = relay.traffic();
    let threads0 = threads();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let threads1 = threads();
    let elapsed = t0.elapsed().as_secs_f64();
    let traffic1 = relay.traffic();
    let pings = registrar.counts().pings - pings0;
    let d = delta(&threads0, &threads1, me);
    let cpu_ns: u64 = d.iter().map(|x| x.1).sum();
    let wakeups: u64 = d.iter().map(|x| x.2 + x.3).sum();
    println!(
        "idle: window {elapsed:.1} s, keep-alive 5 s, 1 account; phone threads (relay and bench main thread excluded):"
    );
    for (name, cpu, vol, inv) in &d {
        println!(
            "idle:   thread {name:<16} cpu {:>8.3} ms  wakeups {vol} voluntary + {inv} involuntary",
            *cpu as f64 / 1e6
        );
    }
    let one = |id: &str, v: f64, unit: &str, dec: usize| println!("idle/{id}: {v:.dec$} ({v:.dec$}..{v:.dec$}) {unit}");
    one("cpu_time", cpu_ns as f64 / 1e6, "ms", 3);
    one("cpu_per_hour", cpu_ns as f64 / 1e6 * 3600.0 / elapsed, "ms/h", 1);
    one("wakeups", wakeups as f64, "wakeups", 0);
    one("pings_sent", pings as f64, "pings", 0);
    one("wakeups_per_ping", if pings > 0 { wakeups as f64 / pings as f64 } else { 0.0 }, "wakeups", 2);
    let up = traffic1.up_bytes - traffic0.up_bytes;
    let down = traffic1.down_bytes - traffic0.down_bytes;
    let writes = (traffic1.up_writes - traffic0.up_writes) + (traffic1.down_writes - traffic0.down_writes);
    let per_hour = |x: u64| x as f64 * 3600.0 / elapsed;
    one("tls_bytes_per_hour", per_hour(up + down), "bytes/h", 0);
    one("segments_per_hour", per_hour(writes), "segments/h", 0);
    // TCP/IPv4 headers with timestamps (52 bytes) per data segment, plus one bare ACK back.
    one("wire_bytes_per_hour", per_hour(up + down + writes * 52 * 2), "bytes/h", 0);
    phone.shutdown(Duration::from_secs(2));
}
