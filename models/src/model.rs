//! The stateright model: the real [`Core`] in a small hostile world.
//!
//! State = the core + an abstract environment (each server Up, Refusing or Silent; per
//! connection the FIFO of deliveries in flight, built by the real [`SimServer`] from the
//! core's real requests) + ghost state (violation bits, budgets, reachability flags, a
//! bounded-response step counter). Actions are the environment's choices. Every output
//! the core emits is checked as it comes out and turned into ghost bits that the
//! `always` properties read. The state's `Hash`/`PartialEq` use an abstraction of the
//! core ([`Core::decision_view`]), not its raw fields: see `docs/model-checking.md`.

use crate::sites::{self, SITES};
use sip_ptls::config::{
    AccountConfig, Backoff, CertificateFiles, Config, DnsQueryType, Failback, ServerAddr, TransportMode,
};
use sip_ptls::engine::{DecisionView, TimerKey};
use sip_ptls::ids::{AccountId, CallId, ConnId, Server};
use sip_ptls::sim::{SimServer, Zone};
use sip_ptls::sip::{Frame, Message};
use sip_ptls::time::{Duration, Instant};
use sip_ptls::{CallOutcome, ConnPurpose, Core, Event, FlowError, FlowState, Input, Output, RegState, TransportError};
use stateright::{Model, Property};
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

#[cfg(feature = "planted-bugs")]
pub use sip_ptls::engine::PlantedBug;

/// How a server treats the phone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Accepts connections and answers.
    Up,
    /// Refuses connections; established ones were reset when it entered this mode.
    Refusing,
    /// Accepts connections and bytes, answers nothing.
    Silent,
}

const MODES: [Mode; 3] = [Mode::Up, Mode::Refusing, Mode::Silent];

/// The bounds that keep the space finite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Accounts (lines) configured.
    pub accounts: u8,
    /// Faults: server mode changes, peer closes, lost or rejected replies.
    pub faults: u8,
    /// Calls the user places.
    pub calls: u8,
    /// Firings of periodic timers (keep-alive ping, registration refresh, probe).
    pub idle: u8,
    /// Seed of the core's random generator (jitter, tokens): the low 64 bits of its
    /// 32-byte ChaCha20 key, the rest zero.
    pub seed: u64,
    /// Network deliveries before timers (sound while RTT is far below every timer).
    pub urgency: bool,
    /// The user may shut the phone down once, at any point.
    pub shutdown: bool,
    /// Calls the far end places to the phone (answered, rejected or left to ring by the
    /// user; hung up by either side).
    pub incoming: u8,
    /// TLS mode (a connection per registration exchange and per call) instead of
    /// Persistent TLS.
    pub per_call: bool,
    /// The user may hang up each placed call once, at any point until it ends (queued,
    /// before or after the provisional response, answered).
    pub hang_up: bool,
    /// The far end may CANCEL each incoming call once while it rings, and send one
    /// re-INVITE in it once answered.
    pub far_end_requests: bool,
    /// The primary is a name with two SRV targets, the first with an IPv6 and an IPv4
    /// address, each address failing on its own (`sites.rs`), instead of one literal.
    pub targets: bool,
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds {
            accounts: 2,
            faults: 2,
            calls: 1,
            idle: 2,
            seed: 1,
            urgency: true,
            shutdown: true,
            incoming: 0,
            per_call: false,
            hang_up: false,
            far_end_requests: false,
            targets: false,
        }
    }
}

impl Bounds {
    /// The bounds of the planted-bug suite (the `mutants` command's defaults): two calls,
    /// so that a queued call can follow another, as one planted bug needs.
    pub fn planted_bug_suite() -> Bounds {
        Bounds { calls: 2, ..Bounds::default() }
    }

    /// The bounds a planted bug is hunted within: these, except for a bug of incoming
    /// calls, which needs one (and, to stay small, one account, one fault and no
    /// outgoing call), a bug of TLS mode, which needs that mode, a bug of hanging up,
    /// which needs the user's hang-up, and a bug of the primary's targets, which needs
    /// them.
    #[cfg(feature = "planted-bugs")]
    pub fn for_planted_bug(self, bug: PlantedBug) -> Bounds {
        match bug {
            PlantedBug::KeepCallAfterRemoteBye => Bounds { accounts: 1, faults: 1, calls: 0, incoming: 1, ..self },
            PlantedBug::KeepExchangeConnection => Bounds { accounts: 1, faults: 1, per_call: true, ..self },
            PlantedBug::CancelBeforeProvisional => Bounds { hang_up: true, ..self },
            PlantedBug::IncomingToFirstAccount => Bounds { accounts: 2, faults: 1, calls: 0, incoming: 1, ..self },
            // Found within two faults while an orphaned call ended by its timer; moved
            // calls no longer do, and a third fault gives the paths (a probe lost, a
            // move's answer lost so that the call ends by its timer).
            PlantedBug::ProbeFailureKeepsRun | PlantedBug::NoReevaluationAfterTimer => {
                Bounds { accounts: 1, faults: 3, calls: 1, ..self }
            }
            // Bugs of the primary's targets: two sites changing mode (two addresses
            // refusing, or one silent beside a silent backup), or a handshake lost.
            PlantedBug::BackoffAfterFirstTarget
            | PlantedBug::RaceLoserLeftOpen
            | PlantedBug::UnprovenAddressFailsServer => {
                Bounds { accounts: 1, faults: 2, calls: 0, targets: true, ..self }
            }
            _ => self,
        }
    }

    /// Steps allowed between the last fault and a settled state (bounded response).
    pub fn response_bound(&self) -> u8 {
        let k = 24 + 4 * u32::from(self.accounts) + 6 * u32::from(self.calls) + 4 * u32::from(self.idle);
        // Each attempt on the primary may first fail on the addresses before the one
        // that answers (a step each), in every probe and reconnection of the recovery.
        let k = if self.targets { k + 12 } else { k };
        k.min(200) as u8
    }
}

/// Something the network will hand to the core on one connection, in order.
#[derive(Clone, Debug)]
pub enum Delivery {
    /// TCP and TLS completed.
    Connected,
    /// The connection attempt failed.
    ConnectFailed,
    /// The server closed or reset the connection.
    Closed,
    /// A CRLF pong.
    Pong,
    /// A SIP response (or request) from the server.
    Reply(Reply),
    /// A request of the far end, relayed by the server, in an incoming call.
    Request(FarRequest),
}

/// A request the far end sends in an incoming call.
#[derive(Clone, Debug)]
pub struct FarRequest {
    /// The bytes.
    pub bytes: Arc<Vec<u8>>,
    /// Which request (for the state's identity).
    pub kind: FarKind,
    /// Index of the incoming call in the ghost's list.
    pub call: u8,
}

/// The far end's requests the model sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FarKind {
    /// A new call.
    Invite,
    /// Acknowledges the phone's 2xx.
    Ack,
    /// The far end hangs up.
    Bye,
    /// The far end gives up on its ringing call.
    Cancel,
    /// A re-INVITE in the answered call (a session refresh, no offer).
    Reinvite,
    /// Acknowledges the phone's 2xx to the re-INVITE.
    AckReinvite,
}

/// An incoming call as the far end sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Incoming {
    /// The core's id, once it announced the call.
    pub call: Option<CallId>,
    /// Call-ID of the far end's INVITE.
    pub call_id: String,
    /// The phone's To tag, from its 2xx.
    pub to_tag: Option<String>,
    /// Where the call is: ringing (or not yet announced), answered, ended.
    pub phase: IncomingPhase,
    /// The far end sent its BYE.
    pub far_bye: bool,
    /// The user answered or rejected it.
    pub user_acted: bool,
    /// The user hung it up.
    pub hung_up: bool,
    /// The far end sent its CANCEL.
    pub far_cancel: bool,
    /// The far end sent its re-INVITE.
    pub far_reinvite: bool,
    /// The far end's requests that got a final answer, one bit per request
    /// ([`FarKind::answer_bit`]): a second final answer to one of them is a violation.
    pub finals: u8,
    /// The account called (its user name).
    pub user: String,
}

/// Phases of an incoming call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IncomingPhase {
    /// The INVITE is on its way or the phone rings.
    Ringing,
    /// The phone sent its 2xx.
    Answered,
    /// `CallEnded` came (or the phone refused the call).
    Ended,
}

impl FarKind {
    /// The bit of [`Incoming::finals`] for the phone's final answer to this request
    /// (`None` for an ACK, which gets no answer).
    pub fn answer_bit(self) -> Option<u8> {
        match self {
            FarKind::Invite => Some(1),
            FarKind::Cancel => Some(2),
            FarKind::Bye => Some(4),
            FarKind::Reinvite => Some(8),
            FarKind::Ack | FarKind::AckReinvite => None,
        }
    }

    /// The far end's request that a response of the phone answers, from its CSeq.
    fn answered_by(cseq: u32, method: &str) -> Option<FarKind> {
        match (cseq, method.to_ascii_uppercase().as_str()) {
            (1, "INVITE") => Some(FarKind::Invite),
            (1, "CANCEL") => Some(FarKind::Cancel),
            (2, "BYE") => Some(FarKind::Bye),
            (3, "INVITE") => Some(FarKind::Reinvite),
            _ => None,
        }
    }
}

/// A SIP message from the server, with what the model needs to know about it.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The bytes.
    pub bytes: Arc<Vec<u8>>,
    /// CSeq method.
    pub method: Method,
    /// Status code.
    pub status: u16,
    /// The account it concerns (REGISTER), by the To user.
    pub account: Option<u8>,
    /// Call-ID, to tell superseded transactions.
    pub call_id: Arc<str>,
    /// A later request with the same Call-ID and method went out: this answers an
    /// abandoned transaction.
    pub stale: bool,
    /// The request it answers (to build another answer for a fault).
    pub request: Arc<Message>,
}

/// Methods the model tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// REGISTER.
    Register,
    /// INVITE.
    Invite,
    /// OPTIONS.
    Options,
    /// Anything else (BYE, CANCEL).
    Other,
}

fn method_of(m: &str) -> Method {
    match m.to_ascii_uppercase().as_str() {
        "REGISTER" => Method::Register,
        "INVITE" => Method::Invite,
        "OPTIONS" => Method::Options,
        _ => Method::Other,
    }
}

/// One connection as the network sees it.
#[derive(Clone, Debug)]
pub struct NetConn {
    /// The core's handle.
    pub id: ConnId,
    /// The address it goes to ([`sites`]).
    pub site: usize,
    /// The purpose the core gave it when asking for it.
    pub purpose: Option<ConnPurpose>,
    /// `Connected` was delivered and `Closed` was not.
    pub up: bool,
    /// Deliveries in flight, in order.
    pub queue: VecDeque<Delivery>,
    /// Final REGISTER status delivered on this connection, per account.
    pub finals: Vec<Option<u16>>,
    /// A ping, REGISTER or OPTIONS on it will never be answered.
    pub unanswered: bool,
    /// Pings on it that will never be answered (saturates at 2).
    pub lost_pings: u8,
    /// When the first ping that will never be answered went out.
    pub lost_ping_at: Option<Instant>,
    /// A final answer to the OPTIONS of this probe connection was delivered.
    pub probe_answered: bool,
    /// TLS mode: the Call-ID of the first request a call's own connection carried.
    pub call_id: Option<String>,
}

/// Ghost violation bits.
pub mod viol {
    /// The core panicked.
    pub const PANIC: u32 = 1;
    /// Two persistent connections open or opening.
    pub const TWO_FLOWS: u32 = 1 << 1;
    /// Bytes sent on a connection that is not up.
    pub const SEND_NOT_UP: u32 = 1 << 2;
    /// INVITE before every account had its final REGISTER answer on the connection.
    pub const INVITE_EARLY: u32 = 1 << 3;
    /// A call got a second outcome, or an outcome it was never placed for.
    pub const OUTCOME: u32 = 1 << 4;
    /// Back-off outside its window.
    pub const BACKOFF: u32 = 1 << 5;
    /// Still on the backup after the primary proved stable, with no call pinning it.
    pub const NO_FAILBACK: u32 = 1 << 6;
    /// A second ping went unanswered on the same connection: silence was not noticed.
    pub const SILENCE_UNNOTICED: u32 = 1 << 7;
    /// Failback started before `stable_probes` consecutive good probes, or while a call
    /// other than a queued one was live.
    pub const EARLY_FAILBACK: u32 = 1 << 8;
    /// Output after `ShutdownComplete`, a second `ShutdownComplete`, or a connection
    /// still open when it came.
    pub const SHUTDOWN: u32 = 1 << 9;
    /// An incoming call ended twice, rang another line than the one called, or an event
    /// for an incoming call the far end never placed.
    pub const INCOMING: u32 = 1 << 10;
    /// TLS mode: a connection carried a request of another exchange than its own.
    pub const PER_CALL_SCOPE: u32 = 1 << 11;
    /// A BYE, CANCEL or re-INVITE of the far end got no final answer at once on the
    /// connection it came on, or a far end's request got two final answers.
    pub const FAR_UNANSWERED: u32 = 1 << 12;
    /// A CANCEL for an INVITE to which no provisional response was delivered.
    pub const CANCEL_EARLY: u32 = 1 << 13;
    /// The primary failed before every one of its addresses was dialed in the round, or
    /// a round did not start at its best target's first address.
    pub const TARGET_SKIPPED: u32 = 1 << 14;
    /// While the flow was up on one of the primary's addresses, another was dialed, or
    /// the core closed that healthy flow: the flow did not stay where it came up.
    pub const NOT_STICKY: u32 = 1 << 15;
    /// A settled phone left a confirmed call of a registered line without a connection:
    /// it was neither moved onto the new persistent connection nor ended.
    pub const NOT_MOVED: u32 = 1 << 16;
}

/// Reachability flags.
pub mod reach {
    /// The flow failed over to the backup.
    pub const FAILOVER: u16 = 1;
    /// The flow failed back to the primary.
    pub const FAILBACK: u16 = 1 << 1;
    /// Registered again after a silent failure (pong or transaction timeout).
    pub const REREG_AFTER_SILENT: u16 = 1 << 2;
    /// A call was answered over the persistent connection.
    pub const CALL_ANSWERED: u16 = 1 << 3;
    /// A queued call went out after a recovery.
    pub const QUEUED_DELIVERED: u16 = 1 << 4;
    /// The phone shut down (`ShutdownComplete`) after a call was placed or came in.
    pub const SHUT_DOWN: u16 = 1 << 5;
    /// An incoming call was answered and then ended by the far end's BYE.
    pub const INCOMING_ANSWERED_AND_ENDED: u16 = 1 << 6;
    /// The flow came up on the primary's second target after an attempt on the first.
    pub const SECOND_TARGET: u16 = 1 << 7;
    /// An answered call was moved onto a new persistent connection (`CallMoved`).
    pub const CALL_MOVED: u16 = 1 << 8;
}

/// Ghost state: what the properties read.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// Violation bits ([`viol`]).
    pub viol: u32,
    /// Reachability bits ([`reach`]).
    pub reached: u16,
    /// Placed calls and how many outcomes each got.
    pub calls: Vec<(CallId, u8)>,
    /// Per placed call (same order): the user hung it up.
    pub calls_hung_up: Vec<bool>,
    /// Call-IDs of the phone's INVITEs to which a provisional response was delivered.
    pub provisional: Vec<Arc<str>>,
    /// Accounts a server rejected for good (403 delivered), per server.
    pub rejected: [Vec<bool>; 2],
    /// Some flow was lost or failed to connect.
    pub flow_lost: bool,
    /// A flow was lost to a pong or transaction timeout.
    pub silent_loss: bool,
    /// Steps since the last fault or user action without being settled (saturates).
    pub since_change: u8,
    /// `ShutdownComplete` was emitted.
    pub shut_down: bool,
    /// Incoming calls the far end placed, in order.
    pub incoming: Vec<Incoming>,
    /// Placed calls that were answered and have not ended.
    pub answered: Vec<CallId>,
    /// Probes of the primary answered in a row since the persistent connection last came
    /// up, counted from what the network delivered (saturates at 3): the failback
    /// properties' own count, never the core's.
    pub good_probes: u8,
    /// The primary's sites dialed since its current round of attempts began at its
    /// first address (a bit per site); 0 once the primary failed.
    pub round: u8,
    /// What the last panic said.
    pub panic: Option<String>,
}

/// Budgets left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Budget {
    /// Faults left.
    pub faults: u8,
    /// Calls left.
    pub calls: u8,
    /// Periodic timer firings left.
    pub idle: u8,
    /// The shutdown is still to come (if the bounds allow one).
    pub shutdown: bool,
    /// Incoming calls left.
    pub incoming: u8,
}

/// A model state.
#[derive(Clone, Debug)]
pub struct State {
    /// The real core.
    pub core: Core,
    /// Virtual time.
    pub now: Instant,
    /// The real simulated servers that build answers to the core's requests.
    pub servers: [SimServer; 2],
    /// How each server behaves.
    pub modes: [Mode; SITES],
    /// Connections the network knows, in creation order.
    pub net: Vec<NetConn>,
    /// Budgets left.
    pub budget: Budget,
    /// Ghost state.
    pub ghost: Ghost,
    /// INVITEs sent in the current step (scratch, not part of the state's identity).
    pub invites_sent: u8,
    /// The core closed a probe before its answer in the current drain (scratch).
    pub probe_abandoned: bool,
    /// The incoming call whose INVITE is being delivered in this step (scratch).
    pub delivering_invite: Option<u8>,
    /// The far end's BYE, CANCEL or re-INVITE delivered in this step and not answered yet:
    /// connection, Call-ID and answer bit (scratch).
    pub far_pending: Vec<(ConnId, String, u8)>,
}

/// A step of the environment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Hand the first delivery of connection `i` (index in the network table) to the core.
    Deliver(u8),
    /// Fault: the first delivery of connection `i` is lost (a hanging handshake, a lost
    /// pong or response).
    Lose(u8),
    /// Fault: the server answers the REGISTER at the head of connection `i` with `status`.
    Reject(u8, u16),
    /// Fault: the server refuses the credentials of the REGISTER at the head of connection
    /// `i`: a 401 with a fresh nonce and no `stale=true`, as for a wrong password.
    RefuseCredentials(u8),
    /// Fault: the server closes connection `i`.
    PeerClose(u8),
    /// Fault: the server at a site ([`sites`]) changes mode.
    SetMode(u8, Mode),
    /// The user places a call from an account.
    PlaceCall(u8),
    /// The user shuts the phone down.
    Shutdown,
    /// The far end calls an account (through the server of the up flow).
    IncomingCall(u8),
    /// The user answers incoming call `i` (index in the ghost's list).
    Answer(u8),
    /// The user rejects incoming call `i` with 486.
    RejectCall(u8),
    /// The user hangs up answered incoming call `i`.
    HangUpIncoming(u8),
    /// The far end hangs up answered incoming call `i`.
    FarEndBye(u8),
    /// The user hangs up placed call `i` (index in the ghost's list of placed calls).
    HangUpCall(u8),
    /// The far end cancels ringing incoming call `i`.
    FarEndCancel(u8),
    /// The far end sends a re-INVITE in answered incoming call `i`.
    FarEndReinvite(u8),
    /// The earliest armed deadline passes.
    Fire,
}

/// The abstract key that identifies states (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    core: DecisionView,
    modes: [Mode; SITES],
    net: Vec<NetKey>,
    budget: Budget,
    ghost: GhostKey,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct NetKey {
    site: usize,
    slot: Option<u8>,
    purpose: Option<ConnPurpose>,
    up: bool,
    queue: Vec<(u8, u16, Option<u8>, bool)>,
    finals: Vec<Option<u16>>,
    unanswered: bool,
    lost_pings: u8,
    lost_ping: bool,
    probe_answered: bool,
}

/// What of an incoming call decides what can still happen to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct IncomingKey {
    phase: IncomingPhase,
    announced: bool,
    far_bye: bool,
    far_cancel: bool,
    far_reinvite: bool,
    user_acted: bool,
    hung_up: bool,
    finals: u8,
    /// The line called: without it, calls to different lines would be one state, and
    /// only the first line explored.
    user: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct GhostKey {
    viol: u32,
    reached: u16,
    outcomes: Vec<u8>,
    rejected: [Vec<bool>; 2],
    flow_lost: bool,
    silent_loss: bool,
    since_change: u8,
    good_probes: u8,
    round: u8,
    shut_down: bool,
    incoming: Vec<IncomingKey>,
    answered: Vec<CallId>,
    calls_hung_up: Vec<bool>,
    provisional: usize,
}

impl State {
    fn key(&self) -> Key {
        let mut core = self.core.decision_view();
        // Back-off saturates: beyond `cap` failed rounds the window no longer changes.
        core.flow.failed_rounds = core.flow.failed_rounds.min(backoff_cap(self.core.config()));
        let slots: Vec<ConnId> = self.core.connections().map(|(id, _, _)| id).collect();
        let net = self
            .net
            .iter()
            .map(|c| NetKey {
                site: c.site,
                slot: slots.iter().position(|s| *s == c.id).map(|p| p as u8),
                purpose: c.purpose.map(|p| match p {
                    ConnPurpose::Call(_) => ConnPurpose::Call(CallId(0)),
                    p => p,
                }),
                up: c.up,
                queue: c
                    .queue
                    .iter()
                    .map(|d| match d {
                        Delivery::Connected => (0, 0, None, false),
                        Delivery::ConnectFailed => (1, 0, None, false),
                        Delivery::Closed => (2, 0, None, false),
                        Delivery::Pong => (3, 0, None, false),
                        Delivery::Reply(r) => (4 + r.method as u8, r.status, r.account, r.stale),
                        Delivery::Request(f) => (8 + f.kind as u8, 0, Some(f.call), false),
                    })
                    .collect(),
                finals: c.finals.clone(),
                unanswered: c.unanswered,
                lost_pings: c.lost_pings,
                lost_ping: c.lost_ping_at.is_some(),
                probe_answered: c.probe_answered,
            })
            .collect();
        let g = &self.ghost;
        Key {
            core,
            modes: self.modes,
            net,
            budget: self.budget,
            ghost: GhostKey {
                viol: g.viol,
                reached: g.reached,
                outcomes: g.calls.iter().map(|(_, n)| *n).collect(),
                rejected: g.rejected.clone(),
                flow_lost: g.flow_lost,
                silent_loss: g.silent_loss,
                since_change: g.since_change,
                good_probes: g.good_probes,
                round: g.round,
                shut_down: g.shut_down,
                incoming: g
                    .incoming
                    .iter()
                    .map(|i| IncomingKey {
                        phase: i.phase,
                        announced: i.call.is_some(),
                        far_bye: i.far_bye,
                        far_cancel: i.far_cancel,
                        far_reinvite: i.far_reinvite,
                        user_acted: i.user_acted,
                        hung_up: i.hung_up,
                        finals: i.finals,
                        user: i.user.clone(),
                    })
                    .collect(),
                answered: g.answered.clone(),
                calls_hung_up: g.calls_hung_up.clone(),
                provisional: g.provisional.len(),
            },
        }
    }

    /// Deliveries waiting on any connection.
    pub fn pending(&self) -> bool {
        self.net.iter().any(|c| !c.queue.is_empty())
    }
}

impl Hash for State {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key().hash(h);
    }
}

impl PartialEq for State {
    fn eq(&self, other: &State) -> bool {
        self.key() == other.key()
    }
}

impl Eq for State {}

/// Failed rounds beyond which the back-off window is capped, plus one (so that a missing
/// cap is still seen).
fn backoff_cap(config: &Config) -> u32 {
    let b = config.backoff;
    let mut n = 0u32;
    while n < 20 && b.base.saturating_mul(1u64 << n) < b.max {
        n += 1;
    }
    n + 1
}

/// The back-off window, in ms, after `failures` failed rounds in a row, written out by
/// hand from docs/architecture.md ("the n-th failed round waits a random time in
/// [w/2, w], w = base doubled n-1 times, capped at max") for the model's base of 2 s and
/// maximum of 8 s, so that the property does not share the core's arithmetic. `None`:
/// no failure, so no back-off is due.
fn documented_backoff_window_ms(failures: u32) -> Option<u64> {
    match failures {
        0 => None,
        1 => Some(2_000),
        2 => Some(4_000),
        _ => Some(8_000),
    }
}

/// The configuration the model runs the core with: timers on separate scales so that
/// the order of deadlines is mostly fixed by construction (see the doc).
pub fn model_config(accounts: u8, seed: u64) -> Config {
    Config {
        mode: TransportMode::PersistentTls,
        // Addresses, not names: the core connects without a lookup, so DNS adds nothing
        // to the state space of these properties.
        proxy: Some(ServerAddr::new(sites::literal(Server::Primary), sites::PORT)),
        backup_proxy: Some(ServerAddr::new(sites::literal(Server::Backup), sites::PORT)),
        accounts: (0..accounts).map(|i| AccountConfig::new(&format!("10{i}"), "pw")).collect(),
        certificates: CertificateFiles { trusted_certificates: Some("ca.pem".into()), ..CertificateFiles::default() },
        keepalive_interval: Duration::from_secs(12),
        pong_timeout: Duration::from_secs(3),
        transaction_timeout: Duration::from_secs(4),
        connect_timeout: Duration::from_secs(15),
        registration_period: 60,
        registration_renewal: 15,
        registration_retry: 30,
        registration_timeout_retry: 30,
        backoff: Backoff { base: Duration::from_secs(2), max: Duration::from_secs(8) },
        failback: Failback { probe_interval: Duration::from_secs(8), stable_probes: 2 },
        call_queue_limit: 8,
        call_setup_timeout: Duration::from_secs(32),
        seed: seed.into(),
        ..Config::default()
    }
}

/// `config` with the primary named `primary.test` and located by SRV when the bounds
/// ask for targets, unchanged otherwise.
fn located(config: Config, targets: bool) -> Config {
    if !targets {
        return config;
    }
    Config { proxy: Some(ServerAddr::new(sites::PRIMARY_NAME, 0)), dns_query_type: DnsQueryType::SrvAndA, ..config }
}

/// The far end's request `kind` in incoming call `n` to `user`, with the phone's To tag
/// once it has one.
fn far_request(kind: FarKind, n: usize, user: &str, to_tag: Option<&str>) -> Vec<u8> {
    // A CANCEL names its INVITE's branch (RFC 3261 §9.1); every other request has its own.
    let (method, cseq, branch) = match kind {
        FarKind::Invite => ("INVITE", 1, "inv"),
        FarKind::Ack => ("ACK", 1, "ack"),
        FarKind::Bye => ("BYE", 2, "bye"),
        FarKind::Cancel => ("CANCEL", 1, "inv"),
        FarKind::Reinvite => ("INVITE", 3, "reinv"),
        FarKind::AckReinvite => ("ACK", 3, "reack"),
    };
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "{method} sips:{user}@127.0.0.1:40000 SIP/2.0\r\nVia: SIP/2.0/TLS far.test;branch=z9hG4bKfar{branch}{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sips:3000@far.test>;tag=far{n}\r\nTo: <sips:{user}@proxy.test>{to_tag}\r\n\
         Call-ID: far-{n}\r\nCSeq: {cseq} {method}\r\nContact: <sips:3000@far.test>\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The Flow-Timer the backup grants in its REGISTER 2xx (RFC 5626 §4.4.2): longer than
/// the configured keep-alive interval, so that keep-alive changes its period when the
/// flow moves to the backup and back, and silence must still be noticed in time.
pub const BACKUP_FLOW_TIMER: u32 = 20;

fn backup_server(users: &[(String, String)]) -> SimServer {
    let mut server = SimServer::new(Server::Backup, users);
    server.behaviour.flow_timer = Some(BACKUP_FLOW_TIMER);
    server
}

/// The model.
#[derive(Clone, Debug)]
pub struct PtlsModel {
    /// Bounds.
    pub bounds: Bounds,
    /// The core's configuration.
    pub config: Config,
    /// Steps allowed between the last change and a settled state.
    pub k: u8,
    /// What the core's lookups are answered with, at once ([`sites::zone`]).
    pub zone: Zone,
    /// The planted bug switched on, if any.
    #[cfg(feature = "planted-bugs")]
    pub bug: Option<PlantedBug>,
}

fn is_periodic(k: TimerKey) -> bool {
    matches!(k, TimerKey::Ping | TimerKey::RegRefresh(_) | TimerKey::ProbeAt)
}

/// What a step did, for traces.
pub type Log = Vec<String>;

impl PtlsModel {
    /// A model of the correct core within `bounds`.
    pub fn new(bounds: Bounds) -> PtlsModel {
        PtlsModel {
            config: Config {
                mode: if bounds.per_call { TransportMode::PerCallTls } else { TransportMode::PersistentTls },
                ..located(model_config(bounds.accounts, bounds.seed), bounds.targets)
            },
            zone: sites::zone(),
            k: bounds.response_bound(),
            bounds,
            #[cfg(feature = "planted-bugs")]
            bug: None,
        }
    }

    /// The same model with a planted bug switched on.
    #[cfg(feature = "planted-bugs")]
    pub fn with_bug(mut self, bug: Option<PlantedBug>) -> PtlsModel {
        self.bug = bug;
        self
    }

    /// The connection a far end's request reaches the phone on: the up persistent
    /// connection, when its server answers.
    fn far_end_conn(&self, s: &State) -> Option<usize> {
        s.net.iter().position(|c| {
            c.up && c.purpose == Some(ConnPurpose::Flow)
                && s.modes[c.site] == Mode::Up
                && !c.queue.iter().any(|d| matches!(d, Delivery::Closed))
        })
    }

    fn initial(&self) -> State {
        let users: Vec<(String, String)> =
            self.config.accounts.iter().map(|a| (a.digest_user().to_owned(), a.password.clone())).collect();
        let n = usize::from(self.bounds.accounts);
        #[allow(unused_mut)]
        let mut core = Core::new(self.config.clone(), Instant::ZERO);
        #[cfg(feature = "planted-bugs")]
        core.plant(self.bug);
        let mut s = State {
            core,
            now: Instant::ZERO,
            servers: [SimServer::new(Server::Primary, &users), backup_server(&users)],
            modes: [Mode::Up; SITES],
            net: Vec::new(),
            budget: Budget {
                faults: self.bounds.faults,
                calls: self.bounds.calls,
                idle: self.bounds.idle,
                shutdown: self.bounds.shutdown,
                incoming: self.bounds.incoming,
            },
            ghost: Ghost {
                viol: 0,
                reached: 0,
                calls: Vec::new(),
                calls_hung_up: Vec::new(),
                provisional: Vec::new(),
                rejected: [vec![false; n], vec![false; n]],
                flow_lost: false,
                silent_loss: false,
                since_change: 0,
                good_probes: 0,
                round: 0,
                shut_down: false,
                incoming: Vec::new(),
                answered: Vec::new(),
                panic: None,
            },
            invites_sent: 0,
            probe_abandoned: false,
            delivering_invite: None,
            far_pending: Vec::new(),
        };
        let now = s.now;
        self.guarded(&mut s, |c| c.start(now));
        self.drain(&mut s, None, false);
        s
    }

    /// Runs a core call, turning a panic into a ghost violation.
    fn guarded<R>(&self, s: &mut State, f: impl FnOnce(&mut Core) -> R) -> Option<R> {
        let core = &mut s.core;
        match catch_unwind(AssertUnwindSafe(|| f(core))) {
            Ok(r) => Some(r),
            Err(e) => {
                let what = e
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| e.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".to_owned());
                s.ghost.viol |= viol::PANIC;
                s.ghost.panic = Some(what);
                None
            }
        }
    }

    /// The user asked for the shutdown.
    pub fn shutting_down(&self, s: &State) -> bool {
        self.bounds.shutdown && !s.budget.shutdown
    }

    /// True once any safety property is broken: exploration stops below such states.
    pub fn violated(&self, s: &State) -> bool {
        s.ghost.viol != 0
    }

    /// The persistent connection is up and every account has its answer, or no server
    /// can take it.
    pub fn settled(&self, s: &State) -> bool {
        if s.ghost.shut_down {
            return true;
        }
        if self.shutting_down(s) {
            // Settled only once it completed.
            return false;
        }
        if !sites::active_sites(self.bounds.targets).iter().any(|&site| s.modes[site] == Mode::Up) {
            return true;
        }
        if self.bounds.per_call {
            let accounts_done = (0..self.bounds.accounts).all(|a| {
                matches!(s.core.registration(AccountId(a)), Some(RegState::Registered { .. } | RegState::Rejected))
            });
            return accounts_done && s.ghost.calls.iter().all(|(_, n)| *n > 0);
        }
        let FlowState::Up { .. } = s.core.flow_state() else { return false };
        let flow_conn = s.core.connections().find(|(_, p, up)| *p == ConnPurpose::Flow && *up).map(|(id, _, _)| id);
        let doomed = flow_conn
            .and_then(|id| s.net.iter().find(|c| c.id == id))
            .is_some_and(|c| c.unanswered && s.modes[c.site] != Mode::Up);
        let accounts_done = (0..self.bounds.accounts).all(|a| {
            matches!(s.core.registration(AccountId(a)), Some(RegState::Registered { .. } | RegState::Rejected))
        });
        !doomed && accounts_done && s.core.queued_calls() == 0
    }

    /// No action is enabled but the user's shutdown: the world has come to rest. (The
    /// shutdown, always available until used, must not hide the states it would end.)
    pub fn is_terminal(&self, s: &State) -> bool {
        let mut v = Vec::new();
        self.actions(s, &mut v);
        v.iter().all(|a| *a == Action::Shutdown)
    }

    /// `None` when no deadline is armed; else whether firing the earliest one costs an
    /// idle tick: a periodic timer (ping, refresh, probe) while the system is idle, that
    /// is settled with nothing but periodic timers armed. Otherwise periodic timers are
    /// part of recovery (a ping is how a silent server is noticed; time must pass to
    /// reach a pending deadline) and free; the bounded-response counter limits them.
    fn fire_cost(&self, s: &State) -> Option<bool> {
        s.core.poll_timeout()?;
        let view = s.core.decision_view();
        let periodic = view.timers.iter().any(|(k, rank)| *rank == 0 && is_periodic(*k));
        let waiting = view.timers.iter().any(|(k, _)| !is_periodic(*k));
        Some(periodic && !waiting && self.settled(s))
    }

    /// Performs every output the core queued, checking each first.
    fn drain(&self, s: &mut State, mut log: Option<&mut Log>, placing: bool) {
        while let Some(out) = self.guarded(s, |c| c.poll_output()).flatten() {
            if let Some(l) = log.as_deref_mut() {
                l.push(format!("  -> {}", describe_output(&out)));
            }
            self.on_output(s, out, placing);
        }
        // A probe connection failed or was given up, and no other attempt of the probe
        // goes on (to the next address of the primary): the probe failed.
        if std::mem::take(&mut s.probe_abandoned) && !s.net.iter().any(|c| c.purpose == Some(ConnPurpose::Probe)) {
            s.ghost.good_probes = 0;
        }
        // A lost ping must be noticed within the pong timeout plus one OPTIONS transaction,
        // while the phone runs: a shutdown stops keep-alive, and the de-REGISTER's own
        // transaction timeout and the shutdown deadline bound the wait then.
        let limit = self.config.pong_timeout + self.config.transaction_timeout;
        let now = s.now;
        let running = !self.shutting_down(s);
        for (id, _, _) in s.core.connections().filter(|(_, p, up)| running && *p == ConnPurpose::Flow && *up) {
            if let Some(c) = s.net.iter().find(|c| c.id == id)
                && c.lost_ping_at.is_some_and(|t| now.saturating_since(t) > limit)
            {
                s.ghost.viol |= viol::SILENCE_UNNOTICED;
            }
        }
        self.check_flows(s);
        // Once the phone is up on a persistent connection with every line done, no
        // confirmed call of a registered line waits without one: it was moved there (its re-INVITE out or
        // answered) or ended. The move starts in the step that completes the
        // registrations, so there is no step in between.
        let every_line_done = (0..self.bounds.accounts).all(|a| {
            matches!(s.core.registration(AccountId(a)), Some(RegState::Registered { .. } | RegState::Rejected))
        });
        let on_flow = matches!(s.core.flow_state(), FlowState::Up { .. });
        if !self.bounds.per_call && !self.shutting_down(s) && on_flow && every_line_done {
            let view = s.core.decision_view();
            let orphaned = view.calls.iter().any(|c| {
                c.phase == sip_ptls::engine::CallPhase::Established
                    && c.conn.is_none()
                    && matches!(s.core.registration(c.account), Some(RegState::Registered { .. }))
            });
            if orphaned {
                s.ghost.viol |= viol::NOT_MOVED;
            }
        }
        // Never on the backup while the primary proved stable and no call pins it (unless
        // the phone is shutting down: it leaves every server then).
        if !self.shutting_down(s)
            && s.core.flow_state() == (FlowState::Up { server: Server::Backup })
            && s.ghost.good_probes >= self.config.failback.stable_probes
            && s.core.live_calls() == s.core.queued_calls()
        {
            s.ghost.viol |= viol::NO_FAILBACK;
        }
    }

    fn on_output(&self, s: &mut State, out: Output, placing: bool) {
        if s.ghost.shut_down {
            s.ghost.viol |= viol::SHUTDOWN;
        }
        match out {
            Output::Connect { conn, addr, .. } => {
                let purpose = s.core.connections().find(|(id, _, _)| *id == conn).map(|(_, p, _)| p);
                let site = self.dial_site(s, addr);
                self.check_dial(s, conn, site, purpose);
                let first = match s.modes[site] {
                    Mode::Up | Mode::Silent => Delivery::Connected,
                    Mode::Refusing => Delivery::ConnectFailed,
                };
                let n = usize::from(self.bounds.accounts);
                s.net.push(NetConn {
                    id: conn,
                    site,
                    purpose,
                    up: false,
                    queue: VecDeque::from([first]),
                    finals: vec![None; n],
                    unanswered: false,
                    lost_pings: 0,
                    lost_ping_at: None,
                    probe_answered: false,
                    call_id: None,
                });
            }
            Output::Close { conn } => {
                if s.net.iter().any(|c| c.id == conn && c.purpose == Some(ConnPurpose::Probe) && !c.probe_answered) {
                    // Given up (no answer in time): a failure that ends the run, counted
                    // after the batch, since the core also closes the probe in flight when
                    // it decides to fail back, just before `FailingBack`.
                    s.probe_abandoned = true;
                }
                self.check_close(s, conn);
                s.net.retain(|c| c.id != conn);
                s.servers[conn.server.index()].connection_closed(conn);
            }
            Output::Transmit { conn, data } => self.on_transmit(s, conn, &data, placing),
            Output::Event(e) => self.on_event(s, e),
            // Answered at once from the model's zone (`sites.rs`); without targets the
            // servers are addresses and nothing is looked up.
            Output::Resolve { query } => {
                let outcome = self.zone.answer(&query);
                let now = s.now;
                self.guarded(s, |c| c.handle_input(now, Input::Resolved { query, outcome }));
            }
        }
    }

    fn on_transmit(&self, s: &mut State, conn: ConnId, data: &[u8], placing: bool) {
        let Some(ci) = s.net.iter().position(|c| c.id == conn) else {
            s.ghost.viol |= viol::SEND_NOT_UP;
            return;
        };
        let mode = s.modes[s.net[ci].site];
        // Nothing is sent on a connection while an attempt racing it (same purpose,
        // same server) is still open: the race's losers are closed first.
        let (purpose, server) = (s.net[ci].purpose, conn.server);
        if matches!(purpose, Some(ConnPurpose::Flow | ConnPurpose::Probe))
            && s.net.iter().any(|o| o.id != conn && o.id.server == server && o.purpose == purpose)
        {
            s.ghost.viol |= viol::TWO_FLOWS;
        }
        if !s.net[ci].up {
            s.ghost.viol |= viol::SEND_NOT_UP;
            return;
        }
        if data == b"\r\n\r\n" {
            if mode == Mode::Up {
                if s.servers[conn.server.index()].ping().is_some() {
                    s.net[ci].queue.push_back(Delivery::Pong);
                }
            } else {
                Self::ping_lost(s, ci);
            }
            return;
        }
        let Ok(m) = Message::parse(data) else { return };
        if !m.is_request() {
            self.on_phone_response(s, ci, &m);
            return;
        }
        let method = m.method().map(method_of).unwrap_or(Method::Other);
        if m.method().is_some_and(|me| me.eq_ignore_ascii_case("CANCEL"))
            && !s.ghost.provisional.iter().any(|id| Some(&**id) == m.call_id())
        {
            s.ghost.viol |= viol::CANCEL_EARLY;
        }
        if !self.in_scope(&mut s.net[ci], &m) {
            s.ghost.viol |= viol::PER_CALL_SCOPE;
        }
        if method == Method::Invite {
            // A call's first INVITE has CSeq 1, with credentials sent in advance or not;
            // a retry answering a challenge (a higher CSeq) continues a call whose start
            // was checked, on its connection, even if a refresh failed meanwhile.
            let starts_call = m.cseq().is_some_and(|(n, _)| n == 1);
            if starts_call && s.net[ci].purpose == Some(ConnPurpose::Flow) {
                self.check_invite(s, ci, &m);
            }
            if starts_call && !placing {
                s.invites_sent = s.invites_sent.saturating_add(1);
            }
        }
        // A new request of a transaction family supersedes answers still in flight.
        let call_id = m.call_id().unwrap_or("").to_owned();
        for d in s.net[ci].queue.iter_mut() {
            if let Delivery::Reply(r) = d
                && &*r.call_id == call_id.as_str()
                && r.method == method
                && method != Method::Invite
            {
                r.stale = true;
            }
        }
        if mode != Mode::Up {
            if matches!(method, Method::Register | Method::Options | Method::Invite) {
                s.net[ci].unanswered = true;
            }
            return;
        }
        let request = Arc::new(m);
        let replies = s.servers[conn.server.index()].handle(conn, Frame::Message((*request).clone()));
        for r in replies {
            if let Some(reply) = self.label(&r.bytes, &request) {
                s.net[ci].queue.push_back(Delivery::Reply(reply));
            }
        }
    }

    /// TLS mode: a registration exchange's connection carries only that account's
    /// REGISTERs; a call's connection only the requests of that one call (one Call-ID).
    fn in_scope(&self, c: &mut NetConn, m: &Message) -> bool {
        let method = m.method().unwrap_or("").to_ascii_uppercase();
        match c.purpose {
            Some(ConnPurpose::Register(a)) => {
                let to = m
                    .header("To")
                    .and_then(sip_ptls::sip::headers::NameAddr::parse)
                    .and_then(|n| sip_ptls::sip::headers::uri_user(&n.uri).map(str::to_owned));
                let user = self.config.accounts.get(usize::from(a.0)).map(|acc| acc.user_name.clone());
                method == "REGISTER" && to.is_some() && to == user
            }
            Some(ConnPurpose::Call(_)) => {
                let id = m.call_id().unwrap_or("").to_owned();
                let dialog = matches!(method.as_str(), "INVITE" | "ACK" | "CANCEL" | "BYE");
                dialog && c.call_id.get_or_insert_with(|| id.clone()) == &id
            }
            _ => true,
        }
    }

    /// TLS mode, in a terminal state: no registration exchange's connection is left
    /// open, and a call's connection only while its call is answered and not ended.
    fn per_call_connections_closed(&self, s: &State) -> bool {
        s.core.connections().all(|(_, purpose, _)| match purpose {
            ConnPurpose::Register(_) => false,
            ConnPurpose::Call(call) => s.ghost.answered.contains(&call),
            _ => true,
        })
    }

    /// The phone answered a request of the far end. Each request gets one final answer,
    /// and a BYE, CANCEL or re-INVITE gets it at once, on the connection it came on. A 2xx
    /// to the INVITE makes the call answered, and the far end acknowledges a 2xx (when
    /// its server relays anything).
    fn on_phone_response(&self, s: &mut State, ci: usize, m: &Message) {
        let (Some(status), Some((cseq, method))) = (m.status(), m.cseq()) else { return };
        let call_id = m.call_id().unwrap_or("");
        let Some(k) = s.ghost.incoming.iter().position(|i| i.call_id == call_id) else { return };
        let Some(kind) = FarKind::answered_by(cseq, method) else { return };
        if status < 200 {
            return;
        }
        let conn = s.net[ci].id;
        if let Some(bit) = kind.answer_bit() {
            let inc = &mut s.ghost.incoming[k];
            if inc.finals & bit != 0 {
                s.ghost.viol |= viol::FAR_UNANSWERED;
            }
            inc.finals |= bit;
            match s.far_pending.iter().position(|(_, id, b)| id == call_id && *b == bit) {
                Some(p) if s.far_pending[p].0 == conn => {
                    s.far_pending.remove(p);
                }
                Some(_) => s.ghost.viol |= viol::FAR_UNANSWERED,
                None => {}
            }
        }
        if !matches!(kind, FarKind::Invite | FarKind::Reinvite) || !(200..300).contains(&status) {
            return;
        }
        let to_tag =
            m.header("To").and_then(sip_ptls::sip::headers::NameAddr::parse).and_then(|n| n.tag().map(str::to_owned));
        let inc = &mut s.ghost.incoming[k];
        if inc.phase == IncomingPhase::Ringing {
            inc.phase = IncomingPhase::Answered;
        }
        inc.to_tag = to_tag;
        if s.modes[s.net[ci].site] == Mode::Up {
            let ack = if kind == FarKind::Invite { FarKind::Ack } else { FarKind::AckReinvite };
            let bytes = Arc::new(far_request(ack, k, &inc.user, inc.to_tag.as_deref()));
            s.net[ci].queue.push_back(Delivery::Request(FarRequest { bytes, kind: ack, call: k as u8 }));
        }
    }

    fn label(&self, bytes: &[u8], request: &Arc<Message>) -> Option<Reply> {
        let m = Message::parse(bytes).ok()?;
        let status = m.status()?;
        let method = m.cseq().map(|(_, me)| method_of(me)).unwrap_or(Method::Other);
        let user = m
            .header("To")
            .and_then(sip_ptls::sip::headers::NameAddr::parse)
            .and_then(|n| sip_ptls::sip::headers::uri_user(&n.uri).map(str::to_owned));
        let account = if method == Method::Register {
            user.and_then(|u| self.config.accounts.iter().position(|a| a.user_name == u)).map(|p| p as u8)
        } else {
            None
        };
        Some(Reply {
            bytes: Arc::new(bytes.to_vec()),
            method,
            status,
            account,
            call_id: Arc::from(m.call_id().unwrap_or("")),
            stale: false,
            request: Arc::clone(request),
        })
    }

    fn check_invite(&self, s: &mut State, ci: usize, m: &Message) {
        let c = &s.net[ci];
        let server = c.id.server.index();
        let all = (0..usize::from(self.bounds.accounts)).all(|a| c.finals[a].is_some() || s.ghost.rejected[server][a]);
        let from = m
            .header("From")
            .and_then(sip_ptls::sip::headers::NameAddr::parse)
            .and_then(|n| sip_ptls::sip::headers::uri_user(&n.uri).map(str::to_owned));
        let from_ok = from
            .and_then(|u| self.config.accounts.iter().position(|a| a.user_name == u))
            .is_some_and(|a| c.finals[a].is_some_and(|st| (200..300).contains(&st)));
        if !all || !from_ok {
            s.ghost.viol |= viol::INVITE_EARLY;
        }
    }

    fn on_event(&self, s: &mut State, e: Event) {
        match e {
            Event::Backoff { wait, failures } => {
                let ms = wait.as_millis();
                let ok = documented_backoff_window_ms(failures).is_some_and(|w| ms >= w / 2 && ms <= w);
                if !ok {
                    s.ghost.viol |= viol::BACKOFF;
                }
            }
            Event::RegistrationFailed { account, .. } => {
                // The exchange ended without a binding: no INVITE from it until a new 2xx.
                let a = usize::from(account.0);
                for c in &mut s.net {
                    if c.finals.get(a).copied().flatten().is_some_and(|st| (200..300).contains(&st)) {
                        c.finals[a] = Some(0);
                    }
                }
            }
            Event::CallOutcome { call, outcome } => {
                match s.ghost.calls.iter_mut().find(|(c, _)| *c == call) {
                    Some((_, n)) => {
                        *n = n.saturating_add(1);
                        if *n > 1 {
                            s.ghost.viol |= viol::OUTCOME;
                        }
                    }
                    None => s.ghost.viol |= viol::OUTCOME,
                }
                if outcome == CallOutcome::Answered {
                    s.ghost.reached |= reach::CALL_ANSWERED;
                    s.ghost.answered.push(call);
                }
            }
            Event::FailedOver => s.ghost.reached |= reach::FAILOVER,
            Event::CallMoved { .. } => s.ghost.reached |= reach::CALL_MOVED,
            Event::IncomingCall { call, account, .. } => {
                // The line rung is the one whose user the far end called.
                let called = |inc: &Incoming| {
                    self.config.accounts.get(usize::from(account.0)).is_some_and(|a| a.user_name == inc.user)
                };
                match s.delivering_invite.and_then(|k| s.ghost.incoming.get_mut(usize::from(k))) {
                    Some(inc) if inc.call.is_none() && called(inc) => inc.call = Some(call),
                    _ => s.ghost.viol |= viol::INCOMING,
                }
            }
            Event::CallEnded { call, .. } => {
                s.ghost.answered.retain(|c| *c != call);
                if let Some(inc) = s.ghost.incoming.iter_mut().find(|i| i.call == Some(call)) {
                    if inc.phase == IncomingPhase::Ended {
                        s.ghost.viol |= viol::INCOMING;
                    }
                    if inc.phase == IncomingPhase::Answered && inc.far_bye {
                        s.ghost.reached |= reach::INCOMING_ANSWERED_AND_ENDED;
                    }
                    inc.phase = IncomingPhase::Ended;
                }
            }
            Event::ShutdownComplete => {
                s.ghost.shut_down = true;
                if s.core.connections().next().is_some() {
                    s.ghost.viol |= viol::SHUTDOWN;
                }
                if !s.ghost.calls.is_empty() || !s.ghost.incoming.is_empty() {
                    s.ghost.reached |= reach::SHUT_DOWN;
                }
            }
            Event::FlowUp { server } => {
                s.ghost.good_probes = 0;
                self.flow_up(s, server == Server::Primary);
            }
            Event::FailingBack => {
                let enough = s.ghost.good_probes >= self.config.failback.stable_probes;
                // The documented call policy: never while a call other than a queued one
                // is live (read from the core's public counters).
                let no_call = s.core.live_calls() == s.core.queued_calls();
                if !enough || !no_call {
                    s.ghost.viol |= viol::EARLY_FAILBACK;
                }
            }
            Event::FailedBack => s.ghost.reached |= reach::FAILBACK,
            Event::FlowLost { reason, .. } => {
                s.ghost.flow_lost = true;
                if matches!(reason, FlowError::PongTimeout | FlowError::TransactionTimeout) {
                    s.ghost.silent_loss = true;
                }
            }
            Event::ConnectFailed { server, .. } => {
                if server == Server::Primary {
                    self.primary_failed(s);
                }
                s.ghost.flow_lost = true;
            }
            Event::Registered { .. } if s.ghost.silent_loss => s.ghost.reached |= reach::REREG_AFTER_SILENT,
            _ => {}
        }
    }

    /// A ping on connection `ci` will never be answered; the second one means the core
    /// did not notice the silence after the first (RFC 5626 §4.4.1: a pong timeout).
    fn ping_lost(s: &mut State, ci: usize) {
        let now = s.now;
        let c = &mut s.net[ci];
        c.unanswered = true;
        c.lost_ping_at.get_or_insert(now);
        c.lost_pings = c.lost_pings.saturating_add(1).min(2);
        if c.lost_pings > 1 {
            s.ghost.viol |= viol::SILENCE_UNNOTICED;
        }
    }

    fn take_fault(s: &mut State) {
        s.budget.faults = s.budget.faults.checked_sub(1).expect("fault budget checked by actions()");
    }

    /// One step, optionally narrated into `log`.
    pub fn step(&self, last: &State, action: &Action, mut log: Option<&mut Log>) -> Option<State> {
        let mut s = last.clone();
        s.invites_sent = 0;
        s.delivering_invite = None;
        s.far_pending.clear();
        let had_queued = s.core.queued_calls() > 0;
        let now = s.now;
        let mut fault = false;
        let mut placing = false;
        match *action {
            Action::Deliver(i) => {
                let i = usize::from(i);
                let d = s.net.get_mut(i)?.queue.pop_front()?;
                let conn = s.net[i].id;
                let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000 + (conn.generation % 20000) as u16);
                match d {
                    Delivery::Connected => {
                        s.net[i].up = true;
                        self.guarded(&mut s, |c| c.handle_input(now, Input::Connected { conn, local }));
                    }
                    Delivery::ConnectFailed => {
                        if s.net[i].purpose == Some(ConnPurpose::Probe) {
                            // A failed probe, unless the run goes on to another address
                            // of the primary (decided after the drain).
                            s.probe_abandoned = true;
                        }
                        s.net.remove(i);
                        let reason = TransportError::Refused;
                        self.guarded(&mut s, |c| c.handle_input(now, Input::ConnectFailed { conn, reason }));
                    }
                    Delivery::Closed => {
                        if s.net[i].purpose == Some(ConnPurpose::Probe) && !s.net[i].probe_answered {
                            s.probe_abandoned = true;
                        }
                        s.net.remove(i);
                        s.servers[conn.server.index()].connection_closed(conn);
                        let reason = TransportError::Reset;
                        self.guarded(&mut s, |c| c.handle_input(now, Input::Closed { conn, reason }));
                    }
                    Delivery::Pong => {
                        s.net[i].lost_ping_at = None;
                        s.net[i].lost_pings = 0;
                        self.guarded(&mut s, |c| c.handle_input(now, Input::Received { conn, data: b"\r\n" }));
                    }
                    Delivery::Request(f) => {
                        if f.kind == FarKind::Invite {
                            s.delivering_invite = Some(f.call);
                        }
                        if let (Some(bit), Some(inc)) = (f.kind.answer_bit(), s.ghost.incoming.get(usize::from(f.call)))
                            && f.kind != FarKind::Invite
                        {
                            s.far_pending.push((conn, inc.call_id.clone(), bit));
                        }
                        let bytes = Arc::clone(&f.bytes);
                        self.guarded(&mut s, |c| c.handle_input(now, Input::Received { conn, data: &bytes }));
                    }
                    Delivery::Reply(r) => {
                        // The server answered: a ping lost earlier was a lost pong, not silence.
                        s.net[i].lost_ping_at = None;
                        s.net[i].lost_pings = 0;
                        if r.method == Method::Register
                            && r.status >= 200
                            && let Some(a) = r.account
                        {
                            let a = usize::from(a);
                            // A challenge or 423 after a 2xx is answered in the same
                            // exchange while the binding stands (docs/architecture.md).
                            let continues = matches!(r.status, 401 | 407 | 423);
                            let bound = s.net[i].finals[a].is_some_and(|st| (200..300).contains(&st));
                            if !(continues && bound) {
                                s.net[i].finals[a] = Some(r.status);
                            }
                            let sv = conn.server.index();
                            if matches!(r.status, 403 | 404 | 603 | 604) {
                                s.ghost.rejected[sv][a] = true;
                            } else if (200..300).contains(&r.status) {
                                s.ghost.rejected[sv][a] = false;
                            }
                        }
                        if r.method == Method::Options
                            && r.status >= 200
                            && s.net[i].purpose == Some(ConnPurpose::Probe)
                            && !s.net[i].probe_answered
                        {
                            s.net[i].probe_answered = true;
                            s.ghost.good_probes = s.ghost.good_probes.saturating_add(1).min(3);
                        }
                        if r.method == Method::Invite
                            && (100..200).contains(&r.status)
                            && !s.ghost.provisional.contains(&r.call_id)
                        {
                            s.ghost.provisional.push(Arc::clone(&r.call_id));
                        }
                        let bytes = Arc::clone(&r.bytes);
                        self.guarded(&mut s, |c| c.handle_input(now, Input::Received { conn, data: &bytes }));
                    }
                }
                if let Some(l) = log.as_deref_mut() {
                    l.push(format!("{now}: deliver on {conn}"));
                }
            }
            Action::Lose(i) => {
                fault = true;
                let c = s.net.get_mut(usize::from(i))?;
                let d = c.queue.pop_front()?;
                if !matches!(d, Delivery::Connected) {
                    c.unanswered = true;
                }
                if matches!(d, Delivery::Pong) {
                    Self::ping_lost(&mut s, usize::from(i));
                }
            }
            Action::Reject(i, status) => {
                fault = true;
                let c = s.net.get(usize::from(i))?;
                let Some(Delivery::Reply(r)) = c.queue.front() else { return None };
                let (conn, request) = (c.id, Arc::clone(&r.request));
                let server = &mut s.servers[conn.server.index()];
                server.behaviour.register_status = Some(status);
                server.behaviour.register_headers = match status {
                    // A challenge after credentials: the nonce went stale (RFC 2617 §3.2.1).
                    401 => vec![(
                        "WWW-Authenticate".into(),
                        "Digest realm=\"sim\", nonce=\"stale\", qop=\"auth\", algorithm=MD5, stale=true".into(),
                    )],
                    423 => vec![("Min-Expires".into(), "90".into())],
                    503 => vec![("Retry-After".into(), "5".into())],
                    _ => Vec::new(),
                };
                let replies = server.handle(conn, Frame::Message((*request).clone()));
                server.behaviour.register_status = None;
                server.behaviour.register_headers.clear();
                let reply = replies.first().and_then(|r| self.label(&r.bytes, &request))?;
                s.net[usize::from(i)].queue[0] = Delivery::Reply(reply);
            }
            Action::RefuseCredentials(i) => {
                fault = true;
                let c = s.net.get(usize::from(i))?;
                let Some(Delivery::Reply(r)) = c.queue.front() else { return None };
                let (conn, request) = (c.id, Arc::clone(&r.request));
                let server = &mut s.servers[conn.server.index()];
                server.behaviour.always_challenge = true;
                let replies = server.handle(conn, Frame::Message((*request).clone()));
                server.behaviour.always_challenge = false;
                let reply = replies.first().and_then(|r| self.label(&r.bytes, &request))?;
                s.net[usize::from(i)].queue[0] = Delivery::Reply(reply);
            }
            Action::PeerClose(i) => {
                fault = true;
                let c = s.net.get_mut(usize::from(i))?;
                c.queue.clear();
                c.queue.push_back(Delivery::Closed);
            }
            Action::SetMode(site, mode) => {
                fault = true;
                let site = usize::from(site);
                s.modes[site] = mode;
                let mut pongs_lost = Vec::new();
                for (ci, c) in s.net.iter_mut().enumerate().filter(|(_, c)| c.site == site) {
                    let lost_answer = c.queue.iter().any(|d| {
                        matches!(d, Delivery::Pong)
                            || matches!(d, Delivery::Reply(r) if matches!(r.method, Method::Register | Method::Options | Method::Invite))
                    });
                    match mode {
                        Mode::Refusing => {
                            c.queue.clear();
                            c.queue.push_back(if c.up { Delivery::Closed } else { Delivery::ConnectFailed });
                        }
                        Mode::Silent => {
                            if c.queue.iter().any(|d| matches!(d, Delivery::Pong)) {
                                pongs_lost.push(ci);
                            }
                            c.queue.retain(|d| matches!(d, Delivery::Connected | Delivery::Closed));
                            c.unanswered |= lost_answer;
                        }
                        Mode::Up => {}
                    }
                }
                for ci in pongs_lost {
                    Self::ping_lost(&mut s, ci);
                }
            }
            Action::PlaceCall(a) => {
                placing = true;
                s.budget.calls = s.budget.calls.checked_sub(1).expect("call budget checked by actions()");
                let r = self.guarded(&mut s, |c| c.place_call(now, AccountId(a), "2000", b"v=0\r\n".to_vec()));
                if let Some(Ok(id)) = r {
                    s.ghost.calls.push((id, 0));
                    s.ghost.calls_hung_up.push(false);
                }
            }
            Action::IncomingCall(a) => {
                placing = true;
                s.budget.incoming = s.budget.incoming.checked_sub(1).expect("incoming budget checked by actions()");
                let ci = self.far_end_conn(&s)?;
                let n = s.ghost.incoming.len();
                let user = self.config.accounts.get(usize::from(a))?.user_name.clone();
                let bytes = Arc::new(far_request(FarKind::Invite, n, &user, None));
                s.net[ci].queue.push_back(Delivery::Request(FarRequest {
                    bytes,
                    kind: FarKind::Invite,
                    call: n as u8,
                }));
                s.ghost.incoming.push(Incoming {
                    call: None,
                    call_id: format!("far-{n}"),
                    to_tag: None,
                    phase: IncomingPhase::Ringing,
                    far_bye: false,
                    user_acted: false,
                    hung_up: false,
                    far_cancel: false,
                    far_reinvite: false,
                    finals: 0,
                    user,
                });
            }
            Action::Answer(k) | Action::RejectCall(k) => {
                placing = true;
                let inc = s.ghost.incoming.get_mut(usize::from(k))?;
                let call = inc.call?;
                inc.user_acted = true;
                if matches!(action, Action::Answer(_)) {
                    let _ = self.guarded(&mut s, |c| c.answer(now, call, b"v=0\r\n".to_vec()));
                } else {
                    let _ = self.guarded(&mut s, |c| c.reject(now, call, 486));
                }
            }
            Action::HangUpIncoming(k) => {
                placing = true;
                let inc = s.ghost.incoming.get_mut(usize::from(k))?;
                let call = inc.call?;
                inc.hung_up = true;
                let _ = self.guarded(&mut s, |c| c.hang_up(now, call));
            }
            Action::FarEndBye(k) => {
                placing = true;
                let ci = self.far_end_conn(&s)?;
                let inc = s.ghost.incoming.get_mut(usize::from(k))?;
                inc.far_bye = true;
                let bytes = Arc::new(far_request(FarKind::Bye, usize::from(k), &inc.user, inc.to_tag.as_deref()));
                s.net[ci].queue.push_back(Delivery::Request(FarRequest { bytes, kind: FarKind::Bye, call: k }));
            }
            Action::HangUpCall(k) => {
                placing = true;
                let k = usize::from(k);
                let call = s.ghost.calls.get(k)?.0;
                *s.ghost.calls_hung_up.get_mut(k)? = true;
                let _ = self.guarded(&mut s, |c| c.hang_up(now, call));
            }
            Action::FarEndCancel(k) | Action::FarEndReinvite(k) => {
                placing = true;
                let ci = self.far_end_conn(&s)?;
                let inc = s.ghost.incoming.get_mut(usize::from(k))?;
                let kind = if matches!(action, Action::FarEndCancel(_)) {
                    inc.far_cancel = true;
                    FarKind::Cancel
                } else {
                    inc.far_reinvite = true;
                    FarKind::Reinvite
                };
                let to_tag = if kind == FarKind::Cancel { None } else { inc.to_tag.as_deref() };
                let bytes = Arc::new(far_request(kind, usize::from(k), &inc.user, to_tag));
                s.net[ci].queue.push_back(Delivery::Request(FarRequest { bytes, kind, call: k }));
            }
            Action::Shutdown => {
                placing = true;
                s.budget.shutdown = false;
                if let Some(l) = log.as_deref_mut() {
                    l.push(format!("{now}: shutdown"));
                }
                self.guarded(&mut s, |c| c.shutdown(now));
            }
            Action::Fire => {
                let periodic = self.fire_cost(&s)?;
                if periodic {
                    s.budget.idle = s.budget.idle.checked_sub(1).expect("idle budget checked by actions()");
                }
                let at = s.core.poll_timeout()?;
                s.now = s.now.max(at);
                let now = s.now;
                if let Some(l) = log.as_deref_mut() {
                    l.push(format!("{now}: timeout"));
                }
                self.guarded(&mut s, |c| c.handle_timeout(now));
            }
        }
        if fault {
            Self::take_fault(&mut s);
        }
        self.drain(&mut s, log, placing);
        if !s.far_pending.is_empty() {
            s.ghost.viol |= viol::FAR_UNANSWERED;
        }
        if had_queued && s.invites_sent > 0 && s.ghost.flow_lost {
            s.ghost.reached |= reach::QUEUED_DELIVERED;
        }
        s.ghost.since_change = if fault || placing || self.settled(&s) {
            0
        } else {
            s.ghost.since_change.saturating_add(1).min(self.k.saturating_add(1))
        };
        Some(s)
    }
}

/// A one-line description of an output.
pub fn describe_output(out: &Output) -> String {
    match out {
        Output::Connect { conn, addr, .. } => format!("Connect {conn} to {addr}"),
        Output::Resolve { query } => format!("Resolve {query}"),
        Output::Close { conn } => format!("Close {conn}"),
        Output::Transmit { conn, data } => {
            if data.as_slice() == b"\r\n\r\n" {
                format!("ping on {conn}")
            } else {
                let end = data.iter().position(|b| *b == b'\r').unwrap_or(data.len()).min(60);
                let first = String::from_utf8_lossy(&data[..end]).into_owned();
                let to = Message::parse(data)
                    .ok()
                    .and_then(|m| m.header("To").map(|t| t.split(';').next().unwrap_or("").to_owned()))
                    .unwrap_or_default();
                format!("{first} on {conn} (To {to})")
            }
        }
        Output::Event(e) => format!("event {e:?}"),
    }
}

impl Model for PtlsModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![self.initial()]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        if self.violated(s) {
            return;
        }
        for (i, c) in s.net.iter().enumerate() {
            if !c.queue.is_empty() {
                actions.push(Action::Deliver(i as u8));
            }
        }
        if s.budget.faults > 0 {
            for (i, c) in s.net.iter().enumerate() {
                let i = i as u8;
                match c.queue.front() {
                    Some(Delivery::Connected | Delivery::Pong) => actions.push(Action::Lose(i)),
                    Some(Delivery::Reply(r)) if matches!(r.method, Method::Register | Method::Options) => {
                        actions.push(Action::Lose(i));
                        if r.method == Method::Register && !r.stale && (r.status == 401 || r.status < 300) {
                            actions.push(Action::Reject(i, 401));
                            actions.push(Action::Reject(i, 403));
                            actions.push(Action::Reject(i, 423));
                            actions.push(Action::Reject(i, 503));
                            if r.request.header("Authorization").is_some() {
                                actions.push(Action::RefuseCredentials(i));
                            }
                        }
                    }
                    _ => {}
                }
                if c.up && !c.queue.iter().any(|d| matches!(d, Delivery::Closed)) {
                    actions.push(Action::PeerClose(i));
                }
            }
            for &site in sites::active_sites(self.bounds.targets) {
                for m in MODES {
                    if s.modes[site] != m {
                        actions.push(Action::SetMode(site as u8, m));
                    }
                }
            }
        }
        if s.budget.shutdown {
            actions.push(Action::Shutdown);
        }
        if s.budget.incoming > 0 && !s.core.is_closed() && self.far_end_conn(s).is_some() {
            for a in 0..self.bounds.accounts {
                actions.push(Action::IncomingCall(a));
            }
        }
        for (k, inc) in s.ghost.incoming.iter().enumerate() {
            let k = k as u8;
            match inc.phase {
                IncomingPhase::Ringing => {
                    if inc.call.is_some() && !inc.user_acted {
                        actions.push(Action::Answer(k));
                        actions.push(Action::RejectCall(k));
                    }
                    if self.bounds.far_end_requests && !inc.far_cancel && self.far_end_conn(s).is_some() {
                        actions.push(Action::FarEndCancel(k));
                    }
                }
                IncomingPhase::Answered => {
                    if !inc.hung_up {
                        actions.push(Action::HangUpIncoming(k));
                    }
                    if !inc.far_bye && self.far_end_conn(s).is_some() {
                        actions.push(Action::FarEndBye(k));
                        if self.bounds.far_end_requests && !inc.far_reinvite {
                            actions.push(Action::FarEndReinvite(k));
                        }
                    }
                }
                IncomingPhase::Ended => {}
            }
        }
        if self.bounds.hang_up && !s.core.is_closed() {
            for (k, ((call, outcomes), hung_up)) in s.ghost.calls.iter().zip(&s.ghost.calls_hung_up).enumerate() {
                // Until the call ends: no outcome yet, or answered and not ended.
                if !hung_up && (*outcomes == 0 || s.ghost.answered.contains(call)) {
                    actions.push(Action::HangUpCall(k as u8));
                }
            }
        }
        if s.budget.calls > 0 && !s.core.is_closed() {
            for a in 0..self.bounds.accounts {
                actions.push(Action::PlaceCall(a));
            }
        }
        if self.bounds.urgency && s.pending() {
            return;
        }
        if let Some(periodic) = self.fire_cost(s)
            && (!periodic || s.budget.idle > 0)
        {
            actions.push(Action::Fire);
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        self.step(last, &action, None)
    }

    fn format_action(&self, action: &Action) -> String {
        format!("{action:?}")
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties()
    }
}

/// Property names, shared by the checker, the tests and the mutants suite.
pub mod names {
    /// No panic.
    pub const NO_PANIC: &str = "the core never panics";
    /// One flow.
    pub const ONE_FLOW: &str = "at most one persistent connection open or opening, but attempts racing for one target, none up, none carrying SIP";
    /// Sends only when up.
    pub const SEND_UP: &str = "REGISTER, INVITE and pings only on an up connection";
    /// INVITE after registration round.
    pub const INVITE_AFTER_REG: &str = "INVITE only after every account has its REGISTER answer on the connection";
    /// Failback.
    pub const FAILBACK_DUE: &str = "never on the backup once the primary proved stable and no call pins it";
    /// Failback hysteresis.
    pub const FAILBACK_EARNED: &str =
        "the backup is left only after stable_probes good probes in a row, with no call other than a queued one live";
    /// Incoming calls.
    pub const INCOMING_ONCE: &str = "every incoming call is announced once, on the line called, and ends at most once";
    /// The far end's requests are answered.
    pub const FAR_ANSWERED: &str =
        "every request of the far end gets one final answer, a BYE, CANCEL or re-INVITE at once and on its connection";
    /// RFC 3261 §9.1.
    pub const CANCEL_AFTER_1XX: &str = "CANCEL only after a provisional response to its INVITE";
    /// TLS mode.
    pub const PER_CALL_SCOPED: &str =
        "TLS mode: each connection carries one exchange, and none outlives it but an answered call's";
    /// Shutdown.
    pub const SHUTDOWN_CLEAN: &str = "shutdown ends with every connection closed, and nothing comes after it";
    /// One outcome.
    pub const ONE_OUTCOME: &str = "at most one outcome per placed call";
    /// Back-off.
    pub const BACKOFF: &str = "back-off within its window";
    /// Holds vacuously without targets.
    pub const TARGETS_TRIED: &str = "a round of attempts starts at the primary's best target, and the primary fails only once every address was dialed";
    pub const STICKY: &str = "the flow stays on the primary's address where it came up while that address is healthy";
    pub const MOVED: &str = "once up on a persistent connection with every line done, no confirmed call of a registered line is left without one";
    /// Holds vacuously without targets.
    pub const R_SECOND_TARGET: &str = "reaches the flow up on the primary's second target";
    /// Keep-alive notices silence.
    pub const SILENCE: &str = "a lost ping is noticed within pong timeout + transaction timeout";
    /// Terminal.
    pub const TERMINAL: &str = "terminal states: settled, and every placed call has exactly one outcome";
    /// Bounded response.
    pub const BOUNDED: &str = "settled within K steps of the last fault or call";
    /// Reachability.
    pub const R_FAILOVER: &str = "reaches failover to the backup";
    /// Reachability.
    pub const R_FAILBACK: &str = "reaches failback to the primary";
    /// Reachability.
    pub const R_REREG: &str = "reaches re-registration after a silent failure";
    /// Reachability.
    pub const R_CALL: &str = "reaches a call answered over the persistent connection";
    /// Reachability.
    pub const R_QUEUED: &str = "reaches a queued call delivered after recovery";
    pub const R_MOVED: &str = "reaches an answered call moved onto a new persistent connection";
    /// Reachability.
    pub const R_INCOMING: &str = "reaches an incoming call answered, then ended by the far end";
    /// Reachability.
    pub const R_SHUTDOWN: &str = "reaches a completed shutdown after a call was placed or came in";
}

fn properties() -> Vec<Property<PtlsModel>> {
    use names::*;
    vec![
        Property::always(NO_PANIC, |_, s: &State| s.ghost.viol & viol::PANIC == 0),
        Property::always(ONE_FLOW, |_, s: &State| s.ghost.viol & viol::TWO_FLOWS == 0),
        Property::always(SEND_UP, |_, s: &State| s.ghost.viol & viol::SEND_NOT_UP == 0),
        Property::always(INVITE_AFTER_REG, |_, s: &State| s.ghost.viol & viol::INVITE_EARLY == 0),
        Property::always(FAILBACK_DUE, |_, s: &State| s.ghost.viol & viol::NO_FAILBACK == 0),
        Property::always(FAILBACK_EARNED, |_, s: &State| s.ghost.viol & viol::EARLY_FAILBACK == 0),
        Property::always(SHUTDOWN_CLEAN, |_, s: &State| s.ghost.viol & viol::SHUTDOWN == 0),
        Property::always(PER_CALL_SCOPED, |m: &PtlsModel, s: &State| {
            s.ghost.viol & viol::PER_CALL_SCOPE == 0
                && (!m.bounds.per_call || m.violated(s) || !m.is_terminal(s) || m.per_call_connections_closed(s))
        }),
        Property::always(INCOMING_ONCE, |_, s: &State| s.ghost.viol & viol::INCOMING == 0),
        Property::always(FAR_ANSWERED, |_, s: &State| s.ghost.viol & viol::FAR_UNANSWERED == 0),
        Property::always(CANCEL_AFTER_1XX, |_, s: &State| s.ghost.viol & viol::CANCEL_EARLY == 0),
        Property::always(ONE_OUTCOME, |_, s: &State| s.ghost.viol & viol::OUTCOME == 0),
        Property::always(BACKOFF, |_, s: &State| s.ghost.viol & viol::BACKOFF == 0),
        Property::always(TARGETS_TRIED, |_, s: &State| s.ghost.viol & viol::TARGET_SKIPPED == 0),
        Property::always(STICKY, |_, s: &State| s.ghost.viol & viol::NOT_STICKY == 0),
        Property::always(MOVED, |_, s: &State| s.ghost.viol & viol::NOT_MOVED == 0),
        Property::always(SILENCE, |_, s: &State| s.ghost.viol & viol::SILENCE_UNNOTICED == 0),
        Property::always(TERMINAL, |m: &PtlsModel, s: &State| {
            m.violated(s)
                || !m.is_terminal(s)
                || (m.settled(s)
                    && s.ghost.calls.iter().all(|(_, n)| *n == 1)
                    && !s.ghost.incoming.iter().any(|i| i.call.is_some() && i.phase == IncomingPhase::Ringing))
        }),
        Property::always(BOUNDED, |m: &PtlsModel, s: &State| m.violated(s) || s.ghost.since_change <= m.k),
        Property::sometimes(R_FAILOVER, |m: &PtlsModel, s: &State| {
            m.bounds.per_call || s.ghost.reached & reach::FAILOVER != 0
        }),
        Property::sometimes(R_FAILBACK, |m: &PtlsModel, s: &State| {
            m.bounds.per_call || s.ghost.reached & reach::FAILBACK != 0
        }),
        Property::sometimes(R_REREG, |m: &PtlsModel, s: &State| {
            m.bounds.per_call || s.ghost.reached & reach::REREG_AFTER_SILENT != 0
        }),
        // Goals about the user's calls hold vacuously in bounds without calls.
        Property::sometimes(R_CALL, |m: &PtlsModel, s: &State| {
            m.bounds.calls == 0 || s.ghost.reached & reach::CALL_ANSWERED != 0
        }),
        Property::sometimes(R_QUEUED, |m: &PtlsModel, s: &State| {
            m.bounds.calls == 0 || m.bounds.per_call || s.ghost.reached & reach::QUEUED_DELIVERED != 0
        }),
        Property::sometimes(R_MOVED, |m: &PtlsModel, s: &State| {
            m.bounds.calls == 0 || m.bounds.per_call || s.ghost.reached & reach::CALL_MOVED != 0
        }),
        Property::sometimes(R_INCOMING, |m: &PtlsModel, s: &State| {
            m.bounds.incoming == 0 || s.ghost.reached & reach::INCOMING_ANSWERED_AND_ENDED != 0
        }),
        Property::sometimes(R_SECOND_TARGET, |m: &PtlsModel, s: &State| {
            !m.bounds.targets || s.ghost.reached & reach::SECOND_TARGET != 0
        }),
        Property::sometimes(R_SHUTDOWN, |m: &PtlsModel, s: &State| {
            !m.bounds.shutdown || s.ghost.reached & reach::SHUT_DOWN != 0
        }),
    ]
}

/// The `always` property names, in order: taken from [`properties`], so that the list
/// cannot miss one.
pub fn safety_names() -> Vec<&'static str> {
    properties().into_iter().filter(|p| p.expectation == stateright::Expectation::Always).map(|p| p.name).collect()
}

/// Checks a `FlowState` for tests.
pub fn flow_state(s: &State) -> FlowState {
    s.core.flow_state()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `documented_backoff_window_ms` is written out for these values: a change here must
    /// change the table too.
    #[test]
    fn the_backoff_table_is_written_for_the_model_configuration() {
        let b = model_config(1, 1).backoff;
        assert_eq!((b.base, b.max), (Duration::from_secs(2), Duration::from_secs(8)));
        assert_eq!(documented_backoff_window_ms(0), None);
        assert_eq!(documented_backoff_window_ms(7), Some(8_000));
    }
}
