//! Record and read back a phone's trace: every call the driver makes on the core (start,
//! inputs, timeouts, commands with their results) and every output the core gave, with
//! the core's time, one JSON object a line (`docs/record-replay.md`). Replaying it
//! against a fresh core ([`crate::replay`]) rebuilds a field failure exactly.
//!
//! The configuration is not in the trace, so no password or key is; the seed and the
//! digest responses are, so the file is created for its owner only.

mod convert;
mod dns_records;
mod format;
mod reader;
mod recorder;

pub(crate) use convert::config_digest;
pub(crate) use format::{CommandRecord, CommandResult, Header, Line, OutputRecord, Payload};
pub use reader::TraceError;
pub(crate) use reader::TraceReader;
pub(crate) use recorder::Recorder;
