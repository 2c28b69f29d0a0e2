//! Calls: placing them (queued while no connection is usable), answering, rejecting and
//! hanging up, the INVITE/ACK/CANCEL/BYE exchanges, and incoming requests. Every placed
//! call gets exactly one [`CallOutcome`].

use super::bugs::Bug;
use super::io::{CallFailure, CallOutcome, CommandError, ConnPurpose, EndReason, Event, FlowError};
use super::message::{ALLOW, USER_AGENT, aor, contact_uri, name_addr, response_to, scheme, tag_of};
use super::stats::{CallInfo, CallStage};
use super::timer::Timer;
use super::transaction::ClientTx;
use super::{Core, Phase};
use crate::config::TransportMode;
use crate::ids::{AccountId, CallId, ConnId, Server};
use crate::sip::Message;
use crate::sip::digest;
use crate::sip::headers::{NameAddr, uri_user};
use crate::time::{Duration, Instant};
use core::net::SocketAddr;

mod dialog_move;

/// How long a call may ring without a final answer (RFC 3261 Timer C).
const NO_ANSWER: Duration = Duration::from_secs(180);
/// How long we wait for the ACK of our 2xx (64·T1).
const ACK_WAIT: Duration = Duration::from_secs(32);

/// Where a call is. Every state but `Established` and `Ringing` is bounded by the
/// call's one timer, [`Timer::Call`], whose meaning the state gives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum State {
    /// Waiting for a usable connection and registration (Persistent TLS); the timer is
    /// the call's setup deadline.
    Queued,
    /// Per-call TLS: waiting for the call's own connection; the timer is the setup
    /// deadline.
    Connecting { server: Server },
    /// INVITE sent. Until a provisional response (`ringing`) the timer is the INVITE
    /// transaction's; then it is the no-answer deadline.
    Calling { tx: ClientTx, ringing: bool, cancel_wanted: bool },
    /// The outcome is given; waiting for the INVITE's final response to ACK it.
    Cancelling { tx: ClientTx },
    /// Dialog established. The timer is armed only while no connection carries it
    /// (the orphaned-call timeout).
    Established,
    /// Ended from our side; the BYE is out (or waits for a connection).
    Ending { bye: Option<ClientTx> },
    /// Incoming INVITE waiting for the application (its body dropped); the timer is
    /// the ringing timeout.
    Ringing { invite: Message },
    /// We answered; waiting for the ACK.
    AwaitAck,
    /// Established, and being moved onto the new persistent connection by a re-INVITE
    /// (`dialog_move.rs`): the timer is the re-INVITE's transaction timeout, or, with no
    /// re-INVITE out (`tx: None`), the random wait after a glare (491).
    Moving { tx: Option<ClientTx> },
}

/// One call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Call {
    id: CallId,
    account: AccountId,
    outgoing: bool,
    state: State,
    /// The connection carrying the dialog (`None` while no connection is usable).
    conn: Option<ConnId>,
    target: String,
    request_uri: String,
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    local_uri: String,
    remote_uri: String,
    cseq: u32,
    invite_via: String,
    remote_target: Option<String>,
    route_set: Vec<String>,
    body: Vec<u8>,
    /// The address of the connection the call lost, while it waits to move.
    lost_addr: Option<SocketAddr>,
    /// The Request-URI of the move's re-INVITE (its non-2xx ACK repeats it).
    move_uri: String,
    /// The move under way was challenged once (401/407) and sent again with credentials:
    /// a second challenge ends it.
    move_challenged: bool,
    challenged: bool,
    /// The challenge to answer in the next INVITE (kept only for that retry).
    challenge: Option<(digest::Challenge, bool)>,
    outcome_given: bool,
}

impl Call {
    #[cfg(any(test, feature = "sim"))]
    pub fn id(&self) -> CallId {
        self.id
    }

    /// The call's dialog runs on `conn`.
    pub fn uses(&self, conn: ConnId) -> bool {
        self.conn == Some(conn)
    }

    /// The connection being opened for the call is now `new` (the next address of its
    /// server, after `old` failed to connect).
    pub fn reconnecting(&mut self, old: ConnId, new: ConnId) {
        if self.conn == Some(old) {
            self.conn = Some(new);
        }
    }

    pub fn is_queued(&self) -> bool {
        matches!(self.state, State::Queued)
    }

    /// The call as the phone's status shows it.
    pub fn info(&self) -> CallInfo {
        let stage = match &self.state {
            State::Queued => CallStage::Queued,
            State::Connecting { .. } => CallStage::Connecting,
            State::Calling { ringing: false, .. } => CallStage::Calling,
            State::Calling { ringing: true, .. } | State::Ringing { .. } => CallStage::Ringing,
            State::AwaitAck => CallStage::Answering,
            State::Established | State::Moving { .. } => CallStage::Established,
            State::Cancelling { .. } | State::Ending { .. } => CallStage::Ending,
        };
        // An incoming call's party is its From header: the URI alone, without the tag.
        let peer = match self.outgoing {
            true => self.target.clone(),
            false => NameAddr::parse(&self.remote_uri).map_or_else(|| self.remote_uri.clone(), |n| n.uri),
        };
        CallInfo { call: self.id, account: self.account, outgoing: self.outgoing, stage, peer }
    }
}

/// A call target must be a user name, `user@host`, or a `sip:`/`sips:` URI.
fn valid_target(t: &str) -> bool {
    !t.is_empty() && !t.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
}

impl Core {
    /// Places a call from `account` to `target` (a user name, `user@host`, or a URI) with
    /// an optional SDP offer. The call's one outcome arrives as [`Event::CallOutcome`].
    pub fn place_call(
        &mut self,
        now: Instant,
        account: AccountId,
        target: &str,
        sdp: Vec<u8>,
    ) -> Result<CallId, CommandError> {
        self.advance(now);
        if !self.running() {
            return Err(CommandError::NotRunning);
        }
        if usize::from(account.0) >= self.accounts.len() {
            return Err(CommandError::UnknownAccount(account));
        }
        if !valid_target(target) {
            return Err(CommandError::InvalidTarget(target.to_owned()));
        }
        self.next_call = self.next_call.wrapping_add(1);
        let id = CallId(self.next_call);
        let call_id = self.new_token();
        let local_tag = self.new_token();
        let queued = self.calls.iter().filter(|c| c.is_queued()).count();
        let state = match self.config.mode {
            TransportMode::PersistentTls => State::Queued,
            TransportMode::PerCallTls => State::Connecting { server: Server::Primary },
        };
        let call = Call {
            id,
            account,
            outgoing: true,
            state,
            conn: None,
            target: target.to_owned(),
            request_uri: String::new(),
            call_id,
            local_tag,
            remote_tag: None,
            local_uri: String::new(),
            remote_uri: String::new(),
            cseq: 0,
            invite_via: String::new(),
            remote_target: None,
            route_set: Vec::new(),
            body: sdp,
            lost_addr: None,
            move_uri: String::new(),
            move_challenged: false,
            challenged: false,
            challenge: None,
            outcome_given: false,
        };
        if self.config.mode == TransportMode::PersistentTls
            && queued >= usize::from(self.config.call_queue_limit)
            && !self.planted(Bug::NoCallQueueLimit)
        {
            self.emit(Event::CallOutcome { call: id, outcome: CallOutcome::Failed(CallFailure::QueueFull) });
            return Ok(id);
        }
        self.calls.push(call);
        self.timers.set(Timer::Call(id), now + self.config.call_setup_timeout);
        if self.config.mode == TransportMode::PerCallTls
            && let Some(conn) = self.connect(Server::Primary, ConnPurpose::Call(id))
            && let Some(c) = self.calls.last_mut()
        {
            c.conn = Some(conn);
        }
        self.after_input();
        Ok(id)
    }

    /// Answers an incoming call with an optional SDP answer.
    pub fn answer(&mut self, now: Instant, call: CallId, sdp: Vec<u8>) -> Result<(), CommandError> {
        self.advance(now);
        let i = self.ringing_call(call)?;
        let State::Ringing { invite } = self.calls[i].state.clone() else {
            return Err(CommandError::UnknownCall(call));
        };
        let conn = self.calls[i].conn.ok_or(CommandError::UnknownCall(call))?;
        let mut resp = response_to(&invite, 200, "OK", Some(&self.calls[i].local_tag));
        let contact = contact_uri(&self.config, self.calls[i].account, self.local_of(conn));
        resp.push_header("Contact", format!("<{contact}>"));
        resp.push_header("Allow", ALLOW);
        if !sdp.is_empty() {
            resp.set_body("application/sdp", sdp.clone());
        }
        self.send(conn, &resp);
        let c = &mut self.calls[i];
        c.body = sdp;
        c.state = State::AwaitAck;
        self.timers.set(Timer::Call(call), self.now + ACK_WAIT);
        self.after_input();
        Ok(())
    }

    /// Rejects an incoming call with a final status (4xx-6xx; others become 603).
    pub fn reject(&mut self, now: Instant, call: CallId, status: u16) -> Result<(), CommandError> {
        self.advance(now);
        let i = self.ringing_call(call)?;
        let status = if (400..700).contains(&status) { status } else { 603 };
        self.refuse_incoming(i, status, EndReason::Rejected);
        self.after_input();
        Ok(())
    }

    /// Ends a call: cancels it while it is set up, sends BYE once established, rejects it
    /// while it rings.
    pub fn hang_up(&mut self, now: Instant, call: CallId) -> Result<(), CommandError> {
        self.advance(now);
        let i = self.calls.iter().position(|c| c.id == call).ok_or(CommandError::UnknownCall(call))?;
        match self.calls[i].state.clone() {
            State::Queued | State::Connecting { .. } => {
                self.outcome(i, CallOutcome::Failed(CallFailure::Cancelled));
                self.remove_call(i);
            }
            State::Calling { tx, ringing, .. } => {
                self.outcome(i, CallOutcome::Failed(CallFailure::Cancelled));
                if ringing || self.planted(Bug::CancelBeforeProvisional) {
                    self.send_cancel(i, tx);
                } else if let State::Calling { cancel_wanted, .. } = &mut self.calls[i].state {
                    // RFC 3261 §9.1: no CANCEL before a provisional response.
                    *cancel_wanted = true;
                }
            }
            State::Established | State::AwaitAck | State::Moving { .. } => {
                self.emit(Event::CallEnded { call, reason: EndReason::LocalHangup });
                self.start_bye(i);
            }
            State::Ringing { .. } => self.refuse_incoming(i, 603, EndReason::Rejected),
            State::Cancelling { .. } | State::Ending { .. } => return Err(CommandError::UnknownCall(call)),
        }
        self.after_input();
        Ok(())
    }

    fn ringing_call(&self, call: CallId) -> Result<usize, CommandError> {
        self.calls
            .iter()
            .position(|c| c.id == call && matches!(c.state, State::Ringing { .. }))
            .ok_or(CommandError::UnknownCall(call))
    }

    /// Gives a placed call its one outcome.
    fn outcome(&mut self, i: usize, outcome: CallOutcome) {
        let c = &mut self.calls[i];
        if c.outcome_given || !c.outgoing {
            return;
        }
        c.outcome_given = true;
        let call = c.id;
        self.emit(Event::CallOutcome { call, outcome });
    }

    fn remove_call(&mut self, i: usize) {
        let c = self.calls.remove(i);
        self.timers.stop(Timer::Call(c.id));
        if self.config.mode == TransportMode::PerCallTls
            && let Some(conn) = c.conn
        {
            self.release_dedicated(conn);
        }
    }

    /// Sends queued INVITEs and pending BYEs once the connection is up and every account
    /// has been registered on it again.
    pub(super) fn release_queued_calls(&mut self) {
        if self.config.mode != TransportMode::PersistentTls {
            return;
        }
        let Some(conn) = self.flow_up_conn() else { return };
        if !self.round_complete() {
            return;
        }
        let mut i = 0;
        while i < self.calls.len() {
            let c = &self.calls[i];
            match c.state {
                State::Queued if self.account_registered_on(c.account, conn) => {
                    if self.planted_drops_queued_call(i) {
                        self.calls.remove(i);
                        continue;
                    }
                    self.calls[i].conn = Some(conn);
                    self.send_invite(i, conn);
                }
                State::Queued if self.account_rejected_by(c.account, conn.server) => {
                    self.outcome(i, CallOutcome::Failed(CallFailure::AccountUnavailable));
                    self.remove_call(i);
                    continue;
                }
                State::Ending { bye: None, .. } => {
                    self.calls[i].conn = Some(conn);
                    self.send_bye(i, conn);
                }
                State::Established if c.conn.is_none() && self.account_registered_on(c.account, conn) => {
                    self.move_dialog(i, conn);
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn build_request_uri(&self, target: &str, server: Server) -> String {
        if target.starts_with("sip:") || target.starts_with("sips:") {
            target.to_owned()
        } else if target.contains('@') {
            format!("{}:{}", scheme(&self.config), target)
        } else {
            format!("{}:{}@{}", scheme(&self.config), target, super::message::domain(&self.config, server))
        }
    }

    fn send_invite(&mut self, i: usize, conn: ConnId) {
        let server = conn.server;
        let account = self.calls[i].account;
        let ruri = self.build_request_uri(&self.calls[i].target.clone(), server);
        let local_uri = aor(&self.config, account, server);
        let display =
            self.config.accounts.get(usize::from(account.0)).map(|a| a.display_name.clone()).unwrap_or_default();
        let mut contact = format!("<{}", contact_uri(&self.config, account, self.local_of(conn)));
        if self.config.outbound {
            contact.push_str(";ob");
        }
        contact.push('>');
        let (mut m, branch) = self.base_request("INVITE", &ruri, conn);
        let c = &mut self.calls[i];
        c.cseq = c.cseq.wrapping_add(1);
        c.request_uri = ruri.clone();
        c.local_uri = name_addr(&display, &local_uri, Some(&c.local_tag));
        c.remote_uri = name_addr("", &ruri, None);
        m.push_header("From", c.local_uri.clone());
        m.push_header("To", c.remote_uri.clone());
        m.push_header("Call-ID", c.call_id.clone());
        m.push_header("CSeq", format!("{} INVITE", c.cseq));
        m.push_header("Contact", contact);
        m.push_header("Allow", ALLOW);
        if self.config.outbound {
            m.push_header("Supported", "outbound");
        }
        m.push_header("User-Agent", USER_AGENT);
        let cseq = c.cseq;
        let body = c.body.clone();
        if let Some((value, proxy)) = self.invite_credentials(i, &ruri) {
            m.push_header(if proxy { "Proxy-Authorization" } else { "Authorization" }, value);
        }
        if !body.is_empty() {
            m.set_body("application/sdp", body);
        }
        self.calls[i].invite_via = m.top_via().unwrap_or_default().to_owned();
        self.send(conn, &m);
        let c = &mut self.calls[i];
        c.state = State::Calling { tx: ClientTx { branch, conn, cseq }, ringing: false, cancel_wanted: false };
        let id = c.id;
        self.timers.set(Timer::Call(id), self.now + self.config.transaction_timeout);
    }

    /// Credentials for an INVITE: the challenge this call just drew, else the one the
    /// account's last INVITE drew (with the next nonce count), else none.
    fn invite_credentials(&mut self, i: usize, ruri: &str) -> Option<(String, bool)> {
        let a = usize::from(self.calls[i].account.0);
        let kept = !self.planted(Bug::NoInviteCredentialsInAdvance);
        let (challenge, proxy, nc) = match self.calls[i].challenge.take() {
            Some((ch, proxy)) => {
                self.accounts.get_mut(a)?.remember_invite_challenge(ch, proxy);
                self.accounts.get_mut(a)?.next_invite_credentials()?
            }
            None => self.accounts.get_mut(a)?.next_invite_credentials().filter(|_| kept)?,
        };
        let acct = self.config.accounts.get(a)?.clone();
        let cnonce = self.rng.hex(16);
        Some((
            digest::authorization(&challenge, acct.digest_user(), &acct.password, "INVITE", ruri, nc, &cnonce),
            proxy,
        ))
    }

    /// Keeps the challenge of a 401 or 407 answer for the call's next INVITE; false when
    /// the answer carries none.
    fn keep_challenge(&mut self, i: usize, msg: &Message, status: u16) -> bool {
        let header = if status == 407 { "Proxy-Authenticate" } else { "WWW-Authenticate" };
        match digest::best_challenge(msg.header_all(header)) {
            Some(challenge) => {
                self.calls[i].challenge = Some((challenge, status == 407));
                true
            }
            None => false,
        }
    }

    fn send_ack(&mut self, i: usize, conn: ConnId, resp: &Message, success: bool) {
        let c = &self.calls[i];
        let to = resp.header("To").unwrap_or(&c.remote_uri).to_owned();
        let cseq = c.cseq;
        let mut m = if success {
            let uri = c.remote_target.clone().unwrap_or_else(|| c.request_uri.clone());
            self.base_request("ACK", &uri, conn).0
        } else {
            // A non-2xx ACK belongs to the INVITE transaction: same Via, same URI.
            let mut m = Message::request("ACK", &c.request_uri);
            m.push_header("Via", c.invite_via.clone());
            m.push_header("Max-Forwards", "70");
            m
        };
        let c = &self.calls[i];
        if success {
            for r in &c.route_set {
                m.push_header("Route", r.clone());
            }
        }
        m.push_header("From", c.local_uri.clone());
        m.push_header("To", to);
        m.push_header("Call-ID", c.call_id.clone());
        m.push_header("CSeq", format!("{cseq} ACK"));
        self.send(conn, &m);
    }

    fn send_cancel(&mut self, i: usize, invite: ClientTx) {
        let c = &self.calls[i];
        let mut m = Message::request("CANCEL", &c.request_uri);
        m.push_header("Via", c.invite_via.clone());
        m.push_header("Max-Forwards", "70");
        m.push_header("From", c.local_uri.clone());
        m.push_header("To", c.remote_uri.clone());
        m.push_header("Call-ID", c.call_id.clone());
        m.push_header("CSeq", format!("{} CANCEL", c.cseq));
        let conn = invite.conn;
        if self.conn_is_up(conn) {
            self.send(conn, &m);
        }
        self.calls[i].state = State::Cancelling { tx: invite };
        let id = self.calls[i].id;
        self.timers.set(Timer::Call(id), self.now + self.config.transaction_timeout.saturating_mul(2));
    }

    /// Ends an established dialog from our side (event already emitted).
    fn start_bye(&mut self, i: usize) {
        self.calls[i].state = State::Ending { bye: None };
        let id = self.calls[i].id;
        self.timers.set(Timer::Call(id), self.now + self.config.call_setup_timeout);
        let conn = match self.config.mode {
            TransportMode::PersistentTls => self.flow_up_conn(),
            TransportMode::PerCallTls => self.calls[i].conn.filter(|c| self.conn_is_up(*c)),
        };
        if let Some(conn) = conn {
            self.calls[i].conn = Some(conn);
            self.send_bye(i, conn);
        }
    }

    /// A request inside call `i`'s dialog on `conn`: its remote target, route set, tags,
    /// Call-ID and the next CSeq. Returns the request, its branch and its Request-URI.
    fn in_dialog_request(&mut self, i: usize, method: &str, conn: ConnId) -> (Message, String, String) {
        let c = &self.calls[i];
        let uri = c.remote_target.clone().unwrap_or_else(|| c.request_uri.clone());
        let (mut m, branch) = self.base_request(method, &uri, conn);
        let c = &mut self.calls[i];
        c.cseq = c.cseq.wrapping_add(1);
        for r in &c.route_set {
            m.push_header("Route", r.clone());
        }
        m.push_header("From", c.local_uri.clone());
        m.push_header("To", c.remote_uri.clone());
        m.push_header("Call-ID", c.call_id.clone());
        m.push_header("CSeq", format!("{} {method}", c.cseq));
        (m, branch, uri)
    }

    fn send_bye(&mut self, i: usize, conn: ConnId) {
        let (mut m, branch, _) = self.in_dialog_request(i, "BYE", conn);
        m.push_header("User-Agent", USER_AGENT);
        let cseq = self.calls[i].cseq;
        self.send(conn, &m);
        let c = &mut self.calls[i];
        c.state = State::Ending { bye: Some(ClientTx { branch, conn, cseq }) };
        let id = c.id;
        self.timers.set(Timer::Call(id), self.now + self.config.transaction_timeout);
    }

    fn refuse_incoming(&mut self, i: usize, status: u16, reason: EndReason) {
        if let (State::Ringing { invite }, Some(conn)) = (self.calls[i].state.clone(), self.calls[i].conn) {
            let reason_phrase = match status {
                480 => "Temporarily Unavailable",
                486 => "Busy Here",
                487 => "Request Terminated",
                603 => "Decline",
                _ => "Rejected",
            };
            let resp = response_to(&invite, status, reason_phrase, Some(&self.calls[i].local_tag));
            if self.conn_is_up(conn) {
                self.send(conn, &resp);
            }
        }
        let call = self.calls[i].id;
        self.emit(Event::CallEnded { call, reason });
        self.remove_call(i);
    }

    /// Handles a response to an INVITE, CANCEL or BYE of ours.
    pub(super) fn call_response(&mut self, conn: ConnId, branch: &str, msg: &Message) {
        let Some(status) = msg.status() else { return };
        let Some(i) = self.calls.iter().position(|c| match &c.state {
            State::Calling { tx, .. } | State::Cancelling { tx, .. } => tx.branch == branch && tx.conn == conn,
            State::Ending { bye: Some(tx), .. } => tx.branch == branch && tx.conn == conn,
            State::Moving { tx: Some(tx) } => tx.branch == branch && tx.conn == conn,
            _ => false,
        }) else {
            return;
        };
        let is_cancel_response = msg.cseq().is_some_and(|(_, m)| m.eq_ignore_ascii_case("CANCEL"));
        if is_cancel_response {
            return;
        }
        match self.calls[i].state.clone() {
            State::Ending { .. } if status >= 200 => {
                self.remove_call(i);
            }
            State::Moving { .. } => self.move_response(i, conn, msg, status),
            State::Calling { tx, ringing, cancel_wanted } => {
                if status < 200 {
                    if !ringing {
                        // The far side is alive: the INVITE's deadline gives way to Timer C.
                        let id = self.calls[i].id;
                        if self.planted(super::bugs::Bug::NoTimerC) {
                            self.timers.stop(Timer::Call(id));
                        } else {
                            self.timers.set(Timer::Call(id), self.now + NO_ANSWER);
                        }
                    }
                    self.calls[i].state = State::Calling { tx: tx.clone(), ringing: true, cancel_wanted };
                    if cancel_wanted {
                        self.send_cancel(i, tx);
                    } else if status > 100 {
                        let call = self.calls[i].id;
                        self.emit(Event::CallProgress { call, status });
                    }
                    return;
                }
                if status < 300 {
                    self.dialog_from_2xx(i, msg);
                    self.send_ack(i, conn, msg, true);
                    if cancel_wanted {
                        self.send_bye(i, conn);
                    } else {
                        self.calls[i].state = State::Established;
                        let id = self.calls[i].id;
                        self.timers.stop(Timer::Call(id));
                        self.outcome(i, CallOutcome::Answered);
                    }
                    return;
                }
                self.send_ack(i, conn, msg, false);
                if (status == 401 || status == 407) && !self.calls[i].challenged && !cancel_wanted {
                    if self.keep_challenge(i, msg, status) {
                        self.calls[i].challenged = true;
                        self.send_invite(i, conn);
                        return;
                    }
                    self.outcome(i, CallOutcome::Failed(CallFailure::AuthenticationFailed));
                } else {
                    self.outcome(i, CallOutcome::Rejected { status });
                }
                self.remove_call(i);
            }
            State::Cancelling { .. } => {
                if status < 200 {
                    return;
                }
                if status < 300 {
                    // The answer crossed our CANCEL: complete the dialog, then end it.
                    self.dialog_from_2xx(i, msg);
                    self.send_ack(i, conn, msg, true);
                    self.send_bye(i, conn);
                } else {
                    self.send_ack(i, conn, msg, false);
                    self.remove_call(i);
                }
            }
            _ => {}
        }
    }

    fn dialog_from_2xx(&mut self, i: usize, msg: &Message) {
        let c = &mut self.calls[i];
        c.remote_tag = tag_of(msg, "To");
        if let Some(to) = msg.header("To") {
            c.remote_uri = to.to_owned();
        }
        c.remote_target = msg.header("Contact").and_then(NameAddr::parse).map(|n| n.uri);
        c.route_set = msg.header_values("Record-Route").iter().rev().map(|s| (*s).to_owned()).collect();
    }

    /// Handles a request that arrived on `conn`.
    pub(super) fn on_request(&mut self, conn: ConnId, msg: Message) {
        let method = msg.method().unwrap_or("").to_ascii_uppercase();
        let existing = self.find_dialog(&msg, &method);
        match method.as_str() {
            "ACK" => {
                if let Some(i) = existing
                    && matches!(self.calls[i].state, State::AwaitAck)
                {
                    self.calls[i].state = State::Established;
                    let id = self.calls[i].id;
                    self.timers.stop(Timer::Call(id));
                }
            }
            "OPTIONS" => {
                let mut resp = response_to(&msg, 200, "OK", None);
                resp.push_header("Allow", ALLOW);
                resp.push_header("Accept", "application/sdp");
                self.send(conn, &resp);
            }
            "BYE" => match existing {
                Some(i)
                    if matches!(self.calls[i].state, State::Established | State::AwaitAck | State::Moving { .. }) =>
                {
                    self.respond(conn, &msg, 200, "OK");
                    let call = self.calls[i].id;
                    self.emit(Event::CallEnded { call, reason: EndReason::RemoteHangup });
                    if !self.planted(Bug::KeepCallAfterRemoteBye) {
                        self.remove_call(i);
                    }
                }
                Some(_) => self.respond(conn, &msg, 200, "OK"),
                None => self.respond(conn, &msg, 481, "Call/Transaction Does Not Exist"),
            },
            "CANCEL" => match existing {
                Some(i) if matches!(self.calls[i].state, State::Ringing { .. }) => {
                    self.respond(conn, &msg, 200, "OK");
                    self.refuse_incoming(i, 487, EndReason::RemoteCancel);
                }
                _ => self.respond(conn, &msg, 481, "Call/Transaction Does Not Exist"),
            },
            "INVITE" => match existing {
                Some(i) if matches!(self.calls[i].state, State::Established) => {
                    // A re-INVITE (session refresh): keep the session as it is.
                    let mut resp = response_to(&msg, 200, "OK", Some(&self.calls[i].local_tag.clone()));
                    let contact = contact_uri(&self.config, self.calls[i].account, self.local_of(conn));
                    resp.push_header("Contact", format!("<{contact}>"));
                    let body = self.calls[i].body.clone();
                    if !body.is_empty() {
                        resp.set_body("application/sdp", body);
                    }
                    self.send(conn, &resp);
                }
                Some(_) => self.respond(conn, &msg, 491, "Request Pending"),
                None => self.incoming_invite(conn, msg),
            },
            _ => self.respond(conn, &msg, 501, "Not Implemented"),
        }
    }

    /// The call a request belongs to: by Call-ID and our tag in To (in-dialog requests), or
    /// for CANCEL by Call-ID and the caller's From tag. A proxy that routes a call between
    /// two lines of this phone hands us an INVITE with the Call-ID of our own outgoing call;
    /// it has no To tag, so it is a new call, not a re-INVITE of the outgoing one.
    fn find_dialog(&self, msg: &Message, method: &str) -> Option<usize> {
        let call_id = msg.call_id()?;
        if method == "CANCEL" {
            let from_tag = tag_of(msg, "From");
            return self.calls.iter().position(|c| !c.outgoing && c.call_id == call_id && c.remote_tag == from_tag);
        }
        let to_tag = tag_of(msg, "To")?;
        self.calls.iter().position(|c| c.call_id == call_id && c.local_tag == to_tag)
    }

    fn incoming_invite(&mut self, conn: ConnId, mut msg: Message) {
        // A probe connection lives for one OPTIONS: no dialog may be bound to it.
        let on_probe = self.conn(conn).is_some_and(|c| c.purpose == ConnPurpose::Probe);
        if !self.running() || on_probe {
            self.respond(conn, &msg, 480, "Temporarily Unavailable");
            return;
        }
        // A flood of INVITEs must not grow the phone: beyond the limit, busy.
        let ringing = self.calls.iter().filter(|c| matches!(c.state, State::Ringing { .. })).count();
        if ringing >= usize::from(self.config.max_ringing_calls) && !self.planted(Bug::NoRingingLimit) {
            self.respond(conn, &msg, 486, "Busy Here");
            return;
        }
        let user = match &msg.start {
            crate::sip::StartLine::Request { uri, .. } => uri_user(uri).map(str::to_owned),
            crate::sip::StartLine::Response { .. } => None,
        };
        let to_user = msg.header("To").and_then(NameAddr::parse).and_then(|n| uri_user(&n.uri).map(str::to_owned));
        let account = self
            .config
            .accounts
            .iter()
            .position(|a| Some(&a.user_name) == user.as_ref() || Some(&a.user_name) == to_user.as_ref());
        let account = account.map(|a| if self.planted(Bug::IncomingToFirstAccount) { 0 } else { a });
        let Some(account) = account else {
            self.respond(conn, &msg, 404, "Not Found");
            return;
        };
        let account = AccountId(account as u8);
        self.next_call = self.next_call.wrapping_add(1);
        let id = CallId(self.next_call);
        let local_tag = self.new_token();
        let from = msg.header("From").unwrap_or("").to_owned();
        let mut ringing = response_to(&msg, 180, "Ringing", Some(&local_tag));
        let contact = contact_uri(&self.config, account, self.local_of(conn));
        ringing.push_header("Contact", format!("<{contact}>"));
        self.send(conn, &ringing);
        let remote_target = msg.header("Contact").and_then(NameAddr::parse).map(|n| n.uri);
        let route_set = msg.header_values("Record-Route").iter().map(|s| (*s).to_owned()).collect();
        let to = msg.header("To").unwrap_or("").to_owned();
        let cseq = 0;
        // Only the headers are needed to answer it later.
        msg.body = Vec::new();
        self.calls.push(Call {
            id,
            account,
            outgoing: false,
            state: State::Ringing { invite: msg.clone() },
            conn: Some(conn),
            target: String::new(),
            request_uri: String::new(),
            call_id: msg.call_id().unwrap_or("").to_owned(),
            remote_tag: tag_of(&msg, "From"),
            local_uri: format!("{to};tag={local_tag}"),
            local_tag,
            remote_uri: from.clone(),
            cseq,
            invite_via: String::new(),
            remote_target,
            route_set,
            body: Vec::new(),
            lost_addr: None,
            move_uri: String::new(),
            move_challenged: false,
            challenged: false,
            challenge: None,
            outcome_given: true,
        });
        self.timers.set(Timer::Call(id), self.now + self.config.ringing_timeout);
        self.emit(Event::IncomingCall { call: id, account, from });
    }

    /// The timer of `call` fired; what it means depends on the call's state.
    pub(super) fn on_call_timer(&mut self, call: CallId) {
        let Some(i) = self.calls.iter().position(|c| c.id == call) else { return };
        match self.calls[i].state.clone() {
            State::Queued | State::Connecting { .. } => {
                self.outcome(i, CallOutcome::Failed(CallFailure::Deadline));
                self.remove_call(i);
            }
            State::Calling { tx, ringing: false, .. } => {
                // Not even a 100 Trying: the connection does not carry requests. On the
                // persistent connection that settles every call on it.
                if !self.transaction_timed_out(tx.conn) {
                    self.outcome(i, CallOutcome::Failed(CallFailure::ConnectionLost));
                    self.remove_call(i);
                }
            }
            State::Calling { tx, ringing: true, .. } => {
                self.outcome(i, CallOutcome::Failed(CallFailure::NoAnswer));
                self.send_cancel(i, tx);
            }
            State::Cancelling { .. } | State::Ending { .. } => self.remove_call(i),
            State::AwaitAck => {
                self.emit(Event::CallEnded { call, reason: EndReason::NoAck });
                self.start_bye(i);
            }
            State::Ringing { .. } => self.refuse_incoming(i, 480, EndReason::Unanswered),
            State::Established if self.calls[i].conn.is_none() => {
                self.emit(Event::CallEnded { call, reason: EndReason::ConnectionLost });
                self.start_bye(i);
            }
            State::Established => {}
            State::Moving { tx } => self.move_timer(i, tx.is_none()),
        }
    }

    /// The connection carrying calls died.
    pub(super) fn calls_connection_lost(&mut self, conn: ConnId) {
        let mut i = 0;
        while i < self.calls.len() {
            if self.calls[i].conn != Some(conn) {
                i += 1;
                continue;
            }
            let call = self.calls[i].id;
            match self.calls[i].state {
                State::Calling { .. } => {
                    self.outcome(i, CallOutcome::Failed(CallFailure::ConnectionLost));
                    self.remove_call(i);
                }
                State::Cancelling { .. } | State::Ending { .. } => self.remove_call(i),
                State::Ringing { .. } | State::AwaitAck => {
                    self.emit(Event::CallEnded { call, reason: EndReason::ConnectionLost });
                    self.remove_call(i);
                }
                State::Established if self.config.mode == TransportMode::PerCallTls => {
                    self.emit(Event::CallEnded { call, reason: EndReason::ConnectionLost });
                    self.remove_call(i);
                }
                // The media may well go on and the phone's in-dialog requests use the next
                // connection, but the far end can no longer reach the call: it ends after
                // the orphaned-call timeout unless it ends before.
                State::Established | State::Moving { .. } => {
                    self.calls[i].orphaned();
                    if !self.planted(Bug::NoOrphanDeadline) {
                        self.timers.set(Timer::Call(call), self.now + self.config.orphaned_call_timeout);
                    }
                    i += 1;
                }
                State::Queued | State::Connecting { .. } => {
                    self.calls[i].conn = None;
                    i += 1;
                }
            }
        }
    }

    /// The persistent connection `conn`, to `addr`, is being lost: the calls it carries
    /// remember where it went, so that a move can tell a route set that only leads there.
    pub(super) fn note_lost_address(&mut self, conn: ConnId, addr: Option<SocketAddr>) {
        for c in self.calls.iter_mut().filter(|c| c.conn == Some(conn)) {
            c.lost_addr = addr;
        }
    }

    /// Ends every call for shutdown.
    pub(super) fn shutdown_calls(&mut self) {
        let mut i = 0;
        while i < self.calls.len() {
            let call = self.calls[i].id;
            match self.calls[i].state.clone() {
                State::Queued | State::Connecting { .. } => {
                    self.outcome(i, CallOutcome::Failed(CallFailure::Shutdown));
                    self.remove_call(i);
                    continue;
                }
                State::Calling { tx, ringing, .. } => {
                    self.outcome(i, CallOutcome::Failed(CallFailure::Shutdown));
                    if ringing {
                        self.send_cancel(i, tx);
                    } else {
                        self.remove_call(i);
                        continue;
                    }
                }
                State::Established | State::AwaitAck | State::Moving { .. } => {
                    self.emit(Event::CallEnded { call, reason: EndReason::Shutdown });
                    self.start_bye(i);
                    if matches!(self.calls[i].state, State::Ending { bye: None, .. }) {
                        self.remove_call(i);
                        continue;
                    }
                }
                State::Ringing { .. } => {
                    self.refuse_incoming(i, 480, EndReason::Shutdown);
                    continue;
                }
                State::Cancelling { .. } | State::Ending { .. } => {}
            }
            i += 1;
        }
        debug_assert!(self.phase == Phase::ShuttingDown);
    }

    /// Per-call TLS: the call's connection is up; send the INVITE.
    pub(super) fn dedicated_call_connected(&mut self, call: CallId, conn: ConnId) {
        match self.calls.iter().position(|c| c.id == call) {
            Some(i) if matches!(self.calls[i].state, State::Connecting { .. }) => {
                self.calls[i].conn = Some(conn);
                self.send_invite(i, conn);
            }
            _ => self.close_conn(conn),
        }
    }

    /// Per-call TLS: the call's connection failed; try the backup once while connecting.
    pub(super) fn dedicated_call_failed(&mut self, call: CallId, conn: ConnId, _reason: FlowError) {
        let Some(i) = self.calls.iter().position(|c| c.id == call) else { return };
        if self.timers.get(Timer::Call(call)).is_some_and(|at| at <= self.now) {
            // A late `handle_timeout` fires this connection's timeout before the call's
            // own, earlier-passed deadline: the call is over, no new attempt is started.
            self.timers.stop(Timer::Call(call));
            self.on_call_timer(call);
            return;
        }
        if let State::Connecting { server: Server::Primary } = self.calls[i].state
            && self.config.backup_proxy.is_some()
            && self.running()
        {
            self.calls[i].state = State::Connecting { server: Server::Backup };
            let new = self.connect(Server::Backup, ConnPurpose::Call(call));
            self.calls[i].conn = new;
            return;
        }
        if let State::Connecting { .. } = self.calls[i].state {
            self.outcome(i, CallOutcome::Failed(CallFailure::ConnectionLost));
            self.calls[i].conn = None;
            self.remove_call(i);
            return;
        }
        self.calls_connection_lost(conn);
    }
}

#[cfg(any(test, feature = "sim"))]
impl Call {
    /// The raw parts the decision view abstracts (see `view.rs`).
    pub(super) fn parts(&self) -> super::view::CallParts {
        use super::view::CallPhase;
        let (phase, tx_conn, ringing, cancel_wanted) = match &self.state {
            State::Queued => (CallPhase::Queued, None, false, false),
            State::Connecting { .. } => (CallPhase::Connecting, None, false, false),
            State::Calling { tx, ringing, cancel_wanted } => {
                (CallPhase::Calling, Some(tx.conn), *ringing, *cancel_wanted)
            }
            State::Cancelling { tx, .. } => (CallPhase::Cancelling, Some(tx.conn), true, false),
            State::Established => (CallPhase::Established, None, false, false),
            State::Ending { bye, .. } => (CallPhase::Ending, bye.as_ref().map(|t| t.conn), false, false),
            State::Ringing { .. } => (CallPhase::Ringing, None, false, false),
            State::AwaitAck => (CallPhase::AwaitAck, None, false, false),
            // No transaction connection: waiting after a glare.
            State::Moving { tx } => (CallPhase::Moving, tx.as_ref().map(|t| t.conn), false, false),
        };
        super::view::CallParts {
            phase,
            outgoing: self.outgoing,
            account: self.account,
            conn: self.conn,
            tx_conn,
            ringing,
            cancel_wanted,
            challenged: self.challenged || self.move_challenged,
            outcome_given: self.outcome_given,
        }
    }
}
