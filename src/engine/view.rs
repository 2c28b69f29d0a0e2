//! Checker-only views of the core (feature `sim`). The core's decision state, without the data that only names or times things: an
//! abstraction for model checkers and other tools that must tell two cores apart by what
//! they will *do*, not by their connection generations, CSeq numbers, tags, nonces,
//! random generator or absolute deadlines.
//!
//! Connections are named by their position in the core's table, deadlines by their rank
//! among the distinct armed deadlines (0 = earliest), counters that only number messages
//! are left out. See `docs/model-checking.md` for why a checker may identify two cores
//! with equal views and what that hides.

use super::io::{ConnPurpose, RegState};
use super::timer::{FlowTimer, RegTimer, Timer};
use super::{Core, Phase};
use crate::ids::{AccountId, CallId, ConnId, Server};
use crate::time::Instant;

/// A timer of the core's timer table, with connections and calls named by their position
/// in the core's tables instead of their identifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKey {
    /// Connect plus handshake deadline of the connection in this slot.
    Connect(u8),
    /// Write-stall deadline of the connection in this slot.
    WriteStall(u8),
    /// End of the head start of the connection attempt in this slot.
    HeadStart(u8),
    /// Next reconnect round (back-off).
    FlowRetry,
    /// Next keep-alive ping.
    Ping,
    /// The pong must arrive by then.
    PongDeadline,
    /// The flow's OPTIONS transaction.
    OptionsTx,
    /// Next probe of the primary.
    ProbeAt,
    /// The probe's OPTIONS transaction.
    ProbeTx,
    /// An account's REGISTER transaction.
    RegTx(u8),
    /// An account's refresh.
    RegRefresh(u8),
    /// An account's retry after a failure.
    RegRetry(u8),
    /// The deadline of the call in this position of the call table.
    Call(u8),
    /// Shutdown deadline.
    Shutdown,
}

/// Where the core is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PhaseView {
    /// Not started.
    Created,
    /// Running.
    Running,
    /// Shutting down.
    ShuttingDown,
    /// Closed.
    Closed,
}

/// One entry of the connection table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnView {
    /// Where it goes.
    pub server: Server,
    /// What it is for (call numbers replaced by 0).
    pub purpose: ConnPurpose,
    /// Connected (TLS up).
    pub up: bool,
    /// Which of its server's addresses it dials (every address of every target, in
    /// order): where the next attempt goes after this one depends on it.
    pub attempt: u16,
}

/// The persistent connection's decision state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FlowView {
    /// Slot of the persistent connection.
    pub conn: Option<u8>,
    /// Server of the last flow that came up.
    pub last_up: Option<Server>,
    /// Servers tried in this round.
    pub tried: [bool; 2],
    /// Failed rounds in a row (raw; a checker may cap it where back-off saturates).
    pub failed_rounds: u32,
    /// Pong knowledge per server.
    pub pongs: [Option<bool>; 2],
    /// A Flow-Timer was received.
    pub flow_timer: bool,
    /// The flow proved itself.
    pub proven: bool,
    /// A probe: its slot and whether its OPTIONS is out.
    pub probe: Option<(Option<u8>, bool)>,
    /// Consecutive good probes.
    pub good_probes: u8,
    /// Leaving the backup for the primary.
    pub switching: bool,
    /// An OPTIONS of the flow is out.
    pub options_tx: bool,
}

/// An account's registration, as the view sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AccountView {
    /// Public registration state.
    pub state: RegState,
    /// Slot of the connection the binding is on.
    pub registered_on: Option<u8>,
    /// REGISTER in flight: (is a de-REGISTER, carries credentials, slot).
    pub tx: Option<(bool, bool, Option<u8>)>,
    /// Credentials cached from a challenge.
    pub has_auth: bool,
    /// Credentials cached from an INVITE challenge.
    pub has_invite_auth: bool,
    /// Challenges answered in a row.
    pub challenges: u8,
    /// Min-Expires learnt from a 423.
    pub min_expires: Option<u32>,
    /// 423 answers in a row.
    pub interval_tries: u8,
    /// Servers that rejected the account for good.
    pub rejected_by: [bool; 2],
    /// The first round on the current connection has an outcome.
    pub round_done: bool,
}

/// What a call is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallPhase {
    /// Waiting for a connection and registration.
    Queued,
    /// Per-call TLS: connecting.
    Connecting,
    /// INVITE out.
    Calling,
    /// CANCEL out.
    Cancelling,
    /// Established.
    Established,
    /// BYE out or waiting for a connection.
    Ending,
    /// Incoming, ringing.
    Ringing,
    /// Answered, waiting for ACK.
    AwaitAck,
    /// Established, being moved onto a new connection by a re-INVITE.
    Moving,
}

/// One call, as the view sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallView {
    /// What it is doing.
    pub phase: CallPhase,
    /// Placed by us.
    pub outgoing: bool,
    /// Its account.
    pub account: AccountId,
    /// Slot of the dialog's connection.
    pub conn: Option<u8>,
    /// Slot of the connection of its transaction (INVITE, CANCEL or BYE).
    pub tx_conn: Option<u8>,
    /// A provisional response arrived.
    pub ringing: bool,
    /// The user hung up before a provisional response.
    pub cancel_wanted: bool,
    /// Challenged once.
    pub challenged: bool,
    /// The one outcome was given.
    pub outcome_given: bool,
}

/// Everything the core decides on, with names and times abstracted (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DecisionView {
    /// Life phase.
    pub phase: PhaseView,
    /// The connection table, in order.
    pub conns: Vec<ConnView>,
    /// The persistent connection.
    pub flow: FlowView,
    /// Every account.
    pub accounts: Vec<AccountView>,
    /// Every call, in order.
    pub calls: Vec<CallView>,
    /// Armed timers with the rank of their deadline among the distinct armed deadlines.
    pub timers: Vec<(TimerKey, u8)>,
    /// Outputs not yet drained.
    pub pending_outputs: usize,
}

/// An account's raw parts, read by the view (filled in `registration.rs`).
pub(super) struct AccountParts {
    pub state: RegState,
    pub registered_on: Option<ConnId>,
    pub tx: Option<(bool, bool, ConnId)>,
    pub has_auth: bool,
    pub has_invite_auth: bool,
    pub challenges: u8,
    pub min_expires: Option<u32>,
    pub interval_tries: u8,
    pub rejected_by: [bool; 2],
    pub round_done: bool,
}

/// A call's raw parts, read by the view (filled in `calls.rs`).
pub(super) struct CallParts {
    pub phase: CallPhase,
    pub outgoing: bool,
    pub account: AccountId,
    pub conn: Option<ConnId>,
    pub tx_conn: Option<ConnId>,
    pub ringing: bool,
    pub cancel_wanted: bool,
    pub challenged: bool,
    pub outcome_given: bool,
}

impl Core {
    /// The view's name of a timer of the table: every variant of [`Timer`] maps here, so
    /// no timer can be left out of the view.
    fn timer_key(&self, timer: Timer) -> Option<TimerKey> {
        let conn_slot = |id: ConnId| self.conns.iter().position(|c| c.id == id).map(|p| p as u8);
        Some(match timer {
            Timer::Connect(id) => TimerKey::Connect(conn_slot(id)?),
            Timer::WriteStall(id) => TimerKey::WriteStall(conn_slot(id)?),
            Timer::HeadStart(id) => TimerKey::HeadStart(conn_slot(id)?),
            Timer::Flow(FlowTimer::Retry) => TimerKey::FlowRetry,
            Timer::Flow(FlowTimer::OptionsTx) => TimerKey::OptionsTx,
            Timer::Flow(FlowTimer::PongDeadline) => TimerKey::PongDeadline,
            Timer::Flow(FlowTimer::Ping) => TimerKey::Ping,
            Timer::Flow(FlowTimer::ProbeAt) => TimerKey::ProbeAt,
            Timer::Flow(FlowTimer::ProbeTx) => TimerKey::ProbeTx,
            Timer::Registration(a, RegTimer::Transaction) => TimerKey::RegTx(a.0),
            Timer::Registration(a, RegTimer::Refresh) => TimerKey::RegRefresh(a.0),
            Timer::Registration(a, RegTimer::Retry) => TimerKey::RegRetry(a.0),
            Timer::Call(id) => TimerKey::Call(self.calls.iter().position(|c| c.id() == id)? as u8),
            Timer::Shutdown => TimerKey::Shutdown,
        })
    }

    /// The back-off window bound for `failed_rounds` failures, as the core computes it.
    pub fn backoff_window(&self, failed_rounds: u32) -> crate::time::Duration {
        super::backoff::Backoff::window(self.config.backoff, failed_rounds, true)
    }

    /// The decision state of the core (see [`DecisionView`]).
    pub fn decision_view(&self) -> DecisionView {
        let slot = |id: ConnId| self.conns.iter().position(|c| c.id == id).map(|p| p as u8);
        let phase = match self.phase {
            Phase::Created => PhaseView::Created,
            Phase::Running => PhaseView::Running,
            Phase::ShuttingDown => PhaseView::ShuttingDown,
            Phase::Closed => PhaseView::Closed,
        };
        let conns = self
            .conns
            .iter()
            .map(|c| {
                let purpose = match c.purpose {
                    ConnPurpose::Call(_) => ConnPurpose::Call(CallId(0)),
                    p => p,
                };
                ConnView { server: c.id.server, purpose, up: c.local.is_some(), attempt: c.attempt }
            })
            .collect();
        let probe = self.failback.probe.as_ref();
        let flow = FlowView {
            conn: self.flow.conn.and_then(slot),
            last_up: self.flow.last_up,
            tried: self.backoff.tried(),
            failed_rounds: self.backoff.failed_rounds(),
            pongs: self.keepalive.pongs(),
            flow_timer: self.keepalive.has_flow_timer(),
            proven: self.flow.proven,
            probe: probe.map(|p| (slot(p.conn), p.tx.is_some())),
            good_probes: self.failback.good_probes(),
            switching: self.failback.is_switching(),
            options_tx: self.keepalive.options_tx.is_some(),
        };
        let accounts = self
            .accounts
            .iter()
            .map(|a| {
                let p = a.parts();
                AccountView {
                    state: p.state,
                    registered_on: p.registered_on.and_then(slot),
                    tx: p.tx.map(|(unreg, auth, conn)| (unreg, auth, slot(conn))),
                    has_auth: p.has_auth,
                    has_invite_auth: p.has_invite_auth,
                    challenges: p.challenges,
                    min_expires: p.min_expires,
                    interval_tries: p.interval_tries,
                    rejected_by: p.rejected_by,
                    round_done: p.round_done,
                }
            })
            .collect();
        let calls = self
            .calls
            .iter()
            .map(|c| {
                let p = c.parts();
                CallView {
                    phase: p.phase,
                    outgoing: p.outgoing,
                    account: p.account,
                    conn: p.conn.and_then(slot),
                    tx_conn: p.tx_conn.and_then(slot),
                    ringing: p.ringing,
                    cancel_wanted: p.cancel_wanted,
                    challenged: p.challenged,
                    outcome_given: p.outcome_given,
                }
            })
            .collect();
        let deadlines: Vec<(TimerKey, Instant)> =
            self.timers.iter().filter_map(|(t, at)| Some((self.timer_key(t)?, at))).collect();
        let mut distinct: Vec<Instant> = deadlines.iter().map(|(_, t)| *t).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let mut timers: Vec<(TimerKey, u8)> =
            deadlines.iter().map(|(k, t)| (*k, distinct.iter().position(|d| d == t).unwrap_or(0) as u8)).collect();
        timers.sort_unstable();
        DecisionView { phase, conns, flow, accounts, calls, timers, pending_outputs: self.out.len() }
    }
}
