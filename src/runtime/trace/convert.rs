//! The core's values as trace records, and the recorded inputs back as the core's values.
//! Outputs only go one way: a replay compares the records of what the core produces
//! again with the records read, so they never need to become core values.

use super::format::{
    CommandResult, ConnRecord, EventRecord, FORMAT, Header, InputRecord, OutputRecord, Payload, ServerRecord,
    TransportRecord, hex, unhex,
};
use crate::config::Config;
use crate::engine::{Event, Input, Output, TransportError};
use crate::ids::{CallId, ConnId, Server};
use crate::rng::Seed;
use crate::time::Instant;
use sha2::{Digest, Sha256};

impl Header {
    /// The header of a trace of a core built with `Core::new(config, t)`.
    pub fn new(config: &Config, t: Instant, unix_ms: Option<u64>) -> Header {
        Header {
            format: FORMAT,
            crate_version: env!("CARGO_PKG_VERSION").to_owned(),
            seed: hex(&config.seed.to_bytes()),
            instance_id: config.instance_id.clone(),
            t: t.as_millis(),
            unix_ms,
            config_digest: config_digest(config),
        }
    }

    /// The recorded seed.
    pub fn seed(&self) -> Result<Seed, String> {
        let bytes = unhex(&self.seed)?;
        let bytes: [u8; 32] =
            bytes.try_into().map_err(|b: Vec<u8>| format!("the seed has {} bytes instead of 32", b.len()))?;
        Ok(Seed::from_bytes(bytes))
    }
}

/// SHA-256 of the configuration's `Debug` text, which redacts the passwords and shows no
/// seed (`config::debug`): it tells configurations apart without revealing a secret.
pub(crate) fn config_digest(config: &Config) -> String {
    hex(&Sha256::digest(format!("{config:?}").as_bytes()))
}

impl From<ConnId> for ConnRecord {
    fn from(c: ConnId) -> ConnRecord {
        let server = match c.server {
            Server::Primary => ServerRecord::Primary,
            Server::Backup => ServerRecord::Backup,
        };
        ConnRecord { server, generation: c.generation }
    }
}

impl From<Server> for ServerRecord {
    fn from(s: Server) -> ServerRecord {
        match s {
            Server::Primary => ServerRecord::Primary,
            Server::Backup => ServerRecord::Backup,
        }
    }
}

impl ConnRecord {
    /// The connection handle.
    pub fn id(self) -> ConnId {
        let server = match self.server {
            ServerRecord::Primary => Server::Primary,
            ServerRecord::Backup => Server::Backup,
        };
        ConnId { server, generation: self.generation }
    }
}

impl From<&TransportError> for TransportRecord {
    fn from(e: &TransportError) -> TransportRecord {
        match e.clone() {
            TransportError::Resolve(detail) => TransportRecord::Resolve { detail },
            TransportError::Refused => TransportRecord::Refused,
            TransportError::TimedOut => TransportRecord::TimedOut,
            TransportError::Certificate(detail) => TransportRecord::Certificate { detail },
            TransportError::Tls(detail) => TransportRecord::Tls { detail },
            TransportError::PeerClosed => TransportRecord::PeerClosed,
            TransportError::Reset => TransportRecord::Reset,
            TransportError::Io(detail) => TransportRecord::Io { detail },
        }
    }
}

impl TransportRecord {
    /// The transport error.
    pub fn error(&self) -> TransportError {
        match self.clone() {
            TransportRecord::Resolve { detail } => TransportError::Resolve(detail),
            TransportRecord::Refused => TransportError::Refused,
            TransportRecord::TimedOut => TransportError::TimedOut,
            TransportRecord::Certificate { detail } => TransportError::Certificate(detail),
            TransportRecord::Tls { detail } => TransportError::Tls(detail),
            TransportRecord::PeerClosed => TransportError::PeerClosed,
            TransportRecord::Reset => TransportError::Reset,
            TransportRecord::Io { detail } => TransportError::Io(detail),
        }
    }
}

impl From<&Input<'_>> for InputRecord {
    fn from(i: &Input<'_>) -> InputRecord {
        match i {
            Input::Connected { conn, local } => {
                InputRecord::Connected { conn: (*conn).into(), local: local.to_string() }
            }
            Input::ConnectFailed { conn, reason } => {
                InputRecord::ConnectFailed { conn: (*conn).into(), reason: reason.into() }
            }
            Input::Received { conn, data } => InputRecord::Received { conn: (*conn).into(), data: Payload::of(data) },
            Input::WriteBacklog { conn, bytes } => {
                InputRecord::WriteBacklog { conn: (*conn).into(), bytes: *bytes as u64 }
            }
            Input::Closed { conn, reason } => InputRecord::Closed { conn: (*conn).into(), reason: reason.into() },
            Input::Resolved { query, outcome } => {
                InputRecord::Resolved { query: query.into(), outcome: outcome.into() }
            }
        }
    }
}

impl InputRecord {
    /// The received bytes a `received` input carries (empty for the others), decoded once
    /// so that [`InputRecord::input`] can lend them to the core.
    pub fn data(&self) -> Result<Vec<u8>, String> {
        match self {
            InputRecord::Received { data, .. } => data.bytes().map_err(|e| format!("`data`: {e}")),
            _ => Ok(Vec::new()),
        }
    }

    /// The input, with `data` from [`InputRecord::data`]; or what is wrong with the record.
    pub fn input<'a>(&self, data: &'a [u8]) -> Result<Input<'a>, String> {
        Ok(match self {
            InputRecord::Connected { conn, local } => Input::Connected {
                conn: conn.id(),
                local: local.parse().map_err(|_| format!("`local` {local:?} is not a socket address"))?,
            },
            InputRecord::ConnectFailed { conn, reason } => {
                Input::ConnectFailed { conn: conn.id(), reason: reason.error() }
            }
            InputRecord::Received { conn, .. } => Input::Received { conn: conn.id(), data },
            InputRecord::WriteBacklog { conn, bytes } => Input::WriteBacklog {
                conn: conn.id(),
                bytes: usize::try_from(*bytes).map_err(|_| format!("`bytes` {bytes} is too large"))?,
            },
            InputRecord::Closed { conn, reason } => Input::Closed { conn: conn.id(), reason: reason.error() },
            InputRecord::Resolved { query, outcome } => {
                let query = query.query()?;
                let outcome = outcome.outcome(&query)?;
                Input::Resolved { query, outcome }
            }
        })
    }
}

impl From<&Output> for OutputRecord {
    fn from(o: &Output) -> OutputRecord {
        match o {
            Output::Connect { conn, addr, server_name } => {
                OutputRecord::Connect { conn: (*conn).into(), addr: addr.to_string(), server_name: server_name.clone() }
            }
            Output::Resolve { query } => OutputRecord::Resolve { query: query.into() },
            Output::Transmit { conn, data } => OutputRecord::Transmit { conn: (*conn).into(), data: Payload::of(data) },
            Output::Close { conn } => OutputRecord::Close { conn: (*conn).into() },
            Output::Event(e) => OutputRecord::Event { event: e.into() },
        }
    }
}

impl From<&Event> for EventRecord {
    fn from(e: &Event) -> EventRecord {
        let debug = |v: &dyn std::fmt::Debug| format!("{v:?}");
        match e {
            Event::FlowUp { server } => EventRecord::FlowUp { server: (*server).into() },
            Event::FlowLost { server, reason } => {
                EventRecord::FlowLost { server: (*server).into(), reason: debug(reason) }
            }
            Event::FailedOver => EventRecord::FailedOver,
            Event::FailingBack => EventRecord::FailingBack,
            Event::FailedBack => EventRecord::FailedBack,
            Event::ConnectFailed { server, reason } => {
                EventRecord::ConnectFailed { server: (*server).into(), reason: debug(reason) }
            }
            Event::AttemptFailed { server, addr, reason } => {
                EventRecord::AttemptFailed { server: (*server).into(), addr: addr.to_string(), reason: debug(reason) }
            }
            Event::Backoff { wait, failures } => {
                EventRecord::Backoff { wait_ms: wait.as_millis(), failures: *failures }
            }
            Event::Registered { account, server, expires } => {
                EventRecord::Registered { account: account.0, server: (*server).into(), expires: *expires }
            }
            Event::RegistrationFailed { account, reason, retry_in } => EventRecord::RegistrationFailed {
                account: account.0,
                reason: debug(reason),
                retry_in_ms: retry_in.map(|d| d.as_millis()),
            },
            Event::RegistrationLost { account } => EventRecord::RegistrationLost { account: account.0 },
            Event::Unregistered { account } => EventRecord::Unregistered { account: account.0 },
            Event::PongsUnsupported { server } => EventRecord::PongsUnsupported { server: (*server).into() },
            Event::IncomingCall { call, account, from } => {
                EventRecord::IncomingCall { call: call.0, account: account.0, from: from.clone() }
            }
            Event::CallProgress { call, status } => EventRecord::CallProgress { call: call.0, status: *status },
            Event::CallOutcome { call, outcome } => EventRecord::CallOutcome { call: call.0, outcome: debug(outcome) },
            Event::CallMoved { call, server } => EventRecord::CallMoved { call: call.0, server: (*server).into() },
            Event::CallEnded { call, reason } => EventRecord::CallEnded { call: call.0, reason: debug(reason) },
            Event::ShutdownComplete => EventRecord::ShutdownComplete,
        }
    }
}

impl CommandResult {
    /// The record of a command's result; `call` is the call a `place_call` placed.
    pub fn of<T, E: std::fmt::Debug>(r: &Result<T, E>, call: impl FnOnce(&T) -> Option<CallId>) -> CommandResult {
        match r {
            Ok(v) => CommandResult::Ok(call(v).map(|c| c.0)),
            Err(e) => CommandResult::Error(format!("{e:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AccountConfig, ServerAddr};

    #[test]
    fn inputs_read_back_as_the_values_recorded() {
        let conn = ConnId { server: Server::Backup, generation: 7 };
        let local = "[::1]:5000".parse().expect("an address");
        let inputs = [
            Input::Connected { conn, local },
            Input::ConnectFailed { conn, reason: TransportError::Certificate("expired".into()) },
            Input::Received { conn, data: b"SIP/2.0 200 OK\r\n\xff" },
            Input::WriteBacklog { conn, bytes: 123_456 },
            Input::Closed { conn, reason: TransportError::Reset },
        ];
        for input in inputs {
            let record = InputRecord::from(&input);
            let data = record.data().expect("bytes");
            assert_eq!(record.input(&data), Ok(input));
        }
    }

    #[test]
    fn the_header_keeps_the_seed_and_no_secret() {
        let config = Config {
            proxy: Some(ServerAddr::new("p.test", 5061)),
            accounts: vec![AccountConfig::new("1001", "hunter2")],
            seed: Seed::from_bytes([0xab; 32]),
            ..Config::default()
        };
        let header = Header::new(&config, Instant::from_millis(3), Some(1));
        assert_eq!(header.seed().map(Seed::to_bytes), Ok([0xab; 32]));
        let text = serde_json::to_string(&header).expect("serialise");
        assert!(!text.contains("hunter2"), "{text}");
        let other = Config { accounts: vec![AccountConfig::new("1002", "hunter2")], ..config.clone() };
        assert_ne!(config_digest(&config), config_digest(&other));
        // The password is redacted before hashing: only the configuration's shape counts.
        let new_password = Config { accounts: vec![AccountConfig::new("1001", "other")], ..config.clone() };
        assert_eq!(config_digest(&config), config_digest(&new_password));
    }
}
