//! The demo's set-up: a primary and a backup registrar on loopback around the shared
//! [`lab`] (test CA and its file), the phone's configuration, and a watcher that waits
//! for the phone's events with a bound.

use sip_ptls::Event;
use sip_ptls::config::{AccountConfig, Backoff, Config, Failback};
use sip_ptls::registrar::{Registrar, lab};
use sip_ptls::runtime::{Events, PhoneEvent, PhoneHandle};
use sip_ptls::time::Duration;
use std::path::Path;
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

/// The two registrars and the files the phone needs.
pub struct Lab {
    /// The CA and its file, the phone's base directory.
    pub files: lab::Lab,
    /// `sip proxy ip`.
    pub primary: Registrar,
    /// `sip backup proxy ip`.
    pub backup: Registrar,
}

impl Lab {
    /// Makes the PKI, writes the CA file and starts both registrars.
    pub fn start() -> Result<Lab, String> {
        let files = lab::Lab::new("demo").map_err(|e| format!("test PKI: {e}"))?;
        let registrar = |what: &str| -> Result<Registrar, String> {
            files.registrar(DOMAIN, &USERS, |_| {}).map_err(|e| format!("{what} registrar: {e}"))
        };
        Ok(Lab { primary: registrar("primary")?, backup: registrar("backup")?, files })
    }

    /// The phone's base directory.
    pub fn dir(&self) -> &Path {
        self.files.dir.path()
    }

    /// The phone's configuration: two lines, both proxies, short timers.
    pub fn config(&self) -> Config {
        let accounts = USERS.iter().map(|(u, p)| AccountConfig::new(u, p)).collect();
        Config {
            keepalive_interval: KEEPALIVE,
            pong_timeout: Duration::from_millis(1000),
            connect_timeout: Duration::from_millis(2000),
            backoff: Backoff { base: Duration::from_millis(500), max: Duration::from_secs(2) },
            failback: Failback { probe_interval: PROBE_INTERVAL, stable_probes: STABLE_PROBES },
            call_setup_timeout: Duration::from_secs(10),
            ..lab::phone_config(DOMAIN, accounts, self.primary.addr(), Some(self.backup.addr()))
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
