//! What the live pages are told: a timeline of the phone's events (failover, failback,
//! losses with their reason, registrations, calls) and the open event streams they go
//! to. The calls in progress come from the phone's status (`routes.rs`).

use crate::engine::Event;
use crate::runtime::PhoneEvent;
use async_channel::{Receiver, Sender};
use serde_json::{Value, json};
use std::collections::VecDeque;

/// Timeline entries kept for a page that opens later.
const TIMELINE: usize = 200;
/// Frames an event stream may fall behind before it is dropped (the page reconnects).
const STREAM_BACKLOG: usize = 256;
/// Event streams open at most: a page per tab, a few tabs.
const MAX_STREAMS: usize = 16;

/// The timeline and the streams.
#[derive(Debug, Default)]
pub struct Feed {
    timeline: VecDeque<Value>,
    streams: Vec<Sender<String>>,
}

impl Feed {
    /// Records one event and sends it to every open stream.
    pub fn push(&mut self, e: &PhoneEvent, line_numbers: &[u8]) {
        let line = |a: crate::ids::AccountId| line_numbers.get(usize::from(a.0)).copied().unwrap_or(a.0 + 1);
        let entry = json!({ "at_ms": e.at.as_millis(), "text": describe(&e.event, &line) });
        let frame = format!("event: timeline\ndata: {entry}\n\n");
        self.streams.retain(|s| s.try_send(frame.clone()).is_ok());
        if self.timeline.len() == TIMELINE {
            self.timeline.pop_front();
        }
        self.timeline.push_back(entry);
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
        Event::AttemptFailed { server, addr, reason } => {
            format!("address {addr} of the {server} failed ({reason}); trying the next one")
        }
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
        Event::CallMoved { call, server } => format!("{call} moved to the {server}"),
        Event::CallEnded { call, reason } => format!("{call} ended: {reason:?}"),
        Event::ShutdownComplete => "shut down".to_owned(),
    }
}
