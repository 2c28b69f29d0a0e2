//! A network-free rig for the micro benchmarks: one [`Core`] driven on a virtual clock
//! against the simulator's server ([`SimServer`]), with the core's work (timeouts and
//! inputs) separable from the server's (building the answers), so a benchmark can time
//! the core alone.
#![allow(dead_code)]

use sip_ptls::config::{AccountConfig, CertificateFiles, Config, ServerAddr};
use sip_ptls::engine::{Core, Input, Output, RegState};
use sip_ptls::ids::{AccountId, ConnId, Server};
use sip_ptls::sim::SimServer;
use sip_ptls::sip::{Frame, Framer, Limits};
use sip_ptls::time::{Duration, Instant};

/// A configuration with `accounts` lines, the given keep-alive interval and registration
/// period (seconds), against `127.0.0.1:5061`.
pub fn config(accounts: usize, keepalive: Duration, registration_period: u32) -> Config {
    Config {
        proxy: Some(ServerAddr::new("127.0.0.1", 5061)),
        accounts: (0..accounts).map(|i| AccountConfig::new(&format!("{}", 1001 + i), "secret")).collect(),
        certificates: CertificateFiles { trusted_certificates: Some("ca.pem".into()), ..Default::default() },
        keepalive_interval: keepalive,
        registration_period,
        seed: 7.into(),
        ..Config::default()
    }
}

/// The users of [`config`], as the server knows them.
pub fn users(accounts: usize) -> Vec<(String, String)> {
    (0..accounts).map(|i| (format!("{}", 1001 + i), "secret".to_string())).collect()
}

/// One core, its server, and the bytes in flight between them.
pub struct Rig {
    /// The core under test.
    pub core: Core,
    /// The simulated registrar.
    pub server: SimServer,
    /// The virtual clock.
    pub now: Instant,
    conn: Option<ConnId>,
    server_framer: Framer,
    crlfs: u32,
    /// Bytes the core transmitted and the server has not read yet.
    to_server: Vec<Vec<u8>>,
    /// Bytes the server answered and the core has not received yet.
    pub to_core: Vec<Vec<u8>>,
    /// Every INVITE the core transmitted (kept for the parse benchmark's stream).
    pub invites: Vec<Vec<u8>>,
    /// Every REGISTER response the server sent.
    pub register_responses: Vec<Vec<u8>>,
    /// Pings the core sent.
    pub pings: u64,
    /// REGISTERs the core sent.
    pub registers: u64,
}

impl Rig {
    /// A started core for `config`; nothing is exchanged yet.
    pub fn new(config: Config) -> Rig {
        let users = users(config.accounts.len());
        let mut core = Core::new(config, Instant::ZERO);
        core.start(Instant::ZERO);
        Rig {
            core,
            server: SimServer::new(Server::Primary, &users),
            now: Instant::ZERO,
            conn: None,
            server_framer: Framer::new(Limits::default()),
            crlfs: 0,
            to_server: Vec::new(),
            to_core: Vec::new(),
            invites: Vec::new(),
            register_responses: Vec::new(),
            pings: 0,
            registers: 0,
        }
    }

    /// A rig whose every account is registered (digest challenge included).
    pub fn registered(config: Config) -> Rig {
        let mut rig = Rig::new(config);
        for _ in 0..100 {
            rig.exchange();
            if rig.all_registered() {
                return rig;
            }
        }
        panic!("the rig did not register");
    }

    /// True when every account holds a binding.
    pub fn all_registered(&self) -> bool {
        let n = self.core.config().accounts.len();
        (0..n).all(|i| matches!(self.core.registration(AccountId(i as u8)), Some(RegState::Registered { .. })))
    }

    /// Core side: drains the core's outputs (connects succeed at once); transmitted
    /// bytes are queued for the server.
    pub fn drain(&mut self) {
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Connect { conn, .. } => {
                    self.conn = Some(conn);
                    self.core
                        .handle_input(self.now, Input::Connected { conn, local: "127.0.0.1:40000".parse().unwrap() });
                }
                Output::Transmit { data, .. } => {
                    if data.starts_with(b"INVITE ") {
                        self.invites.push(data.clone());
                    }
                    if data == b"\r\n\r\n" {
                        self.pings += 1;
                    } else if data.starts_with(b"REGISTER ") {
                        self.registers += 1;
                    }
                    self.to_server.push(data);
                }
                // The proxy is an address (127.0.0.1): nothing to look up.
                Output::Close { .. } | Output::Event(_) | Output::Resolve { .. } => {}
            }
        }
    }

    /// Server side (not the core's work): reads what the core sent and queues answers.
    pub fn serve(&mut self) {
        let Some(conn) = self.conn else { return };
        for data in std::mem::take(&mut self.to_server) {
            self.server_framer.push(&data);
            while let Ok(Some(frame)) = self.server_framer.next_frame() {
                match frame {
                    Frame::Crlf => {
                        self.crlfs += 1;
                        if self.crlfs == 2 {
                            self.crlfs = 0;
                            if let Some(r) = self.server.ping() {
                                self.to_core.push(r.bytes);
                            }
                        }
                    }
                    frame => {
                        self.crlfs = 0;
                        for r in self.server.handle(conn, frame) {
                            if r.register_final.is_some() || r.bytes.starts_with(b"SIP/2.0 401") {
                                self.register_responses.push(r.bytes.clone());
                            }
                            self.to_core.push(r.bytes);
                        }
                    }
                }
            }
        }
    }

    /// Core side: feeds the queued answers to the core and drains its outputs.
    pub fn deliver(&mut self) {
        let Some(conn) = self.conn else { return };
        for data in std::mem::take(&mut self.to_core) {
            self.core.handle_input(self.now, Input::Received { conn, data: &data });
        }
        self.drain();
    }

    /// Core side: moves the clock to the core's next deadline and fires it.
    pub fn fire_next_deadline(&mut self) {
        if let Some(t) = self.core.poll_timeout() {
            self.now = self.now.max(t);
        }
        self.core.handle_timeout(self.now);
        self.drain();
    }

    /// Drains, serves and delivers until nothing is in flight.
    pub fn exchange(&mut self) {
        self.drain();
        while !self.to_server.is_empty() || !self.to_core.is_empty() {
            self.serve();
            self.deliver();
        }
    }

    /// Advances to the next deadline and completes whatever it started.
    pub fn step(&mut self) {
        self.fire_next_deadline();
        self.exchange();
    }

    /// Skips the clock forward by `d` (handled as a timeout).
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
        self.core.handle_timeout(self.now);
        self.exchange();
    }
}
