//! A simulated network and pair of SIP servers that drive the real [`Core`] on a virtual
//! clock: the harness of the property tests, of the scenario tests and of
//! `sip-ptls simulate`. Pure like the core: no sockets, no clock, no threads.
//!
//! The run loop is the one every runtime follows: deliver the earliest of (the core's
//! next deadline, the next network delivery), drain every output, repeat. A
//! [`Monitor`] watches every output and records any broken invariant;
//! [`TraceMonitor`] feeds it from a core's inputs and outputs alone (a replayed trace).

mod monitor;
mod register_tx;
mod schedule_oracle;
mod server;
mod trace_monitor;
mod zone;

pub use monitor::Monitor;
pub use register_tx::{RegisterTransactions, branch};
pub use server::{Behaviour, Counters, ReinviteChallenge, ServerMode, SimServer};
pub use trace_monitor::TraceMonitor;
pub use zone::{Zone, drain_answering};

use crate::config::Config;
use crate::engine::{Core, Event, Input, Output, TransportError};
use crate::ids::{ConnId, Server};
use crate::sip::{Frame, Framer, Limits};
use crate::time::{Duration, Instant};
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::collections::BTreeMap;

/// Where a connection is, as the network sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetState {
    /// Connect asked for; result not delivered yet.
    Connecting,
    /// `Connected` delivered to the core.
    Up,
    /// Closed by either side.
    Closed,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct NetConn {
    state: NetState,
    /// The server's side of the byte stream.
    framer: Framer,
    /// The mode of the address it went to, when that address has one of its own
    /// (`Sim::address_modes`); else the server's mode applies.
    address_mode: Option<ServerMode>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Delivery {
    Connected(ConnId),
    ConnectFailed(ConnId, TransportError),
    Received(ConnId, Vec<u8>, Option<(String, u16)>),
    Closed(ConnId, TransportError),
}

/// The simulated world around one core.
#[derive(Clone, Debug)]
pub struct Sim {
    /// The core under test.
    pub core: Core,
    /// Virtual time.
    pub now: Instant,
    /// Primary and backup.
    pub servers: [SimServer; 2],
    /// One-way network delay.
    pub latency: Duration,
    /// When non-zero, bytes reach the core in pieces of this size (any chunking must do).
    pub chunk: usize,
    /// Every event the core emitted, with its time.
    pub events: Vec<(Instant, Event)>,
    /// Invariant checks over everything that happened.
    pub monitor: Monitor,
    /// Everything the core transmitted: time, connection, bytes.
    pub sent: Vec<(Instant, ConnId, Vec<u8>)>,
    /// The DNS: every lookup the core asks is answered from it at once.
    pub zone: Zone,
    /// Addresses that behave otherwise than their server's mode when connected to (a
    /// target that refuses, or swallows the handshake).
    pub address_modes: BTreeMap<IpAddr, ServerMode>,
    /// Every `Connect`: when, the connection, the address and the certificate name.
    pub dials: Vec<(Instant, ConnId, SocketAddr, String)>,
    /// Every lookup asked, and when.
    pub lookups: Vec<(Instant, crate::dns::Query)>,
    net: BTreeMap<ConnId, NetConn>,
    agenda: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
}

impl Sim {
    /// A world for `config`, whose accounts the servers know; the core is not started.
    pub fn new(config: Config) -> Sim {
        let users: Vec<(String, String)> =
            config.accounts.iter().map(|a| (a.digest_user().to_owned(), a.password.clone())).collect();
        let monitor = Monitor::with_exact_clock(&config);
        Sim {
            core: Core::new(config, Instant::ZERO),
            now: Instant::ZERO,
            servers: [SimServer::new(Server::Primary, &users), SimServer::new(Server::Backup, &users)],
            latency: Duration::from_millis(10),
            chunk: 0,
            events: Vec::new(),
            monitor,
            sent: Vec::new(),
            zone: Zone::default(),
            address_modes: BTreeMap::new(),
            dials: Vec::new(),
            lookups: Vec::new(),
            net: BTreeMap::new(),
            agenda: BTreeMap::new(),
            seq: 0,
        }
    }

    /// Starts the core.
    pub fn start(&mut self) {
        self.core.start(self.now);
        self.drain();
    }

    /// The server playing `role`.
    pub fn server(&mut self, role: Server) -> &mut SimServer {
        &mut self.servers[role.index()]
    }

    /// How the network sees a connection.
    pub fn net_state(&self, conn: ConnId) -> Option<NetState> {
        self.net.get(&conn).map(|c| c.state)
    }

    /// Connections open or opening as the network sees them.
    pub fn open_connections(&self) -> Vec<ConnId> {
        self.net.iter().filter(|(_, c)| c.state != NetState::Closed).map(|(id, _)| *id).collect()
    }

    fn schedule(&mut self, after: Duration, d: Delivery) {
        self.seq += 1;
        self.agenda.insert((self.now + after, self.seq), d);
    }

    /// Changes how a server behaves; a server that starts refusing resets its connections.
    pub fn set_mode(&mut self, role: Server, mode: ServerMode) {
        self.servers[role.index()].mode = mode;
        if mode == ServerMode::Refusing {
            self.drop_connections(role, TransportError::Reset);
        }
    }

    /// The server closes every connection it has (a restart, a crash).
    pub fn drop_connections(&mut self, role: Server, reason: TransportError) {
        let ids: Vec<ConnId> =
            self.net.iter().filter(|(id, c)| id.server == role && c.state == NetState::Up).map(|(id, _)| *id).collect();
        for id in ids {
            self.schedule(self.latency, Delivery::Closed(id, reason.clone()));
        }
    }

    /// Sends raw bytes from the server to the phone on `conn` (after one network delay).
    pub fn inject(&mut self, conn: ConnId, bytes: Vec<u8>) {
        self.schedule(self.latency, Delivery::Received(conn, bytes, None));
    }

    /// Runs the world until `t`; returns the number of steps taken.
    pub fn run_until(&mut self, t: Instant) -> usize {
        let mut steps = 0;
        loop {
            let core_next = self.core.poll_timeout();
            let net_next = self.agenda.keys().next().map(|k| k.0);
            let next = match (core_next, net_next) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(x) => x,
                    None => break,
                },
            };
            if next > t {
                break;
            }
            steps += 1;
            if steps > 100_000 {
                self.monitor.violation(format!("no quiescence: over 100000 steps before {t}"));
                break;
            }
            if next > self.now {
                self.now = next;
            }
            if net_next == Some(next) {
                if let Some((_, d)) = self.agenda.pop_first() {
                    self.deliver(d);
                }
            } else {
                self.core.handle_timeout(self.now);
                self.drain();
                if self.core.poll_timeout().is_some_and(|t| t <= self.now) {
                    let now = self.now;
                    self.monitor.violation(format!("{now}: handle_timeout left an expired deadline"));
                    break;
                }
                continue;
            }
            self.drain();
        }
        if t > self.now {
            self.now = t;
            self.monitor.check_schedule(self.now, &self.net_view());
        }
        steps
    }

    /// Runs for `d` more.
    pub fn run_for(&mut self, d: Duration) -> usize {
        self.run_until(self.now + d)
    }

    fn deliver(&mut self, d: Delivery) {
        match d {
            Delivery::Connected(conn) => {
                let Some(c) = self.net.get_mut(&conn) else { return };
                if c.state != NetState::Connecting {
                    return;
                }
                c.state = NetState::Up;
                let local =
                    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 40000 + (conn.generation % 20000) as u16);
                self.core.handle_input(self.now, Input::Connected { conn, local });
                if self.servers[conn.server.index()].behaviour.close_after_handshake {
                    let alert = TransportError::Tls("alert: certificate required".into());
                    self.schedule(self.latency, Delivery::Closed(conn, alert));
                }
            }
            Delivery::ConnectFailed(conn, reason) => {
                let Some(c) = self.net.get_mut(&conn) else { return };
                if c.state != NetState::Connecting {
                    return;
                }
                c.state = NetState::Closed;
                self.core.handle_input(self.now, Input::ConnectFailed { conn, reason });
            }
            Delivery::Received(conn, bytes, register_final) => {
                if self.net.get(&conn).map(|c| c.state) != Some(NetState::Up) {
                    return;
                }
                if let Some((user, status)) = &register_final {
                    self.monitor.register_final_delivered(conn, user, *status);
                }
                if bytes.starts_with(b"\r\n") {
                    self.monitor.pong_delivered(conn.server);
                    self.monitor.keepalive_answered(conn, true, self.now);
                }
                let mut framer = Framer::new(Limits::default());
                framer.push(&bytes);
                while let Ok(Some(frame)) = framer.next_frame() {
                    if let Frame::Message(m) = frame {
                        self.monitor.message_delivered(conn, &m);
                    }
                }
                let size = if self.chunk == 0 { bytes.len().max(1) } else { self.chunk };
                for piece in bytes.chunks(size) {
                    self.core.handle_input(self.now, Input::Received { conn, data: piece });
                }
                // The timing an answer sets counts only if the core read it: bytes injected
                // before it may have made the stream unreadable, and the connection dead.
                let read = self.core.connections().any(|(id, _, _)| id == conn);
                if let Ok(m) = crate::sip::Message::parse(&bytes)
                    && m.status().is_some_and(|s| s >= 200)
                    && m.cseq().is_some_and(|(_, method)| method == "OPTIONS")
                {
                    self.monitor.keepalive_answered(conn, false, self.now);
                }
                if let (Some((user, status)), true) = (register_final, read)
                    && let Ok(m) = crate::sip::Message::parse(&bytes)
                {
                    self.monitor.register_answer_delivered(conn, &user, status, &m, self.now);
                }
            }
            Delivery::Closed(conn, reason) => {
                let Some(c) = self.net.get_mut(&conn) else { return };
                if c.state != NetState::Up {
                    return;
                }
                c.state = NetState::Closed;
                self.servers[conn.server.index()].connection_closed(conn);
                self.core.handle_input(self.now, Input::Closed { conn, reason });
            }
        }
    }

    /// Performs every output the core queued, the way a runtime would.
    pub fn drain(&mut self) {
        while let Some(out) = self.core.poll_output() {
            self.monitor.on_output(&self.core, &out, &self.net_view(), self.now);
            match out {
                Output::Connect { conn, addr, server_name } => {
                    self.dials.push((self.now, conn, addr, server_name));
                    self.connect(conn, addr);
                }
                Output::Transmit { conn, data } => {
                    self.transmit(conn, &data);
                    self.sent.push((self.now, conn, data));
                }
                Output::Close { conn } => {
                    if let Some(c) = self.net.get_mut(&conn) {
                        c.state = NetState::Closed;
                    }
                    self.servers[conn.server.index()].connection_closed(conn);
                }
                Output::Event(e) => self.events.push((self.now, e)),
                Output::Resolve { query } => {
                    self.lookups.push((self.now, query.clone()));
                    let outcome = self.zone.answer(&query);
                    self.core.handle_input(self.now, Input::Resolved { query, outcome });
                }
            }
        }
        self.monitor.after_step(&self.core, &self.net_view());
        self.monitor.check_schedule(self.now, &self.net_view());
    }

    fn net_view(&self) -> BTreeMap<ConnId, NetState> {
        self.net.iter().map(|(id, c)| (*id, c.state)).collect()
    }

    fn connect(&mut self, conn: ConnId, addr: SocketAddr) {
        let address_mode = self.address_modes.get(&addr.ip()).copied();
        self.net.insert(
            conn,
            NetConn { state: NetState::Connecting, framer: Framer::new(Limits::default()), address_mode },
        );
        let server = &mut self.servers[conn.server.index()];
        match address_mode.unwrap_or(server.mode) {
            ServerMode::Up | ServerMode::Silent => {
                server.counters.accepted += 1;
                // TCP handshake plus a TLS 1.3 handshake: two round trips.
                self.schedule(self.latency.saturating_mul(4), Delivery::Connected(conn));
            }
            ServerMode::Refusing => {
                self.schedule(self.latency.saturating_mul(2), Delivery::ConnectFailed(conn, TransportError::Refused))
            }
            ServerMode::Frozen => {}
        }
    }

    fn transmit(&mut self, conn: ConnId, data: &[u8]) {
        let Some(c) = self.net.get_mut(&conn) else { return };
        if c.state != NetState::Up {
            return;
        }
        // Pings are recognised before framing because RFC 5626 defines them on the raw
        // stream between messages.
        let address_mode = c.address_mode;
        if data == b"\r\n\r\n" {
            let server = &mut self.servers[conn.server.index()];
            if address_mode.unwrap_or(server.mode) == ServerMode::Up {
                if let Some(r) = server.ping() {
                    self.schedule(self.latency.saturating_mul(2), Delivery::Received(conn, r.bytes, None));
                }
            } else {
                server.counters.pings += 1;
            }
            return;
        }
        c.framer.push(data);
        let mut frames = Vec::new();
        while let Ok(Some(f)) = c.framer.next_frame() {
            frames.push(f);
        }
        let server = &mut self.servers[conn.server.index()];
        if address_mode.unwrap_or(server.mode) != ServerMode::Up {
            return;
        }
        let mut replies = Vec::new();
        for f in frames {
            if let Frame::Message(_) = f {
                replies.extend(server.handle(conn, f));
            }
        }
        for r in replies {
            self.schedule(self.latency.saturating_mul(2), Delivery::Received(conn, r.bytes, r.register_final));
        }
    }

    /// Events emitted so far that match `pred`.
    pub fn count_events(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| pred(e)).count()
    }

    /// The time of the first event at or after `since` that matches `pred`.
    pub fn first_event_after(&self, since: Instant, pred: impl Fn(&Event) -> bool) -> Option<Instant> {
        self.events.iter().find(|(t, e)| *t >= since && pred(e)).map(|(t, _)| *t)
    }
}

impl Sim {
    /// Places a call through the core and tells the monitor.
    pub fn place_call(&mut self, account: crate::ids::AccountId, target: &str) -> Option<crate::ids::CallId> {
        let r = self.core.place_call(self.now, account, target, b"v=0\r\n".to_vec());
        if let Ok(id) = r {
            self.monitor.placed(id);
            self.monitor.call_placed_at(id, self.now);
        }
        self.drain();
        r.ok()
    }

    /// The runtime reports `bytes` on `conn` that its peer has not taken yet.
    pub fn report_backlog(&mut self, conn: ConnId, bytes: usize) {
        if self.net_state(conn) != Some(NetState::Up) {
            return;
        }
        self.monitor.backlog_reported(conn, bytes, self.now);
        self.core.handle_input(self.now, Input::WriteBacklog { conn, bytes });
        self.drain();
    }

    /// Gives the core a new configuration (`Core::reconfigure`) and tells the monitor when
    /// it is taken.
    pub fn reconfigure(&mut self, config: Config) -> Result<(), crate::engine::NeedsRestart> {
        self.core.reconfigure(self.now, config.clone())?;
        self.monitor.reconfigured(&config, self.now);
        self.drain();
        Ok(())
    }

    /// Hangs a call up.
    pub fn hang_up(&mut self, call: crate::ids::CallId) {
        let _ = self.core.hang_up(self.now, call);
        self.drain();
    }

    /// Shuts the core down and runs until it is closed (or `limit` passes).
    pub fn shutdown(&mut self, limit: Duration) {
        self.monitor.shutdown_requested();
        self.core.shutdown(self.now);
        self.drain();
        let end = self.now + limit;
        while !self.core.is_closed() && self.now < end {
            let step = Duration::from_millis(100);
            self.run_for(step);
        }
    }
}

impl Sim {
    /// The first lines of every SIP request the core sent with `method`, with connections.
    pub fn sent_requests(&self, method: &str) -> Vec<(Instant, ConnId, crate::sip::Message)> {
        self.sent
            .iter()
            .filter_map(|(t, c, d)| crate::sip::Message::parse(d).ok().map(|m| (*t, *c, m)))
            .filter(|(_, _, m)| m.method() == Some(method))
            .collect()
    }

    /// Times at which pings were sent.
    pub fn ping_times(&self) -> Vec<Instant> {
        self.sent.iter().filter(|(_, _, d)| d.as_slice() == b"\r\n\r\n").map(|(t, _, _)| *t).collect()
    }
}

/// The user part of the URI in header `name` (`From`, `To`) of `m`: which account a
/// message is about, as the monitor, the oracles and the simulated servers read it.
pub fn header_user(m: &crate::sip::Message, name: &str) -> Option<String> {
    let addr = crate::sip::headers::NameAddr::parse(m.header(name)?)?;
    crate::sip::headers::uri_user(&addr.uri).map(str::to_owned)
}
