//! What crosses the channels between a phone's handles and its driver: [`Command`]s in,
//! [`PhoneEvent`]s and [`Status`] snapshots out. Kept apart from both ends so that the
//! driver needs nothing of the embedding API and the API only starts the driver.

use crate::config::Config;
use crate::engine::{CallInfo, CommandError, ConnPurpose, Core, Event, FlowState, LinkStats, NeedsRestart, RegState};
use crate::ids::{AccountId, CallId, ConnId};
use crate::time::Instant;
use async_channel::Sender;

/// Something the phone did, stamped with the phone's clock (milliseconds since start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneEvent {
    /// When, on the phone's clock.
    pub at: Instant,
    /// What.
    pub event: Event,
}

/// A snapshot of the phone's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The phone's clock.
    pub now: Instant,
    /// The persistent connection.
    pub flow: FlowState,
    /// Each account's registration, in configuration order.
    pub registrations: Vec<RegState>,
    /// When each account's binding expires at the registrar (configuration order);
    /// `None` while it has none.
    pub binding_expiry: Vec<Option<Instant>>,
    /// The persistent connection's age, keep-alive counts and last round trip.
    pub link: LinkStats,
    /// While waiting after every server failed: when the next round starts.
    pub next_retry: Option<Instant>,
    /// The calls in progress, oldest first.
    pub calls: Vec<CallInfo>,
    /// Connections asked for and not closed: id, purpose, whether up.
    pub connections: Vec<(ConnId, ConnPurpose, bool)>,
    /// Calls waiting for a connection or registration.
    pub queued_calls: usize,
    /// Calls in progress, in any state (queued, being set up, ringing, up, ending).
    pub live_calls: usize,
    /// Good probes of the primary in a row while on the backup.
    pub good_probes: u8,
    /// Reconnect rounds failed in a row.
    pub failed_rounds: u32,
    /// Informational events dropped because the application did not read them in time
    /// (outcome events are never dropped; see [`super::Events`]).
    pub dropped_events: u64,
    /// The first error writing the trace (`PhoneOptions::record`), after which recording
    /// stopped and the phone went on; `None` while the trace is written, or when there is
    /// none.
    pub trace_error: Option<String>,
}

impl Status {
    pub(crate) fn of(core: &Core, now: Instant, dropped_events: u64, trace_error: Option<String>) -> Status {
        let n = core.config().accounts.len();
        Status {
            now,
            flow: core.flow_state(),
            registrations: (0..n).filter_map(|i| core.registration(AccountId(i as u8))).collect(),
            binding_expiry: (0..n).map(|i| core.binding_expiry(AccountId(i as u8))).collect(),
            link: core.link_stats(),
            next_retry: core.next_retry(),
            calls: core.calls_in_progress(),
            connections: core.connections().collect(),
            queued_calls: core.queued_calls(),
            live_calls: core.live_calls(),
            good_probes: core.good_probes(),
            failed_rounds: core.failed_rounds(),
            dropped_events,
            trace_error,
        }
    }
}

/// A request from a handle to the driver.
pub(crate) enum Command {
    PlaceCall { account: AccountId, target: String, sdp: Vec<u8>, reply: Sender<Result<CallId, CommandError>> },
    Answer { call: CallId, sdp: Vec<u8>, reply: Sender<Result<(), CommandError>> },
    Reject { call: CallId, status: u16, reply: Sender<Result<(), CommandError>> },
    HangUp { call: CallId, reply: Sender<Result<(), CommandError>> },
    Status { reply: Sender<Status> },
    Reconfigure { config: Box<Config>, reply: Sender<Result<(), NeedsRestart>> },
    ReplaceTls { tls: Box<super::tls::ClientTls>, reply: Sender<usize> },
    Shutdown,
}

// By hand because the reply senders carry nothing worth logging; the variant is.
impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::PlaceCall { .. } => "PlaceCall",
            Command::Answer { .. } => "Answer",
            Command::Reject { .. } => "Reject",
            Command::HangUp { .. } => "HangUp",
            Command::Status { .. } => "Status",
            Command::Reconfigure { .. } => "Reconfigure",
            Command::ReplaceTls { .. } => "ReplaceTls",
            Command::Shutdown => "Shutdown",
        })
    }
}
