//! A fleet of phones in a process of its own: N phones, each with its own core, its own
//! TLS connection and 2 accounts, all driven by one executor on as many threads as the
//! machine has CPUs. One process may hold at most 20,000 file descriptors here, so the
//! scale benchmark spreads its phones over several fleet processes: the benchmark binary
//! re-executes itself with a hidden argument and drives each child through its standard
//! input, one command per line, one answer line each:
//!
//! - `start`: starts the phones; answers `started` once every phone is spawned;
//! - `count`: answers `count <since> <up>`: accounts registered at least once since the
//!   last `mark` (or since `start`), and accounts registered right now;
//! - `faults`: answers `faults kind:reason=count …`: lost flows and failed connects since
//!   the last mark, by reason;
//! - `mark`: starts counting registrations and faults again from zero (before a registrar
//!   restart);
//! - `quit`: shuts every phone down and ends the process.

use crate::phone_config;
use async_executor::Executor;
use sip_ptls::Event;
use sip_ptls::config::{CertificateFiles, TransportMode};
use sip_ptls::runtime::{ClientTls, Phone, PhoneHandle};
use sip_ptls::time::Duration as CoreDuration;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// The hidden argument that turns the benchmark binary into a fleet of phones.
pub const ARG: &str = "--sip-ptls-fleet-process";

/// Accounts per phone.
pub const ACCOUNTS: usize = 2;
/// Keep-alive interval of the fleet.
pub const KEEPALIVE_S: u64 = 10;

/// Settings of the fleet's phones that differ from the benchmark's phone configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tuning {
    /// `sip persistent tls connect timeout` in ms (`None`: the default, 5 s).
    pub connect_timeout_ms: Option<u64>,
    /// `sip transaction timer` in ms (`None`: the default, 4 s).
    pub transaction_timeout_ms: Option<u64>,
}

/// What every phone's event task updates.
#[derive(Default)]
struct Tally {
    /// Accounts registered right now.
    up: AtomicI64,
    /// Accounts registered at least once in the current epoch.
    since: AtomicI64,
    /// Bumped by `mark`.
    epoch: AtomicU64,
    /// Lost flows and failed connects by kind and reason, since the last mark.
    faults: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Tally {
    fn fault(&self, kind: &str, reason: &dyn std::fmt::Debug) {
        let reason = format!("{reason:?}");
        let short = reason.split(['(', ' ', '{']).next().unwrap_or("");
        if let Ok(mut faults) = self.faults.lock() {
            *faults.entry(format!("{kind}:{short}")).or_default() += 1;
        }
    }
}

/// N phones on one executor, in this process.
struct Fleet {
    handles: Vec<PhoneHandle>,
    stop: Option<async_channel::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Fleet {
    /// Phones `first..first + n` (accounts from `first * ACCOUNTS`), all to `registrar`.
    fn start(
        tls: &ClientTls,
        registrar: SocketAddr,
        phones: Range<usize>,
        tuning: Tuning,
        tally: &Arc<Tally>,
    ) -> Fleet {
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
        let mut handles = Vec::with_capacity(phones.len());
        for phone in phones {
            let mut cfg = phone_config(registrar, None, phone * ACCOUNTS, ACCOUNTS);
            cfg.keepalive_interval = CoreDuration::from_secs(KEEPALIVE_S);
            if let Some(t) = tuning.connect_timeout_ms {
                cfg.connect_timeout = CoreDuration::from_millis(t);
            }
            if let Some(t) = tuning.transaction_timeout_ms {
                cfg.transaction_timeout = CoreDuration::from_millis(t);
            }
            let (phone, driver) = Phone::with_tls(cfg, tls.clone());
            ex.spawn(driver.run()).detach();
            let (events, tally) = (phone.events.clone(), tally.clone());
            ex.spawn(async move {
                let mut up = [false; ACCOUNTS];
                let mut seen_in = [0u64; ACCOUNTS];
                let set = |a: usize, v: bool, up: &mut [bool; ACCOUNTS]| {
                    if a < ACCOUNTS && up[a] != v {
                        up[a] = v;
                        tally.up.fetch_add(if v { 1 } else { -1 }, Ordering::SeqCst);
                    }
                };
                while let Some(e) = events.next().await {
                    match e.event {
                        Event::Registered { account, .. } => {
                            let a = usize::from(account.0);
                            set(a, true, &mut up);
                            let epoch = tally.epoch.load(Ordering::SeqCst);
                            if a < ACCOUNTS && seen_in[a] != epoch {
                                seen_in[a] = epoch;
                                tally.since.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Event::RegistrationLost { account, .. }
                        | Event::Unregistered { account, .. }
                        | Event::RegistrationFailed { account, .. } => set(usize::from(account.0), false, &mut up),
                        Event::FlowLost { reason, .. } => {
                            tally.fault("flow_lost", &reason);
                            (0..ACCOUNTS).for_each(|a| set(a, false, &mut up));
                        }
                        Event::ConnectFailed { reason, .. } => tally.fault("connect_failed", &reason),
                        _ => {}
                    }
                }
            })
            .detach();
            handles.push(phone.handle);
        }
        Fleet { handles, stop: Some(stop), threads }
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

/// A fleet process and the pipe to it.
pub struct FleetProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl FleetProcess {
    /// Starts a fleet process for `phones` (numbered from 0 over the whole fleet) of `registrar`, with the CA in
    /// `dir`; returns once it is ready to start them (its TLS configuration loaded).
    pub fn spawn(dir: &Path, registrar: SocketAddr, phones: Range<usize>, tuning: Tuning) -> FleetProcess {
        let exe = std::env::current_exe().expect("the benchmark's own path");
        let mut child = Command::new(exe)
            .arg(ARG)
            .arg(dir)
            .arg(registrar.to_string())
            .arg(phones.start.to_string())
            .arg(phones.end.to_string())
            .arg(tuning.connect_timeout_ms.map_or_else(|| "default".to_string(), |t| t.to_string()))
            .arg(tuning.transaction_timeout_ms.map_or_else(|| "default".to_string(), |t| t.to_string()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a fleet process");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut fleet = FleetProcess { child, stdin, stdout };
        let ready = fleet.answer();
        assert_eq!(ready, "ready", "fleet process said {ready:?}");
        fleet
    }

    /// Sends a command without waiting for its answer.
    pub fn send(&mut self, c: &str) {
        writeln!(self.stdin, "{c}").expect("write to a fleet process");
        self.stdin.flush().expect("flush to a fleet process");
    }

    /// The next answer line.
    pub fn answer(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from a fleet process");
        line.trim().to_string()
    }

    /// `(since, up)`: accounts registered since the last mark, and registered now.
    pub fn count(&mut self) -> (u64, u64) {
        self.send("count");
        let line = self.answer();
        let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
        (v.first().copied().unwrap_or(0), v.get(1).copied().unwrap_or(0))
    }

    /// Lost flows and failed connects since the last mark: `(kind:reason, count)`.
    pub fn faults(&mut self) -> Vec<(String, u64)> {
        self.send("faults");
        let line = self.answer();
        let pairs = line.split_whitespace().skip(1).filter_map(|p| p.split_once('='));
        pairs.map(|(k, v)| (k.to_string(), v.parse().unwrap_or(0))).collect()
    }

    /// The process's CPU time so far (user + system), from /proc.
    pub fn cpu(&self) -> Duration {
        crate::measure::process_cpu(self.child.id())
    }

    /// The process's resident memory in bytes.
    pub fn rss(&self) -> u64 {
        crate::measure::rss(&format!("/proc/{}/status", self.child.id()))
    }
}

impl Drop for FleetProcess {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's side: `ARG dir registrar start end connect-timeout-ms|default
/// transaction-timeout-ms|default`.
pub fn child_main(args: &[String]) {
    let [dir, registrar, start, end, connect_timeout, transaction_timeout] = args else {
        eprintln!("fleet process: expected DIR REGISTRAR START END CONNECT_TIMEOUT TRANSACTION_TIMEOUT, got {args:?}");
        std::process::exit(2);
    };
    let registrar: SocketAddr = registrar.parse().expect("registrar address");
    let phones: Range<usize> = start.parse().expect("first phone")..end.parse().expect("end of the phones");
    let tuning = Tuning {
        connect_timeout_ms: connect_timeout.parse().ok(),
        transaction_timeout_ms: transaction_timeout.parse().ok(),
    };
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let files = CertificateFiles { trusted_certificates: Some("ca.pem".into()), ..Default::default() };
    let tls = ClientTls::load(&files, TransportMode::PersistentTls, Path::new(dir)).expect("client TLS");
    let tally = Arc::new(Tally { epoch: AtomicU64::new(1), ..Tally::default() });
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        writeln!(out, "{line}").expect("stdout");
        out.flush().expect("stdout");
    };
    say("ready".to_string());
    let mut fleet = None;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "start" => {
                fleet = Some(Fleet::start(&tls, registrar, phones.clone(), tuning, &tally));
                say("started".to_string());
            }
            "count" => say(format!("count {} {}", tally.since.load(Ordering::SeqCst), tally.up.load(Ordering::SeqCst))),
            "faults" => {
                let faults = tally.faults.lock().map(|f| f.clone()).unwrap_or_default();
                let list: Vec<String> = faults.iter().map(|(k, v)| format!("{k}={v}")).collect();
                say(format!("faults {}", list.join(" ")));
            }
            "mark" => {
                if let Ok(mut faults) = tally.faults.lock() {
                    faults.clear();
                }
                tally.since.store(0, Ordering::SeqCst);
                tally.epoch.fetch_add(1, Ordering::SeqCst);
                say("ok".to_string());
            }
            "quit" => break,
            other => say(format!("error unknown command {other:?}")),
        }
    }
    drop(fleet);
}
