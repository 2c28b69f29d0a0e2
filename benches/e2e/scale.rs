//! Scale and the reconnect storm: N phones in this process, each with its own core, its
//! own TLS connection and 2 accounts, all driven by one executor on as many threads as
//! the machine has CPUs, against one registrar process. The file-descriptor limit is
//! raised here, inside the benchmark.
//!
//! Scale: time until every account is registered, registrations per second, resident
//! memory per phone, CPU per keep-alive round. Storm: the registrar closes every
//! connection and stops listening for 2 s, then listens again; the connect rate it sees
//! per second, and the time until every account is registered again.

use crate::measure::{line, process_cpu, self_rss};
use crate::server::RegistrarProcess;
use crate::{Lab, env_num, phone_config, quick};
use async_executor::Executor;
use sip_ptls::Event;
use sip_ptls::config::{CertificateFiles, TransportMode};
use sip_ptls::runtime::{ClientTls, Phone, PhoneHandle};
use sip_ptls::time::Duration as CoreDuration;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// Accounts per phone.
const ACCOUNTS: usize = 2;
/// Keep-alive interval of the fleet.
const KEEPALIVE_S: u64 = 10;

/// N phones on one executor.
struct Fleet {
    n: usize,
    handles: Vec<PhoneHandle>,
    /// Accounts registered right now, over the whole fleet.
    registered: Arc<AtomicI64>,
    stop: Option<async_channel::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Fleet {
    fn start(lab: &Lab, registrar: &RegistrarProcess, n: usize) -> Fleet {
        let files = CertificateFiles { trusted_certificates: Some("ca.pem".into()), ..Default::default() };
        let tls = ClientTls::load(&files, TransportMode::PersistentTls, lab.dir.path()).expect("client TLS");
        let ex: Arc<Executor<'static>> = Arc::new(Executor::new());
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..workers)
            .map(|i| {
                let (ex, stopped) = (ex.clone(), stopped.clone());
                std::thread::Builder::new()
                    .name(format!("fleet-{i}"))
                    .spawn(move || {
                        let _ = async_io::block_on(ex.run(stopped.recv()));
                    })
                    .expect("fleet thread")
            })
            .collect();
        let registered = Arc::new(AtomicI64::new(0));
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let mut cfg = phone_config(registrar.addr, None, i * ACCOUNTS, ACCOUNTS);
            cfg.keepalive_interval = CoreDuration::from_secs(KEEPALIVE_S);
            let (phone, driver) = Phone::with_tls(cfg, tls.clone());
            ex.spawn(driver.run()).detach();
            let (events, count) = (phone.events.clone(), registered.clone());
            ex.spawn(async move {
                let mut up = [false; ACCOUNTS];
                let set = |a: usize, v: bool, up: &mut [bool; ACCOUNTS]| {
                    if a < ACCOUNTS && up[a] != v {
                        up[a] = v;
                        count.fetch_add(if v { 1 } else { -1 }, Ordering::SeqCst);
                    }
                };
                while let Some(e) = events.next().await {
                    match e.event {
                        Event::Registered { account, .. } => set(usize::from(account.0), true, &mut up),
                        Event::RegistrationLost { account, .. }
                        | Event::Unregistered { account, .. }
                        | Event::RegistrationFailed { account, .. } => set(usize::from(account.0), false, &mut up),
                        Event::FlowLost { .. } => (0..ACCOUNTS).for_each(|a| set(a, false, &mut up)),
                        _ => {}
                    }
                }
            })
            .detach();
            handles.push(phone.handle);
        }
        Fleet { n, handles, registered, stop: Some(stop), threads }
    }

    /// Waits until every account is registered; returns when.
    fn wait_all(&self, limit: Duration) -> Option<Instant> {
        let want = (self.n * ACCOUNTS) as i64;
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.registered.load(Ordering::SeqCst) >= want {
                return Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for h in &self.handles {
            h.shutdown();
        }
        std::thread::sleep(Duration::from_millis(500));
        drop(self.stop.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => println!("scale: file-descriptor limit raised to {n}"),
        Err(e) => println!("scale: could not raise the file-descriptor limit: {e}"),
    }
}

/// Scale figures for each N of `SIP_PTLS_BENCH_SCALE`.
pub fn run_scale(lab: &Lab) {
    raise_fd_limit();
    let default = if quick() { "1000" } else { "1000,10000" };
    let sizes = std::env::var("SIP_PTLS_BENCH_SCALE").unwrap_or_else(|_| default.to_string());
    for n in sizes.split(',').filter_map(|s| s.trim().parse::<usize>().ok()) {
        let mut registrar = RegistrarProcess::start(lab.dir.path(), n * ACCOUNTS, false);
        let rss0 = self_rss();
        let cpu0 = process_cpu(std::process::id());
        let t0 = Instant::now();
        let fleet = Fleet::start(lab, &registrar, n);
        let started = t0.elapsed();
        let id = format!("scale/{n}_phones");
        let Some(done) = fleet.wait_all(Duration::from_secs(180)) else {
            println!(
                "{id}/all_registered: not measured: only {} of {} accounts registered within 180 s",
                fleet.registered.load(Ordering::SeqCst),
                n * ACCOUNTS
            );
            continue;
        };
        let t = (done - t0).as_secs_f64();
        let cpu_reg = process_cpu(std::process::id()) - cpu0;
        println!("{id}/phones_started: {0:.3} ({0:.3}..{0:.3}) s", started.as_secs_f64());
        println!("{id}/all_registered: {t:.3} ({t:.3}..{t:.3}) s");
        let rate = (n * ACCOUNTS) as f64 / t;
        println!("{id}/registrations_per_s: {rate:.0} ({rate:.0}..{rate:.0}) registrations/s");
        let reg_cpu = registrar.cpu().as_secs_f64();
        println!(
            "{id}/phone_process_cpu_to_register: {0:.2} ({0:.2}..{0:.2}) s  (registrar process: {reg_cpu:.2} s)",
            cpu_reg.as_secs_f64()
        );
        std::thread::sleep(Duration::from_secs(2));
        let per_phone = (self_rss().saturating_sub(rss0)) as f64 / n as f64 / 1024.0;
        println!("{id}/rss_per_phone: {per_phone:.1} ({per_phone:.1}..{per_phone:.1}) KiB");
        println!(
            "{id}/registrar_rss_per_connection: {0:.1} ({0:.1}..{0:.1}) KiB",
            registrar.rss() as f64 / n as f64 / 1024.0
        );
        // CPU per keep-alive round over windows of one keep-alive interval.
        let windows = if quick() { 1 } else { 3 };
        let mut per_ping = Vec::new();
        let mut per_ping_registrar = Vec::new();
        for _ in 0..windows {
            let (c0, r0, p0) = (process_cpu(std::process::id()), registrar.cpu(), registrar.counts().pings);
            std::thread::sleep(Duration::from_secs(KEEPALIVE_S));
            let (c1, r1, p1) = (process_cpu(std::process::id()), registrar.cpu(), registrar.counts().pings);
            if p1 > p0 {
                per_ping.push((c1 - c0).as_secs_f64() * 1e6 / (p1 - p0) as f64);
                per_ping_registrar.push((r1 - r0).as_secs_f64() * 1e6 / (p1 - p0) as f64);
            }
        }
        line(&format!("{id}/phone_cpu_per_keepalive_round"), &per_ping, "us", 1);
        line(&format!("{id}/registrar_cpu_per_keepalive_round"), &per_ping_registrar, "us", 1);
        let still = fleet.registered.load(Ordering::SeqCst);
        println!("{id}: {still} of {} accounts registered at the end", n * ACCOUNTS);
        drop(fleet);
    }
}

/// The reconnect storm.
pub fn run_storm(lab: &Lab) {
    raise_fd_limit();
    let n = env_num("SIP_PTLS_BENCH_STORM", if quick() { 1000 } else { 10_000 }) as usize;
    let mut registrar = RegistrarProcess::start(lab.dir.path(), n * ACCOUNTS, false);
    let fleet = Fleet::start(lab, &registrar, n);
    let id = format!("storm/{n}_phones");
    if fleet.wait_all(Duration::from_secs(180)).is_none() {
        println!("{id}: not measured: the fleet did not register within 180 s");
        return;
    }
    std::thread::sleep(Duration::from_secs(1));
    let accepted0 = registrar.counts().accepted;
    let t0 = Instant::now();
    let _ = registrar.cmd("kill");
    let killed = t0.elapsed();
    std::thread::sleep(Duration::from_secs(2).saturating_sub(killed));
    let _ = registrar.cmd("restore");
    let restored = t0.elapsed();
    // Sample the registrar's accept counter every 100 ms until all are back.
    let mut samples = vec![(0.0, 0u64)];
    let want = (n * ACCOUNTS) as i64;
    let deadline = t0 + Duration::from_secs(180);
    let mut done = None;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let a = registrar.counts().accepted - accepted0;
        samples.push((t0.elapsed().as_secs_f64(), a));
        if fleet.registered.load(Ordering::SeqCst) >= want {
            done = Some(t0.elapsed());
            break;
        }
    }
    println!(
        "{id}/down_for: {0:.3} ({0:.3}..{0:.3}) s  (kill returned after {1:.3} s)",
        restored.as_secs_f64(),
        killed.as_secs_f64()
    );
    // Connects per second, per whole second since the registrar went down.
    let last = samples.last().map_or(0.0, |s| s.0).ceil() as usize;
    let mut per_s = Vec::new();
    for sec in 0..last {
        let at = |t: f64| samples.iter().rev().find(|s| s.0 <= t).map_or(0, |s| s.1);
        per_s.push(at((sec + 1) as f64) - at(sec as f64));
    }
    let series: Vec<String> = per_s.iter().enumerate().map(|(i, c)| format!("{i}s:{c}")).collect();
    println!("{id}/connects_per_s_series: {}", series.join(" "));
    let peak = per_s.iter().copied().max().unwrap_or(0);
    println!("{id}/peak_connects_per_s: {peak} ({peak}..{peak}) connects/s");
    let total = samples.last().map_or(0, |s| s.1);
    println!("{id}/connects_total: {total} ({total}..{total}) connects");
    match done {
        Some(d) => {
            let d = d.as_secs_f64();
            println!("{id}/all_registered_again: {d:.3} ({d:.3}..{d:.3}) s after the registrar went down");
            let after = d - restored.as_secs_f64();
            println!("{id}/all_registered_after_restore: {after:.3} ({after:.3}..{after:.3}) s");
        }
        None => println!(
            "{id}/all_registered_again: not measured: {} of {want} accounts registered after 180 s",
            fleet.registered.load(Ordering::SeqCst)
        ),
    }
    drop(fleet);
}
