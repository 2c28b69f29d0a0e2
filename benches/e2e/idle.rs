//! Idle cost: one registered phone (one account) for 60 s with a 5 s keep-alive, behind
//! a 0 ms relay that counts the bytes: CPU time and wakeups of the phone's threads, the
//! core's own deadlines in the same window (pings sent), and bytes on the wire per hour.
//! Then the same window for the shipped command, `sip-ptls run`, as a process of its own,
//! without and with its web interface: the wakeups of all its threads.

use crate::measure::{ThreadSample, threads, threads_of};
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

/// CPU, wakeups (voluntary switches: the thread slept and was woken) and preemptions
/// (involuntary switches: the thread was running and another took the CPU, which counts
/// the machine's load rather than the phone's) of every thread between two samples, with
/// the per-thread lines printed under `label`.
fn report(label: &str, d: &[(String, u64, u64, u64)]) -> (u64, u64, u64) {
    for (name, cpu, vol, inv) in d {
        println!(
            "{label}:   thread {name:<16} cpu {:>8.3} ms  wakeups {vol} voluntary + {inv} involuntary",
            *cpu as f64 / 1e6
        );
    }
    (d.iter().map(|x| x.1).sum(), d.iter().map(|x| x.2).sum(), d.iter().map(|x| x.3).sum())
}

/// The scenario: the parts named in `SIP_PTLS_BENCH_IDLE_PARTS` (`embedded`, `run`,
/// `run_web`; all by default), so that a long window can be run one part at a time.
pub fn run(lab: &Lab) {
    let secs = env_num("SIP_PTLS_BENCH_IDLE_SECS", if quick() { 10 } else { 60 });
    let parts = std::env::var("SIP_PTLS_BENCH_IDLE_PARTS").unwrap_or_else(|_| "embedded,run,run_web".to_owned());
    let wanted = |part: &str| parts.split(',').any(|p| p.trim() == part);
    let mut registrar = RegistrarProcess::start(lab.dir.path(), 1, false);
    if wanted("embedded") {
        embedded(lab, &mut registrar, secs);
    }
    if wanted("run") {
        run_process(lab, &mut registrar, secs, false);
    }
    if wanted("run_web") {
        run_process(lab, &mut registrar, secs, true);
    }
}

/// A phone embedded with `Phone::spawn` in this process.
fn embedded(lab: &Lab, registrar: &mut RegistrarProcess, secs: u64) {
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
    println!(
        "idle: window {elapsed:.1} s, keep-alive 5 s, 1 account; phone threads (relay and bench main thread excluded):"
    );
    let (cpu_ns, wakeups, preemptions) = report("idle", &d);
    let one = |id: &str, v: f64, unit: &str, dec: usize| println!("idle/{id}: {v:.dec$} ({v:.dec$}..{v:.dec$}) {unit}");
    one("cpu_time", cpu_ns as f64 / 1e6, "ms", 3);
    one("cpu_per_hour", cpu_ns as f64 / 1e6 * 3600.0 / elapsed, "ms/h", 1);
    one("wakeups", wakeups as f64, "wakeups", 0);
    one("preemptions", preemptions as f64, "preemptions", 0);
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

/// The same window for `sip-ptls run` against the same registrar, with its web interface
/// on a loopback port when `web`: every thread of the process counts.
fn run_process(lab: &Lab, registrar: &mut RegistrarProcess, secs: u64, web: bool) {
    use std::io::BufRead;
    let (user, password) = crate::server::user(0);
    let cfg = lab.dir.path().join("idle-run.cfg");
    let text = format!(
        "sip transport protocol: 4\nsips persistent tls: 1\nsip persistent tls keep alive: 5\n\
         sip proxy ip: 127.0.0.1\nsip proxy port: {}\nsip registrar ip: {}\nsips trusted certificates: ca.pem\n\
         sip line1 user name: {user}\nsip line1 password: {password}\n",
        registrar.addr.port(),
        crate::server::DOMAIN
    );
    std::fs::write(&cfg, text).expect("write the configuration");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sip-ptls"));
    command.args(["run", "--json", "--config"]).arg(&cfg);
    if web {
        command.args(["--web", "127.0.0.1:0"]);
    }
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start sip-ptls run");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("\"event\":\"registered\"")) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("sip-ptls run did not register within 10 s:\n{}", seen.join("\n")),
        }
    }
    // The rest of the log is read and dropped, so that the process never blocks on it.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    std::thread::sleep(Duration::from_secs(1));
    let pid = child.id().to_string();
    let pings0 = registrar.counts().pings;
    let threads0 = threads_of(&pid);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let threads1 = threads_of(&pid);
    let elapsed = t0.elapsed().as_secs_f64();
    let pings = registrar.counts().pings - pings0;
    let (what, prefix) = if web { ("`sip-ptls run --web`", "run_web") } else { ("`sip-ptls run`", "run") };
    println!("idle: {what}, window {elapsed:.1} s, keep-alive 5 s, 1 account; every thread of the process:");
    let (cpu_ns, wakeups, preemptions) = report("idle", &delta(&threads0, &threads1, 0));
    let one = |id: &str, v: f64, unit: &str, dec: usize| {
        println!("idle/{prefix}_{id}: {v:.dec$} ({v:.dec$}..{v:.dec$}) {unit}")
    };
    one("cpu_time", cpu_ns as f64 / 1e6, "ms", 3);
    one("wakeups", wakeups as f64, "wakeups", 0);
    one("preemptions", preemptions as f64, "preemptions", 0);
    one("pings_sent", pings as f64, "pings", 0);
    one("wakeups_per_ping", if pings > 0 { wakeups as f64 / pings as f64 } else { 0.0 }, "wakeups", 2);
    let _ = std::process::Command::new("kill").args(["-INT", &pid]).status();
    let _ = child.wait();
}
