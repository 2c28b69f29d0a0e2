//! `sip-ptls replay`: plays a recorded trace against a fresh core built from the
//! configuration files and the recorded seed, prints the timeline, and checks every
//! output and every invariant. Exit status 0, 1 (a difference or a broken invariant) or 2
//! (an unreadable trace or configuration).

use super::files;
use super::narrator::Narrator;
use sip_ptls::replay::{ReplayError, replay_trace};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Replays `trace` with the configuration read from `configs`.
pub fn run(trace: &Path, configs: &[PathBuf]) -> ExitCode {
    let conf = files::read(configs);
    let loaded = match conf.loaded {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let report = match replay_trace(trace, loaded.config) {
        Ok(r) => r,
        Err(e @ (ReplayError::Trace(_) | ReplayError::Config(_))) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    println!("timeline of {}", trace.display());
    for m in &report.timeline {
        println!("  {:>12}  line {:<6} {}", m.at.to_string(), m.line, m.what);
    }
    let mut narrator = Narrator::default();
    match &report.divergence {
        None => {
            narrator.step(true, &format!("every one of the {} recorded outputs came out identical", report.outputs));
        }
        Some(d) => {
            let what =
                format!("line {} differs from the recording, after {} identical outputs", d.line, report.outputs);
            narrator.step(false, &what);
            narrator.note(&format!("recorded: {}", d.recorded));
            narrator.note(&format!("replayed: {}", d.replayed));
        }
    }
    narrator.step(report.violations.is_empty(), "no invariant broken");
    for v in &report.violations {
        narrator.note(v);
    }
    if narrator.finish("replay") { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
