//! A simulated SIP proxy and registrar with just enough behaviour to exercise the core:
//! digest challenges, bindings per connection, pongs, a UAS for INVITEs, and switches
//! to misbehave (never pong, force a REGISTER status, ring forever).

use super::header_user;
use crate::ids::{ConnId, Server};
use crate::sip::digest;
use crate::sip::headers::{NameAddr, parse_u32};
use crate::sip::{Frame, Message};
use std::collections::BTreeMap;

/// How a simulated server treats connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerMode {
    /// Accepts connections and answers everything.
    Up,
    /// Refuses connections; established ones are reset when it enters this mode.
    Refusing,
    /// Accepts connections (TLS completes) but never answers anything.
    Silent,
    /// Connections hang in the handshake; established ones stop being answered.
    Frozen,
}

/// Knobs that change how an up server answers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Behaviour {
    /// Challenge every REGISTER and INVITE without valid credentials.
    pub require_auth: bool,
    /// Answer `CRLFCRLF` with `CRLF`.
    pub answer_pings: bool,
    /// Send this Flow-Timer in REGISTER 2xx.
    pub flow_timer: Option<u32>,
    /// Answer every REGISTER with this status instead (e.g. 403, 503).
    pub register_status: Option<u16>,
    /// Headers added to those forced answers (e.g. `Retry-After: 0`, `Min-Expires`).
    pub register_headers: Vec<(String, String)>,
    /// Grant this lifetime in every REGISTER 2xx, whatever was asked (e.g. 0).
    pub grant_expires: Option<u32>,
    /// Challenge every REGISTER with a fresh nonce, credentials or not.
    pub always_challenge: bool,
    /// Final status for INVITEs (`None`: ring forever until CANCEL).
    pub invite_status: Option<u16>,
    /// Swallow every INVITE: no answer at all, while pings and REGISTERs are answered.
    pub swallow_invites: bool,
    /// The far end's final status for a re-INVITE (an INVITE inside a dialog, which a
    /// proxy relays without a challenge): 200 with a Contact, or this refusal. `None`:
    /// no answer at all.
    pub reinvite_status: Option<u16>,
    /// Whether a re-INVITE is challenged (407), as a proxy that authenticates requests
    /// inside dialogs does.
    pub challenge_reinvites: ReinviteChallenge,
    /// A Record-Route the proxy puts in the 2xx of an initial INVITE (`None`: the proxy
    /// does not record-route).
    pub record_route: Option<String>,
    /// Status of the answer to OPTIONS (proxies often answer 404 or 405 for themselves).
    pub options_status: u16,
    /// Close every connection right after its handshake (a TLS 1.3 server refusing the
    /// client certificate looks like this to the client).
    pub close_after_handshake: bool,
}

/// When the server challenges an INVITE inside a dialog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReinviteChallenge {
    /// Never: relayed as most proxies do.
    Never,
    /// Unless it carries credentials for a nonce this server issued.
    Unauthorized,
    /// Every time, credentials or not.
    Always,
}

impl Default for Behaviour {
    fn default() -> Behaviour {
        Behaviour {
            require_auth: true,
            answer_pings: true,
            flow_timer: None,
            register_status: None,
            register_headers: Vec::new(),
            grant_expires: None,
            always_challenge: false,
            invite_status: Some(200),
            swallow_invites: false,
            reinvite_status: Some(200),
            challenge_reinvites: ReinviteChallenge::Never,
            record_route: None,
            close_after_handshake: false,
            options_status: 200,
        }
    }
}

/// What the server saw, for assertions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counters {
    /// Connections it accepted.
    pub accepted: u32,
    /// REGISTER requests received.
    pub registers: u32,
    /// INVITE requests received.
    pub invites: u32,
    /// Pings received.
    pub pings: u32,
    /// OPTIONS requests received.
    pub options: u32,
}

/// One simulated server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SimServer {
    /// Which of the phone's servers this is.
    pub role: Server,
    /// Current mode.
    pub mode: ServerMode,
    /// How it answers while up.
    pub behaviour: Behaviour,
    /// Users and passwords it knows.
    pub users: BTreeMap<String, String>,
    /// Registered users and the connection their binding is on.
    pub bindings: BTreeMap<String, ConnId>,
    /// What it saw.
    pub counters: Counters,
    nonces: u32,
    /// Nonces this server issued: credentials computed for another server's nonce fail.
    issued: std::collections::BTreeSet<String>,
    /// Calls ringing forever: Call-ID → the INVITE, to answer a CANCEL with 487.
    ringing: BTreeMap<String, Message>,
}

/// A response or request the server sends back, with what it means for monitors.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reply {
    /// The bytes on the wire.
    pub bytes: Vec<u8>,
    /// For a final REGISTER response: the user and the status.
    pub register_final: Option<(String, u16)>,
}

impl SimServer {
    /// An up server that knows `users`.
    pub fn new(role: Server, users: &[(String, String)]) -> SimServer {
        SimServer {
            role,
            mode: ServerMode::Up,
            behaviour: Behaviour::default(),
            users: users.iter().cloned().collect(),
            bindings: BTreeMap::new(),
            counters: Counters::default(),
            nonces: 0,
            issued: std::collections::BTreeSet::new(),
            ringing: BTreeMap::new(),
        }
    }

    /// The connection closed: its bindings go with it.
    pub fn connection_closed(&mut self, conn: ConnId) {
        self.bindings.retain(|_, c| *c != conn);
    }

    /// Answers one frame that arrived on `conn`.
    pub fn handle(&mut self, conn: ConnId, frame: Frame) -> Vec<Reply> {
        match frame {
            Frame::Crlf => Vec::new(),
            Frame::Message(m) if m.is_request() => self.request(conn, m),
            Frame::Message(_) => Vec::new(),
        }
    }

    /// A `CRLFCRLF` arrived.
    pub fn ping(&mut self) -> Option<Reply> {
        self.counters.pings += 1;
        self.behaviour.answer_pings.then(|| Reply { bytes: b"\r\n".to_vec(), register_final: None })
    }

    fn reply(resp: Message) -> Reply {
        Reply { bytes: resp.to_bytes(), register_final: None }
    }

    fn request(&mut self, conn: ConnId, req: Message) -> Vec<Reply> {
        let method = req.method().unwrap_or("").to_ascii_uppercase();
        match method.as_str() {
            "REGISTER" => vec![self.register(conn, &req)],
            "INVITE" => self.invite(&req),
            "OPTIONS" => {
                self.counters.options += 1;
                let status = self.behaviour.options_status;
                vec![Self::reply(response(&req, status, if status < 300 { "OK" } else { "Not Here" }))]
            }
            "BYE" => vec![Self::reply(response(&req, 200, "OK"))],
            "CANCEL" => {
                let mut out = vec![Self::reply(response(&req, 200, "OK"))];
                if let Some(invite) = req.call_id().and_then(|id| self.ringing.remove(id)) {
                    out.push(Self::reply(response(&invite, 487, "Request Terminated")));
                }
                out
            }
            "ACK" => Vec::new(),
            _ => vec![Self::reply(response(&req, 501, "Not Implemented"))],
        }
    }

    fn authorized(&self, req: &Message, method: &str) -> bool {
        let Some(value) = req.header("Authorization").or_else(|| req.header("Proxy-Authorization")) else {
            return false;
        };
        let Ok(auth) = digest::parse_authorization(value) else { return false };
        let Some(password) = self.users.get(&auth.username) else { return false };
        self.issued.contains(&auth.nonce) && digest::verify(&auth, password, method)
    }

    fn challenge(&mut self, req: &Message) -> Message {
        self.nonces += 1;
        let nonce = format!("n{}{}", self.nonces, self.role);
        self.issued.insert(nonce.clone());
        let mut resp = response(req, 401, "Unauthorized");
        resp.push_header(
            "WWW-Authenticate",
            format!("Digest realm=\"sim\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5"),
        );
        resp
    }

    /// A 407 with a fresh nonce (a proxy's challenge of an INVITE).
    fn proxy_challenge(&mut self, req: &Message) -> Message {
        let mut resp = self.challenge(req);
        resp.start = crate::sip::StartLine::Response { status: 407, reason: "Proxy Authentication Required".into() };
        let value = resp.header("WWW-Authenticate").unwrap_or("").to_owned();
        resp.headers.retain(|h| !h.name.eq_ignore_ascii_case("WWW-Authenticate"));
        resp.push_header("Proxy-Authenticate", value);
        resp
    }

    fn register(&mut self, conn: ConnId, req: &Message) -> Reply {
        self.counters.registers += 1;
        let user = header_user(req, "To").unwrap_or_default();
        let (resp, status) = if let Some(status) = self.behaviour.register_status {
            let mut resp = response(req, status, "Forced");
            for (name, value) in &self.behaviour.register_headers {
                resp.push_header(name, value.clone());
            }
            (resp, status)
        } else if self.behaviour.always_challenge || (self.behaviour.require_auth && !self.authorized(req, "REGISTER"))
        {
            (self.challenge(req), 401)
        } else {
            let asked = req.header("Expires").and_then(parse_u32).unwrap_or(3600);
            let expires = if asked == 0 { 0 } else { self.behaviour.grant_expires.unwrap_or(asked) };
            let mut resp = response(req, 200, "OK");
            if asked == 0 {
                self.bindings.remove(&user);
            } else {
                self.bindings.insert(user.clone(), conn);
                if let Some(contact) = req.header("Contact").and_then(NameAddr::parse) {
                    resp.push_header("Contact", format!("<{}>;expires={expires}", contact.uri));
                }
            }
            if let Some(ft) = self.behaviour.flow_timer {
                resp.push_header("Require", "outbound");
                resp.push_header("Flow-Timer", ft.to_string());
            }
            (resp, 200)
        };
        let register_final = (status >= 200).then_some((user, status));
        Reply { bytes: resp.to_bytes(), register_final }
    }

    fn invite(&mut self, req: &Message) -> Vec<Reply> {
        self.counters.invites += 1;
        if self.behaviour.swallow_invites {
            return Vec::new();
        }
        let in_dialog = req.header("To").is_some_and(|t| t.contains(";tag="));
        if in_dialog {
            let challenge = match self.behaviour.challenge_reinvites {
                ReinviteChallenge::Never => false,
                ReinviteChallenge::Unauthorized => !self.authorized(req, "INVITE"),
                ReinviteChallenge::Always => true,
            };
            if challenge {
                return vec![Self::reply(self.proxy_challenge(req))];
            }
            let Some(status) = self.behaviour.reinvite_status else { return Vec::new() };
            let mut resp = response(req, status, if status < 300 { "OK" } else { "Refused" });
            if status < 300 {
                resp.push_header("Contact", "<sips:uas@sim.invalid>");
                resp.set_body("application/sdp", b"v=0\r\n".to_vec());
            }
            return vec![Self::reply(resp)];
        }
        if self.behaviour.require_auth && !self.authorized(req, "INVITE") {
            return vec![Self::reply(self.proxy_challenge(req))];
        }
        let mut out = vec![Self::reply(response(req, 100, "Trying"))];
        match self.behaviour.invite_status {
            None => {
                out.push(Self::reply(with_tag(response(req, 180, "Ringing"))));
                if let Some(id) = req.call_id() {
                    self.ringing.insert(id.to_owned(), req.clone());
                }
            }
            Some(status) => {
                let mut resp = with_tag(response(req, status, if status < 300 { "OK" } else { "Rejected" }));
                if status < 300 {
                    resp.push_header("Contact", "<sips:uas@sim.invalid>");
                    if let Some(rr) = &self.behaviour.record_route {
                        resp.push_header("Record-Route", rr.clone());
                    }
                    resp.set_body("application/sdp", b"v=0\r\n".to_vec());
                }
                out.push(Self::reply(resp));
            }
        }
        out
    }
}

fn with_tag(mut resp: Message) -> Message {
    for h in &mut resp.headers {
        if h.name.eq_ignore_ascii_case("To") && !h.value.contains(";tag=") {
            h.value.push_str(";tag=uas");
        }
    }
    resp
}

/// A response copying the headers RFC 3261 §8.2.6 says to copy.
fn response(req: &Message, status: u16, reason: &str) -> Message {
    let mut resp = Message::response(status, reason);
    for h in &req.headers {
        let n = h.name.to_ascii_lowercase();
        if matches!(n.as_str(), "via" | "v" | "from" | "f" | "to" | "t" | "call-id" | "i" | "cseq") {
            resp.push_header(&h.name, h.value.clone());
        }
    }
    resp
}
