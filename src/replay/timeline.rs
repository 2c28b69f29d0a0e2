//! The timeline of a replay: what a person reading a field report wants to see, one line
//! per happening (connections, SIP messages by their first line, commands, events), with
//! the core's time and the trace line it comes from. Pings, pongs, write backlogs and
//! timer wake-ups are left out: they are many and rarely the story.

use crate::engine::{Input, Output};
use crate::ids::ConnId;
use crate::sip::{Frame, Framer, Limits, Message};
use crate::time::Instant;
use std::collections::BTreeMap;

/// One happening of the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moment {
    /// The core's time.
    pub at: Instant,
    /// The trace line it comes from.
    pub line: usize,
    /// What happened.
    pub what: String,
}

/// Builds the timeline as the replay goes.
#[derive(Debug, Default)]
pub(super) struct Timeline {
    pub moments: Vec<Moment>,
    /// The bytes each connection received, framed to show whole messages.
    inbound: BTreeMap<ConnId, Framer>,
}

/// The first line of a SIP message.
fn first_line(m: &Message) -> String {
    let bytes = m.to_bytes();
    let end = bytes.iter().position(|b| *b == b'\r' || *b == b'\n').unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Timeline {
    /// A happening at trace line `line`; also the lines that are neither an input nor an
    /// output (start, a command and its result).
    pub fn note(&mut self, at: Instant, line: usize, what: String) {
        self.moments.push(Moment { at, line, what });
    }

    pub fn input(&mut self, at: Instant, line: usize, input: &Input<'_>) {
        match input {
            Input::Connected { conn, local } => {
                self.inbound.insert(*conn, Framer::new(Limits::default()));
                self.note(at, line, format!("{conn} up (TLS verified), local address {local}"));
            }
            Input::ConnectFailed { conn, reason } => self.note(at, line, format!("{conn} failed: {reason}")),
            Input::Closed { conn, reason } => {
                self.inbound.remove(conn);
                self.note(at, line, format!("{conn} closed: {reason}"));
            }
            Input::Received { conn, data } => {
                let Some(framer) = self.inbound.get_mut(conn) else { return };
                framer.push(data);
                let mut received = Vec::new();
                loop {
                    match framer.next_frame() {
                        Ok(Some(Frame::Message(m))) => received.push(format!("{conn} <- {}", first_line(&m))),
                        Ok(Some(Frame::Crlf)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            received.push(format!("{conn} <- bytes that are not SIP: {e}"));
                            self.inbound.remove(conn);
                            break;
                        }
                    }
                }
                for what in received {
                    self.note(at, line, what);
                }
            }
            Input::WriteBacklog { .. } => {}
            Input::Resolved { query, outcome } => match outcome {
                Ok(answer) => self.note(at, line, format!("{query}: {answer:?}")),
                Err(failed) => self.note(at, line, format!("{query}: {failed}")),
            },
        }
    }

    pub fn output(&mut self, at: Instant, line: usize, output: &Output) {
        match output {
            Output::Connect { conn, addr, server_name } => {
                self.note(at, line, format!("{conn} connect to {addr} (certificate for {server_name})"))
            }
            Output::Resolve { query } => self.note(at, line, format!("look up {query}")),
            Output::Transmit { conn, data } => {
                if let Ok(m) = Message::parse(data) {
                    self.note(at, line, format!("{conn} -> {}", first_line(&m)));
                }
            }
            Output::Close { conn } => {
                self.inbound.remove(conn);
                self.note(at, line, format!("{conn} close"));
            }
            Output::Event(e) => self.note(at, line, format!("event {e:?}")),
        }
    }
}
