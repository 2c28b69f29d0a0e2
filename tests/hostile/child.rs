//! The phone under test in a child process, so that its memory is its own: the test
//! binary runs itself again with only its `child_phone` test selected and the
//! [`CHILD_ENV`] variable set. The child runs `Phone::spawn`, prints every event on a
//! line (`@@E <event>`; incoming calls and ended calls only as running counts, `@@C`),
//! and places calls when told on its standard input. The parent reads those lines and
//! samples the child's resident memory from /proc. The child records its trace where the
//! parent says, with the configuration the parent built (the parent gives it the seed), so
//! that the parent can check the trace once the child has ended.

use super::{DOMAIN, Recording, USERS};
use sip_ptls::config::{AccountConfig, Backoff, Config, Failback};
use sip_ptls::ids::AccountId;
use sip_ptls::registrar::lab;
use sip_ptls::rng::Seed;
use sip_ptls::runtime::{Phone, PhoneOptions};
use sip_ptls::time::Duration as CoreDuration;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Set in the child: `<server address> <registration retry s> <seed, hexadecimal> <base
/// directory>`.
pub const CHILD_ENV: &str = "SIP_PTLS_HOSTILE_CHILD";

/// Set in the child: the file to record the trace to.
pub const TRACE_ENV: &str = "SIP_PTLS_HOSTILE_TRACE";

/// The phone's configuration: the runtime tests' short timers, and the shortest
/// registration retry timer the configuration accepts (30 s).
fn config(server: SocketAddr, retry: u32) -> Config {
    let accounts = USERS.iter().map(|(u, p)| AccountConfig::new(u, p)).collect();
    Config {
        keepalive_interval: CoreDuration::from_millis(1000),
        pong_timeout: CoreDuration::from_millis(1000),
        connect_timeout: CoreDuration::from_millis(2000),
        backoff: Backoff { base: CoreDuration::from_millis(300), max: CoreDuration::from_millis(1000) },
        failback: Failback { probe_interval: CoreDuration::from_millis(500), stable_probes: 3 },
        call_setup_timeout: CoreDuration::from_secs(8),
        registration_retry: retry,
        ..lab::phone_config(DOMAIN, accounts, server, None)
    }
}

fn seed_hex(seed: Seed) -> String {
    seed.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn seed_from_hex(hex: &str) -> Option<Seed> {
    let bytes: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect::<Option<_>>()?;
    Some(Seed::from_bytes(bytes.try_into().ok()?))
}

/// The body of the child: does nothing unless [`CHILD_ENV`] is set.
pub fn child_main() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let mut parts = spec.splitn(4, ' ');
    let server: SocketAddr = parts.next().and_then(|s| s.parse().ok()).expect("server address");
    let retry: u32 = parts.next().and_then(|s| s.parse().ok()).expect("retry timer");
    let seed = parts.next().and_then(seed_from_hex).expect("seed");
    let dir = parts.next().expect("base directory").to_owned();
    let trace = std::env::var_os(TRACE_ENV).expect("trace file");
    // Never outlive a parent that died without closing our input.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(240));
        eprintln!("hostile child: still running after 240 s: exiting");
        std::process::exit(3);
    });
    let config = Config { seed, ..config(server, retry) };
    let phone = Phone::spawn_with(config, Path::new(&dir), &PhoneOptions::record(trace)).expect("start the phone");
    let incoming = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let events = phone.events.clone();
    let (inc, end, fin) = (incoming.clone(), ended.clone(), done.clone());
    let printer = std::thread::spawn(move || {
        while let Some(e) = futures_lite::future::block_on(events.next()) {
            match e.event {
                sip_ptls::Event::IncomingCall { .. } => {
                    inc.fetch_add(1, Ordering::Relaxed);
                }
                sip_ptls::Event::CallEnded { .. } => {
                    end.fetch_add(1, Ordering::Relaxed);
                }
                sip_ptls::Event::CallProgress { .. } => {}
                other => println!("@@E {other:?}"),
            }
        }
        fin.store(true, Ordering::SeqCst);
    });
    let (inc, end, fin) = (incoming.clone(), ended.clone(), done.clone());
    std::thread::spawn(move || {
        let mut last = (u64::MAX, u64::MAX);
        while !fin.load(Ordering::SeqCst) {
            let now = (inc.load(Ordering::Relaxed), end.load(Ordering::Relaxed));
            if now != last {
                println!("@@C {} {}", now.0, now.1);
                last = now;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    println!("@@READY");
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["call", seq, account, target] => {
                let account = AccountId(account.parse().expect("account number"));
                match phone.handle.place_call_blocking(account, target, Vec::new()) {
                    Ok(id) => println!("@@P {seq} {}", id.0),
                    Err(e) => println!("@@X {seq} {e}"),
                }
            }
            ["shutdown"] => break,
            _ => {}
        }
    }
    phone.handle.shutdown();
    let until = Instant::now() + Duration::from_secs(15);
    while !printer.is_finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("@@C {} {}", incoming.load(Ordering::Relaxed), ended.load(Ordering::Relaxed));
    println!("@@END {}", if printer.is_finished() { "clean" } else { "timeout" });
    let _ = std::io::stdout().flush();
    std::process::exit(0);
}

/// Resident memory of the child, sampled every 100 ms from /proc/<pid>/status.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// VmRSS when the test marked its baseline (after the first registration).
    pub baseline: u64,
    /// Highest VmRSS sampled.
    pub peak_sampled: u64,
    /// VmHWM: the kernel's peak resident set.
    pub hwm: u64,
    /// The last VmRSS sampled.
    pub last: u64,
    pub samples: u64,
    /// The child passed [`MEMORY_CAP`] and was killed.
    pub killed_at_cap: bool,
}

/// A child phone whose resident set passes this is killed (its memory is unbounded).
pub const MEMORY_CAP: u64 = 1 << 30;

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A phone in a child process and what it printed.
pub struct ChildPhone {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<(Instant, String)>,
    /// Every event line (`@@E`, without the prefix) with the test's clock.
    pub events: Vec<(Instant, String)>,
    /// Incoming calls and ended calls reported so far.
    pub incoming: u64,
    pub ended: u64,
    memory: Arc<Mutex<Memory>>,
    sampling: Arc<AtomicBool>,
    pub pid: u32,
    /// Lines on the child's standard error that mention a panic.
    panics: Arc<Mutex<Vec<String>>>,
    ended_clean: Option<bool>,
    /// The answer to each call command, by its number (late answers included).
    pub placed: BTreeMap<u64, Result<u32, String>>,
    commands: u64,
    /// The child's trace and the configuration it ran with.
    pub recording: Recording,
}

impl ChildPhone {
    /// Starts the phone against `server`, with its CA under `dir`, recording its trace there.
    pub fn spawn(server: SocketAddr, dir: &Path, registration_retry: u32) -> ChildPhone {
        let recording = Recording::new(dir, config(server, registration_retry));
        let seed = seed_hex(recording.config.seed);
        let exe = std::env::current_exe().expect("the test binary");
        let mut child = Command::new(exe)
            .args(["child_phone", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{server} {registration_retry} {seed} {}", dir.display()))
            .env(TRACE_ENV, &recording.trace)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the child phone");
        let pid = child.id();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("child stdout");
        let stderr = child.stderr.take().expect("child stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The first line follows libtest's "test child_phone ... ".
                if let Some(i) = line.find("@@")
                    && tx.send((Instant::now(), line[i..].to_owned())).is_err()
                {
                    break;
                }
            }
        });
        let panics = Arc::new(Mutex::new(Vec::new()));
        let p = panics.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("panicked") {
                    p.lock().unwrap().push(line.clone());
                }
                eprintln!("[child {pid}] {line}");
            }
        });
        let memory = Arc::new(Mutex::new(Memory::default()));
        let sampling = Arc::new(AtomicBool::new(true));
        let (m, s) = (memory.clone(), sampling.clone());
        std::thread::spawn(move || {
            while s.load(Ordering::SeqCst) {
                let Some(rss) = status_kb(pid, "VmRSS:") else { break };
                let hwm = status_kb(pid, "VmHWM:").unwrap_or(0);
                if rss * 1024 > MEMORY_CAP {
                    // A phone that grows without bound must not take the machine with it.
                    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                    eprintln!("hostile: child phone {pid} passed {} MiB of RSS: killed", MEMORY_CAP >> 20);
                    m.lock().unwrap().killed_at_cap = true;
                }
                let mut mem = m.lock().unwrap();
                mem.last = rss * 1024;
                mem.peak_sampled = mem.peak_sampled.max(rss * 1024);
                mem.hwm = mem.hwm.max(hwm * 1024);
                mem.samples += 1;
                drop(mem);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let mut phone = ChildPhone {
            child,
            stdin,
            lines,
            events: Vec::new(),
            incoming: 0,
            ended: 0,
            memory,
            sampling,
            pid,
            panics,
            ended_clean: None,
            placed: BTreeMap::new(),
            commands: 0,
            recording,
        };
        phone.wait_line(Duration::from_secs(20), |l| l == "@@READY").expect("the child phone started");
        phone
    }

    fn take(&mut self, at: Instant, line: String) -> Option<String> {
        if let Some(ev) = line.strip_prefix("@@E ") {
            self.events.push((at, ev.to_owned()));
        } else if let Some(c) = line.strip_prefix("@@C ") {
            let mut it = c.split(' ').map(|x| x.parse().unwrap_or(0));
            self.incoming = it.next().unwrap_or(0);
            self.ended = it.next().unwrap_or(0);
        } else if let Some((seq, rest)) = line.strip_prefix("@@P ").and_then(|r| r.split_once(' ')) {
            let id = rest.parse().map_err(|_| line.clone());
            self.placed.insert(seq.parse().unwrap_or(u64::MAX), id);
        } else if let Some((seq, rest)) = line.strip_prefix("@@X ").and_then(|r| r.split_once(' ')) {
            self.placed.insert(seq.parse().unwrap_or(u64::MAX), Err(rest.to_owned()));
        } else if let Some(c) = line.strip_prefix("@@END ") {
            self.ended_clean = Some(c == "clean");
        }
        Some(line)
    }

    /// Reads lines for up to `limit` until one matches `want` (raw line, with prefix).
    fn wait_line(&mut self, limit: Duration, want: impl Fn(&str) -> bool) -> Option<(Instant, String)> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, line) = match self.lines.recv_timeout(left) {
                Ok(x) => x,
                Err(_) => return None,
            };
            let line = self.take(at, line)?;
            if want(&line) {
                return Some((at, line));
            }
        }
    }

    /// Collects what the child prints for `d`.
    pub fn pump(&mut self, d: Duration) {
        let _ = self.wait_line(d, |_| false);
    }

    /// Collects until `until`.
    pub fn pump_until(&mut self, until: Instant) {
        self.pump(until.saturating_duration_since(Instant::now()));
    }

    /// Waits up to `limit` for an event line matching `want`; returns when it came.
    pub fn wait(&mut self, limit: Duration, want: impl Fn(&str) -> bool) -> Option<Instant> {
        self.wait_line(limit, |l| l.strip_prefix("@@E ").is_some_and(&want)).map(|(at, _)| at)
    }

    /// Waits until every account has a `Registered` event after `since`.
    /// Only events containing `with` count (e.g. `"expires: 3600"`).
    pub fn wait_all_registered(&mut self, since: Instant, with: &str, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            let all = (0..USERS.len()).all(|a| {
                let tag = format!("Registered {{ account: AccountId({a})");
                self.events.iter().any(|(t, e)| *t >= since && e.starts_with(&tag) && e.contains(with))
            });
            if all {
                return self.events.iter().rev().find(|(_, e)| e.starts_with("Registered")).map(|(t, _)| *t);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            self.wait(left, |e| e.starts_with("Registered"))?;
        }
    }

    /// Places a call from `account` to `target`; `Err` if refused or no answer in `limit`
    /// (a phone whose event loop is starved does not answer commands).
    pub fn place(&mut self, account: u8, target: &str, limit: Duration) -> Result<u32, String> {
        self.commands += 1;
        let seq = self.commands;
        let stdin = self.stdin.as_mut().ok_or("input closed")?;
        writeln!(stdin, "call {seq} {account} {target}").map_err(|e| e.to_string())?;
        stdin.flush().map_err(|e| e.to_string())?;
        let (p, x) = (format!("@@P {seq} "), format!("@@X {seq} "));
        let _ = self.wait_line(limit, |l| l.starts_with(&p) || l.starts_with(&x));
        match self.placed.get(&seq) {
            Some(r) => r.clone(),
            None => Err(format!("the phone did not take the call command within {limit:?}")),
        }
    }

    /// How many `CallOutcome` events each call got.
    pub fn outcomes(&self) -> BTreeMap<u32, Vec<String>> {
        let mut out: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for (_, e) in &self.events {
            if let Some(rest) = e.strip_prefix("CallOutcome { call: CallId(")
                && let Some((n, tail)) = rest.split_once(')')
                && let Ok(n) = n.parse()
            {
                out.entry(n).or_default().push(tail.trim_start_matches(", outcome: ").trim_end_matches(" }").into());
            }
        }
        out
    }

    /// Waits until each of `calls` has an outcome.
    pub fn wait_outcomes(&mut self, calls: &[u32], limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let have = self.outcomes();
            if calls.iter().all(|c| have.contains_key(c)) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.wait(left, |e| e.starts_with("CallOutcome")).is_none() {
                return false;
            }
        }
    }

    /// The `retry_in` of every `RegistrationFailed` after `since` (`None`: no retry).
    pub fn retry_ins(&self, since: Instant) -> Vec<Option<Duration>> {
        self.events
            .iter()
            .filter(|(t, e)| *t >= since && e.starts_with("RegistrationFailed"))
            .map(|(_, e)| {
                e.split_once("retry_in: Some(Duration(")
                    .and_then(|(_, rest)| rest.split_once(')'))
                    .and_then(|(ms, _)| ms.parse().ok())
                    .map(Duration::from_millis)
            })
            .collect()
    }

    /// Events whose text starts with `prefix`, after `since`.
    pub fn count(&self, since: Instant, prefix: &str) -> usize {
        self.events.iter().filter(|(t, e)| *t >= since && e.starts_with(prefix)).count()
    }

    /// The events so far, one a line (the last `n`).
    pub fn history(&self, n: usize) -> String {
        let skip = self.events.len().saturating_sub(n);
        self.events.iter().skip(skip).map(|(_, e)| format!("  {e}\n")).collect()
    }

    /// Records the current resident size as the baseline.
    pub fn mark_baseline(&mut self) {
        let rss = status_kb(self.pid, "VmRSS:").unwrap_or(0) * 1024;
        self.memory.lock().unwrap().baseline = rss;
    }

    /// The memory figures so far (the last sample taken now).
    pub fn memory(&self) -> Memory {
        if let Some(rss) = status_kb(self.pid, "VmRSS:") {
            let mut m = self.memory.lock().unwrap();
            m.last = rss * 1024;
            m.peak_sampled = m.peak_sampled.max(m.last);
            m.hwm = m.hwm.max(status_kb(self.pid, "VmHWM:").unwrap_or(0) * 1024);
        }
        *self.memory.lock().unwrap()
    }

    /// Panic lines the child wrote on its standard error.
    pub fn panics(&self) -> Vec<String> {
        self.panics.lock().unwrap().clone()
    }

    /// Asks the phone to shut down (de-register, close) and waits for the child to end,
    /// killing it after `limit`. Returns whether it shut down on its own and cleanly.
    pub fn shutdown(&mut self, limit: Duration) -> bool {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "shutdown");
        }
        let _ = self.wait_line(limit, |l| l.starts_with("@@END"));
        self.pump(Duration::from_millis(100));
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.sampling.store(false, Ordering::SeqCst);
                return status.success() && self.ended_clean == Some(true);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.sampling.store(false, Ordering::SeqCst);
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildPhone {
    fn drop(&mut self) {
        self.sampling.store(false, Ordering::SeqCst);
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
