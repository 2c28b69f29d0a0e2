//! Invariants checked over everything a core does in the simulated world: the safety
//! properties of Persistent TLS stated once, used by the property tests and scenarios.

use super::schedule_oracle::ScheduleOracle;
use super::{NetState, header_user};
use crate::config::{Backoff, Config, TransportMode};
use crate::engine::{CallPhase, ConnPurpose, Core, Event, Output};
use crate::ids::{CallId, ConnId, Server};
use crate::sip::Message;
use crate::sip::headers::Via;
use crate::time::{Duration, Instant};
use std::collections::{BTreeMap, BTreeSet};

/// Watches outputs and records every broken invariant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Monitor {
    violations: Vec<String>,
    users: Vec<String>,
    persistent: bool,
    backoff: Option<Backoff>,
    flow_conns: BTreeSet<ConnId>,
    /// Last final REGISTER status delivered to the core, per connection and user.
    reg_finals: BTreeMap<ConnId, BTreeMap<String, u16>>,
    /// Users a server rejected for good.
    rejected: BTreeSet<(Server, String)>,
    placed: BTreeSet<CallId>,
    outcomes: BTreeMap<CallId, u32>,
    /// Calls a `CallEnded` was given for.
    ended: BTreeSet<CallId>,
    /// Per account user: when its paced REGISTERs went out (see [`Monitor::check_pacing`]).
    paced_registers: BTreeMap<String, Vec<Instant>>,
    /// Per account user: every REGISTER of the last 61 s but de-REGISTERs, answer-driven
    /// or not (a superset of what the pacing floor counts).
    recent_registers: BTreeMap<String, Vec<Instant>>,
    /// (connection, user) pairs whose first REGISTER was seen.
    first_register: BTreeSet<(ConnId, String)>,
    /// The timing oracles, for a world whose clock the core reads exactly (the
    /// simulator); `None` for traces of the runtime, whose timers may fire late.
    schedule: Option<ScheduleOracle>,
    /// The bounds a hostile peer or a busy user must not push the phone past
    /// (docs/architecture.md, "The decision table"): queued calls, ringing calls.
    call_queue_limit: usize,
    max_ringing_calls: usize,
    /// (connection, branch) of the INVITEs to which a provisional response was delivered
    /// and no final one yet, on connections still open.
    provisional: BTreeSet<(ConnId, String)>,
    /// Users whose INVITEs have carried credentials.
    invite_credentials: BTreeSet<String>,
    /// Per (connection, user): challenges and 423s answered in a row in the current
    /// REGISTER exchange (until a 2xx, another final answer, or the exchange's end).
    answer_run: BTreeMap<(ConnId, String), (u8, u8)>,
    /// The request-URI user and the To user of each INVITE delivered in this step.
    invites_delivered: Vec<[Option<String>; 2]>,
}

/// The back-off window after `failures` failed rounds in a row, as docs/architecture.md
/// states it: the base for the first, doubled for each further one, never beyond the
/// maximum. Computed here by repeated doubling, apart from the core's arithmetic, so that
/// a wrong formula in the core cannot pass by being copied.
fn documented_window(b: Backoff, failures: u32) -> Duration {
    let mut window = b.base.min(b.max);
    for _ in 1..failures {
        if window >= b.max {
            break;
        }
        window = (window + window).min(b.max);
    }
    window
}

fn is_permanent(status: u16) -> bool {
    matches!(status, 403 | 404 | 603 | 604)
}

impl Monitor {
    /// A monitor for a core running `config`.
    pub fn new(config: &Config) -> Monitor {
        Monitor {
            users: config.accounts.iter().map(|a| a.user_name.clone()).collect(),
            persistent: config.mode == TransportMode::PersistentTls,
            backoff: Some(config.backoff),
            call_queue_limit: usize::from(config.call_queue_limit),
            max_ringing_calls: usize::from(config.max_ringing_calls),
            ..Monitor::default()
        }
    }

    /// A monitor for a core whose clock is read exactly and whose timers fire on time
    /// (the simulator): it also holds the core to the schedule of keep-alives, refreshes
    /// and retries ([`ScheduleOracle`]).
    pub fn with_exact_clock(config: &Config) -> Monitor {
        Monitor { schedule: Some(ScheduleOracle::new(config)), ..Monitor::new(config) }
    }

    /// The core took `config` while running (`Core::reconfigure`).
    pub fn reconfigured(&mut self, config: &Config, now: Instant) {
        self.backoff = Some(config.backoff);
        self.call_queue_limit = usize::from(config.call_queue_limit);
        self.max_ringing_calls = usize::from(config.max_ringing_calls);
        if let Some(o) = &mut self.schedule {
            o.reconfigured(config, now);
        }
    }

    /// The application asked the core to shut down: keep-alive and refreshes end.
    pub fn shutdown_requested(&mut self) {
        if let Some(o) = &mut self.schedule {
            o.shutdown_requested();
        }
    }

    /// A keep-alive answer (a pong, or an OPTIONS answer) reached the core on `conn`.
    pub fn keepalive_answered(&mut self, conn: ConnId, pong: bool, now: Instant) {
        if let Some(o) = &mut self.schedule {
            o.keepalive_answered(conn, pong, now);
        }
    }

    /// The application placed `call` at `now` (the simulator's clock).
    pub fn call_placed_at(&mut self, call: CallId, now: Instant) {
        if let Some(o) = &mut self.schedule {
            o.call_placed(call, now);
        }
    }

    /// Bytes starting with a CRLF (a pong) reached the core from `server`.
    pub fn pong_delivered(&mut self, server: Server) {
        if let Some(o) = &mut self.schedule {
            o.pong_delivered(server);
        }
    }

    /// A final REGISTER answer `msg` (status `status`, for `user`) reached the core on
    /// `conn`: the timing it sets (Flow-Timer, lifetime, Retry-After, rejection).
    pub fn register_answer_delivered(&mut self, conn: ConnId, user: &str, status: u16, msg: &Message, now: Instant) {
        if let Some(o) = &mut self.schedule {
            o.register_answer(conn, user, status, msg, now);
        }
    }

    /// May the pacing floor hold `user`'s REGISTERs back at `now`? (Five REGISTERs went
    /// out in the last minute, counting some the floor does not, such as a retry that
    /// happens to be the first on a new connection; a second of slack for the floor's
    /// own millisecond.)
    fn may_be_paced(paced: &BTreeMap<String, Vec<Instant>>, user: &str, now: Instant) -> bool {
        paced.get(user).is_some_and(|sent| {
            sent.iter().filter(|t| now.saturating_since(**t) <= Duration::from_secs(61)).count() >= 5
        })
    }

    /// At `now`, every keep-alive and refresh that was due has gone out.
    pub fn check_schedule(&mut self, now: Instant, net: &BTreeMap<ConnId, NetState>) {
        let Some(o) = &mut self.schedule else { return };
        let paced = &self.recent_registers;
        o.check(now, net, |u| Monitor::may_be_paced(paced, u, now));
        for v in o.take_violations() {
            self.violation(v);
        }
    }

    /// The runtime reported `bytes` unsent on `conn` (the write-stall oracle; exact clock
    /// only, since a late timer is no stall).
    pub fn backlog_reported(&mut self, conn: ConnId, bytes: usize, now: Instant) {
        if let Some(o) = &mut self.schedule {
            o.backlog_reported(conn, bytes, now);
        }
    }

    /// The pacing floor, from the words: whatever a server answers, an account
    /// sends at most six REGISTERs in any minute, one of them the REGISTER a new
    /// persistent connection starts with. So the others (challenge answers, 423 retries,
    /// refreshes, retries) are at most five in any 60 s; de-REGISTERs are not counted.
    fn check_pacing(&mut self, conn: ConnId, m: &Message, now: Instant) {
        if m.header("Expires").is_some_and(|e| e.trim() == "0") {
            return;
        }
        let Some(user) = header_user(m, "From") else { return };
        let recent = self.recent_registers.entry(user.clone()).or_default();
        recent.retain(|t| now.saturating_since(*t) <= Duration::from_secs(61));
        recent.push(now);
        if self.first_register.insert((conn, user.clone())) {
            return;
        }
        let sent = self.paced_registers.entry(user.clone()).or_default();
        sent.retain(|t| now.saturating_since(*t) < Duration::from_secs(60));
        sent.push(now);
        if sent.len() > 5 {
            let n = sent.len();
            self.violation(format!(
                "{now}: {user} sent {n} REGISTERs after the first on their connections within 60 s"
            ));
        }
    }

    /// An account's REGISTER exchange ended: its next one starts a new run of answers.
    fn exchange_ended(&mut self, account: crate::ids::AccountId) {
        if let Some(user) = self.users.get(usize::from(account.0)) {
            self.answer_run.retain(|(_, u), _| u != user);
        }
    }

    /// A message is about to reach the core on `conn` (every world that drives a core
    /// tells the monitor: the simulator, the trace monitor, the fuzz harness).
    pub fn message_delivered(&mut self, conn: ConnId, m: &Message) {
        // The core reads a method whatever its case, so an `invite` rings too.
        if m.method().is_some_and(|x| x.eq_ignore_ascii_case("INVITE")) {
            let uri_user = match &m.start {
                crate::sip::StartLine::Request { uri, .. } => crate::sip::headers::uri_user(uri).map(str::to_owned),
                crate::sip::StartLine::Response { .. } => None,
            };
            self.invites_delivered.push([uri_user, header_user(m, "To")]);
        }
        let invite_response = m.cseq().is_some_and(|(_, method)| method.eq_ignore_ascii_case("INVITE"));
        if let Some(status) = m.status().filter(|_| invite_response)
            && let Some(branch) = m.top_via().and_then(Via::parse).and_then(|v| v.branch().map(str::to_owned))
        {
            if status < 200 {
                self.provisional.insert((conn, branch));
            } else {
                // The INVITE transaction is over: no CANCEL may follow (a call whose 2xx
                // came ends with a BYE), and a long trace must not keep every branch.
                self.provisional.remove(&(conn, branch));
            }
        }
    }

    /// RFC 3261 §9.1: no CANCEL before a provisional response to the INVITE it cancels
    /// (a CANCEL carries its INVITE's branch).
    fn check_cancel(&mut self, conn: ConnId, m: &Message, now: Instant) {
        let branch = m.top_via().and_then(Via::parse).and_then(|v| v.branch().map(str::to_owned));
        let answered = branch.as_ref().is_some_and(|b| self.provisional.contains(&(conn, b.clone())));
        if !answered {
            self.violation(format!("{now}: CANCEL on {conn} ({branch:?}) before a provisional response to its INVITE"));
        }
    }

    /// Credentials in advance (docs/architecture.md): once an account's INVITE has
    /// answered a challenge, every later INVITE of that account carries credentials, so
    /// that a call costs no extra round trip.
    fn check_invite_credentials(&mut self, m: &Message, now: Instant) {
        let Some(user) = header_user(m, "From") else { return };
        let credentials = m.header("Authorization").is_some() || m.header("Proxy-Authorization").is_some();
        if credentials {
            self.invite_credentials.insert(user);
        } else if self.invite_credentials.contains(&user) {
            self.violation(format!("{now}: INVITE from {user} without the credentials it has sent before"));
        }
    }

    /// docs/architecture.md: an exchange answers at most three challenges in a row (a
    /// server that keeps challenging is refusing the credentials) and corrects the interval
    /// after a 423 at most twice; then the exchange fails and waits for its retry.
    fn check_answer_run(&mut self, conn: ConnId, m: &Message, now: Instant) {
        let Some(user) = header_user(m, "From") else { return };
        if let Some((challenges, intervals)) = self.answer_run.get(&(conn, user.clone())).copied()
            && (challenges > 3 || intervals > 2)
        {
            self.violation(format!(
                "{now}: REGISTER of {user} on {conn} after {challenges} challenges and {intervals} 423s in a row"
            ));
        }
    }

    /// Every invariant broken so far.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Records a broken invariant.
    pub fn violation(&mut self, what: String) {
        if self.violations.len() < 100 {
            self.violations.push(what);
        }
    }

    /// The application placed `call`.
    pub fn placed(&mut self, call: CallId) {
        self.placed.insert(call);
    }

    /// A final REGISTER response for `user` reached the core on `conn`.
    ///
    /// A challenge (401, 407) or a 423 after a 2xx does not end the binding that 2xx made:
    /// the phone answers it in the same exchange while the binding stands. Only a failure
    /// that ends the exchange does, which the phone announces with `RegistrationFailed`
    /// (see [`Monitor::on_output`]).
    pub fn register_final_delivered(&mut self, conn: ConnId, user: &str, status: u16) {
        let finals = self.reg_finals.entry(conn).or_default();
        let continues_exchange = matches!(status, 401 | 407 | 423);
        if continues_exchange && finals.get(user).is_some_and(|s| (200..300).contains(s)) {
            return;
        }
        finals.insert(user.to_owned(), status);
        let key = (conn, user.to_owned());
        match status {
            401 | 407 => self.answer_run.entry(key).or_default().0 += 1,
            423 => self.answer_run.entry(key).or_default().1 += 1,
            _ => {
                self.answer_run.remove(&key);
            }
        }
        if is_permanent(status) {
            self.rejected.insert((conn.server, user.to_owned()));
        } else if (200..300).contains(&status) {
            self.rejected.remove(&(conn.server, user.to_owned()));
        }
    }

    /// Checks one output before the runtime performs it.
    pub fn on_output(&mut self, core: &Core, out: &Output, net: &BTreeMap<ConnId, NetState>, now: Instant) {
        if let Some(o) = &mut self.schedule {
            let paced = &self.recent_registers;
            o.on_output(core, out, now, |u| Monitor::may_be_paced(paced, u, now));
            for v in o.take_violations() {
                self.violation(v);
            }
        }
        match out {
            Output::Connect { conn, .. } => {
                let purpose = core.connections().find(|(id, _, _)| id == conn).map(|(_, p, _)| p);
                if purpose == Some(ConnPurpose::Flow) {
                    // Attempts racing to one server (Happy Eyeballs) may open together;
                    // never beside a persistent connection that is up, nor to two servers.
                    let others: Vec<ConnId> = self
                        .flow_conns
                        .iter()
                        .filter(|c| match net.get(c) {
                            Some(NetState::Up) => true,
                            Some(NetState::Connecting) => c.server != conn.server,
                            _ => false,
                        })
                        .copied()
                        .collect();
                    if !others.is_empty() {
                        self.violation(format!("{now}: second persistent connection {conn} while {others:?} open"));
                    }
                    self.flow_conns.insert(*conn);
                }
                if purpose.is_none() {
                    self.violation(format!("{now}: Connect for {conn} the core does not track"));
                }
            }
            Output::Transmit { conn, data } => {
                let state = net.get(conn).copied();
                if state != Some(NetState::Up) {
                    let what = if data.as_slice() == b"\r\n\r\n" { "ping".to_owned() } else { first_line(data) };
                    self.violation(format!("{now}: {what} sent on {conn} which is {state:?}"));
                    return;
                }
                let Ok(m) = Message::parse(data) else { return };
                match m.method() {
                    Some("CANCEL") => self.check_cancel(*conn, &m, now),
                    Some("INVITE") => self.check_invite_credentials(&m, now),
                    Some("REGISTER") => self.check_answer_run(*conn, &m, now),
                    _ => {}
                }
                if self.flow_conns.contains(conn) {
                    // One connection carries SIP: the race's losers are closed first.
                    let open: Vec<ConnId> = self
                        .flow_conns
                        .iter()
                        .filter(|c| *c != conn && net.get(c).is_some_and(|s| *s != NetState::Closed))
                        .copied()
                        .collect();
                    if !open.is_empty() {
                        self.violation(format!("{now}: SIP sent on {conn} while {open:?} still open"));
                    }
                    match m.method() {
                        Some("INVITE") => self.check_invite(*conn, &m, now),
                        Some("REGISTER") => self.check_pacing(*conn, &m, now),
                        _ => {}
                    }
                }
            }
            Output::Event(Event::Registered { account, server, .. }) => {
                self.exchange_ended(*account);
                let user = self.users.get(usize::from(account.0)).cloned().unwrap_or_default();
                let ok = self.reg_finals.iter().any(|(c, m)| {
                    c.server == *server
                        && net.get(c) == Some(&NetState::Up)
                        && m.get(&user).is_some_and(|s| (200..300).contains(s))
                });
                if !ok {
                    self.violation(format!(
                        "{now}: {account} reported registered on {server} without a 2xx on an up connection"
                    ));
                }
            }
            Output::Event(Event::RegistrationFailed { account, .. }) => {
                self.exchange_ended(*account);
                // The exchange ended without a binding (a 2xx granting no lifetime, a
                // challenge or 423 given up on): no INVITE from this account until a new 2xx.
                let user = self.users.get(usize::from(account.0)).cloned().unwrap_or_default();
                for finals in self.reg_finals.values_mut() {
                    if let Some(s) = finals.get_mut(&user)
                        && (200..300).contains(s)
                    {
                        *s = 0;
                    }
                }
            }
            Output::Event(Event::Backoff { wait, failures }) => {
                if let Some(b) = self.backoff {
                    let window = documented_window(b, *failures);
                    let low = Duration::from_millis(window.as_millis() / 2);
                    if *wait < low || *wait > window || *failures == 0 {
                        self.violation(format!(
                            "{now}: back-off {wait} after {failures} failures outside [{low}, {window}]"
                        ));
                    }
                }
            }
            Output::Event(Event::IncomingCall { call, account, .. }) => {
                // The account an INVITE rings: the one whose user is the request-URI's or
                // the To header's (docs/architecture.md), for an INVITE of this step.
                let user = self.users.get(usize::from(account.0)).cloned();
                let addressed = self.invites_delivered.iter().position(|users| users.contains(&user));
                match addressed {
                    Some(i) => {
                        self.invites_delivered.remove(i);
                    }
                    None => self.violation(format!(
                        "{now}: {call} rings {account:?}, but no INVITE of this step was addressed to {user:?}"
                    )),
                }
                // Read from the checker's view only when a call starts ringing, so that the
                // check costs nothing on the other steps.
                let ringing = core.decision_view().calls.iter().filter(|c| c.phase == CallPhase::Ringing).count();
                if ringing > self.max_ringing_calls {
                    let (c, limit) = (*call, self.max_ringing_calls);
                    self.violation(format!("{now}: {c} is call {ringing} ringing, beyond the limit of {limit}"));
                }
            }
            // `insert` records the call's end; it is false for a second one.
            Output::Event(Event::CallEnded { call, .. }) if !self.ended.insert(*call) => {
                let c = *call;
                self.violation(format!("{now}: {c} ended a second time"));
            }
            Output::Event(Event::CallOutcome { call, .. }) => {
                let n = self.outcomes.entry(*call).or_insert(0);
                *n += 1;
                if *n > 1 {
                    let c = *call;
                    self.violation(format!("{now}: {c} got a second outcome"));
                }
                if !self.placed.contains(call) {
                    let c = *call;
                    self.violation(format!("{now}: outcome for {c} which was never placed"));
                }
            }
            Output::Close { conn } => self.provisional.retain(|(c, _)| c != conn),
            _ => {}
        }
    }

    /// A call's first INVITE (CSeq 1, with credentials sent in advance or not) needs every
    /// account's final REGISTER answer on the connection and a standing 2xx for its own
    /// account; a retry answering a challenge (a higher CSeq) continues a call whose start
    /// was checked, even if a refresh failed in between.
    fn check_invite(&mut self, conn: ConnId, m: &Message, now: Instant) {
        if m.cseq().is_none_or(|(n, _)| n != 1) {
            return;
        }
        let finals = self.reg_finals.get(&conn).cloned().unwrap_or_default();
        let missing: Vec<String> = self
            .users
            .iter()
            .filter(|u| !finals.contains_key(*u) && !self.rejected.contains(&(conn.server, (*u).clone())))
            .cloned()
            .collect();
        if !missing.is_empty() {
            self.violation(format!("{now}: INVITE on {conn} before {missing:?} were registered on it"));
        }
        if let Some(u) = header_user(m, "From")
            && !finals.get(&u).is_some_and(|s| (200..300).contains(s))
        {
            self.violation(format!("{now}: INVITE from {u} on {conn} without its 2xx on that connection"));
        }
    }

    /// Checks the state after a step: no leaked connection, at most one persistent one, no
    /// more calls queued than the limit; and ends the step's list of delivered INVITEs.
    pub fn after_step(&mut self, core: &Core, net: &BTreeMap<ConnId, NetState>) {
        self.invites_delivered.clear();
        let known: BTreeSet<ConnId> = core.connections().map(|(id, _, _)| id).collect();
        for (id, state) in net {
            if *state != NetState::Closed && !known.contains(id) {
                self.violation(format!("{id} is open on the network but the core forgot it"));
            }
        }
        // One persistent connection, or the attempts of one race (one server, none up).
        let flows: Vec<(ConnId, bool)> =
            core.connections().filter(|(_, p, _)| *p == ConnPurpose::Flow).map(|(id, _, up)| (id, up)).collect();
        let one_race = flows.iter().all(|(id, up)| !up && flows.first().is_some_and(|(f, _)| f.server == id.server));
        if flows.len() > 1 && !one_race {
            let flows = flows.len();
            self.violation(format!("{flows} persistent connections tracked at once"));
        }
        if !self.persistent && !flows.is_empty() {
            self.violation("a persistent connection in per-call TLS mode".to_owned());
        }
        // Calls wait for a connection only in Persistent TLS (per-call TLS opens one each).
        let queued = core.queued_calls();
        if self.persistent && queued > self.call_queue_limit {
            let limit = self.call_queue_limit;
            self.violation(format!("{queued} calls queued, beyond the limit of {limit}"));
        }
    }

    /// At the end of a run: every placed call got exactly one outcome.
    pub fn check_every_call_finished(&mut self) {
        let missing: Vec<CallId> = self.placed.iter().filter(|c| !self.outcomes.contains_key(c)).copied().collect();
        if !missing.is_empty() {
            self.violation(format!("calls without an outcome: {missing:?}"));
        }
    }

    /// Outcomes given so far.
    pub fn outcome_count(&self) -> usize {
        self.outcomes.values().map(|n| *n as usize).sum()
    }
}

fn first_line(data: &[u8]) -> String {
    let end = data.iter().position(|b| *b == b'\r' || *b == b'\n').unwrap_or(data.len()).min(80);
    String::from_utf8_lossy(&data[..end]).into_owned()
}
