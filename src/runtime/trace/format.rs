//! The lines of a trace as plain records, one JSON object a line (`docs/record-replay.md`
//! is the reference). The core's types stay free of serde: `convert` maps them to and
//! from these records.

use super::dns_records::{OutcomeRecord, QueryRecord};
use serde::{Deserialize, Serialize};

/// The version of the format, written in the header; a reader refuses any other. 2: the
/// core's DNS lookups and their answers, and connections to an address.
pub(crate) const FORMAT: u32 = 2;

/// One line of a trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Line {
    /// The first line: what is needed to build the same core again, except the
    /// configuration.
    Header(Header),
    /// `Core::start(t)`.
    Start { t: u64 },
    /// `Core::handle_timeout(t)`.
    Timeout { t: u64 },
    /// `Core::handle_input(t, input)`.
    Input {
        t: u64,
        #[serde(flatten)]
        input: InputRecord,
    },
    /// An application command and what the core answered.
    Command {
        t: u64,
        #[serde(flatten)]
        command: CommandRecord,
        result: CommandResult,
    },
    /// One `poll_output()`, at the time of the call that produced it.
    Output {
        t: u64,
        #[serde(flatten)]
        output: OutputRecord,
    },
}

/// The first line of a trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    /// [`FORMAT`].
    pub format: u32,
    /// The version of sip-ptls that recorded the trace.
    pub crate_version: String,
    /// The core's 32-byte seed, 64 hexadecimal digits.
    pub seed: String,
    /// `Config::instance_id` as the core got it (`None`: derived from the seed).
    pub instance_id: Option<String>,
    /// The `now` given to `Core::new`, in milliseconds of the core's clock.
    pub t: u64,
    /// The wall-clock time of the core's zero, in milliseconds since the Unix epoch, to
    /// line the trace up with server logs (`None` when the clock was before 1970).
    pub unix_ms: Option<u64>,
    /// SHA-256 of the configuration's `Debug` text (passwords redacted), to warn when a
    /// trace is replayed with another configuration than it was recorded with.
    pub config_digest: String,
}

/// A connection handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConnRecord {
    pub server: ServerRecord,
    pub generation: u32,
}

/// Which configured proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ServerRecord {
    Primary,
    Backup,
}

/// Bytes: a JSON string when they are UTF-8 (SIP nearly always is, and it stays
/// readable), otherwise `{"hex": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Payload {
    Text(String),
    Hex { hex: String },
}

/// A transport failure (`TransportError`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub(crate) enum TransportRecord {
    Resolve { detail: String },
    Refused,
    TimedOut,
    Certificate { detail: String },
    Tls { detail: String },
    PeerClosed,
    Reset,
    Io { detail: String },
}

/// A transport happening (`Input`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub(crate) enum InputRecord {
    Connected { conn: ConnRecord, local: String },
    ConnectFailed { conn: ConnRecord, reason: TransportRecord },
    Received { conn: ConnRecord, data: Payload },
    WriteBacklog { conn: ConnRecord, bytes: u64 },
    Closed { conn: ConnRecord, reason: TransportRecord },
    Resolved { query: QueryRecord, outcome: OutcomeRecord },
}

/// An application command (`Core::place_call` and the others).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub(crate) enum CommandRecord {
    PlaceCall {
        account: u8,
        target: String,
        sdp: Payload,
    },
    Answer {
        call: u32,
        sdp: Payload,
    },
    Reject {
        call: u32,
        status: u16,
    },
    HangUp {
        call: u32,
    },
    Shutdown,
    /// `Core::reconfigure` with the running configuration's tunable values replaced by
    /// these (`engine::tunable_values` names them; secrets are never among them). When
    /// the core refused the configuration, `restart` says what needed a restart: the core
    /// changed nothing, and the values that made it refuse are not recorded.
    Reconfigure {
        values: std::collections::BTreeMap<String, u64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        restart: Vec<String>,
    },
}

/// What the core answered a command: `{"ok": null}`, `{"ok": 3}` (the call placed) or
/// `{"error": "NotRunning"}` (the `CommandError` as Rust writes it with `Debug`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CommandResult {
    Ok(Option<u32>),
    Error(String),
}

/// Something the core asked for (`Output`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "output", rename_all = "snake_case")]
pub(crate) enum OutputRecord {
    Connect {
        conn: ConnRecord,
        addr: String,
        server_name: String,
    },
    Resolve {
        query: QueryRecord,
    },
    Transmit {
        conn: ConnRecord,
        data: Payload,
    },
    Close {
        conn: ConnRecord,
    },
    Event {
        #[serde(flatten)]
        event: EventRecord,
    },
}

/// An event for the application (`Event`). Accounts are 0-based (`AccountId`), calls
/// are `CallId` numbers, durations are milliseconds, and reasons and outcomes are the
/// Rust values as `Debug` writes them (`Transport(Reset)`, `Failed(NoAnswer)`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum EventRecord {
    FlowUp { server: ServerRecord },
    FlowLost { server: ServerRecord, reason: String },
    FailedOver,
    FailingBack,
    FailedBack,
    ConnectFailed { server: ServerRecord, reason: String },
    AttemptFailed { server: ServerRecord, addr: String, reason: String },
    Backoff { wait_ms: u64, failures: u32 },
    Registered { account: u8, server: ServerRecord, expires: u32 },
    RegistrationFailed { account: u8, reason: String, retry_in_ms: Option<u64> },
    RegistrationLost { account: u8 },
    Unregistered { account: u8 },
    PongsUnsupported { server: ServerRecord },
    IncomingCall { call: u32, account: u8, from: String },
    CallProgress { call: u32, status: u16 },
    CallOutcome { call: u32, outcome: String },
    CallMoved { call: u32, server: ServerRecord },
    CallEnded { call: u32, reason: String },
    ShutdownComplete,
}

impl Payload {
    /// The record of `bytes`.
    pub fn of(bytes: &[u8]) -> Payload {
        match std::str::from_utf8(bytes) {
            Ok(text) => Payload::Text(text.to_owned()),
            Err(_) => Payload::Hex { hex: hex(bytes) },
        }
    }

    /// The bytes again, or what is wrong with the hexadecimal digits.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        match self {
            Payload::Text(text) => Ok(text.as_bytes().to_vec()),
            Payload::Hex { hex } => unhex(hex),
        }
    }
}

/// Lower-case hexadecimal digits of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The bytes written as hexadecimal digits (either case).
pub(crate) fn unhex(text: &str) -> Result<Vec<u8>, String> {
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or_else(|| format!("{:?} is not a hexadecimal digit", char::from(c)))
    };
    let odd = || format!("odd number of hexadecimal digits ({})", text.len());
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [high, low] => Ok(digit(*high)? << 4 | digit(*low)?),
            _ => Err(odd()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(line: &Line) -> String {
        let text = serde_json::to_string(line).expect("serialise");
        let back: Line = serde_json::from_str(&text).expect("parse back");
        assert_eq!(&back, line, "{text}");
        text
    }

    #[test]
    fn every_kind_of_line_reads_back_as_written() {
        let conn = ConnRecord { server: ServerRecord::Backup, generation: 3 };
        let text = round_trip(&Line::Output {
            t: 12,
            output: OutputRecord::Event {
                event: EventRecord::Registered { account: 1, server: ServerRecord::Primary, expires: 60 },
            },
        });
        assert_eq!(
            text,
            r#"{"type":"output","t":12,"output":"event","event":"registered","account":1,"server":"primary","expires":60}"#
        );
        let text = round_trip(&Line::Input {
            t: 5,
            input: InputRecord::ConnectFailed { conn, reason: TransportRecord::Tls { detail: "alert".into() } },
        });
        assert_eq!(
            text,
            r#"{"type":"input","t":5,"input":"connect_failed","conn":{"server":"backup","generation":3},"reason":{"error":"tls","detail":"alert"}}"#
        );
        let text =
            round_trip(&Line::Input { t: 5, input: InputRecord::Received { conn, data: Payload::of(b"\xff\x00") } });
        assert!(text.contains(r#""data":{"hex":"ff00"}"#), "{text}");
        let text =
            round_trip(&Line::Command { t: 9, command: CommandRecord::Shutdown, result: CommandResult::Ok(None) });
        assert_eq!(text, r#"{"type":"command","t":9,"command":"shutdown","result":{"ok":null}}"#);
        round_trip(&Line::Command {
            t: 9,
            command: CommandRecord::PlaceCall { account: 0, target: "2000".into(), sdp: Payload::of(b"v=0\r\n") },
            result: CommandResult::Ok(Some(1)),
        });
        round_trip(&Line::Output { t: 1, output: OutputRecord::Event { event: EventRecord::ShutdownComplete } });
        round_trip(&Line::Output { t: 1, output: OutputRecord::Transmit { conn, data: Payload::of(b"\r\n\r\n") } });
        round_trip(&Line::Timeout { t: u64::MAX });
    }

    #[test]
    fn hex_reads_back_and_refuses_what_is_not_hex() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&all)), Ok(all));
        assert_eq!(unhex("0A"), Ok(vec![10]));
        assert!(unhex("abc").is_err_and(|e| e.contains("odd")));
        assert!(unhex("zz").is_err_and(|e| e.contains("'z'")));
    }
}
