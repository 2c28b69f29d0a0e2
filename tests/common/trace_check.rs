//! Every phone the runtime, Kamailio and hostile suites run records its trace
//! (`PhoneOptions::record`), and once it has stopped the trace is replayed against a fresh
//! core with the configuration the phone ran with (`sip_ptls::replay::replay_trace`, the
//! code path of `sip-ptls replay`): every output must come out identical and the invariant
//! monitor must find nothing. The phone that ran against a real server is thus held to the
//! invariants of the model.
#![allow(dead_code)]

use sip_ptls::config::Config;
use sip_ptls::runtime::{Events, Phone, PhoneEvent, PhoneOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a phone asked to shut down may take to stop for good (its driver gone, its
/// trace complete) before its trace is checked as it stands.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// A phone's trace and the configuration it ran with (the same value the phone was given).
#[derive(Clone, Debug)]
pub struct Recording {
    pub trace: PathBuf,
    pub config: Config,
}

impl Recording {
    /// A recording of a phone running `config` into the first free name among
    /// `phone-1.jsonl`, `phone-2.jsonl`… in `dir` (the test's temporary directory).
    pub fn new(dir: &Path, config: Config) -> Recording {
        let trace = (1..).map(|n| dir.join(format!("phone-{n}.jsonl"))).find(|p| !p.exists()).expect("a free name");
        Recording { trace, config }
    }

    /// A recording into `trace`, which must not exist.
    pub fn at(trace: &Path, config: Config) -> Recording {
        Recording { trace: trace.to_path_buf(), config }
    }

    /// The options that make a phone record into [`Recording::trace`].
    pub fn options(&self) -> PhoneOptions {
        PhoneOptions::record(&self.trace)
    }

    /// Starts the phone on a thread of its own, recording, its certificate files relative
    /// to `base_dir`.
    pub fn spawn(&self, base_dir: &Path) -> Phone {
        Phone::spawn_with(self.config.clone(), base_dir, &self.options()).expect("start the phone")
    }

    /// Shuts `phone` down (at most `limit` for the shutdown), waits until it has stopped so
    /// that its trace is complete, checks the trace and returns the shutdown's events.
    pub fn shut_down_and_check(&self, phone: Phone, limit: Duration) -> Vec<PhoneEvent> {
        let events = phone.events.clone();
        let seen = phone.shutdown(limit);
        if !wait_stopped(&events, STOP_LIMIT) {
            eprintln!("trace: the phone did not stop within {STOP_LIMIT:?}; checking its trace as it stands");
        }
        self.assert_replays();
        seen
    }

    /// [`check_replay`] of this recording.
    pub fn check(&self) -> Result<usize, String> {
        check_replay(&self.trace, self.config.clone())
    }

    /// [`assert_replays`] of this recording.
    pub fn assert_replays(&self) -> usize {
        assert_replays(&self.trace, self.config.clone())
    }
}

/// Waits up to `limit` until the phone whose events these are has stopped: its event
/// stream ends after its driver's last loop, whose trace lines are written by then.
pub fn wait_stopped(events: &Events, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if events.next_timeout(deadline.saturating_duration_since(Instant::now())).is_none() {
            return Instant::now() < deadline;
        }
    }
    false
}

/// Replays `trace` with the `config` its phone ran with: the number of outputs found
/// identical (and a line on stderr saying so, for the CI log), or every problem found (a
/// trace that cannot be read, a warning, the first difference, every broken invariant),
/// naming the trace.
pub fn check_replay(trace: &Path, config: Config) -> Result<usize, String> {
    let report = sip_ptls::replay::replay_trace(trace, config).map_err(|e| format!("replay: {e}"))?;
    let mut problems: Vec<String> = report.warnings.iter().map(|w| format!("warning: {w}")).collect();
    if let Some(d) = &report.divergence {
        problems.push(format!("the replay differs from the recording after {} identical outputs, {d}", report.outputs));
    }
    problems.extend(report.violations.iter().map(|v| format!("invariant broken: {v}")));
    if problems.is_empty() {
        eprintln!("trace: {} outputs replayed, monitor clean ({})", report.outputs, trace.display());
        Ok(report.outputs)
    } else {
        Err(format!("trace {}:\n  {}", trace.display(), problems.join("\n  ")))
    }
}

/// [`check_replay`], failing the test with every problem found.
pub fn assert_replays(trace: &Path, config: Config) -> usize {
    check_replay(trace, config).unwrap_or_else(|e| panic!("{e}"))
}
