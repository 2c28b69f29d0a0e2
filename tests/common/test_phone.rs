//! A running phone under test, shared by the runtime tests and the Kamailio tests: every
//! event it produced with the test's clock, bounded waits that print the history when
//! they fail, and calls answered automatically when asked. It records its trace, checked
//! with the replay and the invariant monitor once it has shut down (`trace_check.rs`).
#![allow(dead_code)]

use super::trace_check::Recording;
use sip_ptls::Event;
use sip_ptls::config::Config;
use sip_ptls::engine::RegState;
use sip_ptls::ids::{AccountId, CallId, Server};
use sip_ptls::runtime::{Phone, PhoneEvent, PhoneHandle, Status};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// A running phone and every event it produced so far (with the test's clock).
pub struct TestPhone {
    phone: Option<Phone>,
    /// Its trace and configuration, checked once it has shut down.
    pub recording: Recording,
    /// Commands.
    pub handle: PhoneHandle,
    /// Every event so far.
    pub seen: Vec<(Instant, PhoneEvent)>,
    /// Answer incoming calls as they arrive.
    pub auto_answer: bool,
}

impl TestPhone {
    fn events(&self) -> &sip_ptls::runtime::Events {
        &self.phone.as_ref().expect("the phone is running").events
    }

    /// Waits up to `limit` for an event matching `want`; panics with the history if none.
    pub fn wait(&mut self, what: &str, limit: Duration, want: impl Fn(&Event) -> bool) -> (Instant, Event) {
        match self.try_wait(limit, want) {
            Some(x) => x,
            None => panic!("no {what} within {limit:?}; events so far:\n{}", self.history()),
        }
    }

    /// Waits up to `limit` for an event matching `want`.
    pub fn try_wait(&mut self, limit: Duration, want: impl Fn(&Event) -> bool) -> Option<(Instant, Event)> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = self.events().next_timeout(left)?;
            let at = Instant::now();
            if self.auto_answer
                && let Event::IncomingCall { call, .. } = e.event
            {
                let _ = self.handle.answer_blocking(call, Vec::new());
            }
            self.seen.push((at, e.clone()));
            if want(&e.event) {
                return Some((at, e.event));
            }
        }
    }

    /// Collects events for `d`.
    pub fn idle(&mut self, d: Duration) {
        let _ = self.try_wait(d, |_| false);
    }

    /// Waits until every account reported `Registered` on `server`; returns when the last did.
    pub fn all_registered(&mut self, server: Server, limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        let mut lines = BTreeSet::new();
        let mut last = Instant::now();
        let accounts = self.status().registrations.len();
        while lines.len() < accounts {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, e) = self.wait(
                &format!("every account registered on the {server}"),
                left,
                |e| matches!(e, Event::Registered { server: s, .. } if *s == server),
            );
            if let Event::Registered { account, .. } = e {
                lines.insert(account);
                last = at;
            }
        }
        last
    }

    /// The phone's status.
    pub fn status(&self) -> Status {
        self.handle.status_blocking().expect("the phone is running")
    }

    /// Every account is registered on `server`, in the phone's view.
    pub fn all_registered_on(&self, server: Server) -> bool {
        self.status().registrations.iter().all(|r| *r == RegState::Registered { server })
    }

    /// Events since `since` matching `what`.
    pub fn count(&self, since: Instant, what: impl Fn(&Event) -> bool) -> usize {
        self.seen.iter().filter(|(t, e)| *t >= since && what(&e.event)).count()
    }

    /// The events so far, one a line.
    /// The back-off waits the phone announced since `since`, as `Debug` writes them (for
    /// the measured times the tests print).
    pub fn backoff_waits(&self, since: Instant) -> Vec<String> {
        self.seen
            .iter()
            .filter(|(at, _)| *at >= since)
            .filter_map(|(_, e)| match &e.event {
                Event::Backoff { wait, .. } => Some(format!("{wait:?}")),
                _ => None,
            })
            .collect()
    }

    pub fn history(&self) -> String {
        self.seen.iter().map(|(_, e)| format!("  {} {:?}\n", e.at, e.event)).collect()
    }

    /// Places a call from `from` to user `to`.
    pub fn place(&self, from: usize, to: &str) -> CallId {
        self.handle.place_call_blocking(AccountId(from as u8), to, Vec::new()).expect("place a call")
    }

    /// Places a call and waits for its outcome.
    pub fn call(&mut self, from: AccountId, to: &str, limit: Duration) -> (CallId, Event) {
        let id = self.handle.place_call_blocking(from, to, Vec::new()).expect("place a call");
        let (_, e) = self.outcome(id, limit);
        (id, e)
    }

    /// Waits for the outcome of `call`.
    pub fn outcome(&mut self, call: CallId, limit: Duration) -> (Instant, Event) {
        self.wait("the call's outcome", limit, |e| matches!(e, Event::CallOutcome { call: c, .. } if *c == call))
    }

    /// Shuts down, checks the trace and returns the events of the shutdown.
    pub fn shutdown(mut self) -> Vec<PhoneEvent> {
        match self.phone.take() {
            Some(p) => self.recording.shut_down_and_check(p, Duration::from_secs(10)),
            None => Vec::new(),
        }
    }
}

/// A phone left running at the end of a test is shut down and its trace checked, unless
/// the test already failed.
impl Drop for TestPhone {
    fn drop(&mut self) {
        if let Some(p) = self.phone.take() {
            if std::thread::panicking() {
                p.shutdown(Duration::from_secs(5));
            } else {
                self.recording.shut_down_and_check(p, Duration::from_secs(5));
            }
        }
    }
}

impl TestPhone {
    /// Starts a phone running `config` (certificate files relative to `base_dir`),
    /// recording its trace into the first free `phone-N.jsonl` of `base_dir`; incoming
    /// calls are answered at once.
    pub fn spawn(config: Config, base_dir: &Path) -> TestPhone {
        TestPhone::spawn_recording(Recording::new(base_dir, config), base_dir)
    }

    /// [`TestPhone::spawn`] recording as `recording` says.
    pub fn spawn_recording(recording: Recording, base_dir: &Path) -> TestPhone {
        let phone = recording.spawn(base_dir);
        TestPhone { handle: phone.handle.clone(), phone: Some(phone), recording, seen: Vec::new(), auto_answer: true }
    }
}
