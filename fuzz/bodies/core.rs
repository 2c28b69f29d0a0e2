//! Fuzz body `core`: the whole sans-IO core driven by an arbitrary sequence of what a
//! runtime and a server can do, with the simulator's invariant monitor
//! (`sip_ptls::sim::Monitor`) checking every output and the state after every step.
//!
//! The harness plays a faithful runtime around arbitrary servers: it keeps the network's
//! view of every connection the core asked for (connecting, up, closed) and only reports
//! what a runtime could report: `Connected` or `ConnectFailed` for a connection being
//! opened, `Closed` and received bytes for an up one, and anything at all about a
//! connection the core itself closed (late results racing the close, which the core must
//! ignore). The server side is arbitrary: raw bytes in arbitrary chunks, responses built
//! to any request the core sent (any status, digest challenges, Expires, Contact,
//! Min-Expires, Retry-After, Flow-Timer, Record-Route, odd headers), requests of any
//! method for new or existing dialogs, pongs and pings; the runtime also reports write
//! backlogs (bytes the peer has not taken). Time advances to the next
//! deadline, by small or large steps firing every deadline on the way, or jumps late;
//! the application places, answers, rejects and hangs up calls and shuts down. The
//! harness's DNS answers every lookup at once with two IPv4 addresses and one IPv6
//! address per name, so failed connections walk to the next address and races happen.
//!
//! After every step the monitor must have recorded nothing; `handle_timeout` must leave
//! no deadline in the past; nothing may come out after `ShutdownComplete`. At the end the
//! harness shuts the core down without answering anything: it must close within its
//! bound, once, with every connection closed and every placed call given one outcome.
//!
//! Received bytes are cut after every complete message (besides the fuzzed chunking), so
//! that the harness sees the core's reaction to a response before the next one and can
//! tell the monitor which REGISTER transaction each final response ended, the way the
//! simulated servers do.
//!
//! Input: a setup byte (accounts, backup, mode, URI scheme, outbound) and a seed byte,
//! then operations, each an opcode byte and its arguments; at most `MAX_OPS` of them.

// The input reader is a module of the crate root (fuzz target or replay test), next to
// this body, so that it is compiled once where several bodies share it.
use crate::input::Input;
use sip_ptls::config::{AccountConfig, CertificateFiles, Config, Failback, ServerAddr, TransportMode};
use sip_ptls::dns::records::{AddressRecord, Answer, Negative, NegativeKind, QueryType};
use sip_ptls::dns::{AnyAnswer, Query};
use sip_ptls::ids::{AccountId, CallId, ConnId};
use sip_ptls::sim::{Monitor, NetState};
use sip_ptls::sip::headers::{NameAddr, Via};
use sip_ptls::sip::{Frame, Framer, Limits, Message};
use sip_ptls::time::{Duration, Instant};
use sip_ptls::{Core, Event, Output, TransportError};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Most operations taken from one input.
const MAX_OPS: usize = 300;
/// Most `handle_timeout` calls for one step, or for the final shutdown.
const MAX_TIMEOUTS: usize = 20_000;

const STATUSES: [u16; 26] = [
    100, 180, 183, 200, 202, 204, 301, 302, 401, 407, 403, 404, 408, 420, 423, 480, 481, 486, 487, 488, 491, 500, 503,
    600, 603, 604,
];
const METHODS: [&str; 12] =
    ["INVITE", "BYE", "CANCEL", "ACK", "OPTIONS", "NOTIFY", "MESSAGE", "INFO", "UPDATE", "REGISTER", "PRACK", "invite"];
const TARGETS: [&str; 7] = [
    "2000",
    "sips:2000@primary.test",
    "sip:alice@example.com;transport=tls",
    "",
    "not a uri <>",
    "3000@backup.test",
    "sips:2000@[::1]:5061",
];
const NUMBERS: [&str; 10] = ["0", "1", "10", "30", "60", "600", "3600", "4294967295", "99999999999", "x"];

/// The network's view of one connection (closed ones are dropped after each step, so
/// that long runs stay linear; the monitor takes a connection it is not shown as closed).
struct Conn {
    state: NetState,
    /// The core closed it (late reports about it may still come).
    closed_by_core: bool,
    /// The server-to-phone stream as the harness frames it, to find where messages end.
    inbound: Framer,
    /// The requests the core sent on it, latest last (at most 16).
    requests: Vec<Message>,
}

struct World {
    core: Core,
    monitor: Monitor,
    now: Instant,
    users: Vec<String>,
    net: BTreeMap<ConnId, Conn>,
    /// Every connection the core asked for.
    seen: BTreeSet<ConnId>,
    /// The last connections the core closed, latest last (at most 8).
    late: Vec<ConnId>,
    /// The latest REGISTER the core sent per account: connection and branch.
    reg_tx: BTreeMap<usize, (ConnId, String)>,
    calls: Vec<CallId>,
    shutdown_complete: usize,
    /// Outputs after `ShutdownComplete`.
    closed_seen: bool,
    step: usize,
    /// `SIP_PTLS_FUZZ_TRACE` set: print every step and output (for reading a reproducer).
    trace: bool,
}

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let config = config(&mut input);
    let mut w = World {
        users: config.accounts.iter().map(|a| a.user_name.clone()).collect(),
        monitor: Monitor::new(&config),
        core: Core::new(config, Instant::ZERO),
        now: Instant::ZERO,
        net: BTreeMap::new(),
        seen: BTreeSet::new(),
        late: Vec::new(),
        reg_tx: BTreeMap::new(),
        calls: Vec::new(),
        shutdown_complete: 0,
        closed_seen: false,
        step: 0,
        trace: std::env::var_os("SIP_PTLS_FUZZ_TRACE").is_some(),
    };
    w.core.start(w.now);
    w.drain();
    w.check("start");
    while !input.is_empty() && w.step < MAX_OPS {
        w.step += 1;
        let what = w.apply(&mut input);
        if w.trace {
            eprintln!("step {} at {}: {what}", w.step, w.now);
        }
        w.check(what);
    }
    w.finish();
}

fn config(input: &mut Input<'_>) -> Config {
    let flags = input.byte();
    let accounts = 1 + usize::from(flags & 3) % 3;
    Config {
        // One setup in eight is per-call TLS.
        mode: if flags & 0x38 == 0 { TransportMode::PerCallTls } else { TransportMode::PersistentTls },
        proxy: Some(ServerAddr::new("primary.test", 5061)),
        backup_proxy: (flags & 4 != 0).then(|| ServerAddr::new("backup.test", 5061)),
        accounts: (0..accounts).map(|i| AccountConfig::new(&format!("10{i}"), "pw")).collect(),
        certificates: CertificateFiles { trusted_certificates: Some("ca.pem".into()), ..Default::default() },
        keepalive_interval: Duration::from_secs(15),
        pong_timeout: Duration::from_secs(3),
        sips_scheme: flags & 0x40 != 0,
        outbound: flags & 0x80 != 0,
        failback: Failback { probe_interval: Duration::from_secs(10), stable_probes: 2 },
        registration_retry: 30,
        registration_timeout_retry: 30,
        seed: u64::from(input.byte()).into(),
        ..Config::default()
    }
}

fn reason(input: &mut Input<'_>) -> TransportError {
    match input.byte() % 8 {
        0 => TransportError::Resolve("no such host".into()),
        1 => TransportError::Refused,
        2 => TransportError::TimedOut,
        3 => TransportError::Certificate("unknown issuer".into()),
        4 => TransportError::Tls("alert".into()),
        5 => TransportError::PeerClosed,
        6 => TransportError::Reset,
        _ => TransportError::Io("broken pipe".into()),
    }
}

fn local(conn: ConnId) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 40000 + (conn.generation % 20000) as u16)
}

fn branch(m: &Message) -> Option<String> {
    Via::parse(m.top_via()?)?.branch().map(str::to_owned)
}

/// Printable text from arbitrary bytes, without line breaks.
fn text(bytes: &[u8]) -> String {
    bytes.iter().map(|b| if (0x20..0x7f).contains(b) { char::from(*b) } else { '~' }).collect()
}

impl World {
    fn check(&mut self, what: &str) {
        let v = self.monitor.violations();
        assert!(v.is_empty(), "invariant broken at step {} ({what}) at {}: {v:#?}", self.step, self.now);
    }

    /// Performs every output the core queued, as a runtime would, with the monitor
    /// watching each; then the monitor's checks of the state.
    fn drain(&mut self) {
        let mut view: BTreeMap<ConnId, NetState> = self.net.iter().map(|(id, c)| (*id, c.state)).collect();
        // Polling changes nothing but the queue, so the whole batch can be read first.
        // Answering a lookup queues more outputs: read batches until none is left.
        loop {
            let batch: Vec<Output> = std::iter::from_fn(|| self.core.poll_output()).collect();
            if batch.is_empty() {
                break;
            }
            for out in &batch {
                if self.closed_seen {
                    self.monitor.violation(format!("{}: {out:?} after ShutdownComplete", self.now));
                }
                if self.trace {
                    eprintln!("  {out:?}");
                }
                self.monitor.on_output(&self.core, out, &view, self.now);
                match out {
                    Output::Connect { conn, .. } => {
                        view.insert(*conn, NetState::Connecting);
                    }
                    Output::Close { conn } => {
                        if let Some(s) = view.get_mut(conn) {
                            *s = NetState::Closed;
                        }
                    }
                    _ => {}
                }
                match out.clone() {
                    Output::Connect { conn, .. } => {
                        let fresh = Conn {
                            state: NetState::Connecting,
                            closed_by_core: false,
                            inbound: Framer::new(Limits::default()),
                            requests: Vec::new(),
                        };
                        self.net.insert(conn, fresh);
                        if !self.seen.insert(conn) {
                            self.monitor.violation(format!("{}: Connect for {conn}, an id used before", self.now));
                        }
                    }
                    Output::Transmit { conn, data } => self.transmitted(conn, &data),
                    Output::Close { conn } => {
                        if let Some(c) = self.net.get_mut(&conn) {
                            c.closed_by_core |= c.state != NetState::Closed;
                            c.state = NetState::Closed;
                        }
                    }
                    // The harness's DNS answers at once: every name has two IPv4 addresses
                    // and one IPv6 address, so that a failed connection walks to the next.
                    Output::Resolve { query } => {
                        let outcome = Ok(dns_answer(&query));
                        self.core.handle_input(self.now, sip_ptls::Input::Resolved { query, outcome });
                    }
                    Output::Event(Event::IncomingCall { call, .. }) => self.calls.push(call),
                    Output::Event(Event::ShutdownComplete) => {
                        self.shutdown_complete += 1;
                        self.closed_seen = true;
                    }
                    Output::Event(_) => {}
                }
            }
        }
        self.monitor.after_step(&self.core, &view);
        let closed: Vec<ConnId> =
            self.net.iter().filter(|(_, c)| c.state == NetState::Closed).map(|(id, _)| *id).collect();
        for id in closed {
            if self.net.remove(&id).is_some_and(|c| c.closed_by_core) {
                if self.late.len() == 8 {
                    self.late.remove(0);
                }
                self.late.push(id);
            }
        }
    }

    /// Remembers the requests the core sends, and the REGISTER transaction of each account.
    fn transmitted(&mut self, conn: ConnId, data: &[u8]) {
        let Ok(m) = Message::parse(data) else { return };
        if !m.is_request() {
            return;
        }
        if m.method() == Some("REGISTER") {
            let user = sip_ptls::sim::header_user(&m, "To");
            let account = user.and_then(|u| self.users.iter().position(|x| *x == u));
            if let (Some(a), Some(b)) = (account, branch(&m)) {
                self.reg_tx.insert(a, (conn, b));
            }
        }
        if let Some(c) = self.net.get_mut(&conn) {
            if c.requests.len() == 16 {
                c.requests.remove(0);
            }
            c.requests.push(m);
        }
    }

    /// A final response about to reach the core: if it ends the account's REGISTER
    /// transaction, the monitor is told, as the simulated servers tell it.
    fn note_response(&mut self, conn: ConnId, m: &Message) {
        let Some(status) = m.status().filter(|s| *s >= 200) else { return };
        let Some(b) = branch(m) else { return };
        let Some(a) = self.reg_tx.iter().find(|(_, (c, x))| *c == conn && *x == b).map(|(a, _)| *a) else {
            return;
        };
        self.reg_tx.remove(&a);
        // The core drops a transaction that timed out or lost its connection: a late
        // answer to it is ignored, so it is not a final answer the core received.
        if self.core.decision_view().accounts.get(a).is_some_and(|v| v.tx.is_some()) {
            let user = self.users[a].clone();
            self.monitor.register_final_delivered(conn, &user, status);
        }
    }

    fn pick(&self, input: &mut Input<'_>, want: impl Fn(&Conn) -> bool) -> Option<ConnId> {
        let b = usize::from(input.byte());
        let ids: Vec<ConnId> = self.net.iter().filter(|(_, c)| want(c)).map(|(id, _)| *id).collect();
        (!ids.is_empty()).then(|| ids[b % ids.len()])
    }

    fn pick_call(&self, input: &mut Input<'_>) -> CallId {
        let b = input.byte();
        if self.calls.is_empty() || b == 255 {
            CallId(u32::from(b))
        } else {
            self.calls[usize::from(b) % self.calls.len()]
        }
    }

    /// Delivers server bytes on an up connection in pieces of `chunk` bytes (0: whole),
    /// also cut after every complete message.
    fn deliver(&mut self, conn: ConnId, bytes: &[u8], chunk: usize) {
        let Some(c) = self.net.get_mut(&conn).filter(|c| c.state == NetState::Up) else { return };
        // Where each message of `bytes` ends, from the harness's framer of this stream:
        // after a message frame, what stays buffered follows the message.
        c.inbound.push(bytes);
        let mut ends: Vec<(usize, Message)> = Vec::new();
        while let Ok(Some(frame)) = c.inbound.next_frame() {
            if let Frame::Message(m) = frame {
                ends.push((bytes.len() - c.inbound.buffered(), m));
            }
        }
        let mut cuts: Vec<(usize, Option<Message>)> = ends.into_iter().map(|(end, m)| (end, Some(m))).collect();
        if chunk > 0 {
            cuts.extend((chunk..bytes.len()).step_by(chunk).map(|at| (at, None)));
        }
        cuts.push((bytes.len(), None));
        cuts.sort_by_key(|(at, m)| (*at, m.is_none()));
        let mut start = 0;
        for (end, message) in cuts {
            if let Some(m) = message.as_ref().filter(|_| self.trace) {
                let first = m.status().map_or_else(|| format!("{:?}", m.method()), |s| s.to_string());
                eprintln!("  <- {first} {:?} {:?} {:?}", m.cseq(), m.header("Expires"), m.header("Contact"));
            }
            if let Some(m) = message {
                self.monitor.message_delivered(conn, &m);
                self.note_response(conn, &m);
            }
            if end <= start {
                continue;
            }
            if self.net.get(&conn).is_none_or(|c| c.state != NetState::Up) {
                return;
            }
            self.core.handle_input(self.now, sip_ptls::Input::Received { conn, data: &bytes[start..end] });
            self.drain();
            start = end;
        }
    }

    fn timeout(&mut self) {
        self.core.handle_timeout(self.now);
        self.drain();
        if self.core.poll_timeout().is_some_and(|t| t <= self.now) {
            self.monitor.violation(format!("{}: handle_timeout left an expired deadline", self.now));
        }
    }

    /// Moves time to `to`, firing every deadline on the way, as a punctual runtime does.
    fn run_until(&mut self, to: Instant) {
        for _ in 0..MAX_TIMEOUTS {
            match self.core.poll_timeout() {
                Some(t) if t <= to => {
                    self.now = self.now.max(t);
                    self.timeout();
                    if !self.monitor.violations().is_empty() {
                        return;
                    }
                }
                _ => {
                    self.now = to;
                    self.timeout();
                    return;
                }
            }
        }
        self.monitor.violation(format!("{}: over {MAX_TIMEOUTS} deadlines before {to}", self.now));
    }

    fn apply(&mut self, input: &mut Input<'_>) -> &'static str {
        match input.byte() % 16 {
            0 => {
                if let Some(conn) = self.pick(input, |c| c.state == NetState::Connecting) {
                    self.net.get_mut(&conn).expect("picked").state = NetState::Up;
                    self.core.handle_input(self.now, sip_ptls::Input::Connected { conn, local: local(conn) });
                    self.drain();
                }
                "connected"
            }
            1 => {
                if let Some(conn) = self.pick(input, |c| c.state == NetState::Connecting) {
                    self.net.get_mut(&conn).expect("picked").state = NetState::Closed;
                    let reason = reason(input);
                    self.core.handle_input(self.now, sip_ptls::Input::ConnectFailed { conn, reason });
                    self.drain();
                }
                "connect failed"
            }
            2 => {
                if let Some(conn) = self.pick(input, |c| c.state == NetState::Up) {
                    self.net.get_mut(&conn).expect("picked").state = NetState::Closed;
                    let reason = reason(input);
                    self.core.handle_input(self.now, sip_ptls::Input::Closed { conn, reason });
                    self.drain();
                }
                "closed"
            }
            3 => {
                let conn = self.pick(input, |c| c.state == NetState::Up);
                let chunk = usize::from(input.byte() % 64);
                let bytes = input.sized(2048);
                if let Some(conn) = conn {
                    self.deliver(conn, bytes, chunk);
                }
                "raw bytes"
            }
            4 | 5 => {
                let conn = self.pick(input, |c| c.state == NetState::Up && !c.requests.is_empty());
                let which = usize::from(input.byte());
                let chunk = usize::from(input.byte() % 64);
                let status = match input.byte() {
                    b @ 0..=239 => STATUSES[usize::from(b) % STATUSES.len()],
                    _ => 100 + input.u16() % 600,
                };
                let extras = input.byte();
                let Some(conn) = conn else { return "response" };
                let requests = &self.net[&conn].requests;
                let req = requests[requests.len() - 1 - which % requests.len()].clone();
                let resp = response(&req, status, extras, input);
                self.deliver(conn, &resp.to_bytes(), chunk);
                "response"
            }
            6 => {
                let conn = self.pick(input, |c| c.state == NetState::Up);
                let chunk = usize::from(input.byte() % 64);
                let req = self.request(conn, input);
                if let Some(conn) = conn {
                    self.deliver(conn, &req.to_bytes(), chunk);
                }
                "request"
            }
            7 => {
                let conn = self.pick(input, |c| c.state == NetState::Up);
                let how = input.byte();
                let Some(conn) = conn else { return "pong or backlog" };
                match how % 4 {
                    0 => self.deliver(conn, b"\r\n", 0),
                    1 => self.deliver(conn, b"\r\n\r\n", 0),
                    _ => {
                        // The shell's count of bytes the peer has not taken yet.
                        let bytes = match how >> 2 {
                            0..=15 => 0,
                            n @ 16..=47 => usize::from(n) * 997,
                            _ => 256 * 1024 + usize::from(how & 3),
                        };
                        self.core.handle_input(self.now, sip_ptls::Input::WriteBacklog { conn, bytes });
                        self.drain();
                    }
                }
                "pong or backlog"
            }
            8 => {
                let ms = u64::from(input.byte()) * 20;
                self.run_until(self.now + Duration::from_millis(ms));
                "small step"
            }
            9 => {
                let b = input.byte();
                let to = self.now + Duration::from_secs(u64::from(b & 0x7f) * 8);
                if b & 0x80 == 0 {
                    self.run_until(to);
                } else {
                    // A late runtime: the deadlines on the way fire together at `to`.
                    self.now = to;
                    self.timeout();
                }
                "large step"
            }
            10 | 11 => {
                if let Some(t) = self.core.poll_timeout() {
                    self.now = self.now.max(t);
                }
                self.timeout();
                "next deadline"
            }
            12 => {
                let account = AccountId(input.byte() % (self.users.len() as u8 + 1));
                let target = *input.pick(&TARGETS);
                let sdp = if input.byte() & 1 == 0 { b"v=0\r\n".to_vec() } else { Vec::new() };
                if let Ok(call) = self.core.place_call(self.now, account, target, sdp) {
                    self.monitor.placed(call);
                    self.calls.push(call);
                }
                self.drain();
                "place call"
            }
            13 => {
                let call = self.pick_call(input);
                let how = input.byte();
                let _ = match how % 4 {
                    0 | 1 => self.core.answer(self.now, call, b"v=0\r\n".to_vec()),
                    2 => self.core.reject(self.now, call, 486),
                    _ => self.core.reject(self.now, call, 100 + u16::from(how)),
                };
                self.drain();
                "answer or reject"
            }
            14 => {
                let call = self.pick_call(input);
                let _ = self.core.hang_up(self.now, call);
                self.drain();
                "hang up"
            }
            _ => {
                let how = input.byte();
                if how.is_multiple_of(8) {
                    self.core.shutdown(self.now);
                    self.drain();
                    return "shutdown";
                }
                self.stale(input, how)
            }
        }
    }

    /// A late report about a connection the core closed: it must be ignored.
    fn stale(&mut self, input: &mut Input<'_>, how: u8) -> &'static str {
        let b = usize::from(input.byte());
        let conn = (!self.late.is_empty()).then(|| self.late[b % self.late.len()]);
        let reason = reason(input);
        let bytes = input.sized(256);
        let Some(conn) = conn else { return "late report" };
        let report = match how % 5 {
            0 => sip_ptls::Input::Connected { conn, local: local(conn) },
            1 => sip_ptls::Input::ConnectFailed { conn, reason },
            2 => sip_ptls::Input::Closed { conn, reason },
            3 => sip_ptls::Input::WriteBacklog { conn, bytes: bytes.len() * 1000 },
            _ => sip_ptls::Input::Received { conn, data: bytes },
        };
        self.core.handle_input(self.now, report);
        self.drain();
        "late report"
    }

    /// A request from the server: a new dialog, or within one the core started.
    fn request(&self, conn: Option<ConnId>, input: &mut Input<'_>) -> Message {
        let method = *input.pick(&METHODS);
        let users: Vec<&str> = self.users.iter().map(String::as_str).chain(["999"]).collect();
        let user = *input.pick(&users);
        let k = input.byte() % 8;
        let dialog = input.byte();
        let mut m = Message::request(method, &format!("sips:{user}@127.0.0.1"));
        m.push_header("Via", format!("SIP/2.0/TLS proxy.test;branch=z9hG4bKs{k}"));
        m.push_header("Max-Forwards", "70");
        let invites: Vec<&Message> = conn
            .and_then(|c| self.net.get(&c))
            .map(|c| c.requests.iter().filter(|r| r.method() == Some("INVITE")).collect())
            .unwrap_or_default();
        let cseq = 1 + u32::from(dialog >> 2) % 3;
        if dialog & 1 == 1 && !invites.is_empty() {
            // In the dialog of an INVITE the core sent (as answered by `response`).
            let inv = invites[usize::from(k) % invites.len()];
            m.push_header("From", format!("{};tag=srv", inv.header("To").unwrap_or("")));
            m.push_header("To", inv.header("From").unwrap_or(""));
            m.push_header("Call-ID", inv.call_id().unwrap_or(""));
        } else {
            m.push_header("From", format!("<sips:3000@proxy.test>;tag=f{k}"));
            let tag = if dialog & 2 != 0 { ";tag=t" } else { "" };
            m.push_header("To", format!("<sips:{user}@proxy.test>{tag}"));
            m.push_header("Call-ID", format!("in-{k}"));
        }
        m.push_header("CSeq", format!("{cseq} {method}"));
        m.push_header("Contact", "<sips:3000@192.0.2.1:5061;transport=tls>");
        if dialog & 0x40 != 0 {
            m.push_header("Record-Route", "<sips:proxy.test;lr>");
        }
        if dialog & 0x80 != 0 && method.eq_ignore_ascii_case("INVITE") {
            m.set_body("application/sdp", b"v=0\r\n".to_vec());
        }
        m
    }
}

/// A response to `req` with `status`, and the extra headers `extras` selects.
fn response(req: &Message, status: u16, extras: u8, input: &mut Input<'_>) -> Message {
    let mut r = Message::response(status, "Fuzz");
    for via in req.header_all("Via") {
        r.push_header("Via", via);
    }
    if let Some(from) = req.header("From") {
        r.push_header("From", from);
    }
    if let Some(to) = req.header("To") {
        let tagged = status > 100 && NameAddr::parse(to).is_some_and(|n| n.tag().is_none());
        r.push_header("To", if tagged { format!("{to};tag=srv") } else { to.to_owned() });
    }
    if let Some(id) = req.call_id() {
        r.push_header("Call-ID", id);
    }
    if let Some(cseq) = req.header("CSeq") {
        r.push_header("CSeq", cseq);
    }
    if extras & 1 != 0 {
        let name = if status == 407 { "Proxy-Authenticate" } else { "WWW-Authenticate" };
        let realm = *input.pick(&["primary.test", "backup.test", ""]);
        let nonce = input.byte() % 4;
        let alg = *input.pick(&[
            "",
            ", algorithm=MD5",
            ", algorithm=MD5-sess",
            ", algorithm=SHA-256",
            ", algorithm=SHA-256-sess",
            ", algorithm=SHA-512",
        ]);
        let qop = *input.pick(&["", ", qop=\"auth\"", ", qop=\"auth-int\"", ", qop=\"auth,auth-int\""]);
        let more = input.byte();
        let stale = if more & 1 != 0 { ", stale=TRUE" } else { "" };
        let opaque = if more & 2 != 0 { ", opaque=\"op\"" } else { "" };
        r.push_header(name, format!("Digest realm=\"{realm}\", nonce=\"n{nonce}\"{alg}{qop}{stale}{opaque}"));
        if more & 4 != 0 {
            r.push_header(name, "Basic realm=\"x\"");
        }
    }
    if extras & 2 != 0
        && let Some(contact) = req.header("Contact")
    {
        let expires = *input.pick(&NUMBERS);
        r.push_header("Contact", format!("{contact};expires={expires}"));
    }
    if extras & 4 != 0 {
        r.push_header("Expires", *input.pick(&NUMBERS));
    }
    if extras & 8 != 0 {
        r.push_header("Min-Expires", *input.pick(&NUMBERS));
        r.push_header("Retry-After", *input.pick(&NUMBERS));
    }
    if extras & 16 != 0 {
        r.push_header("Flow-Timer", *input.pick(&NUMBERS));
    }
    if extras & 32 != 0 {
        r.push_header("Record-Route", "<sips:proxy.test;lr>");
    }
    if extras & 64 != 0 {
        r.push_header("Contact", "<sips:2000@192.0.2.1:5061;transport=tls>");
    }
    if extras & 128 != 0 {
        let name = *input.pick(&["X-Fuzz", "Require", "Supported", "Via", "CSeq", "Call-ID", "To", "Contact"]);
        r.push_header(name, text(input.sized(64)).trim());
    }
    if req.method() == Some("INVITE") && (200..300).contains(&status) {
        r.set_body("application/sdp", b"v=0\r\n".to_vec());
    }
    r
}

impl World {
    /// Shuts the core down without answering anything: it must close within its bound.
    fn finish(&mut self) {
        self.step += 1;
        self.core.shutdown(self.now);
        self.drain();
        for _ in 0..MAX_TIMEOUTS {
            if self.core.is_closed() {
                break;
            }
            let Some(t) = self.core.poll_timeout() else { break };
            self.now = self.now.max(t);
            self.timeout();
        }
        assert!(self.core.is_closed(), "shutdown did not complete by {}", self.now);
        assert_eq!(self.shutdown_complete, 1, "ShutdownComplete emitted {} times", self.shutdown_complete);
        for (id, c) in &self.net {
            assert_eq!(c.state, NetState::Closed, "{id} left open after shutdown");
        }
        self.monitor.check_every_call_finished();
        self.check("final shutdown");
    }
}

/// The harness's DNS: two IPv4 addresses and one IPv6 address for every name, no SRV or
/// NAPTR record.
fn dns_answer(query: &Query) -> AnyAnswer {
    let records = |addrs: &[IpAddr]| {
        let records = addrs.iter().map(|addr| AddressRecord { addr: *addr, ttl: 60 }).collect();
        AnyAnswer::Addresses(Answer::Records { records, additional: Vec::new() })
    };
    let none = Negative { kind: NegativeKind::NxDomain, ttl: Some(60) };
    match query.qtype {
        QueryType::A => records(&[IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2])]),
        QueryType::Aaaa => records(&[IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])]),
        QueryType::Srv => AnyAnswer::Srv(Answer::Negative(none)),
        QueryType::Naptr => AnyAnswer::Naptr(Answer::Negative(none)),
    }
}
