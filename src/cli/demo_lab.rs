//! The demo's set-up: a test PKI, a primary and a backup registrar on loopback, the
//! certificate files in a temporary directory, the phone's configuration, and a watcher
//! that waits for the phone's events with a bound.

use sip_ptls::config::{AccountConfig, Backoff, CertificateFiles, Config, Failback, ServerAddr};
use sip_ptls::registrar::{Registrar, RegistrarConfig, TestPki};
use sip_ptls::runtime::{Events, PhoneEvent, PhoneHandle};
use sip_ptls::time::Duration;
use sip_ptls::{Event, runtime};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The SIP domain of the demo's accounts.
pub const DOMAIN: &str = "demo.sip-ptls.test";
/// The two lines: user name and password.
pub const USERS: [(&str, &str); 2] = [("1001", "secret-one"), ("1002", "secret-two")];
/// Keep-alive interval of the demo phone.
pub const KEEPALIVE: Duration = Duration::from_millis(1000);
/// Time between failback probes.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(1000);
/// Good probes in a row before failing back.
pub const STABLE_PROBES: u8 = 3;

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system's temporary directory.
    pub fn new() -> Result<TempDir, String> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let p = std::env::temp_dir().join(format!("sip-ptls-demo-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        Ok(TempDir(p))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes a file into it.
    pub fn write(&self, name: &str, text: &str) -> Result<(), String> {
        let p = self.0.join(name);
        std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The two registrars and the files the phone needs.
pub struct Lab {
    /// Certificate files.
    pub dir: TempDir,
    /// `sip proxy ip`.
    pub primary: Registrar,
    /// `sip backup proxy ip`.
    pub backup: Registrar,
}

impl Lab {
    /// Makes the PKI, writes the CA file and starts both registrars.
    pub fn start() -> Result<Lab, String> {
        let pki = TestPki::new().map_err(|e| format!("test PKI: {e}"))?;
        let dir = TempDir::new()?;
        dir.write("ca.pem", &pki.ca_pem)?;
        let registrar = |what: &str| -> Result<Registrar, String> {
            let cert = pki.server_cert(&["localhost", "127.0.0.1"]).map_err(|e| format!("{what} certificate: {e}"))?;
            Registrar::start(RegistrarConfig::new(DOMAIN, &USERS, cert)).map_err(|e| format!("{what} registrar: {e}"))
        };
        Ok(Lab { primary: registrar("primary")?, backup: registrar("backup")?, dir })
    }

    /// The phone's configuration: two lines, both proxies, short timers.
    pub fn config(&self) -> Config {
        let addr = |r: &Registrar| ServerAddr::new(r.addr().ip().to_string(), r.addr().port());
        Config {
            proxy: Some(addr(&self.primary)),
            backup_proxy: Some(addr(&self.backup)),
            registrar: Some(ServerAddr::new(DOMAIN, 0)),
            accounts: USERS.iter().map(|(u, p)| AccountConfig::new(u, p)).collect(),
            certificates: CertificateFiles { trusted_certificates: Some("ca.pem".into()), ..Default::default() },
            keepalive_interval: KEEPALIVE,
            pong_timeout: Duration::from_millis(1000),
            connect_timeout: Duration::from_millis(2000),
            backoff: Backoff { base: Duration::from_millis(500), max: Duration::from_secs(2) },
            failback: Failback { probe_interval: PROBE_INTERVAL, stable_probes: STABLE_PROBES },
            call_setup_timeout: Duration::from_secs(10),
            seed: runtime::os_seed(),
            ..Config::default()
        }
    }
}

/// Reads the phone's events, answers its incoming calls, and waits with a bound.
pub struct Watcher {
    events: Events,
    handle: PhoneHandle,
    /// Every event seen, with the wall-clock time it was read.
    pub seen: Vec<(Instant, PhoneEvent)>,
}

impl Watcher {
    /// Watches `events`, answering incoming calls through `handle`.
    pub fn new(events: Events, handle: PhoneHandle) -> Watcher {
        Watcher { events, handle, seen: Vec::new() }
    }

    /// Waits up to `limit` for an event matching `want`; returns it with its arrival time.
    pub fn wait(&mut self, limit: std::time::Duration, want: impl Fn(&Event) -> bool) -> Option<(Instant, Event)> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = self.events.next_timeout(left)?;
            let at = Instant::now();
            if let Event::IncomingCall { call, .. } = e.event {
                let _ = self.handle.answer_blocking(call, Vec::new());
            }
            self.seen.push((at, e.clone()));
            if want(&e.event) {
                return Some((at, e.event));
            }
        }
    }

    /// Reads whatever arrives during `d`.
    pub fn idle(&mut self, d: std::time::Duration) {
        let _ = self.wait(d, |_| false);
    }

    /// Events seen since `since` that match `what`.
    pub fn count_since(&self, since: Instant, what: impl Fn(&Event) -> bool) -> usize {
        self.seen.iter().filter(|(t, e)| *t >= since && what(&e.event)).count()
    }
}
