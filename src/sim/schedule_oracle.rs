//! Timing oracles for a world whose clock the core reads exactly and whose timers fire on
//! time (the simulator): when keep-alives, refreshes and retries must go out, stated from
//! the specification (RFC 5626 §4.4.1, the Aastra renewal rule, RFC 3261 `Retry-After`,
//! docs/architecture.md) with their own arithmetic, never with the core's functions.
//! Traces of the runtime are not held to them: its timers may fire late under load.

use super::{NetState, header_user};
use crate::config::Config;
use crate::engine::{CallOutcome, ConnPurpose, Core, Event, FlowError, Output};
use crate::ids::{CallId, ConnId, Server};
use crate::sip::Message;
use crate::sip::headers::NameAddr;
use crate::time::{Duration, Instant};
use std::collections::{BTreeMap, BTreeSet};

const RFC5626_DEFAULT: Duration = Duration::from_secs(120);
/// The keep-alive interval a server that does not pong cannot push OPTIONS below.
const OPTIONS_FLOOR: Duration = Duration::from_secs(10);
/// The longest `Retry-After` the phone honours (docs/architecture.md).
const RETRY_AFTER_CAP: u64 = 3600;

/// One up persistent connection's keep-alive schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FlowKeepAlive {
    /// The registrar's latest Flow-Timer on this connection.
    flow_timer: Option<Duration>,
    /// When the last keep-alive went out.
    last: Option<Instant>,
    /// When the last keep-alive OPTIONS went out.
    last_options: Option<Instant>,
    /// The next keep-alive must go out by then.
    due: Instant,
    /// What the next ping was scheduled from (the connection coming up, a pong, an
    /// OPTIONS answer) and the interval then: the ping waits at least 0.8 of it. `None`
    /// when the oracle cannot tell (a Flow-Timer may have drawn the wait again).
    anchor: Option<(Instant, Duration)>,
    /// A ping went out and no pong has come back yet.
    ping_outstanding: bool,
}

/// What the schedule oracles follow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ScheduleOracle {
    configured: Duration,
    pong_timeout: Duration,
    transaction_timeout: Duration,
    renewal: u32,
    registration_retry: Duration,
    /// Servers that announced they do not pong (`PongsUnsupported`).
    pongless: [bool; 2],
    /// Servers that answered a ping at least once.
    ponged: [bool; 2],
    flows: BTreeMap<ConnId, FlowKeepAlive>,
    /// Per (connection, user): the REGISTER refresh must go out by then.
    refresh_due: BTreeMap<(ConnId, String), Instant>,
    /// Per (connection, user): no REGISTER before then (`Retry-After`).
    not_before: BTreeMap<(ConnId, String), Instant>,
    /// Per (server, user): a permanent rejection; no REGISTER there before then.
    rejected_until: BTreeMap<(Server, String), Instant>,
    /// (connection, user) pairs whose last REGISTER was a de-REGISTER: its answer sets
    /// no binding, rejection or retry.
    unregistering: BTreeSet<(ConnId, String)>,
    /// Back-off rounds since a keep-alive was last answered on a persistent connection.
    failed_rounds: u32,
    /// Placed calls without an outcome yet, and when the outcome is due at the latest.
    outcome_due: BTreeMap<CallId, Instant>,
    call_setup_timeout: Duration,
    /// Calls in a dialog (answered outgoing ones, incoming ones) not ended yet.
    in_dialog: BTreeSet<CallId>,
    /// Calls in a dialog when the persistent connection was lost: the far end can no
    /// longer reach them, so they must end by then (the orphaned-call timeout).
    orphan_due: BTreeMap<CallId, Instant>,
    orphaned_call_timeout: Duration,
    /// Per connection with unsent bytes: the backlog last reported, and when the
    /// connection must be gone if the peer takes nothing more (`write_stall_timeout`
    /// after the backlog appeared or last shrank); at once beyond `max_write_backlog`.
    stall_due: BTreeMap<ConnId, (usize, Instant)>,
    write_stall_timeout: Duration,
    max_write_backlog: usize,
    shutting_down: bool,
    violations: Vec<String>,
}

impl ScheduleOracle {
    pub fn new(config: &Config) -> ScheduleOracle {
        let configured = if config.keepalive_interval.is_zero() { RFC5626_DEFAULT } else { config.keepalive_interval };
        ScheduleOracle {
            configured,
            pong_timeout: config.pong_timeout,
            transaction_timeout: config.transaction_timeout,
            renewal: config.registration_renewal,
            registration_retry: Duration::from_secs(u64::from(config.registration_retry)),
            call_setup_timeout: config.call_setup_timeout,
            orphaned_call_timeout: config.orphaned_call_timeout,
            write_stall_timeout: config.write_stall_timeout,
            max_write_backlog: config.max_write_backlog,
            ..ScheduleOracle::default()
        }
    }

    /// The core took `config` while running (`Core::reconfigure`): the new values hold
    /// from now on, and a keep-alive not waiting for its answer is scheduled again from
    /// now when the interval changed.
    pub fn reconfigured(&mut self, config: &Config, now: Instant) {
        let fresh = ScheduleOracle::new(config);
        let interval_changed = fresh.configured != self.configured;
        self.configured = fresh.configured;
        self.pong_timeout = fresh.pong_timeout;
        self.transaction_timeout = fresh.transaction_timeout;
        self.renewal = fresh.renewal;
        self.registration_retry = fresh.registration_retry;
        self.call_setup_timeout = fresh.call_setup_timeout;
        self.orphaned_call_timeout = fresh.orphaned_call_timeout;
        self.write_stall_timeout = fresh.write_stall_timeout;
        self.max_write_backlog = fresh.max_write_backlog;
        let flows: Vec<ConnId> = if interval_changed { self.flows.keys().copied().collect() } else { Vec::new() };
        for conn in flows {
            let i = self.interval(conn.server, self.flows[&conn].flow_timer);
            if let Some(flow) = self.flows.get_mut(&conn)
                && !flow.ping_outstanding
            {
                flow.due = now + i;
                flow.anchor = Some((now, i));
            }
        }
    }

    /// The violations found since the last call.
    pub fn take_violations(&mut self) -> Vec<String> {
        std::mem::take(&mut self.violations)
    }

    /// The keep-alive interval on `server`: the configured one, capped by the Flow-Timer;
    /// for OPTIONS (a server that does not pong) never below 10 s unless configured so.
    fn interval(&self, server: Server, flow_timer: Option<Duration>) -> Duration {
        let mut i = self.configured;
        if let Some(ft) = flow_timer
            && ft < i
        {
            i = ft;
        }
        if self.pongless[server.index()] {
            let floor = if self.configured < OPTIONS_FLOOR { self.configured } else { OPTIONS_FLOOR };
            if i < floor {
                i = floor;
            }
        }
        i
    }

    pub fn shutdown_requested(&mut self) {
        self.shutting_down = true;
    }

    /// Bytes that start with a CRLF reached the core from `server`: a pong.
    pub fn pong_delivered(&mut self, server: Server) {
        self.ponged[server.index()] = true;
    }

    /// A keep-alive answer (a pong, or a final answer to an OPTIONS) reached the core on
    /// `conn`: if that is an up persistent connection, the failed rounds are forgotten.
    pub fn keepalive_answered(&mut self, conn: ConnId, pong: bool, now: Instant) {
        let Some(flow) = self.flows.get(&conn).copied() else { return };
        self.failed_rounds = 0;
        // The next ping is drawn from this answer: a pong of the outstanding ping, or
        // the answer to a keep-alive OPTIONS.
        // The next one is due within the interval in force now, which a reconfiguration
        // made while the ping was out may have changed since the bound set at the ping.
        let (anchor, due) = if !pong || flow.ping_outstanding {
            let i = self.interval(conn.server, flow.flow_timer);
            (Some((now, i)), now + i)
        } else {
            (flow.anchor, flow.due)
        };
        let ping_outstanding = flow.ping_outstanding && !pong;
        self.flows.insert(conn, FlowKeepAlive { anchor, due, ping_outstanding, ..flow });
    }

    /// The application placed `call` at `now`. Its one outcome is due within the setup
    /// timeout (a connection and a first sign of life), then Timer C's three minutes of
    /// ringing, then one more setup timeout for a challenged INVITE's retry.
    pub fn call_placed(&mut self, call: CallId, now: Instant) {
        let timer_c = Duration::from_secs(180);
        let due = now + self.call_setup_timeout + timer_c + self.call_setup_timeout;
        self.outcome_due.insert(call, due);
    }

    /// A final REGISTER answer for `user` reached the core on `conn`.
    pub fn register_answer(&mut self, conn: ConnId, user: &str, status: u16, msg: &Message, now: Instant) {
        let key = (conn, user.to_owned());
        if self.unregistering.contains(&key) {
            return;
        }
        if (200..300).contains(&status) {
            self.not_before.remove(&key);
            self.rejected_until.remove(&(conn.server, user.to_owned()));
            if let Some(ft) = msg.header("Flow-Timer").and_then(|v| v.trim().parse::<u64>().ok()) {
                self.flow_timer(conn, Duration::from_secs(ft), now);
            }
            match granted(msg) {
                Some(e) if e > 0 => {
                    // The Aastra rule: the later of half-way and `renewal` seconds before expiry.
                    let half = Duration::from_millis(e * 500);
                    let before = Duration::from_secs(e.saturating_sub(u64::from(self.renewal)));
                    self.refresh_due.insert(key, now + if half > before { half } else { before });
                }
                _ => {
                    self.refresh_due.remove(&key);
                }
            }
            return;
        }
        if matches!(status, 403 | 404 | 603 | 604) {
            self.rejected_until.insert((conn.server, user.to_owned()), now + self.registration_retry);
        }
        // A failure that ends the exchange (not a challenge, a 423, a rejection for good
        // or a timeout) with a Retry-After: the server asked for that much quiet.
        let ends_exchange = !matches!(status, 401 | 407 | 423 | 408 | 403 | 404 | 603 | 604);
        if let Some(secs) =
            msg.header("Retry-After").and_then(|v| v.trim().parse::<u64>().ok()).filter(|_| ends_exchange)
        {
            let wait = Duration::from_secs(secs.min(RETRY_AFTER_CAP));
            self.not_before.insert(key, now + wait);
        }
    }

    fn flow_timer(&mut self, conn: ConnId, ft: Duration, now: Instant) {
        if ft.is_zero() {
            return;
        }
        let Some(flow) = self.flows.get(&conn).copied() else { return };
        // The latest Flow-Timer is the registrar's word. A wait in progress longer than it
        // is drawn again from now (so the bound may move later than an earlier one); a
        // keep-alive still waiting for its answer is followed by the next one within the
        // new interval after that answer.
        let i = self.interval(conn.server, Some(ft));
        let mut due = now + i;
        if let Some(last) = flow.last {
            due = due.max(last + self.pong_timeout + self.transaction_timeout + i);
        }
        self.flows.insert(conn, FlowKeepAlive { flow_timer: Some(ft), due, anchor: None, ..flow });
    }

    /// Follows one output of the core. `paced`: the pacing floor may hold back this
    /// account's REGISTERs now (five of them within the last minute).
    pub fn on_output(&mut self, core: &Core, out: &Output, now: Instant, paced: impl Fn(&str) -> bool) {
        self.follow_dialogs(out, now);
        match out {
            Output::Event(Event::FlowUp { server }) => {
                let up = core.connections().find(|(c, p, up)| *p == ConnPurpose::Flow && *up && c.server == *server);
                if let Some((conn, _, _)) = up {
                    let due = now + self.interval(*server, None);
                    let anchor = Some((now, self.interval(*server, None)));
                    let flow = FlowKeepAlive {
                        flow_timer: None,
                        last: None,
                        last_options: None,
                        due,
                        anchor,
                        ping_outstanding: false,
                    };
                    self.flows.insert(conn, flow);
                }
            }
            Output::Event(Event::PongsUnsupported { server }) => {
                // The OPTIONS that showed it was just answered: the next keep-alive is an
                // OPTIONS one (floored) interval from now.
                self.pongless[server.index()] = true;
                let on_server: Vec<(ConnId, FlowKeepAlive)> =
                    self.flows.iter().filter(|(c, _)| c.server == *server).map(|(c, f)| (*c, *f)).collect();
                for (conn, flow) in on_server {
                    let due = now + self.interval(*server, flow.flow_timer);
                    self.flows.insert(conn, FlowKeepAlive { last: None, due, ..flow });
                }
            }
            Output::Event(Event::FlowLost { server, reason: FlowError::PongTimeout })
                if !self.ponged[server.index()] =>
            {
                self.violations.push(format!(
                    "{now}: flow to {server} declared dead for a missing pong, but {server} never ponged"
                ));
            }
            Output::Event(Event::Backoff { failures, .. }) => {
                // From docs/architecture.md: the failed rounds count until a keep-alive is
                // answered on the flow, not merely until a connection comes up.
                self.failed_rounds = self.failed_rounds.saturating_add(1);
                if *failures < self.failed_rounds {
                    let rounds = self.failed_rounds;
                    self.violations.push(format!(
                        "{now}: back-off after {failures} failed rounds, but {rounds} failed since a keep-alive was last answered"
                    ));
                }
            }
            Output::Event(Event::CallOutcome { call, .. }) => {
                self.outcome_due.remove(call);
            }
            Output::Transmit { conn, data } => self.transmitted(*conn, data, now, paced),
            _ => {}
        }
    }

    fn transmitted(&mut self, conn: ConnId, data: &[u8], now: Instant, paced: impl Fn(&str) -> bool) {
        let ping = data == b"\r\n\r\n";
        let msg = if ping { None } else { Message::parse(data).ok() };
        let method = msg.as_ref().and_then(|m| m.method().map(str::to_owned));
        if let Some(flow) = self.flows.get(&conn).copied()
            && (ping || method.as_deref() == Some("OPTIONS"))
        {
            let mut last_options = flow.last_options;
            if !ping {
                let floor = if self.configured < OPTIONS_FLOOR { self.configured } else { OPTIONS_FLOOR };
                let min_gap = Duration::from_millis(floor.as_millis() * 4 / 5);
                if let Some(prev) = flow.last_options
                    && now.saturating_since(prev) < min_gap
                {
                    let gap = now.saturating_since(prev);
                    self.violations.push(format!("{now}: keep-alive OPTIONS on {conn} {gap} after the last one"));
                }
                last_options = Some(now);
            }
            let i = self.interval(conn.server, flow.flow_timer);
            let due = now + self.pong_timeout + self.transaction_timeout + i;
            if ping
                && let Some((from, interval)) = flow.anchor
                && now.saturating_since(from).as_millis() < interval.as_millis() * 4 / 5
            {
                let gap = now.saturating_since(from);
                self.violations
                    .push(format!("{now}: ping on {conn} {gap} after it was scheduled, below 0.8 × {interval}"));
            }
            let flow =
                FlowKeepAlive { last: Some(now), last_options, due, anchor: None, ping_outstanding: ping, ..flow };
            self.flows.insert(conn, flow);
        }
        let Some(m) = msg.filter(|_| method.as_deref() == Some("REGISTER")) else { return };
        let Some(user) = header_user(&m, "From") else { return };
        let key = (conn, user.clone());
        self.refresh_due.remove(&key);
        let unregister = m.header("Expires").is_some_and(|e| e.trim() == "0");
        if unregister {
            self.unregistering.insert(key);
            return;
        }
        self.unregistering.remove(&key);
        if self.shutting_down {
            return;
        }
        if let Some(until) = self.not_before.get(&key)
            && now < *until
            && !paced(&user)
        {
            let until = *until;
            self.violations
                .push(format!("{now}: REGISTER of {user} on {conn} before its Retry-After ended at {until}"));
        }
        if let Some(until) = self.rejected_until.get(&(conn.server, user.clone()))
            && now < *until
        {
            let until = *until;
            let server = conn.server;
            self.violations.push(format!(
                "{now}: REGISTER of {user} to {server}, which rejected it, before the retry timer ended at {until}"
            ));
        }
    }

    /// The runtime reported `bytes` that the peer of `conn` has not taken yet.
    pub fn backlog_reported(&mut self, conn: ConnId, bytes: usize, now: Instant) {
        if bytes == 0 {
            self.stall_due.remove(&conn);
            return;
        }
        let due = match self.stall_due.get(&conn) {
            // No progress: the stall keeps counting from where it started.
            Some((before, due)) if bytes >= *before => *due,
            _ => now + self.write_stall_timeout,
        };
        self.stall_due.insert(conn, (bytes, due));
    }

    /// Which calls are in a dialog, and which of them lost the persistent connection and
    /// have not been moved onto a new one since.
    fn follow_dialogs(&mut self, out: &Output, now: Instant) {
        match out {
            Output::Event(Event::CallOutcome { call, outcome: CallOutcome::Answered })
            | Output::Event(Event::IncomingCall { call, .. }) => {
                self.in_dialog.insert(*call);
            }
            Output::Event(Event::CallEnded { call, .. }) => {
                self.in_dialog.remove(call);
                self.orphan_due.remove(call);
            }
            // Moved onto the new connection (a 2xx to its re-INVITE): reachable again.
            Output::Event(Event::CallMoved { call, .. }) => {
                self.orphan_due.remove(call);
            }
            Output::Event(Event::FlowLost { .. }) => {
                for call in &self.in_dialog {
                    self.orphan_due.entry(*call).or_insert(now + self.orphaned_call_timeout);
                }
            }
            _ => {}
        }
    }

    /// At `now`: every keep-alive and every refresh that was due went out.
    pub fn check(&mut self, now: Instant, net: &BTreeMap<ConnId, NetState>, paced: impl Fn(&str) -> bool) {
        self.flows.retain(|c, _| net.get(c) == Some(&NetState::Up));
        self.refresh_due.retain(|(c, _), _| net.get(c) == Some(&NetState::Up));
        self.not_before.retain(|(c, _), _| net.get(c) == Some(&NetState::Up));
        self.stall_due.retain(|c, _| net.get(c) == Some(&NetState::Up));
        // A connection over the backlog limit is dead at once, shutting down or not.
        let over: Vec<(ConnId, usize)> = self
            .stall_due
            .iter()
            .filter(|(_, (bytes, due))| now > *due || *bytes > self.max_write_backlog)
            .map(|(c, (bytes, _))| (*c, *bytes))
            .collect();
        for (conn, bytes) in over {
            self.stall_due.remove(&conn);
            self.violations.push(format!("{now}: {conn} still open with {bytes} bytes its peer does not take"));
        }
        if self.shutting_down {
            return;
        }
        let late: Vec<(ConnId, Instant)> =
            self.flows.iter().filter(|(_, f)| now > f.due).map(|(c, f)| (*c, f.due)).collect();
        for (conn, due) in late {
            self.flows.remove(&conn);
            self.violations.push(format!("{now}: no keep-alive on {conn} since it was due at {due}"));
        }
        let late: Vec<(CallId, Instant)> =
            self.outcome_due.iter().filter(|(_, due)| now > **due).map(|(c, d)| (*c, *d)).collect();
        for (call, due) in late {
            self.outcome_due.remove(&call);
            self.violations.push(format!("{now}: {call} has no outcome, due at {due}"));
        }
        let late: Vec<(CallId, Instant)> =
            self.orphan_due.iter().filter(|(_, due)| now > **due).map(|(c, d)| (*c, *d)).collect();
        for (call, due) in late {
            self.orphan_due.remove(&call);
            self.violations.push(format!("{now}: {call} lost its connection and was still not ended at {due}"));
        }
        let late: Vec<((ConnId, String), Instant)> =
            self.refresh_due.iter().filter(|(_, due)| now > **due).map(|(k, d)| (k.clone(), *d)).collect();
        for ((conn, user), due) in late {
            self.refresh_due.remove(&(conn, user.clone()));
            if !paced(&user) {
                self.violations.push(format!("{now}: {user}'s refresh on {conn} was due at {due}"));
            }
        }
    }
}

/// The lifetime a REGISTER 2xx grants: the first Contact's `expires`, else the Expires
/// header (the simulated registrar echoes one Contact).
fn granted(msg: &Message) -> Option<u64> {
    let contact = msg.header("Contact").and_then(NameAddr::parse);
    if let Some(e) = contact.and_then(|c| c.param("expires").flatten().and_then(|v| v.trim().parse::<u64>().ok())) {
        return Some(e);
    }
    msg.header("Expires").and_then(|v| v.trim().parse::<u64>().ok())
}
