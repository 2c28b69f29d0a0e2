//! The sans-IO Persistent-TLS state machine.
//!
//! [`Core`] takes inputs (transport happenings, timer expiry, application commands), each
//! with the current time, and queues outputs (connect, transmit, close, events). After
//! every input the caller drains [`Core::poll_output`] until it returns `None`, then
//! sleeps until [`Core::poll_timeout`] or the next input, whichever comes first.
//!
//! Time contract: `now` never decreases from one call to the next (an earlier `now` is
//! treated as the latest one seen). [`Core::handle_timeout`] may be called early or more
//! than once; it only acts on deadlines that have passed.
//!
//! Where each decision is taken is listed in the decision table of
//! `docs/architecture.md`.

mod backoff;
mod bugs;
mod calls;
mod failback;
mod flow;
mod io;
mod keepalive;
mod locate;
mod message;
mod reconfigure;
mod registration;
mod stats;
mod timer;
mod transaction;
#[cfg(any(test, feature = "sim"))]
mod view;

#[cfg(feature = "planted-bugs")]
pub use bugs::Bug as PlantedBug;
pub use io::{
    CallFailure, CallOutcome, CommandError, ConnPurpose, EndReason, Event, FlowError, FlowState, Input, Output,
    RegError, RegState, TransportError,
};
pub use reconfigure::{NeedsRestart, tunable_values, with_tunable_values};
pub use registration::refresh_delay as registration_refresh_delay;
pub use stats::{CallInfo, CallStage, LinkStats};
pub use timer::{FlowTimer, RegTimer, Timer};
#[cfg(any(test, feature = "sim"))]
pub use view::{AccountView, CallPhase, CallView, ConnView, DecisionView, FlowView, PhaseView, TimerKey};

use crate::config::{Config, ServerAddr, TransportMode};
use crate::ids::{AccountId, ConnId, Server};
use crate::rng::Rng;
use crate::sip::{Frame, Framer, Limits, Message};
use crate::time::{Duration, Instant};
use backoff::Backoff;
use bugs::Bug;
use calls::Call;
use core::net::SocketAddr;
use failback::Failback;
use flow::Flow;
use keepalive::KeepAlive;
use registration::Account;
use stats::Stats;
use std::collections::VecDeque;
use std::sync::Arc;
use timer::TimerTable;

/// Where the phone is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Phase {
    Created,
    Running,
    /// Ending calls and de-registering; bounded by [`Timer::Shutdown`].
    ShuttingDown,
    Closed,
}

/// A connection the core asked for and has not closed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Conn {
    id: ConnId,
    purpose: ConnPurpose,
    /// `None` while connecting (bounded by [`Timer::Connect`]); the local socket address
    /// once up.
    local: Option<SocketAddr>,
    /// Bytes the shell holds for the peer (bounded by [`Timer::WriteStall`]).
    backlog: usize,
    /// Where `Output::Connect` sent it: `None` while the server is being located.
    addr: Option<SocketAddr>,
    /// Which of the server's addresses (every target's in turn) this attempt is.
    attempt: u16,
    framer: Framer,
}

/// Most timers one [`Core::handle_timeout`] fires before it returns, so that no
/// sequence of timers re-armed at `now` can hold the caller.
const MAX_TIMERS_PER_CALL: usize = 4096;

/// The Persistent-TLS connection manager: one per phone.
///
/// Methods come in four kinds, as in quinn-proto: getters; `handle_*` for network and
/// clock input; commands from the application ([`Core::start`], [`Core::place_call`],
/// [`Core::answer`], [`Core::reject`], [`Core::hang_up`], [`Core::shutdown`]); and
/// `poll_*`, drained after every call of the other two kinds.
///
/// # Decisions re-evaluated after every input
///
/// Every `handle_*` call and every command ends by re-evaluating, in this order, the
/// decisions that depend on state many handlers change, so that no handler has to
/// remember to trigger them:
///
/// 0. **Connections to a server that could not be located fail** (`locate.rs`,
///    `fail_unlocated`): reads each connection still waiting for its server's location
///    and whether that location ended in an error. Here rather than where the location
///    ended, since an answer kept in the cache can end it inside the handler that asked
///    for the connection.
/// 1. **Release of queued calls** (`calls.rs`, `release_queued_calls`): reads the
///    persistent connection (up and not being left), whether every account has a final
///    REGISTER answer on it, each queued call's account registration or rejection, and
///    the BYEs waiting for a connection.
/// 2. **Failback** (`failback.rs`, `Failback::decide`): reads the count of consecutive
///    good probes, whether a switch is under way, the server the flow is up on, and
///    whether a call other than a queued one is live.
/// 3. **End of shutdown**: reads whether a de-REGISTER still waits for its answer and
///    whether any call is still tracked.
///
/// Items 1 and 2 are evaluated only while the phone runs; item 0 until the core closes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Core {
    config: Arc<Config>,
    now: Instant,
    rng: Rng,
    phase: Phase,
    next_generation: u32,
    conns: Vec<Conn>,
    /// Every deadline of the core.
    timers: TimerTable,
    flow: Flow,
    keepalive: KeepAlive,
    backoff: Backoff,
    failback: Failback,
    /// Where the primary and the backup are (DNS), and the cache of answers.
    locations: locate::Locations,
    accounts: Vec<Account>,
    calls: Vec<Call>,
    next_call: u32,
    instance_id: String,
    out: VecDeque<Output>,
    /// Counted for the status, never read by a decision.
    stats: Stats,
    #[cfg(feature = "planted-bugs")]
    bug: Option<bugs::Bug>,
}

impl Core {
    /// A core for `config`, which should have passed [`Config::validate`]. Nothing happens
    /// until [`Core::start`].
    pub fn new(config: Config, now: Instant) -> Core {
        let mut rng = Rng::new(config.seed);
        let instance_id = match &config.instance_id {
            Some(id) => id.clone(),
            None => {
                let h = rng.hex(32);
                format!("urn:uuid:{}-{}-4{}-8{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
            }
        };
        let accounts = (0..config.accounts.len()).map(|_| Account::new(&mut rng)).collect();
        Core {
            config: Arc::new(config),
            now,
            rng,
            phase: Phase::Created,
            next_generation: 0,
            conns: Vec::new(),
            timers: TimerTable::default(),
            flow: Flow::default(),
            keepalive: KeepAlive::default(),
            backoff: Backoff::default(),
            failback: Failback::default(),
            locations: locate::Locations::default(),
            accounts,
            calls: Vec::new(),
            next_call: 0,
            instance_id,
            out: VecDeque::new(),
            stats: Stats::default(),
            #[cfg(feature = "planted-bugs")]
            bug: None,
        }
    }

    // ----- (A) getters -----

    /// The configuration the core runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The persistent connection's state.
    pub fn flow_state(&self) -> FlowState {
        // Before the start, and in TLS mode, there is no persistent connection, retry
        // timer or switch, so the flow's own state is `Idle`.
        match self.phase {
            Phase::Closed => FlowState::Closed,
            _ => self.flow_public_state(&self.conns),
        }
    }

    /// The server of the persistent connection when it is up.
    pub fn active_server(&self) -> Option<Server> {
        match self.flow_state() {
            FlowState::Up { server } => Some(server),
            FlowState::Switching => Some(Server::Backup),
            _ => None,
        }
    }

    /// An account's registration state.
    pub fn registration(&self, account: AccountId) -> Option<RegState> {
        self.accounts.get(usize::from(account.0)).map(Account::public_state)
    }

    /// Every connection asked for and not yet closed, with its purpose and whether it is up.
    pub fn connections(&self) -> impl Iterator<Item = (ConnId, ConnPurpose, bool)> + '_ {
        self.conns.iter().map(|c| (c.id, c.purpose, c.local.is_some()))
    }

    /// Reconnect rounds that failed in a row (the back-off exponent).
    pub fn failed_rounds(&self) -> u32 {
        self.backoff.failed_rounds()
    }

    /// Calls waiting for a connection or a registration.
    pub fn queued_calls(&self) -> usize {
        self.calls.iter().filter(|c| c.is_queued()).count()
    }

    /// Calls the core still tracks (queued, being set up, established or ending).
    pub fn live_calls(&self) -> usize {
        self.calls.len()
    }

    /// Consecutive good probes of the primary while on the backup.
    pub fn good_probes(&self) -> u8 {
        self.failback.good_probes()
    }

    /// The `urn:uuid:` instance identifier of this phone.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// True once shutdown finished: the core ignores every input.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    // ----- (B) network and clock inputs -----

    /// Feeds one transport happening.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        self.advance(now);
        if self.phase == Phase::Closed {
            return;
        }
        match input {
            Input::Connected { conn, local } => {
                let Some(c) = self.conn_mut(conn) else { return };
                if c.local.is_some() {
                    return;
                }
                c.local = Some(local);
                let purpose = c.purpose;
                self.timers.stop(Timer::Connect(conn));
                self.race_won(conn);
                self.on_connected(conn, purpose);
            }
            Input::ConnectFailed { conn, reason } | Input::Closed { conn, reason } => {
                if let Some(c) = self.remove_conn(conn) {
                    let reason = FlowError::Transport(reason);
                    if !self.next_attempt(&c, &reason) {
                        self.on_conn_failed(c, reason);
                    }
                }
            }
            Input::Received { conn, data } => self.on_received(conn, data),
            Input::WriteBacklog { conn, bytes } => self.on_write_backlog(conn, bytes),
            Input::Resolved { query, outcome } => self.on_resolved(&query, outcome),
        }
        self.after_input();
    }

    /// Acts on every deadline that has passed at `now`: the expired timers fire one at a
    /// time, earliest first (see [`Timer`] for the order of equal deadlines), each
    /// disarmed before its handler runs, until none has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        if self.phase != Phase::Running {
            // Nothing of the flow's own work goes on once the phone stops running, not
            // even what a flow that came up during shutdown armed.
            self.timers.stop_where(|t| matches!(t, Timer::Flow(_)));
        }
        for _ in 0..MAX_TIMERS_PER_CALL {
            if self.phase == Phase::Closed {
                return;
            }
            let Some((timer, _)) = self.timeout_reason().filter(|(_, at)| *at <= self.now) else { break };
            self.timers.stop(timer);
            self.on_timer(timer);
        }
        // Closed or not: `after_input` does nothing for a closed core.
        if !self.planted(Bug::NoReevaluationAfterTimer) {
            self.after_input();
        }
    }

    /// One expired timer: the single dispatch of every deadline the core arms.
    fn on_timer(&mut self, timer: Timer) {
        match timer {
            Timer::Connect(conn) => self.on_connect_timeout(conn),
            Timer::WriteStall(conn) => self.on_write_stall(conn),
            Timer::HeadStart(conn) => self.on_head_start(conn),
            Timer::Flow(_) if !self.running() => {}
            Timer::Flow(FlowTimer::Retry) => self.on_retry_timer(),
            Timer::Flow(FlowTimer::OptionsTx) => self.on_keepalive_options_timeout(),
            Timer::Flow(FlowTimer::PongDeadline) => self.on_pong_deadline(),
            Timer::Flow(FlowTimer::Ping) => self.on_ping_timer(),
            Timer::Flow(FlowTimer::ProbeAt) => self.on_probe_timer(),
            Timer::Flow(FlowTimer::ProbeTx) => self.on_probe_timeout(),
            Timer::Registration(account, t) => self.on_registration_timer(account, t),
            Timer::Call(call) => self.on_call_timer(call),
            Timer::Shutdown => self.finish_shutdown(),
        }
    }

    /// Connect plus handshake took too long.
    fn on_connect_timeout(&mut self, id: ConnId) {
        if self.planted(bugs::Bug::NoConnectTimeout) {
            return;
        }
        if self.planted(bugs::Bug::DoubleConnect) {
            if let Some(c) = self.conn(id).cloned() {
                self.on_conn_failed(c, FlowError::ConnectTimeout);
            }
            return;
        }
        if let Some(c) = self.remove_conn(id) {
            self.queue_close(&c);
            if !self.next_attempt(&c, &FlowError::ConnectTimeout) {
                self.on_conn_failed(c, FlowError::ConnectTimeout);
            }
        }
    }

    // ----- (C) application commands -----

    /// Starts the phone: opens the persistent connection (Persistent TLS) or registers
    /// every account over its own connection (per-call TLS).
    pub fn start(&mut self, now: Instant) {
        self.advance(now);
        if self.phase != Phase::Created {
            return;
        }
        self.phase = Phase::Running;
        match self.config.mode {
            TransportMode::PersistentTls => self.open_flow(Server::Primary),
            TransportMode::PerCallTls => {
                for i in 0..self.accounts.len() {
                    self.start_registration(AccountId(i as u8));
                }
            }
        }
        self.after_input();
    }

    /// Begins an orderly stop: ends calls, de-registers every account, closes every
    /// connection, then emits [`Event::ShutdownComplete`]. Bounded by the transaction timer.
    pub fn shutdown(&mut self, now: Instant) {
        self.advance(now);
        match self.phase {
            Phase::Created => {
                self.phase = Phase::Closed;
                self.out.push_back(Output::Event(Event::ShutdownComplete));
                return;
            }
            Phase::Running => {}
            Phase::ShuttingDown | Phase::Closed => return,
        }
        self.phase = Phase::ShuttingDown;
        self.timers.stop_where(|t| matches!(t, Timer::Flow(_)));
        self.timers.set(Timer::Shutdown, now + self.config.transaction_timeout);
        self.shutdown_calls();
        self.close_probe();
        self.unregister_all();
        self.after_input();
    }

    // ----- (D) outputs -----

    /// The next thing to do, or `None` when the queue is empty.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The earliest deadline at which [`Core::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timeout_reason().map(|(_, at)| at)
    }

    /// Why the next wake-up is due: the timer behind [`Core::poll_timeout`] and its
    /// deadline (for logs; str0m's `last_timeout_reason`).
    pub fn timeout_reason(&self) -> Option<(Timer, Instant)> {
        if self.planted(Bug::TimersInKeyOrder) {
            return self.planted_next_timer();
        }
        self.timers.next()
    }

    // ----- shared plumbing -----

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    fn running(&self) -> bool {
        self.phase == Phase::Running
    }

    fn server_addr(&self, server: Server) -> Option<ServerAddr> {
        match server {
            Server::Primary => self.config.proxy.clone(),
            Server::Backup => self.config.backup_proxy.clone(),
        }
    }

    fn has_backup(&self) -> bool {
        self.config.backup_proxy.is_some()
    }

    /// Asks the runtime for a new connection: at once when the server is located, else
    /// once its lookups are answered. The connect timer covers the lookups too.
    fn connect(&mut self, server: Server, purpose: ConnPurpose) -> Option<ConnId> {
        self.server_addr(server)?;
        self.next_generation = self.next_generation.wrapping_add(1);
        let id = ConnId { server, generation: self.next_generation };
        let framer = Framer::new(Limits::default());
        self.conns.push(Conn { id, purpose, local: None, backlog: 0, addr: None, attempt: 0, framer });
        self.timers.set(Timer::Connect(id), self.now + self.config.connect_timeout);
        self.locate(server);
        self.dial_waiting(server);
        Some(id)
    }

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.iter().find(|c| c.id == id)
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.iter_mut().find(|c| c.id == id)
    }

    fn conn_is_up(&self, id: ConnId) -> bool {
        self.conn(id).is_some_and(|c| c.local.is_some())
    }

    fn remove_conn(&mut self, id: ConnId) -> Option<Conn> {
        let pos = self.conns.iter().position(|c| c.id == id)?;
        self.timers.stop(Timer::Connect(id));
        self.timers.stop(Timer::WriteStall(id));
        self.timers.stop(Timer::HeadStart(id));
        Some(self.conns.remove(pos))
    }

    /// Closes a connection the core no longer wants, with the attempts racing it; a call
    /// still bound to it ends.
    fn close_conn(&mut self, id: ConnId) {
        if let Some(c) = self.remove_conn(id) {
            self.queue_close(&c);
            self.close_race(&c);
            self.calls_connection_lost(id);
        }
    }

    /// Queues the `Close` of a connection the core just dropped, or withdraws its
    /// `Connect` if the runtime has not read it yet: when several deadlines fire in one
    /// late `handle_timeout` (or inputs at one instant), a connection can be asked for and
    /// given up in the same batch (a probe, then the flow's loss), and the runtime must
    /// not open a TLS connection only to close it. Nothing was sent on it: it never
    /// connected.
    fn queue_close(&mut self, c: &Conn) {
        // Still waiting for its server's location: the shell never heard of it.
        if c.addr.is_none() {
            return;
        }
        let id = c.id;
        let unread = self.out.iter().position(|o| matches!(o, Output::Connect { conn, .. } if *conn == id));
        match unread {
            Some(at) => {
                self.out.remove(at);
            }
            None => self.out.push_back(Output::Close { conn: id }),
        }
    }

    fn transmit(&mut self, conn: ConnId, data: Vec<u8>) {
        self.out.push_back(Output::Transmit { conn, data });
    }

    fn send(&mut self, conn: ConnId, msg: &Message) {
        self.transmit(conn, msg.to_bytes());
    }

    fn emit(&mut self, event: Event) {
        self.stats.observe(self.now, &event);
        self.out.push_back(Output::Event(event));
    }

    fn on_connected(&mut self, conn: ConnId, purpose: ConnPurpose) {
        match purpose {
            ConnPurpose::Flow => self.flow_connected(conn),
            ConnPurpose::Probe => self.probe_connected(conn),
            ConnPurpose::Register(account) => self.dedicated_register_connected(account, conn),
            ConnPurpose::Call(call) => self.dedicated_call_connected(call, conn),
        }
    }

    /// A connection is gone (already removed from the table).
    fn on_conn_failed(&mut self, c: Conn, reason: FlowError) {
        match c.purpose {
            ConnPurpose::Flow => self.flow_failed(&c, reason),
            ConnPurpose::Probe => self.probe_failed(&c, reason),
            ConnPurpose::Register(account) => self.dedicated_register_failed(account, c.id, reason),
            ConnPurpose::Call(call) => self.dedicated_call_failed(call, c.id, reason),
        }
        // Per-call TLS: a call that arrived on someone else's connection goes with it.
        self.calls_connection_lost(c.id);
    }

    /// Per-call TLS: closes a connection once nothing uses it any more.
    fn release_dedicated(&mut self, conn: ConnId) {
        let used = self.calls.iter().any(|c| c.uses(conn)) || self.accounts.iter().any(|a| a.uses(conn));
        if !used {
            self.close_conn(conn);
        }
    }

    /// Closes a connection because of what happened on it, and recovers.
    fn fail_conn(&mut self, conn: ConnId, reason: FlowError) {
        if let Some(c) = self.remove_conn(conn) {
            self.queue_close(&c);
            self.on_conn_failed(c, reason);
        }
    }

    fn on_received(&mut self, conn: ConnId, data: &[u8]) {
        let Some(c) = self.conn_mut(conn) else { return };
        if c.local.is_none() {
            return;
        }
        c.framer.push(data);
        loop {
            let Some(c) = self.conn_mut(conn) else { return };
            match c.framer.next_frame() {
                Ok(None) => return,
                Ok(Some(Frame::Crlf)) => self.on_crlf(conn),
                Ok(Some(Frame::Message(msg))) => self.on_message(conn, msg),
                Err(e) => {
                    self.connection_dead(conn, FlowError::Protocol(e.to_string()));
                    return;
                }
            }
        }
    }

    /// The shell's count of unsent bytes changed. A peer that does not read is dead:
    /// beyond the backlog limit at once, else when it takes nothing for the write-stall
    /// timeout (the timer restarts whenever the backlog shrinks, which is progress).
    fn on_write_backlog(&mut self, conn: ConnId, bytes: usize) {
        let Some(c) = self.conn_mut(conn) else { return };
        let before = std::mem::replace(&mut c.backlog, bytes);
        if bytes > self.config.max_write_backlog {
            self.connection_dead(conn, FlowError::WriteStalled(bytes));
        } else if bytes == 0 {
            self.timers.stop(Timer::WriteStall(conn));
        } else if (before == 0 || bytes < before) && !self.planted(bugs::Bug::NoWriteStallTimeout) {
            self.timers.set(Timer::WriteStall(conn), self.now + self.config.write_stall_timeout);
        }
    }

    /// The peer took nothing for the write-stall timeout.
    fn on_write_stall(&mut self, conn: ConnId) {
        let backlog = self.conn(conn).map_or(0, |c| c.backlog);
        if backlog > 0 {
            self.connection_dead(conn, FlowError::WriteStalled(backlog));
        }
    }

    /// A connection is dead because of what its peer did: the flow through
    /// [`Core::flow_dead`], any other connection directly.
    fn connection_dead(&mut self, conn: ConnId, reason: FlowError) {
        if self.flow.conn == Some(conn) {
            self.flow_dead(conn, reason);
        } else {
            self.fail_conn(conn, reason);
        }
    }

    fn on_crlf(&mut self, conn: ConnId) {
        // A pong on a probe or a per-call connection carries no information we use.
        if self.conn(conn).map(|c| c.purpose) == Some(ConnPurpose::Flow) {
            self.flow_pong(conn);
        }
    }

    fn on_message(&mut self, conn: ConnId, msg: Message) {
        if msg.is_request() {
            self.on_request(conn, msg);
        } else {
            self.on_response(conn, msg);
        }
    }

    fn on_response(&mut self, conn: ConnId, msg: Message) {
        let Some(branch) = message::top_branch(&msg) else { return };
        let Some(status) = msg.status() else { return };
        if self.keepalive_response(conn, &branch, status) || self.probe_response(conn, &branch, status) {
            return;
        }
        if self.registration_response(conn, &branch, &msg) {
            return;
        }
        self.call_response(conn, &branch, &msg);
    }

    /// The decisions re-evaluated after every input (see the [`Core`] documentation).
    fn after_input(&mut self) {
        if self.phase != Phase::Closed {
            self.fail_unlocated();
        }
        if self.running() {
            self.release_queued_calls();
            self.maybe_fail_back();
        }
        if self.phase == Phase::ShuttingDown && self.shutdown_done() {
            self.finish_shutdown();
        }
    }

    fn finish_shutdown(&mut self) {
        let ids: Vec<ConnId> = self.conns.iter().map(|c| c.id).collect();
        for id in ids {
            self.close_conn(id);
        }
        self.flow = Flow::default();
        self.failback = Failback::default();
        self.keepalive.options_tx = None;
        for a in &mut self.accounts {
            a.reset_all();
        }
        self.calls.clear();
        self.timers = TimerTable::default();
        self.phase = Phase::Closed;
        self.emit(Event::ShutdownComplete);
    }

    /// A pseudo-random duration in `[low, high]`.
    fn jitter(&mut self, low: Duration, high: Duration) -> Duration {
        Duration::from_millis(self.rng.between(low.as_millis(), high.as_millis()))
    }
}

#[cfg(test)]
mod getter_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_support;
