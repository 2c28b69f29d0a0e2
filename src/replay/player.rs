//! Plays a trace's lines against a fresh core: each recorded call is made again at its
//! recorded time, and each recorded output must be the next one the core produces. The
//! invariant monitor watches the core meanwhile, through its inputs and outputs only.

use super::Divergence;
use super::timeline::Timeline;
use crate::config::Config;
use crate::engine::{Core, Output};
use crate::ids::{AccountId, CallId};
use crate::runtime::trace::{CommandRecord, CommandResult, Line, OutputRecord};
use crate::sim::TraceMonitor;
use crate::time::Instant;
use std::collections::VecDeque;

/// Why the replay stops at a line.
pub(super) enum Stop {
    /// The line cannot be replayed as written (what is wrong with it).
    Invalid(String),
    /// The core did something else than the trace says.
    Diverged(Divergence),
}

/// A fresh core playing a trace.
pub(super) struct Player {
    core: Core,
    pub monitor: TraceMonitor,
    /// Outputs produced and not yet matched to the trace's, with the time of their call.
    pending: VecDeque<(Instant, Output)>,
    now: Instant,
    pub timeline: Timeline,
    /// Recorded outputs matched so far.
    pub outputs: usize,
}

/// A trace line as JSON, the way the trace writes it.
fn json(line: &Line) -> String {
    serde_json::to_string(line).unwrap_or_else(|e| format!("(cannot write {line:?} as JSON: {e})"))
}

impl Player {
    /// A core for `config`, created at `created` as the recorded one was.
    pub fn new(config: Config, created: Instant) -> Player {
        Player {
            monitor: TraceMonitor::new(&config),
            core: Core::new(config, created),
            pending: VecDeque::new(),
            now: created,
            timeline: Timeline::default(),
            outputs: 0,
        }
    }

    /// Plays line `n`.
    pub fn line(&mut self, n: usize, line: Line) -> Result<(), Stop> {
        match line {
            Line::Header(_) => Err(Stop::Invalid("a second header".into())),
            Line::Output { t, output } => self.output(n, t, output),
            call => {
                if let Some((t, out)) = self.pending.front() {
                    return Err(Stop::Diverged(Divergence {
                        line: n,
                        recorded: format!("no more output before this call: {}", json(&call)),
                        replayed: json(&Line::Output { t: t.as_millis(), output: out.into() }),
                    }));
                }
                self.call(n, call)?;
                self.drain();
                Ok(())
            }
        }
    }

    /// A recorded output: it must be the next one the core produced.
    fn output(&mut self, n: usize, t: u64, recorded: OutputRecord) -> Result<(), Stop> {
        let recorded = Line::Output { t, output: recorded };
        let Some((at, out)) = self.pending.pop_front() else {
            return Err(Stop::Diverged(Divergence {
                line: n,
                recorded: json(&recorded),
                replayed: "nothing: the core had no more output after the call before".into(),
            }));
        };
        let replayed = Line::Output { t: at.as_millis(), output: (&out).into() };
        if replayed != recorded {
            return Err(Stop::Diverged(Divergence { line: n, recorded: json(&recorded), replayed: json(&replayed) }));
        }
        self.outputs += 1;
        self.timeline.output(at, n, &out);
        Ok(())
    }

    /// Makes the recorded core call.
    fn call(&mut self, n: usize, line: Line) -> Result<(), Stop> {
        match line {
            Line::Start { t } => {
                self.now = Instant::from_millis(t);
                self.timeline.note(self.now, n, "start".into());
                self.core.start(self.now);
            }
            Line::Timeout { t } => {
                self.now = Instant::from_millis(t);
                self.core.handle_timeout(self.now);
                self.monitor.after_timeout(&self.core, self.now);
            }
            Line::Input { t, input } => {
                self.now = Instant::from_millis(t);
                let data = input.data().map_err(Stop::Invalid)?;
                let input = input.input(&data).map_err(Stop::Invalid)?;
                self.monitor.before_input(&self.core, &input);
                self.timeline.input(self.now, n, &input);
                self.core.handle_input(self.now, input);
            }
            Line::Command { t, command, result } => {
                self.now = Instant::from_millis(t);
                let replayed = self.command(n, &command)?;
                if replayed != result {
                    let line = |result| json(&Line::Command { t, command: command.clone(), result });
                    return Err(Stop::Diverged(Divergence {
                        line: n,
                        recorded: line(result),
                        replayed: line(replayed),
                    }));
                }
            }
            Line::Header(_) | Line::Output { .. } => {}
        }
        Ok(())
    }

    /// Gives the core a recorded command; returns its result.
    fn command(&mut self, n: usize, command: &CommandRecord) -> Result<CommandResult, Stop> {
        let now = self.now;
        let sdp = |p: &crate::runtime::trace::Payload| p.bytes().map_err(|e| Stop::Invalid(format!("`sdp`: {e}")));
        let (what, result) = match command {
            CommandRecord::PlaceCall { account, target, sdp: offer } => {
                let r = self.core.place_call(now, AccountId(*account), target, sdp(offer)?);
                if let Ok(call) = r {
                    self.monitor.placed(call);
                }
                (
                    format!("place a call from {} to {target:?}", AccountId(*account)),
                    CommandResult::of(&r, |c| Some(*c)),
                )
            }
            CommandRecord::Answer { call, sdp: answer } => {
                let r = self.core.answer(now, CallId(*call), sdp(answer)?);
                (format!("answer {}", CallId(*call)), CommandResult::of(&r, |()| None))
            }
            CommandRecord::Reject { call, status } => {
                let r = self.core.reject(now, CallId(*call), *status);
                (format!("reject {} with {status}", CallId(*call)), CommandResult::of(&r, |()| None))
            }
            CommandRecord::HangUp { call } => {
                let r = self.core.hang_up(now, CallId(*call));
                (format!("hang up {}", CallId(*call)), CommandResult::of(&r, |()| None))
            }
            CommandRecord::Reconfigure { values, restart } => {
                let values: Vec<(String, u64)> = values.iter().map(|(k, v)| (k.clone(), *v)).collect();
                let config = crate::engine::with_tunable_values(self.core.config(), &values)
                    .map_err(|name| Stop::Invalid(format!("`values`: {name:?} is not a tunable value")))?;
                // A refusal changed nothing in the core (`Core::reconfigure`), and the
                // values that caused it are not in the trace: it is given back as recorded.
                let r = match restart.is_empty() {
                    true => self.core.reconfigure(now, config),
                    false => Err(crate::engine::NeedsRestart { changed: restart.clone() }),
                };
                ("take a new configuration".to_owned(), CommandResult::of(&r, |()| None))
            }
            CommandRecord::Shutdown => {
                self.core.shutdown(now);
                ("shut down".to_owned(), CommandResult::Ok(None))
            }
        };
        let shown = match &result {
            CommandResult::Ok(Some(call)) => format!("{what}: {}", CallId(*call)),
            CommandResult::Ok(None) => what,
            CommandResult::Error(e) => format!("{what}: refused, {e}"),
        };
        self.timeline.note(now, n, shown);
        Ok(result)
    }

    /// Takes every output the last call produced, the monitor watching each.
    fn drain(&mut self) {
        while let Some(out) = self.core.poll_output() {
            self.monitor.output(&self.core, &out, self.now);
            self.pending.push_back((self.now, out));
        }
        self.monitor.after_step(&self.core);
    }

    /// At the end of the trace (`n` is the line after the last): every output the core
    /// produced must have been in it, and the end-of-run checks run.
    pub fn finish(&mut self, n: usize) -> Option<Divergence> {
        self.monitor.finish(&self.core);
        let (t, out) = self.pending.front()?;
        Some(Divergence {
            line: n,
            recorded: "the end of the trace".into(),
            replayed: format!(
                "{} more output(s), the first {} (a trace cut short, e.g. copied while the phone ran, ends this way too)",
                self.pending.len(),
                json(&Line::Output { t: t.as_millis(), output: out.into() })
            ),
        })
    }
}
