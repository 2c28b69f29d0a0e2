//! SIP behaviour: registrar (digest, bindings, outbound), proxy (INVITE routed over the
//! callee's connection with a Record-Route, responses relayed back, CANCEL, in-dialog
//! requests routed by Request-URI) and the small transaction table behind the relay; or,
//! with `answer_invites`, a user agent server that answers INVITEs itself.
//!
//! Everything here is synchronous and runs under the state mutex: a received message goes
//! in, the messages to write (and the connections to write them on) come out.

use super::bindings::Bindings;
use super::config::RegistrarConfig;
use super::connection::Command;
use super::stats::{Counters, bump};
use crate::sip::digest::{self, parse_authorization};
use crate::sip::headers::{NameAddr, Via, has_option_tag, parse_u32, split_list, uri_host_port, uri_user};
use crate::sip::message::same_header_name;
use crate::sip::{Header, Message, StartLine};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// Lifetime granted when the REGISTER names none (RFC 3261 §10.2).
const DEFAULT_EXPIRES: u32 = 3600;
/// Nonces remembered (older ones get a `stale=true` challenge). Room for every account of
/// the scale benchmark (20,000) to be challenged at once: with fewer, the nonces of a
/// registration storm are forgotten before their answers arrive and every client is
/// re-challenged as stale until it gives up.
const MAX_NONCES: usize = 65_536;
/// Transactions remembered for relaying responses, CANCEL and ACK.
const MAX_TRANSACTIONS: usize = 4096;
/// Branches of INVITEs answered here with a final non-2xx (their ACK is absorbed).
const MAX_ABSORBED: usize = 1024;
/// Dialogs answered here (`answer_invites`) remembered for their ACK and BYE.
const MAX_DIALOGS: usize = 1024;

/// Messages to write: (connection, bytes).
pub(crate) type Sends = Vec<(u64, Vec<u8>)>;

/// A request forwarded by the proxy, keyed by the branch of the Via the proxy added.
struct Transaction {
    /// Connection the request came from; responses go back there.
    caller: u64,
    /// Top Via branch of the request as received.
    caller_branch: String,
    /// Connection it was forwarded on.
    callee: u64,
    /// The forwarded initial INVITE (for CANCEL and the ACK of a non-2xx answer).
    invite: Option<Message>,
}

/// Everything the registrar remembers, behind one mutex.
pub(crate) struct State {
    /// Registered contacts.
    pub bindings: Bindings,
    /// Outboxes of the open connections.
    pub conns: BTreeMap<u64, async_channel::Sender<Command>>,
    /// One line per request received.
    pub log: Vec<String>,
    domain: String,
    users: BTreeMap<String, String>,
    flow_timer: Option<u32>,
    addr: SocketAddr,
    /// Random per registrar, so that nonces and branches are not guessable across runs.
    seed: u64,
    counter: u64,
    nonces: VecDeque<String>,
    /// The same nonces, for constant-time look-up.
    nonce_set: HashSet<String>,
    transactions: BTreeMap<String, Transaction>,
    /// (caller connection, caller branch) → proxy branch.
    by_caller: BTreeMap<(u64, String), String>,
    absorbed: BTreeSet<(u64, String)>,
    absorbed_order: VecDeque<(u64, String)>,
    /// Answer initial INVITEs here instead of routing them.
    answer_invites: bool,
    /// Dialogs answered here: (Call-ID, our To tag).
    dialogs: BTreeSet<(String, String)>,
    dialog_order: VecDeque<(String, String)>,
}

/// The top Via branch of a message, if any.
fn top_branch(msg: &Message) -> String {
    msg.top_via().and_then(Via::parse).and_then(|v| v.branch().map(str::to_string)).unwrap_or_default()
}

fn request_uri(msg: &Message) -> &str {
    match &msg.start {
        StartLine::Request { uri, .. } => uri,
        StartLine::Response { .. } => "",
    }
}

/// `;name=value` parameters back in wire form, quoting values that need it.
fn params_string(params: &[(String, Option<String>)], skip: &str) -> String {
    let token = |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~:".contains(c));
    let mut out = String::new();
    for (name, value) in params.iter().filter(|(n, _)| !n.eq_ignore_ascii_case(skip)) {
        out.push(';');
        out.push_str(name);
        if let Some(v) = value {
            out.push('=');
            if token(v) {
                out.push_str(v);
            } else {
                out.push('"');
                out.push_str(&v.replace('\\', "\\\\").replace('"', "\\\""));
                out.push('"');
            }
        }
    }
    out
}

/// Removes the first value of the first header called `name` (the header line goes when
/// it held only that value).
fn remove_first_value(msg: &mut Message, name: &str) {
    let Some(i) = msg.headers.iter().position(|h| same_header_name(&h.name, name)) else {
        return;
    };
    let rest: Vec<String> = split_list(&msg.headers[i].value).into_iter().skip(1).map(str::to_string).collect();
    if rest.is_empty() {
        msg.headers.remove(i);
    } else {
        msg.headers[i].value = rest.join(", ");
    }
}

impl State {
    /// Fresh state for a registrar listening on `addr`.
    pub fn new(config: &RegistrarConfig, addr: SocketAddr) -> State {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u16(addr.port());
        State {
            bindings: Bindings::default(),
            conns: BTreeMap::new(),
            log: Vec::new(),
            domain: config.domain.clone(),
            users: config.users.iter().cloned().collect(),
            flow_timer: config.flow_timer,
            addr,
            seed: h.finish(),
            counter: 0,
            nonces: VecDeque::new(),
            nonce_set: HashSet::new(),
            transactions: BTreeMap::new(),
            by_caller: BTreeMap::new(),
            absorbed: BTreeSet::new(),
            absorbed_order: VecDeque::new(),
            answer_invites: config.answer_invites,
            dialogs: BTreeSet::new(),
            dialog_order: VecDeque::new(),
        }
    }

    /// Forgets a closed connection, its bindings and its transactions.
    pub fn connection_closed(&mut self, conn: u64) {
        self.conns.remove(&conn);
        self.bindings.connection_closed(conn);
        self.transactions.retain(|_, t| t.caller != conn && t.callee != conn);
        self.by_caller.retain(|(c, _), _| *c != conn);
    }

    /// Handles one message received on `conn`; returns what to write on which connection.
    pub fn handle(&mut self, conn: u64, msg: Message, counters: &Counters) -> Sends {
        let now = Instant::now();
        let (method, uri) = match &msg.start {
            StartLine::Response { .. } => return self.relay_response(msg),
            StartLine::Request { method, uri } => (method.to_ascii_uppercase(), uri.clone()),
        };
        let contacts = msg.header_all("Contact");
        let contact = if contacts.is_empty() { "-".to_string() } else { contacts.join(", ") };
        self.log.push(format!("conn={conn} {method} {uri} | Contact: {contact}"));
        if let Some(dialog) = self.dialog_answered_here(&msg) {
            return self.in_our_dialog(conn, &method, &msg, &dialog, counters);
        }
        match method.as_str() {
            "REGISTER" => {
                bump(&counters.registers);
                self.register(conn, &msg, now, counters)
            }
            "INVITE" => {
                bump(&counters.invites);
                let in_dialog = msg.header("To").and_then(NameAddr::parse).is_some_and(|to| to.tag().is_some());
                if in_dialog { self.route(conn, msg, now) } else { self.invite(conn, msg, &uri, now, counters) }
            }
            "CANCEL" => self.cancel(conn, &msg),
            "ACK" => self.ack(conn, msg, now),
            "OPTIONS" if uri_user(&uri).is_none() => {
                bump(&counters.options);
                let mut ok = self.reply(&msg, 200, "OK");
                ok.push_header("Allow", "REGISTER, INVITE, ACK, BYE, CANCEL, OPTIONS");
                ok.push_header("Supported", "outbound");
                vec![(conn, ok.to_bytes())]
            }
            "OPTIONS" => {
                bump(&counters.options);
                self.route(conn, msg, now)
            }
            _ => self.route(conn, msg, now),
        }
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn new_branch(&mut self) -> String {
        let n = self.next();
        format!("z9hG4bKptls{:08x}{n:010}", self.seed as u32)
    }

    fn new_nonce(&mut self) -> String {
        let n = self.next();
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(self.seed ^ n);
        let nonce = format!("{:016x}{n:08x}", h.finish());
        if self.nonces.len() >= MAX_NONCES
            && let Some(old) = self.nonces.pop_front()
        {
            self.nonce_set.remove(&old);
        }
        self.nonces.push_back(nonce.clone());
        self.nonce_set.insert(nonce.clone());
        nonce
    }

    fn record_route(&self) -> String {
        format!("<sips:{};lr>", self.addr)
    }

    /// True when `uri` names this proxy (its domain or its listening address).
    fn names_us(&self, uri: &str) -> bool {
        let Some(host_port) = uri_host_port(uri) else {
            return false;
        };
        if host_port.eq_ignore_ascii_case(&self.addr.to_string()) {
            return true;
        }
        let host = match host_port.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host_port,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case(&self.domain) || host == self.addr.ip().to_string()
    }

    /// A response to `req`: its Via, From, To (tagged unless 100), Call-ID and CSeq.
    fn reply(&mut self, req: &Message, status: u16, reason: &str) -> Message {
        let mut resp = Message::response(status, reason);
        for h in &req.headers {
            if same_header_name(&h.name, "Via") {
                resp.push_header("Via", h.value.clone());
            }
        }
        if let Some(from) = req.header("From") {
            resp.push_header("From", from);
        }
        if let Some(to) = req.header("To") {
            let tagged = NameAddr::parse(to).is_some_and(|n| n.tag().is_some());
            if tagged || status == 100 {
                resp.push_header("To", to);
            } else {
                let tag = self.next();
                resp.push_header("To", format!("{to};tag=ptls{:08x}{tag}", self.seed as u32));
            }
        }
        for name in ["Call-ID", "CSeq"] {
            if let Some(v) = req.header(name) {
                resp.push_header(name, v);
            }
        }
        resp.push_header("Server", "sip-ptls-registrar");
        resp
    }

    /// Remembers that a final non-2xx answer to this INVITE was sent here, so that its
    /// ACK is absorbed.
    fn absorb(&mut self, conn: u64, req: &Message) {
        let key = (conn, top_branch(req));
        if self.absorbed.insert(key.clone()) {
            self.absorbed_order.push_back(key);
        }
        while self.absorbed_order.len() > MAX_ABSORBED {
            if let Some(old) = self.absorbed_order.pop_front() {
                self.absorbed.remove(&old);
            }
        }
    }

    /// The authenticated user, or `Err(stale)` when a challenge is due.
    fn check_auth(&self, msg: &Message, header: &str, method: &str) -> Result<String, bool> {
        let value = msg.header_all(header).into_iter().next().ok_or(false)?;
        let auth = parse_authorization(value).map_err(|_| false)?;
        let password = self.users.get(&auth.username).ok_or(false)?;
        if auth.realm != self.domain || !digest::verify(&auth, password, method) {
            return Err(false);
        }
        if !self.nonce_set.contains(&auth.nonce) {
            return Err(true);
        }
        Ok(auth.username)
    }

    fn challenge(&mut self, conn: u64, req: &Message, proxy: bool, stale: bool) -> Sends {
        let nonce = self.new_nonce();
        let value = format!(
            "Digest realm=\"{}\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5{}",
            self.domain,
            if stale { ", stale=true" } else { "" }
        );
        let resp = if proxy {
            let mut r = self.reply(req, 407, "Proxy Authentication Required");
            r.push_header("Proxy-Authenticate", value);
            r
        } else {
            let mut r = self.reply(req, 401, "Unauthorized");
            r.push_header("WWW-Authenticate", value);
            r
        };
        vec![(conn, resp.to_bytes())]
    }

    fn register(&mut self, conn: u64, msg: &Message, now: Instant, counters: &Counters) -> Sends {
        let user = match self.check_auth(msg, "Authorization", "REGISTER") {
            Ok(user) => user,
            Err(stale) => {
                if stale {
                    bump(&counters.stale_challenges);
                }
                return self.challenge(conn, msg, false, stale);
            }
        };
        let to_user = msg.header("To").and_then(NameAddr::parse).and_then(|n| uri_user(&n.uri).map(str::to_string));
        if to_user.as_deref() != Some(user.as_str()) {
            return vec![(conn, self.reply(msg, 403, "Forbidden").to_bytes())];
        }
        let expires_header = msg.header("Expires").and_then(parse_u32);
        for value in msg.header_values("Contact") {
            if value.trim() == "*" {
                if expires_header == Some(0) {
                    self.bindings.remove_user(&user);
                    continue;
                }
                return vec![(conn, self.reply(msg, 400, "Bad Request").to_bytes())];
            }
            let Some(contact) = NameAddr::parse(value) else {
                return vec![(conn, self.reply(msg, 400, "Bad Contact").to_bytes())];
            };
            let expires =
                contact.param("expires").flatten().and_then(parse_u32).or(expires_header).unwrap_or(DEFAULT_EXPIRES);
            if expires == 0 {
                self.bindings.remove(&user, &contact.uri);
            } else {
                let params = params_string(&contact.params, "expires");
                self.bindings.upsert(&user, &contact.uri, params, conn, expires, now);
            }
        }
        let mut ok = self.reply(msg, 200, "OK");
        for contact in self.bindings.contacts_of(&user, now) {
            ok.push_header("Contact", contact);
        }
        let outbound = has_option_tag(&msg.header_values("Supported"), "outbound");
        if let (true, Some(flow_timer)) = (outbound, self.flow_timer) {
            ok.push_header("Require", "outbound");
            ok.push_header("Flow-Timer", flow_timer.to_string());
        }
        vec![(conn, ok.to_bytes())]
    }

    /// Drops the Route values at the top that name this proxy (loose routing).
    fn strip_our_routes(&self, msg: &mut Message) {
        loop {
            let top = msg.header_values("Route").first().and_then(|v| NameAddr::parse(v)).map(|n| n.uri);
            match top {
                Some(uri) if self.names_us(&uri) => remove_first_value(msg, "Route"),
                _ => return,
            }
        }
    }

    /// The request as this proxy sends it on: Request-URI replaced if asked, our Route
    /// removed, credentials consumed, Max-Forwards decremented, our Via (with `branch`) on
    /// top and, for dialog-forming requests, our Record-Route.
    fn forward(&self, mut msg: Message, new_uri: Option<&str>, branch: &str, record_route: bool) -> Message {
        if let (Some(new), StartLine::Request { uri, .. }) = (new_uri, &mut msg.start) {
            *uri = new.to_string();
        }
        self.strip_our_routes(&mut msg);
        msg.headers.retain(|h| !same_header_name(&h.name, "Proxy-Authorization"));
        for h in msg.headers.iter_mut().filter(|h| same_header_name(&h.name, "Max-Forwards")) {
            if let Some(n) = parse_u32(&h.value) {
                h.value = n.saturating_sub(1).to_string();
            }
        }
        if record_route {
            msg.headers.insert(0, Header { name: "Record-Route".into(), value: self.record_route() });
        }
        msg.headers
            .insert(0, Header { name: "Via".into(), value: format!("SIP/2.0/TLS {};branch={branch}", self.addr) });
        msg
    }

    fn remember(&mut self, branch: &str, transaction: Transaction) {
        self.by_caller.insert((transaction.caller, transaction.caller_branch.clone()), branch.to_string());
        self.transactions.insert(branch.to_string(), transaction);
        while self.transactions.len() > MAX_TRANSACTIONS {
            if let Some((_, old)) = self.transactions.pop_first() {
                self.by_caller.remove(&(old.caller, old.caller_branch));
            }
        }
    }

    fn too_many_hops(msg: &Message) -> bool {
        msg.header("Max-Forwards").and_then(parse_u32) == Some(0)
    }

    fn invite(&mut self, conn: u64, msg: Message, uri: &str, now: Instant, counters: &Counters) -> Sends {
        if let Err(stale) = self.check_auth(&msg, "Proxy-Authorization", "INVITE") {
            if stale {
                bump(&counters.stale_challenges);
            }
            self.absorb(conn, &msg);
            return self.challenge(conn, &msg, true, stale);
        }
        if self.answer_invites {
            bump(&counters.invites_answered);
            return self.answer_invite(conn, &msg, uri);
        }
        let mut out = vec![(conn, self.reply(&msg, 100, "Trying").to_bytes())];
        if Self::too_many_hops(&msg) {
            self.absorb(conn, &msg);
            out.push((conn, self.reply(&msg, 483, "Too Many Hops").to_bytes()));
            return out;
        }
        let target = match self.bindings.lookup_contact(uri, now) {
            Some(found) => Some(found),
            None => match uri_user(uri).map(str::to_string) {
                Some(user) => self.bindings.lookup_user(&user, now),
                None => None,
            },
        };
        let Some((contact, callee)) = target else {
            self.absorb(conn, &msg);
            out.push((conn, self.reply(&msg, 404, "Not Found").to_bytes()));
            return out;
        };
        let caller_branch = top_branch(&msg);
        let branch = self.new_branch();
        let forwarded = self.forward(msg, Some(&contact), &branch, true);
        out.push((callee, forwarded.to_bytes()));
        self.remember(&branch, Transaction { caller: conn, caller_branch, callee, invite: Some(forwarded) });
        out
    }

    /// Answers an authenticated initial INVITE as its user agent server (`answer_invites`):
    /// a 200 OK at once, without the 100 Trying that a server answering at once need not
    /// send; with the Record-Route this proxy would have added, a Contact naming this
    /// registrar, and an SDP answer. The dialog is remembered for its ACK and BYE. Over a
    /// reliable transport the 200 is not retransmitted (a full UAS would until the ACK).
    fn answer_invite(&mut self, conn: u64, msg: &Message, uri: &str) -> Sends {
        let mut ok = self.reply(msg, 200, "OK");
        ok.push_header("Record-Route", self.record_route());
        let contact = match uri_user(uri) {
            Some(user) => format!("<sips:{user}@{}>", self.addr),
            None => format!("<sips:{}>", self.addr),
        };
        ok.push_header("Contact", contact);
        ok.push_header("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS");
        let session = self.next();
        ok.set_body("application/sdp", sdp_answer(&msg.body, session, self.addr.ip()));
        let tag = ok.header("To").and_then(NameAddr::parse).and_then(|to| to.tag().map(str::to_string));
        if let (Some(call_id), Some(tag)) = (msg.call_id(), tag) {
            let key = (call_id.to_string(), tag);
            if self.dialogs.insert(key.clone()) {
                self.dialog_order.push_back(key);
            }
            while self.dialog_order.len() > MAX_DIALOGS {
                if let Some(old) = self.dialog_order.pop_front() {
                    self.dialogs.remove(&old);
                }
            }
        }
        vec![(conn, ok.to_bytes())]
    }

    /// The dialog of an in-dialog request when this registrar answered its INVITE.
    fn dialog_answered_here(&self, msg: &Message) -> Option<(String, String)> {
        if self.dialogs.is_empty() {
            return None;
        }
        let tag = msg.header("To").and_then(NameAddr::parse).and_then(|to| to.tag().map(str::to_string))?;
        let key = (msg.call_id()?.to_string(), tag);
        self.dialogs.contains(&key).then_some(key)
    }

    /// A request within a dialog answered here: the ACK is absorbed, a BYE ends the
    /// dialog with 200, a re-INVITE gets a 200 with an SDP answer, anything else a 200.
    fn in_our_dialog(
        &mut self,
        conn: u64,
        method: &str,
        msg: &Message,
        dialog: &(String, String),
        counters: &Counters,
    ) -> Sends {
        let mut ok = self.reply(msg, 200, "OK");
        match method {
            "ACK" => return Vec::new(),
            "BYE" => {
                self.dialogs.remove(dialog);
                self.dialog_order.retain(|d| d != dialog);
            }
            "INVITE" => {
                bump(&counters.invites);
                bump(&counters.invites_answered);
                ok.push_header("Contact", format!("<sips:{}>", self.addr));
                let session = self.next();
                ok.set_body("application/sdp", sdp_answer(&msg.body, session, self.addr.ip()));
            }
            _ => {}
        }
        vec![(conn, ok.to_bytes())]
    }

    /// Routes any other request by its Request-URI: a bound contact, else a bound user.
    fn route(&mut self, conn: u64, msg: Message, now: Instant) -> Sends {
        let is_ack = msg.method() == Some("ACK");
        let uri = request_uri(&msg).to_string();
        let target = match self.bindings.lookup_contact(&uri, now) {
            Some((_, callee)) => Some((None, callee)),
            None => match uri_user(&uri).map(str::to_string) {
                Some(user) => self.bindings.lookup_user(&user, now).map(|(c, callee)| (Some(c), callee)),
                None => None,
            },
        };
        let Some((new_uri, callee)) = target else {
            if is_ack {
                return Vec::new();
            }
            return vec![(conn, self.reply(&msg, 404, "Not Found").to_bytes())];
        };
        if Self::too_many_hops(&msg) {
            if is_ack {
                return Vec::new();
            }
            return vec![(conn, self.reply(&msg, 483, "Too Many Hops").to_bytes())];
        }
        let caller_branch = top_branch(&msg);
        let branch = self.new_branch();
        let forwarded = self.forward(msg, new_uri.as_deref(), &branch, false);
        if !is_ack {
            self.remember(&branch, Transaction { caller: conn, caller_branch, callee, invite: None });
        }
        vec![(callee, forwarded.to_bytes())]
    }

    fn ack(&mut self, conn: u64, msg: Message, now: Instant) -> Sends {
        let key = (conn, top_branch(&msg));
        if self.absorbed.contains(&key) {
            return Vec::new();
        }
        // The ACK of a non-2xx final answer shares the INVITE's branch: same hop, same branch.
        let known = self.by_caller.get(&key).and_then(|b| self.transactions.get(b).map(|t| (b.clone(), t)));
        if let Some((branch, t)) = known {
            let callee = t.callee;
            let uri = t.invite.as_ref().map(|i| request_uri(i).to_string());
            let forwarded = self.forward(msg, uri.as_deref(), &branch, false);
            return vec![(callee, forwarded.to_bytes())];
        }
        self.route(conn, msg, now)
    }

    fn cancel(&mut self, conn: u64, msg: &Message) -> Sends {
        let key = (conn, top_branch(msg));
        let found = self.by_caller.get(&key).and_then(|b| self.transactions.get(b));
        let Some((callee, Some(invite))) = found.map(|t| (t.callee, t.invite.clone())) else {
            return vec![(conn, self.reply(msg, 481, "Call/Transaction Does Not Exist").to_bytes())];
        };
        let mut cancel = Message::request("CANCEL", request_uri(&invite));
        if let Some(via) = invite.top_via() {
            cancel.push_header("Via", via);
        }
        for route in invite.header_all("Route") {
            cancel.push_header("Route", route);
        }
        cancel.push_header("Max-Forwards", "70");
        for name in ["From", "To", "Call-ID"] {
            if let Some(v) = invite.header(name) {
                cancel.push_header(name, v);
            }
        }
        if let Some((n, _)) = invite.cseq() {
            cancel.push_header("CSeq", format!("{n} CANCEL"));
        }
        let ok = self.reply(msg, 200, "OK");
        vec![(conn, ok.to_bytes()), (callee, cancel.to_bytes())]
    }

    fn relay_response(&mut self, mut msg: Message) -> Sends {
        let branch = top_branch(&msg);
        let Some(t) = self.transactions.get(&branch) else {
            return Vec::new();
        };
        let caller = t.caller;
        let is_invite = t.invite.is_some();
        let method = msg.cseq().map(|(_, m)| m.to_ascii_uppercase()).unwrap_or_default();
        if method == "CANCEL" {
            return Vec::new();
        }
        if !is_invite
            && msg.status().is_some_and(|s| s >= 200)
            && let Some(old) = self.transactions.remove(&branch)
        {
            self.by_caller.remove(&(old.caller, old.caller_branch));
        }
        remove_first_value(&mut msg, "Via");
        vec![(caller, msg.to_bytes())]
    }
}

/// An SDP answer (RFC 3264) from a registrar that has no media: every stream of `offer`
/// declined (port 0), in the offer's order. Without an offer (an INVITE without SDP) it
/// is a session without streams.
fn sdp_answer(offer: &[u8], session: u64, ip: IpAddr) -> Vec<u8> {
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut sdp = format!("v=0\r\no=- {session} {session} IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n");
    for line in String::from_utf8_lossy(offer).lines() {
        let Some(media) = line.strip_prefix("m=") else { continue };
        let mut fields = media.split_whitespace();
        if let (Some(kind), Some(_port), Some(proto)) = (fields.next(), fields.next(), fields.next()) {
            let formats: Vec<&str> = fields.collect();
            sdp.push_str(&format!("m={kind} 0 {proto} {}\r\n", formats.join(" ")));
        }
    }
    sdp.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::sdp_answer;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    #[test]
    fn the_sdp_answer_declines_every_offered_stream_in_order() {
        let offer = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\nm=video 51372 RTP/AVP 31\r\n";
        let answer = String::from_utf8(sdp_answer(offer, 7, IpAddr::V4(Ipv4Addr::LOCALHOST))).unwrap();
        assert_eq!(
            answer,
            "v=0\r\no=- 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 0 RTP/AVP 0 8 101\r\nm=video 0 RTP/AVP 31\r\n"
        );
    }

    #[test]
    fn without_an_offer_the_answer_has_no_stream() {
        let answer = String::from_utf8(sdp_answer(b"", 3, IpAddr::V6(Ipv6Addr::LOCALHOST))).unwrap();
        assert_eq!(answer, "v=0\r\no=- 3 3 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\n");
    }
}
