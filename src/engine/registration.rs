//! Registration of every account: REGISTER on each new connection, digest challenges,
//! 423 Min-Expires, refresh by the Aastra renewal rule, retry timers, de-registration.

use super::bugs::Bug;
use super::io::{ConnPurpose, Event, RegError, RegState};
use super::message::{ALLOW, USER_AGENT, aor, contact_uri, name_addr};
use super::timer::{RegTimer, Timer};
use super::transaction::ClientTx;
use super::{Core, Phase};
use crate::config::{Config, TransportMode};
use crate::ids::{AccountId, ConnId, Server};
use crate::rng::Rng;
use crate::sip::Message;
use crate::sip::digest::{self, Challenge};
use crate::sip::headers::{NameAddr, parse_u32};
use crate::time::{Duration, Instant};

/// Registration lifetime assumed when neither we nor the registrar named one.
const DEFAULT_EXPIRES: u32 = 3600;

/// REGISTERs that server answers alone may cause per account in any [`PACING_WINDOW`]
/// (challenge answers, 423 retries, refreshes, retries after a failure). With the one
/// REGISTER a new connection sends, an account never sends more than six in a minute
/// whatever a server answers.
const ANSWER_DRIVEN_PER_WINDOW: usize = 5;
const PACING_WINDOW: Duration = Duration::from_secs(60);

/// The longest `Retry-After` honoured; a longer one is capped, so that a server that
/// later answers well is never given up on.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Stage {
    Idle,
    Registering,
    Registered { server: Server, conn: ConnId },
    RetryWait,
    Rejected,
    Unregistering,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Register,
    Unregister,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RegTx {
    tx: ClientTx,
    kind: Kind,
    with_auth: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct AuthCache {
    challenge: Challenge,
    proxy: bool,
    nc: u32,
}

/// One account's registration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Account {
    state: Stage,
    /// One Call-ID per registrar (primary, backup), kept for the phone's life.
    call_ids: [String; 2],
    from_tag: String,
    cseq: u32,
    tx: Option<RegTx>,
    auth: Option<AuthCache>,
    /// The proxy's last INVITE challenge: later INVITEs carry credentials at once, saving
    /// the 407 round trip on every call (the proxy challenges again if the nonce is stale).
    invite_auth: Option<AuthCache>,
    /// Consecutive challenges answered without success.
    challenges: u8,
    /// Raised by 423 Min-Expires.
    min_expires: Option<u32>,
    interval_tries: u8,
    /// Registrars that rejected the account (403, 404, 603, 604), by [`Server::index`],
    /// with the time from which a REGISTER may be tried there again
    /// (`sip registration retry timer` after the rejection).
    rejected_by: [Option<Instant>; 2],
    /// When the last answer-driven REGISTERs went out (at most
    /// [`ANSWER_DRIVEN_PER_WINDOW`], oldest first): the pacing floor.
    answer_driven: Vec<Instant>,
    /// The account has a final outcome for the current connection's first round.
    round_done: bool,
    /// Per-call TLS: the server the current exchange uses, and its pending request.
    exchange_server: Server,
    pending: Option<Kind>,
}

impl Account {
    pub fn new(rng: &mut Rng) -> Account {
        Account {
            state: Stage::Idle,
            call_ids: [rng.hex(20), rng.hex(20)],
            from_tag: rng.hex(12),
            cseq: 0,
            tx: None,
            auth: None,
            invite_auth: None,
            challenges: 0,
            min_expires: None,
            interval_tries: 0,
            rejected_by: [None; 2],
            answer_driven: Vec::new(),
            round_done: false,
            exchange_server: Server::Primary,
            pending: None,
        }
    }

    pub fn public_state(&self) -> RegState {
        match self.state {
            Stage::Idle => RegState::Unregistered,
            Stage::Registering => RegState::Registering,
            Stage::Registered { server, .. } => RegState::Registered { server },
            Stage::RetryWait => RegState::RetryWait,
            Stage::Rejected => RegState::Rejected,
            Stage::Unregistering => RegState::Unregistering,
        }
    }

    /// Remembers the challenge an INVITE of this account drew.
    pub fn remember_invite_challenge(&mut self, challenge: Challenge, proxy: bool) {
        self.invite_auth = Some(AuthCache { challenge, proxy, nc: 0 });
    }

    /// The cached INVITE challenge with its next nonce count, if any.
    pub fn next_invite_credentials(&mut self) -> Option<(Challenge, bool, u32)> {
        let a = self.invite_auth.as_mut()?;
        a.nc = a.nc.wrapping_add(1);
        Some((a.challenge.clone(), a.proxy, a.nc))
    }

    /// A REGISTER of this account is in flight on `conn`.
    pub fn uses(&self, conn: ConnId) -> bool {
        self.tx.as_ref().is_some_and(|t| t.tx.conn == conn)
    }

    pub fn is_unregistering(&self) -> bool {
        self.state == Stage::Unregistering
    }

    /// Registered on `conn`.
    pub fn registered_on(&self, conn: ConnId) -> bool {
        matches!(self.state, Stage::Registered { conn: c, .. } if c == conn)
    }

    /// The first round on the current connection has an outcome for this account.
    pub fn round_done(&self) -> bool {
        self.round_done
    }

    /// Rejected by `server` (and not accepted there since).
    pub fn rejected_by(&self, server: Server) -> bool {
        self.rejected_by[server.index()].is_some()
    }

    /// When the next answer-driven REGISTER may go out: `None` for now.
    fn paced_until(&self, now: Instant, no_pacing: bool) -> Option<Instant> {
        if no_pacing || self.answer_driven.len() < ANSWER_DRIVEN_PER_WINDOW {
            return None;
        }
        let oldest = self.answer_driven[self.answer_driven.len() - ANSWER_DRIVEN_PER_WINDOW];
        // A clock read in whole milliseconds stamps a request sent anywhere in
        // `[oldest, oldest + 1 ms)`: the window is counted from the end of that millisecond,
        // so that no real minute holds one REGISTER too many.
        let allowed = oldest + PACING_WINDOW + Duration::from_millis(1);
        (allowed > now).then_some(allowed)
    }

    fn note_answer_driven(&mut self, now: Instant) {
        self.answer_driven.push(now);
        if self.answer_driven.len() > ANSWER_DRIVEN_PER_WINDOW {
            self.answer_driven.remove(0);
        }
    }

    /// Forgets everything tied to a connection (its timers are the caller's to stop).
    fn drop_connection_state(&mut self) {
        self.state = if self.state == Stage::Rejected { Stage::Rejected } else { Stage::Idle };
        self.tx = None;
        self.round_done = false;
        self.pending = None;
    }

    /// Forgets everything but what the account learnt (shutdown finished).
    pub fn reset_all(&mut self) {
        self.drop_connection_state();
        self.state = Stage::Idle;
    }
}

/// The three timers of account `i`.
fn reg_timer(i: usize, t: RegTimer) -> Timer {
    Timer::Registration(AccountId(i as u8), t)
}

/// When to refresh a binding granted for `expires` seconds: the later of half-way and
/// `renewal` seconds before expiry (the Aastra rule of firmware 3.2.2 and later).
pub fn refresh_delay(expires: u32, renewal: u32) -> Duration {
    let half = u64::from(expires) * 500;
    let before = u64::from(expires.saturating_sub(renewal)) * 1000;
    Duration::from_millis(half.max(before))
}

impl Core {
    /// Forgets account `i`'s state tied to a connection, and its timers.
    fn drop_account_connection_state(&mut self, i: usize) {
        self.accounts[i].drop_connection_state();
        self.stop_account_timers(i);
    }

    fn stop_account_timers(&mut self, i: usize) {
        for t in [RegTimer::Transaction, RegTimer::Refresh, RegTimer::Retry] {
            self.timers.stop(reg_timer(i, t));
        }
    }

    /// Registers every account on a connection that just came up.
    pub(super) fn register_all_on_flow(&mut self, conn: ConnId) {
        let forget_rejections = self.planted(Bug::RejectionForgottenOnReconnect);
        for i in 0..self.accounts.len() {
            self.drop_account_connection_state(i);
            let a = &mut self.accounts[i];
            a.challenges = 0;
            a.interval_tries = 0;
            if let Some(until) = a.rejected_by[conn.server.index()]
                && until > self.now
                && !forget_rejections
            {
                a.state = Stage::Rejected;
                a.round_done = true;
                self.timers.set(reg_timer(i, RegTimer::Retry), until);
                continue;
            }
            if self.planted_skips_reregistration(conn.server, i) {
                self.accounts[i].round_done = true;
                continue;
            }
            self.send_register(i, conn, Kind::Register);
        }
    }

    /// Per-call TLS: starts a registration exchange on a connection of its own.
    pub(super) fn start_registration(&mut self, account: AccountId) {
        let i = usize::from(account.0);
        let Some(a) = self.accounts.get_mut(i) else { return };
        if a.tx.is_some() || a.pending.is_some() {
            return;
        }
        a.pending = Some(Kind::Register);
        a.exchange_server = Server::Primary;
        if a.state != Stage::Rejected {
            a.state = Stage::Registering;
        }
        self.connect(Server::Primary, ConnPurpose::Register(account));
    }

    fn send_register(&mut self, i: usize, conn: ConnId, kind: Kind) {
        let Some(acfg) = self.config.accounts.get(i).cloned() else { return };
        let account = AccountId(i as u8);
        let server = conn.server;
        let domain_uri =
            format!("{}:{}", super::message::scheme(&self.config), super::message::domain(&self.config, server));
        let aor = aor(&self.config, account, server);
        let contact = contact_uri(&self.config, account, self.local_of(conn));
        let expires = match kind {
            Kind::Unregister => 0,
            Kind::Register => {
                let p = self.config.period_for(i);
                self.accounts[i].min_expires.map_or(p, |m| p.max(m))
            }
        };
        let (mut m, branch) = self.base_request("REGISTER", &domain_uri, conn);
        let a = &mut self.accounts[i];
        a.cseq = a.cseq.wrapping_add(1);
        let cseq = a.cseq;
        m.push_header("From", name_addr(&acfg.display_name, &aor, Some(&a.from_tag)));
        m.push_header("To", name_addr(&acfg.display_name, &aor, None));
        m.push_header("Call-ID", a.call_ids[server.index()].clone());
        m.push_header("CSeq", format!("{cseq} REGISTER"));
        let mut contact_value = format!("<{contact}>");
        if self.config.outbound {
            contact_value.push_str(&format!(";+sip.instance=\"<{}>\";reg-id=1", self.instance_id));
        }
        m.push_header("Contact", contact_value);
        if expires > 0 || kind == Kind::Unregister {
            m.push_header("Expires", expires.to_string());
        }
        if self.config.outbound {
            m.push_header("Supported", "outbound, path");
        }
        m.push_header("Allow", ALLOW);
        m.push_header("User-Agent", USER_AGENT);
        let mut with_auth = false;
        if let Some(auth) = self.accounts[i].auth.as_mut() {
            auth.nc = auth.nc.wrapping_add(1);
            let (ch, nc, proxy) = (auth.challenge.clone(), auth.nc, auth.proxy);
            let cnonce = self.rng.hex(16);
            let value =
                digest::authorization(&ch, acfg.digest_user(), &acfg.password, "REGISTER", &domain_uri, nc, &cnonce);
            m.push_header(if proxy { "Proxy-Authorization" } else { "Authorization" }, value);
            with_auth = true;
        }
        self.send(conn, &m);
        self.timers.set(reg_timer(i, RegTimer::Transaction), self.now + self.config.transaction_timeout);
        self.timers.stop(reg_timer(i, RegTimer::Refresh));
        self.timers.stop(reg_timer(i, RegTimer::Retry));
        let a = &mut self.accounts[i];
        a.tx = Some(RegTx { tx: ClientTx { branch, conn, cseq }, kind, with_auth });
        a.state = match (kind, a.state) {
            (Kind::Unregister, _) => Stage::Unregistering,
            (Kind::Register, Stage::Registered { server, conn }) => Stage::Registered { server, conn },
            (Kind::Register, _) => Stage::Registering,
        };
    }

    /// Handles a response if it belongs to a REGISTER; returns whether it did.
    pub(super) fn registration_response(&mut self, conn: ConnId, branch: &str, msg: &Message) -> bool {
        let Some(i) = self
            .accounts
            .iter()
            .position(|a| a.tx.as_ref().is_some_and(|t| t.tx.branch == branch && t.tx.conn == conn))
        else {
            return false;
        };
        let Some(status) = msg.status() else { return true };
        if status < 200 {
            return true;
        }
        let Some(rtx) = self.accounts[i].tx.take() else { return true };
        self.timers.stop(reg_timer(i, RegTimer::Transaction));
        let account = AccountId(i as u8);
        let server = conn.server;
        match status {
            200..=299 if rtx.kind == Kind::Unregister => {
                self.accounts[i].state = Stage::Idle;
                self.emit(Event::Unregistered { account });
                self.exchange_done(i, conn);
            }
            200..=299 => {
                if granted_lifetime(&self.config, AccountId(i as u8), self.local_of(conn), msg) == 0 {
                    // Counting it as registered would let calls go out on a binding that
                    // does not exist and refresh at once, again and again.
                    self.registration_failed(i, conn, rtx.kind, RegError::NoLifetime(status), None);
                } else {
                    self.registered(i, conn, msg);
                }
            }
            401 | 407 => {
                let proxy = status == 407;
                let header = if proxy { "Proxy-Authenticate" } else { "WWW-Authenticate" };
                let values = msg.header_all(header);
                let challenge = digest::best_challenge(values.iter().copied());
                let planted_unbounded = self.planted(Bug::UnboundedChallenges);
                let a = &mut self.accounts[i];
                a.challenges = a.challenges.saturating_add(1);
                // Credentials failed only if the server refused the answer to the very nonce it
                // is offering again; a new nonce (another server, a restart) is a new challenge.
                let answered_nonce = a.auth.as_ref().map(|c| c.challenge.nonce.clone());
                match challenge {
                    Some(ch)
                        if (!rtx.with_auth || ch.stale || answered_nonce.as_deref() != Some(ch.nonce.as_str()))
                            && (a.challenges <= 3 || planted_unbounded) =>
                    {
                        a.auth = Some(AuthCache { challenge: ch, proxy, nc: 0 });
                        self.send_answer_driven(i, conn, rtx.kind);
                    }
                    Some(_) => self.registration_failed(i, conn, rtx.kind, RegError::AuthenticationFailed, None),
                    None => {
                        let why = values
                            .first()
                            .map(|v| (*v).to_owned())
                            .unwrap_or_else(|| format!("{status} without a challenge"));
                        self.registration_failed(i, conn, rtx.kind, RegError::UnsupportedChallenge(why), None)
                    }
                }
            }
            423 => {
                let min = msg.header("Min-Expires").and_then(parse_u32);
                let planted_unbounded = self.planted(Bug::Unbounded423);
                let a = &mut self.accounts[i];
                a.interval_tries = a.interval_tries.saturating_add(1);
                match min {
                    Some(m) if (a.interval_tries <= 2 || planted_unbounded) && m > 0 => {
                        a.min_expires = Some(m);
                        self.send_answer_driven(i, conn, rtx.kind);
                    }
                    _ => {
                        self.registration_failed(i, conn, rtx.kind, RegError::IntervalTooBrief(min.unwrap_or(0)), None)
                    }
                }
            }
            403 | 404 | 603 | 604 if rtx.kind == Kind::Register => {
                // Not for good: `sip registration retry timer` later it is tried again,
                // so a line comes back once the server's administrator fixes it.
                let wait = Duration::from_secs(u64::from(self.config.registration_retry));
                let until = self.now + wait;
                let a = &mut self.accounts[i];
                a.rejected_by[server.index()] = Some(until);
                a.state = Stage::Rejected;
                a.round_done = true;
                self.timers.set(reg_timer(i, RegTimer::Retry), until);
                self.timers.stop(reg_timer(i, RegTimer::Refresh));
                let reason = RegError::Rejected(status);
                self.emit(Event::RegistrationFailed { account, reason, retry_in: Some(wait) });
                self.exchange_done(i, conn);
            }
            408 => self.registration_failed(i, conn, rtx.kind, RegError::Timeout, None),
            _ => {
                let after = msg
                    .header("Retry-After")
                    .and_then(parse_u32)
                    .map(|s| Duration::from_secs(u64::from(s)))
                    .filter(|_| !self.planted(Bug::IgnoreRetryAfter));
                self.registration_failed(i, conn, rtx.kind, RegError::Failed(status), after)
            }
        }
        true
    }

    fn registered(&mut self, i: usize, conn: ConnId, msg: &Message) {
        let account = AccountId(i as u8);
        let granted = if self.planted(Bug::IgnoreGrantedExpires) {
            match self.config.period_for(i) {
                0 => DEFAULT_EXPIRES,
                asked => asked,
            }
        } else {
            granted_lifetime(&self.config, account, self.local_of(conn), msg)
        };
        if let Some(ft) = msg.header("Flow-Timer").and_then(parse_u32) {
            self.flow_timer_received(conn, ft);
        }
        let renewal = self.config.registration_renewal;
        let a = &mut self.accounts[i];
        a.rejected_by[conn.server.index()] = None;
        a.challenges = 0;
        a.interval_tries = 0;
        a.round_done = true;
        let server = conn.server;
        if self.config.mode == TransportMode::PersistentTls {
            a.state = Stage::Registered { server, conn };
        } else {
            a.state = Stage::Registered { server, conn: ConnId { server, generation: 0 } };
        }
        let refresh = if self.planted(Bug::RefreshAtExpiry) {
            Duration::from_secs(u64::from(granted))
        } else {
            refresh_delay(granted, renewal)
        };
        self.timers.set(reg_timer(i, RegTimer::Refresh), self.now + refresh);
        self.emit(Event::Registered { account, server, expires: granted });
        if self.flow.conn == Some(conn) {
            // Proven, but not yet a reason to forget failed rounds: a server that accepts
            // REGISTER and then drops the connection must not get reconnects without
            // back-off. A keep-alive round (`flow_survived_keepalive`) does that.
            self.flow.proven = true;
        }
        self.exchange_done(i, conn);
    }

    fn registration_failed(&mut self, i: usize, conn: ConnId, kind: Kind, reason: RegError, after: Option<Duration>) {
        let account = AccountId(i as u8);
        if kind == Kind::Unregister {
            self.accounts[i].state = Stage::Idle;
            self.emit(Event::RegistrationFailed { account, reason, retry_in: None });
            self.exchange_done(i, conn);
            return;
        }
        let wait = after.map(|a| a.min(MAX_RETRY_AFTER)).unwrap_or_else(|| {
            let secs = match reason {
                RegError::Timeout | RegError::Transport(_) => self.config.registration_timeout_retry.max(30),
                _ => self.config.registration_retry,
            };
            Duration::from_secs(u64::from(secs))
        });
        let a = &mut self.accounts[i];
        a.state = Stage::RetryWait;
        a.round_done = true;
        // The exchange is over: the retry is a new one, with its own challenge and 423
        // allowances, and without credentials the server refused. Kept, they would make
        // every later exchange fail at its first challenge, and a server that answers well
        // again would never be registered with.
        a.challenges = 0;
        a.interval_tries = 0;
        if matches!(reason, RegError::AuthenticationFailed) {
            a.auth = None;
        }
        self.timers.set(reg_timer(i, RegTimer::Retry), self.now + wait);
        self.timers.stop(reg_timer(i, RegTimer::Refresh));
        self.emit(Event::RegistrationFailed { account, reason, retry_in: Some(wait) });
        self.exchange_done(i, conn);
    }

    /// An exchange ended: per-call TLS closes its connection; switch and shutdown may
    /// be able to proceed.
    fn exchange_done(&mut self, i: usize, conn: ConnId) {
        if self.config.mode == TransportMode::PerCallTls {
            self.accounts[i].pending = None;
            if !self.planted(Bug::KeepExchangeConnection) {
                self.release_dedicated(conn);
            }
        }
        self.maybe_finish_switch();
    }

    /// Every account's binding went with the connection.
    pub(super) fn registrations_lost(&mut self) {
        for i in 0..self.accounts.len() {
            if matches!(self.accounts[i].state, Stage::Registered { .. }) {
                self.emit(Event::RegistrationLost { account: AccountId(i as u8) });
            }
            self.drop_account_connection_state(i);
        }
    }

    /// One of account `account`'s timers fired.
    pub(super) fn on_registration_timer(&mut self, account: AccountId, timer: RegTimer) {
        let i = usize::from(account.0);
        let Some(a) = self.accounts.get(i) else { return };
        match timer {
            RegTimer::Transaction => {
                let Some(t) = a.tx.as_ref() else { return };
                let (conn, kind) = (t.tx.conn, t.kind);
                // No answer on the persistent connection: it is dead.
                if self.transaction_timed_out(conn) {
                    return;
                }
                self.accounts[i].tx = None;
                if kind == Kind::Unregister {
                    self.accounts[i].state = Stage::Idle;
                    self.exchange_done(i, conn);
                } else {
                    // No answer: the exchange's connection failed (RFC 3263 §4.3).
                    self.fail_conn(conn, super::io::FlowError::TransactionTimeout);
                }
            }
            RegTimer::Refresh | RegTimer::Retry => {
                self.timers.stop(reg_timer(i, RegTimer::Refresh));
                self.timers.stop(reg_timer(i, RegTimer::Retry));
                if !self.running() {
                    return;
                }
                if let Some(at) = self.accounts[i].paced_until(self.now, self.planted(Bug::NoRegisterPacing)) {
                    self.timers.set(reg_timer(i, RegTimer::Retry), at);
                    return;
                }
                match self.config.mode {
                    TransportMode::PersistentTls => {
                        if let Some(conn) = self.flow_up_conn() {
                            self.accounts[i].note_answer_driven(self.now);
                            self.send_register(i, conn, Kind::Register);
                        }
                    }
                    TransportMode::PerCallTls => {
                        self.accounts[i].note_answer_driven(self.now);
                        self.start_registration(account);
                    }
                }
            }
        }
    }

    /// Sends a REGISTER that a server's answer asked for (a challenge, a 423), unless the
    /// pacing floor defers it to the retry timer. A de-REGISTER is never deferred: it is
    /// bounded by the challenge limit, and failback and shutdown wait for it.
    fn send_answer_driven(&mut self, i: usize, conn: ConnId, kind: Kind) {
        if kind == Kind::Register {
            if let Some(at) = self.accounts[i].paced_until(self.now, self.planted(Bug::NoRegisterPacing)) {
                self.timers.set(reg_timer(i, RegTimer::Retry), at);
                if self.config.mode == TransportMode::PerCallTls {
                    // The retry timer starts a new exchange; this one ends here.
                    self.accounts[i].pending = None;
                    self.release_dedicated(conn);
                }
                return;
            }
            self.accounts[i].note_answer_driven(self.now);
        }
        self.send_register(i, conn, kind);
    }

    /// Sends a de-REGISTER for every registered account (shutdown, failback).
    pub(super) fn unregister_all(&mut self) {
        for i in 0..self.accounts.len() {
            let Stage::Registered { .. } = self.accounts[i].state else {
                if !matches!(self.accounts[i].state, Stage::Rejected) {
                    let a = &mut self.accounts[i];
                    if a.tx.as_ref().is_some_and(|t| t.kind == Kind::Register) || a.pending.is_some() {
                        continue;
                    }
                    a.state = Stage::Idle;
                    self.timers.stop(reg_timer(i, RegTimer::Refresh));
                    self.timers.stop(reg_timer(i, RegTimer::Retry));
                }
                continue;
            };
            match self.config.mode {
                TransportMode::PersistentTls => {
                    if let Some(conn) = self.flow.conn.filter(|c| self.conn_is_up(*c)) {
                        self.send_register(i, conn, Kind::Unregister);
                    }
                }
                TransportMode::PerCallTls => {
                    self.timers.stop(reg_timer(i, RegTimer::Refresh));
                    self.timers.stop(reg_timer(i, RegTimer::Retry));
                    let a = &mut self.accounts[i];
                    a.pending = Some(Kind::Unregister);
                    a.exchange_server = Server::Primary;
                    a.state = Stage::Unregistering;
                    self.connect(Server::Primary, ConnPurpose::Register(AccountId(i as u8)));
                }
            }
        }
    }

    /// Per-call TLS: the exchange's connection is up; send what waits.
    pub(super) fn dedicated_register_connected(&mut self, account: AccountId, conn: ConnId) {
        let i = usize::from(account.0);
        match self.accounts.get(i).and_then(|a| a.pending) {
            Some(kind) if self.accounts[i].tx.is_none() => self.send_register(i, conn, kind),
            _ => self.close_conn(conn),
        }
    }

    /// Per-call TLS: the exchange's connection failed; try the backup once, then wait.
    pub(super) fn dedicated_register_failed(&mut self, account: AccountId, conn: ConnId, reason: super::io::FlowError) {
        let i = usize::from(account.0);
        let can_fail_over = self.config.backup_proxy.is_some() && self.running();
        let Some(a) = self.accounts.get_mut(i) else { return };
        let Some(kind) = a.pending else { return };
        a.tx = None;
        self.timers.stop(reg_timer(i, RegTimer::Transaction));
        if a.exchange_server == Server::Primary && can_fail_over {
            a.exchange_server = Server::Backup;
            self.connect(Server::Backup, ConnPurpose::Register(account));
            return;
        }
        a.pending = None;
        let reason = match reason {
            super::io::FlowError::Transport(t) => RegError::Transport(t),
            _ => RegError::Timeout,
        };
        self.registration_failed(i, conn, kind, reason, None);
    }

    /// Shutdown can finish once no de-REGISTER waits for its answer.
    pub(super) fn shutdown_done(&self) -> bool {
        self.phase == Phase::ShuttingDown
            && !self.accounts.iter().any(|a| a.is_unregistering())
            && self.calls.is_empty()
    }

    /// True once every account has an outcome for the flow's first round.
    pub(super) fn round_complete(&self) -> bool {
        self.accounts.iter().all(Account::round_done)
    }

    /// The account is registered on `conn`.
    pub(super) fn account_registered_on(&self, account: AccountId, conn: ConnId) -> bool {
        self.accounts.get(usize::from(account.0)).is_some_and(|a| a.registered_on(conn))
    }

    /// The account is rejected for good by `server`.
    pub(super) fn account_rejected_by(&self, account: AccountId, server: Server) -> bool {
        self.accounts.get(usize::from(account.0)).is_some_and(|a| a.rejected_by(server))
    }
}

/// The lifetime a 2xx granted account `account`'s Contact; the period asked for (or the
/// default) when the answer does not say.
fn granted_lifetime(config: &Config, account: AccountId, local: core::net::SocketAddr, msg: &Message) -> u32 {
    let local_contact = contact_uri(config, account, local);
    let requested = config.period_for(usize::from(account.0));
    granted_expires(msg, &local_contact).unwrap_or(if requested > 0 { requested } else { DEFAULT_EXPIRES })
}

/// The lifetime granted to our Contact: its `expires` parameter, else the Expires header.
fn granted_expires(msg: &Message, our_contact: &str) -> Option<u32> {
    let contacts = msg.header_values("Contact");
    let ours = contacts.iter().filter_map(|v| NameAddr::parse(v)).find(|n| uri_eq(&n.uri, our_contact));
    if let Some(e) = ours.and_then(|n| n.param("expires").flatten().and_then(parse_u32)) {
        return Some(e);
    }
    if contacts.len() == 1
        && let Some(e) = NameAddr::parse(contacts[0]).and_then(|n| n.param("expires").flatten().and_then(parse_u32))
    {
        return Some(e);
    }
    msg.header("Expires").and_then(parse_u32)
}

/// Compares Contact URIs the way registrars echo them: scheme, user and host:port,
/// ignoring URI parameters.
fn uri_eq(a: &str, b: &str) -> bool {
    let strip = |s: &str| s.split(';').next().unwrap_or("").to_ascii_lowercase();
    strip(a) == strip(b)
}

#[cfg(any(test, feature = "sim"))]
impl Account {
    /// The raw parts the decision view abstracts (see `view.rs`).
    pub(super) fn parts(&self) -> super::view::AccountParts {
        super::view::AccountParts {
            state: self.public_state(),
            registered_on: match self.state {
                Stage::Registered { conn, .. } => Some(conn),
                _ => None,
            },
            tx: self.tx.as_ref().map(|t| (t.kind == Kind::Unregister, t.with_auth, t.tx.conn)),
            has_auth: self.auth.is_some(),
            has_invite_auth: self.invite_auth.is_some(),
            challenges: self.challenges,
            min_expires: self.min_expires,
            interval_tries: self.interval_tries,
            rejected_by: self.rejected_by.map(|r| r.is_some()),
            round_done: self.round_done,
        }
    }
}
