//! What the live pages are told: a timeline of the phone's events (failover, failback,
//! losses with their reason, registrations, calls), the calls the phone announced and
//! has not ended, and the open event streams they go to.

use crate::engine::Event;
use crate::ids::CallId;
use crate::runtime::PhoneEvent;
use async_channel::{Receiver, Sender};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};

/// Timeline entries kept for a page that opens later.
const TIMELINE: usize = 200;
/// Frames an event stream may fall behind before it is dropped (the page reconnects).
const STREAM_BACKLOG: usize = 256;
/// Event streams open at most: a page per tab, a few tabs.
const MAX_STREAMS: usize = 16;

/// A call the phone announced, as the pages show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallEntry {
    /// Incoming or outgoing.
    pub incoming: bool,
    /// The Aastra line (1 to 9), when the event said.
    pub line: Option<u8>,
    /// The other party (the caller for an incoming call, the target for an outgoing one).
    pub peer: String,
    /// Ringing, answered, …
    pub state: String,
}

/// The timeline, the calls and the streams.
#[derive(Debug, Default)]
pub struct Feed {
    timeline: VecDeque<Value>,
    calls: BTreeMap<u32, CallEntry>,
    streams: Vec<Sender<String>>,
}

impl Feed {
    /// Records one event and sends it to every open stream.
    pub fn push(&mut self, e: &PhoneEvent, line_numbers: &[u8]) {
        let line = |a: crate::ids::AccountId| line_numbers.get(usize::from(a.0)).copied().unwrap_or(a.0 + 1);
        self.follow_calls(&e.event, &line);
        let entry = json!({ "at_ms": e.at.as_millis(), "text": describe(&e.event, &line) });
        let frame = format!("event: timeline\ndata: {entry}\n\n");
        self.streams.retain(|s| s.try_send(frame.clone()).is_ok());
        if self.timeline.len() == TIMELINE {
            self.timeline.pop_front();
        }
        self.timeline.push_back(entry);
    }

    /// Notes a call placed from the interface (its events name only its id).
    pub fn placed(&mut self, call: CallId, line: u8, target: &str) {
        let entry =
            CallEntry { incoming: false, line: Some(line), peer: target.to_owned(), state: "calling".to_owned() };
        self.calls.insert(call.0, entry);
    }

    /// Notes that the interface answered `call` (no event says so: the application gave
    /// the answer).
    pub fn answered(&mut self, call: CallId) {
        if let Some(c) = self.calls.get_mut(&call.0) {
            c.state = "answered".to_owned();
        }
    }

    /// Opens a stream: the timeline so far, then every event as it comes. `None` when
    /// too many are open.
    pub fn subscribe(&mut self) -> Option<Receiver<String>> {
        self.streams.retain(|s| !s.is_closed());
        if self.streams.len() >= MAX_STREAMS {
            return None;
        }
        let (tx, rx) = async_channel::bounded(STREAM_BACKLOG.max(TIMELINE + 1));
        for entry in &self.timeline {
            let _ = tx.try_send(format!("event: timeline\ndata: {entry}\n\n"));
        }
        self.streams.push(tx);
        Some(rx)
    }

    /// The calls in progress, as JSON.
    pub fn calls_json(&self) -> Value {
        Value::Array(
            self.calls
                .iter()
                .map(|(id, c)| {
                    json!({ "call": id, "incoming": c.incoming, "line": c.line, "peer": c.peer, "state": c.state })
                })
                .collect(),
        )
    }

    fn follow_calls(&mut self, event: &Event, line: &impl Fn(crate::ids::AccountId) -> u8) {
        match event {
            Event::IncomingCall { call, account, from } => {
                let entry = CallEntry {
                    incoming: true,
                    line: Some(line(*account)),
                    peer: from.clone(),
                    state: "ringing".to_owned(),
                };
                self.calls.insert(call.0, entry);
            }
            Event::CallProgress { call, status } => {
                if let Some(c) = self.calls.get_mut(&call.0) {
                    c.state = if (180..190).contains(status) { "ringing".to_owned() } else { format!("{status}") };
                }
            }
            Event::CallOutcome { call, outcome } => match outcome {
                crate::engine::CallOutcome::Answered => {
                    if let Some(c) = self.calls.get_mut(&call.0) {
                        c.state = "answered".to_owned();
                    }
                }
                _ => {
                    self.calls.remove(&call.0);
                }
            },
            Event::CallEnded { call, .. } => {
                self.calls.remove(&call.0);
            }
            _ => {}
        }
    }
}

/// One line of the timeline.
fn describe(event: &Event, line: &impl Fn(crate::ids::AccountId) -> u8) -> String {
    match event {
        Event::FlowUp { server } => format!("persistent connection up on the {server}"),
        Event::FlowLost { server, reason } => format!("persistent connection to the {server} lost: {reason}"),
        Event::FailedOver => "failed over to the backup".to_owned(),
        Event::FailingBack => "primary stable again: moving back".to_owned(),
        Event::FailedBack => "back on the primary".to_owned(),
        Event::ConnectFailed { server, reason } => format!("connection to the {server} failed: {reason}"),
        Event::Backoff { wait, failures } => {
            format!("every server failed ({failures} rounds): next try in {} ms", wait.as_millis())
        }
        Event::Registered { account, server, expires } => {
            format!("line {} registered on the {server} for {expires} s", line(*account))
        }
        Event::RegistrationFailed { account, reason, .. } => {
            format!("line {} registration failed: {reason}", line(*account))
        }
        Event::RegistrationLost { account } => format!("line {} registration lost", line(*account)),
        Event::Unregistered { account } => format!("line {} de-registered", line(*account)),
        Event::PongsUnsupported { server } => format!("the {server} does not answer pings: keep-alive with OPTIONS"),
        Event::IncomingCall { call, account, from } => format!("{call} from {from} rings on line {}", line(*account)),
        Event::CallProgress { call, status } => format!("{call}: {status}"),
        Event::CallOutcome { call, outcome } => format!("{call}: {outcome:?}"),
        Event::CallEnded { call, reason } => format!("{call} ended: {reason:?}"),
        Event::ShutdownComplete => "shut down".to_owned(),
    }
}
