//! The hostile-server suite's shared parts (issue 10): a scripted SIP-over-TLS server
//! that misbehaves on purpose (`server.rs`), the phone under test in a child process so
//! that its resident memory can be read alone from /proc (`child.rs`), and the figures
//! the tests print (memory, delays, request counts) for docs/reliability.md. The child
//! records its trace, which [`Verdict::common`] replays and checks with the invariant
//! monitor once the child has ended (`tests/common/trace_check.rs`).
//!
//! Each test file also holds `#[test] fn child_phone() { hostile::child_main() }`: the
//! child's entry point, which does nothing unless the child's variable is set.
#![allow(dead_code)]

pub mod child;
pub mod flood;
pub mod server;

pub use child::{ChildPhone, Memory, child_main};
#[allow(unused_imports)]
pub use server::{Action, HostileServer, Log, RegisterMode, Script, Start};

use sip_ptls::registrar::lab::Lab;
use std::time::{Duration, Instant};

#[path = "../common/watchdog.rs"]
mod watchdog_impl;
pub use watchdog_impl::Watchdog;

#[path = "../common/trace_check.rs"]
mod trace_check;
pub use trace_check::Recording;

pub const DOMAIN: &str = "test.sip-ptls.test";
pub const USERS: [(&str, &str); 2] = [("1001", "secret-one"), ("1002", "secret-two")];

/// Bound on the phone's resident memory above its baseline (after the first
/// registration). The phone needs a few MiB; a queue that grows without bound under a
/// flood passes this within seconds.
pub const MEMORY_GROWTH_BOUND: u64 = 64 << 20;

/// Starts a watchdog for one test: a hang fails the binary instead of stalling CI.
pub fn watchdog(name: &'static str, limit: Duration) -> Watchdog {
    watchdog_impl::watchdog_with(name, limit, || {})
}

/// A test CA with its `ca.pem` in a fresh directory.
pub fn lab() -> Lab {
    Lab::new("hostile").expect("test PKI and its directory")
}

/// The most instants of `times` inside any window of length `window`.
pub fn max_in_window(times: &[Instant], window: Duration) -> usize {
    let mut t: Vec<Instant> = times.to_vec();
    t.sort();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..t.len() {
        while t[hi].duration_since(t[lo]) >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Prints one figure in the form `hostile/<test>: <name> = <value>`.
pub fn figure(test: &str, name: &str, value: impl std::fmt::Display) {
    println!("hostile/{test}: {name} = {value}");
}

/// Prints the memory figures of the child phone.
pub fn memory_figures(test: &str, m: &Memory) {
    figure(test, "rss baseline", mib(m.baseline));
    figure(test, "rss peak (VmHWM)", mib(m.hwm.max(m.peak_sampled)));
    figure(test, "rss final", mib(m.last));
    figure(test, "rss growth at peak", mib(m.hwm.max(m.peak_sampled).saturating_sub(m.baseline)));
}

/// Collects every problem of a test so that all of them are printed before it fails.
#[derive(Default)]
pub struct Verdict {
    pub test: &'static str,
    problems: Vec<String>,
}

impl Verdict {
    pub fn new(test: &'static str) -> Verdict {
        Verdict { test, problems: Vec::new() }
    }

    pub fn check(&mut self, ok: bool, what: impl Into<String>) {
        let what = what.into();
        println!("hostile/{}: check {}: {what}", self.test, if ok { "ok" } else { "FAILED" });
        if !ok {
            self.problems.push(what);
        }
    }

    /// The checks every scenario makes at its end: memory, panics, call outcomes.
    pub fn common(&mut self, phone: &mut ChildPhone, calls: &[u32]) {
        let m = phone.memory();
        memory_figures(self.test, &m);
        self.check(!m.killed_at_cap, "the phone stayed below the 1 GiB cap (killed otherwise)");
        let growth = m.hwm.max(m.peak_sampled).saturating_sub(m.baseline);
        self.check(
            growth <= MEMORY_GROWTH_BOUND,
            format!(
                "memory stays bounded: peak {} over the baseline (bound {})",
                mib(growth),
                mib(MEMORY_GROWTH_BOUND)
            ),
        );
        // Calls whose command the phone took late count as placed too.
        let mut calls = calls.to_vec();
        calls.extend(phone.placed.values().filter_map(|r| r.as_ref().ok().copied()));
        calls.sort();
        calls.dedup();
        let calls = &calls[..];
        let got = phone.wait_outcomes(calls, Duration::from_secs(20));
        let outcomes = phone.outcomes();
        for c in calls {
            let n = outcomes.get(c).map_or(0, Vec::len);
            self.check(n == 1, format!("call {c} got exactly one outcome (got {n}: {:?})", outcomes.get(c)));
        }
        if !got {
            println!("hostile/{}: last events:\n{}", self.test, phone.history(30));
        }
        let clean = phone.shutdown(Duration::from_secs(15));
        self.check(clean, "the phone shut down cleanly when asked");
        let panics = phone.panics();
        self.check(panics.is_empty(), format!("nothing panicked {panics:?}"));
        // The child has ended (or was killed): its trace is complete, or ends in whole lines.
        match phone.recording.check() {
            Ok(outputs) => {
                self.check(true, format!("the trace replays: {outputs} outputs identical, no invariant broken"))
            }
            Err(problems) => self.check(false, format!("the trace replays cleanly: {problems}")),
        }
    }

    /// Fails the test if any check failed.
    pub fn finish(self) {
        assert!(
            self.problems.is_empty(),
            "{}: {} check(s) failed:\n  {}",
            self.test,
            self.problems.len(),
            self.problems.join("\n  ")
        );
    }
}

/// Places a call and records the failure to place it.
pub fn place_call(v: &mut Verdict, phone: &mut ChildPhone, account: u8, calls: &mut Vec<u32>) {
    let asked = Instant::now();
    match phone.place(account, "2000", Duration::from_secs(10)) {
        Ok(id) => {
            figure(v.test, "call command answered after", format!("{:?}", asked.elapsed()));
            calls.push(id);
        }
        Err(e) => v.check(false, format!("a call can be placed: {e}")),
    }
}
