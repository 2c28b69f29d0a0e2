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

mod bugs;
mod calls;
mod flow;
mod io;
mod message;
mod registration;
mod transaction;
mod view;

#[cfg(feature = "planted-bugs")]
pub use bugs::Bug as PlantedBug;
pub use io::{
    CallFailure, CallOutcome, CommandError, ConnPurpose, EndReason, Event, FlowError, FlowState, Input, Output,
    RegError, RegState, TransportError,
};
pub use registration::refresh_delay as registration_refresh_delay;
pub use view::{AccountView, CallPhase, CallView, ConnView, DecisionView, FlowView, PhaseView, TimerKey};

use crate::config::{Config, ServerAddr, TransportMode};
use crate::ids::{AccountId, ConnId, Server};
use crate::rng::Rng;
use crate::sip::{Frame, Framer, Limits, Message};
use crate::time::{Duration, Instant};
use calls::Call;
use core::net::SocketAddr;
use flow::Flow;
use registration::Account;
use std::collections::VecDeque;
use std::sync::Arc;

/// Where the phone is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Phase {
    Created,
    Running,
    ShuttingDown { deadline: Instant },
    Closed,
}

/// A connection the core asked for and has not closed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Conn {
    id: ConnId,
    purpose: ConnPurpose,
    /// `None` while connecting; the local socket address once up.
    local: Option<SocketAddr>,
    /// Connect plus handshake must finish before this.
    connect_deadline: Instant,
    framer: Framer,
}

/// The Persistent-TLS connection manager: one per phone.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Core {
    config: Arc<Config>,
    now: Instant,
    rng: Rng,
    phase: Phase,
    next_generation: u32,
    conns: Vec<Conn>,
    flow: Flow,
    accounts: Vec<Account>,
    calls: Vec<Call>,
    next_call: u32,
    instance_id: String,
    out: VecDeque<Output>,
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
            flow: Flow::default(),
            accounts,
            calls: Vec::new(),
            next_call: 0,
            instance_id,
            out: VecDeque::new(),
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
        match self.phase {
            Phase::Created => FlowState::Idle,
            Phase::Closed => FlowState::Closed,
            _ if self.config.mode == TransportMode::PerCallTls => FlowState::Idle,
            _ => self.flow.public_state(&self.conns),
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
        self.flow.failed_rounds
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
        self.flow.good_probes
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
                self.on_connected(conn, purpose);
            }
            Input::ConnectFailed { conn, reason } | Input::Closed { conn, reason } => {
                if let Some(c) = self.remove_conn(conn) {
                    self.on_conn_failed(c, FlowError::Transport(reason));
                }
            }
            Input::Received { conn, data } => self.on_received(conn, data),
        }
        self.after_input();
    }

    /// Acts on every deadline that has passed at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        if self.phase == Phase::Closed {
            return;
        }
        let expired: Vec<ConnId> =
            self.conns.iter().filter(|c| c.local.is_none() && c.connect_deadline <= now).map(|c| c.id).collect();
        for id in expired {
            if self.planted(bugs::Bug::DoubleConnect) {
                if let Some(c) = self.conn(id).cloned() {
                    self.on_conn_failed(c, FlowError::ConnectTimeout);
                }
                continue;
            }
            if let Some(c) = self.remove_conn(id) {
                self.out.push_back(Output::Close { conn: c.id });
                self.on_conn_failed(c, FlowError::ConnectTimeout);
            }
        }
        self.flow_timeouts();
        self.registration_timeouts();
        self.call_timeouts();
        if let Phase::ShuttingDown { deadline } = self.phase
            && deadline <= now
        {
            self.finish_shutdown();
        }
        self.after_input();
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
            Phase::ShuttingDown { .. } | Phase::Closed => return,
        }
        self.phase = Phase::ShuttingDown { deadline: now + self.config.transaction_timeout };
        self.shutdown_calls();
        self.flow.stop_failback_work();
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
        if self.phase == Phase::Closed {
            return None;
        }
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for c in &self.conns {
            if c.local.is_none() {
                consider(Some(c.connect_deadline));
            }
        }
        consider(self.flow.next_deadline());
        for a in &self.accounts {
            consider(a.next_deadline());
        }
        for c in &self.calls {
            consider(c.next_deadline());
        }
        if let Phase::ShuttingDown { deadline } = self.phase {
            consider(Some(deadline));
        }
        next
    }

    // ----- shared plumbing -----

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
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

    /// Asks the runtime for a new connection.
    fn connect(&mut self, server: Server, purpose: ConnPurpose) -> Option<ConnId> {
        let target = self.server_addr(server)?;
        self.next_generation = self.next_generation.wrapping_add(1);
        let id = ConnId { server, generation: self.next_generation };
        self.conns.push(Conn {
            id,
            purpose,
            local: None,
            connect_deadline: self.now + self.config.connect_timeout,
            framer: Framer::new(Limits::default()),
        });
        self.out.push_back(Output::Connect { conn: id, target });
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
        Some(self.conns.remove(pos))
    }

    /// Closes a connection the core no longer wants; a call still bound to it ends.
    fn close_conn(&mut self, id: ConnId) {
        if self.remove_conn(id).is_some() {
            self.out.push_back(Output::Close { conn: id });
            self.calls_connection_lost(id);
        }
    }

    fn transmit(&mut self, conn: ConnId, data: Vec<u8>) {
        self.out.push_back(Output::Transmit { conn, data });
    }

    fn send(&mut self, conn: ConnId, msg: &Message) {
        self.transmit(conn, msg.to_bytes());
    }

    fn emit(&mut self, event: Event) {
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
        let was_up = c.local.is_some();
        match c.purpose {
            ConnPurpose::Flow => self.flow_failed(c.id, was_up, reason),
            ConnPurpose::Probe => self.probe_failed(c.id, reason),
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
            self.out.push_back(Output::Close { conn });
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
                    self.fail_conn(conn, FlowError::Protocol(e.to_string()));
                    return;
                }
            }
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
        if self.flow_response(conn, &branch, &msg) {
            return;
        }
        if self.registration_response(conn, &branch, &msg) {
            return;
        }
        self.call_response(conn, &branch, &msg);
    }

    /// Work that follows any input: release queued calls, finish shutdown, fail back.
    fn after_input(&mut self) {
        if self.running() {
            self.release_queued_calls();
            self.maybe_fail_back();
        }
        if matches!(self.phase, Phase::ShuttingDown { .. }) && self.shutdown_done() {
            self.finish_shutdown();
        }
    }

    fn finish_shutdown(&mut self) {
        let ids: Vec<ConnId> = self.conns.iter().map(|c| c.id).collect();
        for id in ids {
            self.close_conn(id);
        }
        self.flow = Flow::default();
        for a in &mut self.accounts {
            a.reset_all();
        }
        self.calls.clear();
        self.phase = Phase::Closed;
        self.emit(Event::ShutdownComplete);
    }

    /// A pseudo-random duration in `[low, high]`.
    fn jitter(&mut self, low: Duration, high: Duration) -> Duration {
        Duration::from_millis(self.rng.between(low.as_millis(), high.as_millis()))
    }

    /// Keep-alive interval drawn in `[0.8·I, I]` (RFC 5626 §4.4.1).
    fn keepalive_wait(&mut self) -> Duration {
        let i = self.config.effective_keepalive(self.flow.flow_timer);
        let low = Duration::from_millis(i.as_millis() - i.as_millis() / 5);
        self.jitter(low, i)
    }
}

#[cfg(test)]
mod tests;
