//! Scale and the registrars' restart: N phones with 2 accounts each, spread over fleet
//! processes of at most `SIP_PTLS_BENCH_PHONES_PER_PROCESS` phones (10,000; one process
//! may hold at most 20,000 file descriptors here), each fleet with a registrar process of
//! its own on its own loopback port, so that neither side of any process holds more than
//! one connection per phone.
//!
//! Figures: time until every account is registered, registrations per second, resident
//! memory per phone, CPU per keep-alive round, stale re-challenges. Then each registrar
//! process in turn is killed (SIGKILL) and started again on the address it had, with an
//! empty registration table: the connect rate the registrars see per second, the number
//! of bursts of connects, and the time until every account is registered again.

use crate::Lab;
use crate::fleet::{ACCOUNTS, FleetProcess, KEEPALIVE_S, Tuning};
use crate::measure::line;
use crate::server::RegistrarProcess;
use crate::{env_num, quick};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

/// How long any wait may last.
const CAP: Duration = Duration::from_secs(180);

/// The fleet processes and their registrar processes, pair by pair.
struct Deployment {
    fleets: Vec<FleetProcess>,
    registrars: Vec<RegistrarProcess>,
    /// The users each registrar knows, by pair.
    users: Vec<Range<usize>>,
    /// The lab's directory (the CA and the registrars' certificate).
    dir: std::path::PathBuf,
}

impl Deployment {
    fn start(lab: &Lab, n: usize, per_process: usize, tuning: Tuning) -> Deployment {
        let (mut fleets, mut registrars, mut users) = (Vec::new(), Vec::new(), Vec::new());
        let mut first = 0;
        while first < n {
            let count = per_process.min(n - first);
            let range = first * ACCOUNTS..(first + count) * ACCOUNTS;
            let registrar =
                RegistrarProcess::start_part(lab.dir.path(), range.clone(), SocketAddr::from(([127, 0, 0, 1], 0)));
            fleets.push(FleetProcess::spawn(lab.dir.path(), registrar.addr, first..first + count, tuning));
            registrars.push(registrar);
            users.push(range);
            first += count;
        }
        Deployment { fleets, registrars, users, dir: lab.dir.path().to_path_buf() }
    }

    /// `(since, up)` summed over the fleets.
    fn count(&mut self) -> (u64, u64) {
        self.fleets.iter_mut().map(FleetProcess::count).fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1))
    }

    /// Waits until `want` accounts are registered since the last mark; returns when.
    fn wait_since(&mut self, want: u64, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.count().0 >= want {
                return Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn fleet_cpu(&self) -> f64 {
        self.fleets.iter().map(|f| f.cpu().as_secs_f64()).sum()
    }

    fn registrar_cpu(&self) -> f64 {
        self.registrars.iter().map(|r| r.cpu().as_secs_f64()).sum()
    }

    fn registrar_sum(&mut self, pick: impl Fn(&crate::server::Counts) -> u64) -> u64 {
        self.registrars.iter_mut().map(|r| pick(&r.counts())).sum()
    }

    /// Lost flows and failed connects over the fleets, by reason, as one line.
    fn faults(&mut self) -> String {
        let mut all = std::collections::BTreeMap::<String, u64>::new();
        for f in &mut self.fleets {
            for (k, v) in f.faults() {
                *all.entry(k).or_default() += v;
            }
        }
        if all.is_empty() {
            return "none".to_string();
        }
        all.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    }

    fn send_all(&mut self, command: &str) {
        for f in &mut self.fleets {
            f.send(command);
        }
        for f in &mut self.fleets {
            let answer = f.answer();
            assert!(answer == "ok" || answer == "started", "fleet process answered {answer:?} to {command}");
        }
    }
}

/// The fleet's connect timeout (`sip persistent tls connect timeout`) and transaction
/// timer (`sip transaction timer`: RFC 3261's Timer F) unless a size is marked `/default`:
/// a fleet this dense on 2 cores keeps handshakes and REGISTERs waiting for longer than the
/// defaults (5 s and 4 s) allow (see docs/benchmarks.md).
const FLEET_TUNING: Tuning = Tuning { connect_timeout_ms: Some(30_000), transaction_timeout_ms: Some(32_000) };

/// Scale figures for each size of `SIP_PTLS_BENCH_SCALE`: `N` (with [`FLEET_TUNING`]) or
/// `N/default` (the phone's default timeouts).
pub fn run_scale(lab: &Lab) {
    let default = if quick() { "1000" } else { "10000,50000,50000/default" };
    let sizes = std::env::var("SIP_PTLS_BENCH_SCALE").unwrap_or_else(|_| default.to_string());
    let per_process = env_num("SIP_PTLS_BENCH_PHONES_PER_PROCESS", 10_000).max(1) as usize;
    for size in sizes.split(',').map(str::trim) {
        let (n, defaults) = match size.strip_suffix("/default") {
            Some(n) => (n, true),
            None => (size, false),
        };
        let Ok(n) = n.parse::<usize>() else {
            println!("scale: {size:?} is not a size (N or N/default)");
            continue;
        };
        let tuning = if defaults { Tuning::default() } else { FLEET_TUNING };
        scale_one(lab, n, per_process, tuning);
    }
}

fn scale_one(lab: &Lab, n: usize, per_process: usize, tuning: Tuning) {
    let id = match tuning.connect_timeout_ms {
        Some(_) => format!("scale/{n}_phones"),
        None => format!("scale/{n}_phones_default_timeouts"),
    };
    let want = (n * ACCOUNTS) as u64;
    let mut d = Deployment::start(lab, n, per_process, tuning);
    let ms = |t: Option<u64>| t.map_or_else(|| "the default".to_string(), |t| format!("{t} ms"));
    println!(
        "{id}: connect timeout {}, transaction timer {}, keep-alive {KEEPALIVE_S} s, {ACCOUNTS} accounts per phone",
        ms(tuning.connect_timeout_ms),
        ms(tuning.transaction_timeout_ms)
    );
    println!(
        "{id}: {} fleet processes and {} registrar processes, at most {per_process} phones each",
        d.fleets.len(),
        d.registrars.len()
    );
    let rss0: Vec<u64> = d.fleets.iter().map(FleetProcess::rss).collect();
    let (cpu0, reg_cpu0) = (d.fleet_cpu(), d.registrar_cpu());
    let t0 = Instant::now();
    d.send_all("start");
    let started = t0.elapsed().as_secs_f64();
    let Some(done) = d.wait_since(want, CAP) else {
        println!("{id}/all_registered: not measured: only {} of {want} accounts registered within 180 s", d.count().0);
        return;
    };
    let t = (done - t0).as_secs_f64();
    let (cpu, reg_cpu) = (d.fleet_cpu() - cpu0, d.registrar_cpu() - reg_cpu0);
    println!("{id}/phones_started: {started:.3} ({started:.3}..{started:.3}) s");
    println!("{id}/all_registered: {t:.3} ({t:.3}..{t:.3}) s");
    let rate = want as f64 / t;
    println!("{id}/registrations_per_s: {rate:.0} ({rate:.0}..{rate:.0}) registrations/s");
    println!("{id}/phone_processes_cpu_to_register: {cpu:.2} ({cpu:.2}..{cpu:.2}) s");
    println!("{id}/registrar_processes_cpu_to_register: {reg_cpu:.2} ({reg_cpu:.2}..{reg_cpu:.2}) s");
    std::thread::sleep(Duration::from_secs(2));
    let grown: u64 = d.fleets.iter().zip(&rss0).map(|(f, r0)| f.rss().saturating_sub(*r0)).sum();
    let per_phone = grown as f64 / n as f64 / 1024.0;
    println!("{id}/rss_per_phone: {per_phone:.1} ({per_phone:.1}..{per_phone:.1}) KiB");
    let reg_rss: u64 = d.registrars.iter().map(RegistrarProcess::rss).sum();
    let per_conn = reg_rss as f64 / n as f64 / 1024.0;
    println!("{id}/registrar_rss_per_connection: {per_conn:.1} ({per_conn:.1}..{per_conn:.1}) KiB");
    // CPU per keep-alive round over windows of one keep-alive interval.
    let windows = if quick() { 1 } else { 3 };
    let (mut per_ping, mut per_ping_registrar) = (Vec::new(), Vec::new());
    for _ in 0..windows {
        let (c0, r0, p0) = (d.fleet_cpu(), d.registrar_cpu(), d.registrar_sum(|c| c.pings));
        std::thread::sleep(Duration::from_secs(KEEPALIVE_S));
        let (c1, r1, p1) = (d.fleet_cpu(), d.registrar_cpu(), d.registrar_sum(|c| c.pings));
        if p1 > p0 {
            per_ping.push((c1 - c0) * 1e6 / (p1 - p0) as f64);
            per_ping_registrar.push((r1 - r0) * 1e6 / (p1 - p0) as f64);
        }
    }
    line(&format!("{id}/phone_cpu_per_keepalive_round"), &per_ping, "us", 1);
    line(&format!("{id}/registrar_cpu_per_keepalive_round"), &per_ping_registrar, "us", 1);
    let stale = d.registrar_sum(|c| c.stale);
    println!("{id}/stale_challenges: {stale} ({stale}..{stale}) challenges");
    println!("{id}: {} of {want} accounts registered before the restart", d.count().1);
    println!("{id}: lost flows and failed connects until then: {}", d.faults());
    restart(&mut d, &id, want);
}

/// Kills each registrar process and starts it again on its address, and follows the
/// reconnects until every account is registered again.
fn restart(d: &mut Deployment, id: &str, want: u64) {
    d.send_all("mark");
    // Each registrar process in turn: killed, then started again on its address at once,
    // as a supervisor restarts a crashed server.
    let t0 = Instant::now();
    let mut killed = 0.0;
    for (registrar, users) in d.registrars.iter_mut().zip(&d.users) {
        let bind = registrar.addr;
        registrar.kill_now();
        killed = t0.elapsed().as_secs_f64();
        *registrar = RegistrarProcess::start_part(&d.dir, users.clone(), bind);
    }
    let listening = t0.elapsed().as_secs_f64();
    println!("{id}/restart_last_killed: {killed:.3} ({killed:.3}..{killed:.3}) s after the first kill");
    println!(
        "{id}/restart_all_listening_again: {listening:.3} ({listening:.3}..{listening:.3}) s after the first kill"
    );
    // Accepted connects, sampled every 100 ms until every account is registered again.
    let mut samples = vec![(0.0, 0u64)];
    let mut done = None;
    while t0.elapsed() < CAP {
        std::thread::sleep(Duration::from_millis(100));
        let accepted = d.registrar_sum(|c| c.accepted);
        samples.push((t0.elapsed().as_secs_f64(), accepted));
        if d.count().0 >= want {
            done = Some(t0.elapsed().as_secs_f64());
            break;
        }
    }
    let last = samples.last().map_or(0.0, |s| s.0).ceil() as usize;
    let at = |t: f64| samples.iter().rev().find(|s| s.0 <= t).map_or(0, |s| s.1);
    let per_s: Vec<u64> = (0..last).map(|sec| at((sec + 1) as f64) - at(sec as f64)).collect();
    let series: Vec<String> = per_s.iter().enumerate().map(|(i, c)| format!("{i}s:{c}")).collect();
    println!("{id}/restart_connects_per_s_series: {}", series.join(" "));
    let peak = per_s.iter().copied().max().unwrap_or(0);
    println!("{id}/restart_peak_connects_per_s: {peak} ({peak}..{peak}) connects/s");
    let total = samples.last().map_or(0, |s| s.1);
    println!("{id}/restart_connects_total: {total} ({total}..{total}) connects");
    // A burst is a run of seconds with connects; a second wave would be a second burst.
    let bursts = per_s.iter().zip(std::iter::once(&0).chain(per_s.iter())).filter(|(c, prev)| **c > 0 && **prev == 0);
    let bursts = bursts.count();
    println!("{id}/restart_connect_bursts: {bursts} ({bursts}..{bursts}) bursts");
    match done {
        Some(t) => {
            println!("{id}/restart_all_registered_again: {t:.3} ({t:.3}..{t:.3}) s after the first kill");
            let after = t - listening;
            println!("{id}/restart_all_registered_after_listening: {after:.3} ({after:.3}..{after:.3}) s");
        }
        None => println!(
            "{id}/restart_all_registered_again: not measured: {} of {want} accounts registered again within 180 s",
            d.count().0
        ),
    }
    println!("{id}: lost flows and failed connects since the kill: {}", d.faults());
    let stale = d.registrar_sum(|c| c.stale);
    println!("{id}/restart_stale_challenges: {stale} ({stale}..{stale}) challenges");
}
