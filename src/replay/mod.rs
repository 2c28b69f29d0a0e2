//! Replays a trace recorded by a phone (`PhoneOptions::record`, `sip-ptls run --record`)
//! against a fresh core built from the same configuration and the recorded seed: every
//! recorded input, timeout and command is given again at its recorded time, every output
//! must come out identical, and the invariant monitor watches the whole run. A field
//! failure thus becomes a reproducer that needs no network, no server and no clock
//! (`docs/record-replay.md`). Feature `sim`, with the runtime.

mod player;
mod timeline;

pub use timeline::Moment;

use crate::config::{Config, ConfigError};
use crate::runtime::TraceError;
use crate::runtime::trace::{TraceReader, config_digest};
use crate::time::Instant;
use player::{Player, Stop};
use std::path::Path;
use thiserror::Error;

/// The first place where the replayed core did something else than the trace says.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("line {line} differs:\n  recorded: {recorded}\n  replayed: {replayed}")]
pub struct Divergence {
    /// The trace line (from 1); the line after the last when the core produced more than
    /// the trace holds.
    pub line: usize,
    /// What the trace says, as its JSON line.
    pub recorded: String,
    /// What the fresh core did, as the JSON line the trace would hold.
    pub replayed: String,
}

/// What a replay found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayReport {
    /// The recorded outputs the fresh core produced identically.
    pub outputs: usize,
    /// Where the core first did something else; the replay stopped there.
    pub divergence: Option<Divergence>,
    /// Every invariant the monitor found broken, up to where the replay stopped.
    pub violations: Vec<String>,
    /// Connections, SIP messages, commands and events, in order.
    pub timeline: Vec<Moment>,
    /// Doubts about the replay itself: another configuration or another version of
    /// sip-ptls than the trace was recorded with.
    pub warnings: Vec<String>,
}

impl ReplayReport {
    /// Every output identical and no invariant broken.
    pub fn is_clean(&self) -> bool {
        self.divergence.is_none() && self.violations.is_empty()
    }
}

/// Why a trace could not be replayed at all.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The trace cannot be read, or a line of it is malformed (file, line and what).
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The configuration is not usable.
    #[error("invalid configuration: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Config(Vec<ConfigError>),
}

/// Replays the trace at `path` with `config`, whose seed and instance identifier are
/// replaced by the recorded ones. Returns what the replay found, or why the trace could
/// not be replayed (a malformed line is named with its file and number).
pub fn replay_trace(path: &Path, mut config: Config) -> Result<ReplayReport, ReplayError> {
    let mut reader = TraceReader::open(path)?;
    let header = reader.header().clone();
    config.seed = header.seed().map_err(|e| reader.error(1, format!("`seed`: {e}")))?;
    config.instance_id = header.instance_id.clone();
    config.validate().map_err(ReplayError::Config)?;
    let mut warnings = Vec::new();
    let version = env!("CARGO_PKG_VERSION");
    if header.crate_version != version {
        warnings.push(format!(
            "recorded by sip-ptls {}, replayed by {version}: a change in the core shows as a difference",
            header.crate_version
        ));
    }
    if header.config_digest != config_digest(&config) {
        warnings.push(
            "the configuration is not the one the trace was recorded with (its digest differs): \
             the outputs will likely differ"
                .into(),
        );
    }
    let mut player = Player::new(config, Instant::from_millis(header.t));
    let mut last = 1;
    let mut divergence = None;
    while let Some((n, line)) = reader.next_line()? {
        last = n;
        match player.line(n, line) {
            Ok(()) => {}
            Err(Stop::Invalid(problem)) => return Err(reader.error(n, problem).into()),
            Err(Stop::Diverged(d)) => {
                divergence = Some(d);
                break;
            }
        }
    }
    if divergence.is_none() {
        divergence = player.finish(last + 1);
    }
    Ok(ReplayReport {
        outputs: player.outputs,
        divergence,
        violations: player.monitor.violations().to_vec(),
        timeline: std::mem::take(&mut player.timeline.moments),
        warnings,
    })
}
