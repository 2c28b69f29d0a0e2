//! The invariant [`Monitor`] over a core seen only through its inputs and outputs, as a
//! recorded trace shows it: no simulated network and no simulated server to ask.
//!
//! The monitor wants two things the simulator gives it directly. The network's view of
//! every connection is derived from the core's own traffic: `Connect` makes a connection
//! connecting, `Connected` makes it up, `ConnectFailed`, `Closed` or the core's `Close`
//! make it closed; the runtime reports nothing else. The final REGISTER responses that
//! reach the core are found by framing each connection's received bytes and matching
//! every final response to the REGISTER the core sent ([`RegisterTransactions`]).

use super::register_tx::RegisterTransactions;
use super::{Monitor, NetState};
use crate::config::Config;
use crate::engine::{Core, Event, Input, Output};
use crate::ids::{CallId, ConnId};
use crate::sip::{Frame, Framer, Limits, Message};
use crate::time::Instant;
use std::collections::BTreeMap;

/// The keep-alive ping, which is not a message.
const PING: &[u8] = b"\r\n\r\n";

/// Watches a core through its inputs and outputs; see the module documentation.
#[derive(Clone, Debug)]
pub struct TraceMonitor {
    monitor: Monitor,
    net: BTreeMap<ConnId, NetState>,
    /// The bytes each up connection received, framed as the core frames them.
    inbound: BTreeMap<ConnId, Framer>,
    registers: RegisterTransactions,
    shut_down: bool,
}

impl TraceMonitor {
    /// A monitor for a core running `config`.
    pub fn new(config: &Config) -> TraceMonitor {
        TraceMonitor {
            monitor: Monitor::new(config),
            net: BTreeMap::new(),
            inbound: BTreeMap::new(),
            registers: RegisterTransactions::new(config.accounts.iter().map(|a| a.user_name.clone()).collect()),
            shut_down: false,
        }
    }

    /// Every invariant broken so far.
    pub fn violations(&self) -> &[String] {
        self.monitor.violations()
    }

    /// `input` is about to be given to `core`.
    pub fn before_input(&mut self, core: &Core, input: &Input<'_>) {
        match input {
            Input::Connected { conn, .. } => {
                if let Some(s) = self.net.get_mut(conn).filter(|s| **s == NetState::Connecting) {
                    *s = NetState::Up;
                    self.inbound.insert(*conn, Framer::new(Limits::default()));
                }
            }
            Input::ConnectFailed { conn, .. } | Input::Closed { conn, .. } => self.closed(*conn),
            Input::Received { conn, data } => self.received(core, *conn, data),
            Input::WriteBacklog { .. } | Input::Resolved { .. } => {}
        }
    }

    /// The final REGISTER responses among `data`, told to the monitor before the core
    /// acts on them (it handles the whole chunk in one call).
    fn received(&mut self, core: &Core, conn: ConnId, data: &[u8]) {
        let Some(framer) = self.inbound.get_mut(&conn) else { return };
        framer.push(data);
        let mut messages = Vec::new();
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(m))) => messages.push(m),
                Ok(Some(Frame::Crlf)) => {}
                Ok(None) => break,
                // The core closes the connection on the same error: nothing more to read.
                Err(_) => {
                    self.inbound.remove(&conn);
                    break;
                }
            }
        }
        for m in messages {
            self.monitor.message_delivered(conn, &m);
            if let Some((user, status)) = self.registers.final_response(core, conn, &m) {
                self.monitor.register_final_delivered(conn, &user, status);
            }
        }
    }

    fn closed(&mut self, conn: ConnId) {
        if let Some(s) = self.net.get_mut(&conn) {
            *s = NetState::Closed;
        }
        self.inbound.remove(&conn);
    }

    /// The application placed `call` (the core accepted the command).
    pub fn placed(&mut self, call: CallId) {
        self.monitor.placed(call);
    }

    /// Checks one output of `core`, in the order the core produced it.
    pub fn output(&mut self, core: &Core, out: &Output, now: Instant) {
        if self.shut_down {
            self.monitor.violation(format!("{now}: {out:?} after ShutdownComplete"));
        }
        self.monitor.on_output(core, out, &self.net, now);
        match out {
            Output::Connect { conn, .. } => {
                self.net.insert(*conn, NetState::Connecting);
            }
            Output::Close { conn } => self.closed(*conn),
            Output::Transmit { conn, data } if data.as_slice() != PING => {
                if let Ok(m) = Message::parse(data) {
                    self.registers.sent(*conn, &m);
                }
            }
            Output::Event(Event::ShutdownComplete) => self.shut_down = true,
            Output::Transmit { .. } | Output::Event(_) | Output::Resolve { .. } => {}
        }
    }

    /// After every output of one core call: the checks of the state.
    pub fn after_step(&mut self, core: &Core) {
        self.monitor.after_step(core, &self.net);
    }

    /// After `handle_timeout(now)`: no deadline may be left in the past.
    pub fn after_timeout(&mut self, core: &Core, now: Instant) {
        if core.poll_timeout().is_some_and(|t| t <= now) {
            self.monitor.violation(format!("{now}: handle_timeout left an expired deadline"));
        }
    }

    /// At the end of the trace. A core that shut down must have given every placed call
    /// its outcome; a trace that stops earlier (the phone was killed) is not held to it.
    pub fn finish(&mut self, core: &Core) {
        if core.is_closed() {
            self.monitor.check_every_call_finished();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AccountConfig, ServerAddr};
    use crate::ids::{AccountId, Server};

    /// A core that has sent its REGISTER on an up connection, the monitor having seen it.
    fn registering() -> (Core, TraceMonitor, ConnId, Message) {
        let config = Config {
            proxy: Some(ServerAddr::new("192.0.2.1", 5061)),
            accounts: vec![AccountConfig::new("1001", "pw")],
            ..Config::default()
        };
        let mut monitor = TraceMonitor::new(&config);
        let mut core = Core::new(config, Instant::ZERO);
        let now = Instant::ZERO;
        core.start(now);
        let step = |core: &mut Core, monitor: &mut TraceMonitor| {
            let outs: Vec<Output> = std::iter::from_fn(|| core.poll_output()).collect();
            for out in &outs {
                monitor.output(core, out, now);
            }
            monitor.after_step(core);
            outs
        };
        let conn = step(&mut core, &mut monitor).into_iter().find_map(|o| match o {
            Output::Connect { conn, .. } => Some(conn),
            _ => None,
        });
        let c = conn.expect("a connection asked for");
        let connected = Input::Connected { conn: c, local: "127.0.0.1:40000".parse().expect("an address") };
        monitor.before_input(&core, &connected);
        core.handle_input(now, connected);
        let register = step(&mut core, &mut monitor).into_iter().find_map(|o| match o {
            Output::Transmit { data, .. } => Message::parse(&data).ok(),
            _ => None,
        });
        (core, monitor, c, register.expect("a REGISTER sent"))
    }

    fn ok(req: &Message) -> Vec<u8> {
        let mut r = Message::response(200, "OK");
        for name in ["Via", "From", "To", "Call-ID", "CSeq", "Contact"] {
            r.push_header(name, req.header(name).unwrap_or_default());
        }
        r.push_header("Expires", "600");
        r.to_bytes()
    }

    #[test]
    fn a_2xx_found_in_the_received_bytes_allows_registered() {
        let (mut core, mut monitor, conn, register) = registering();
        let bytes = ok(&register);
        // Cut inside the message: the framer must join the pieces as the core does.
        let (a, b) = bytes.split_at(bytes.len() / 2);
        let mut events = Vec::new();
        for piece in [a, b] {
            let input = Input::Received { conn, data: piece };
            monitor.before_input(&core, &input);
            core.handle_input(Instant::ZERO, input);
            while let Some(out) = core.poll_output() {
                monitor.output(&core, &out, Instant::ZERO);
                events.push(out);
            }
            monitor.after_step(&core);
        }
        assert!(events.iter().any(|o| matches!(o, Output::Event(Event::Registered { .. }))), "{events:?}");
        assert_eq!(monitor.violations(), &[] as &[String]);
    }

    #[test]
    fn registered_without_a_2xx_in_the_trace_is_a_violation() {
        let (core, mut monitor, _, _) = registering();
        let claim = Event::Registered { account: AccountId(0), server: Server::Primary, expires: 600 };
        monitor.output(&core, &Output::Event(claim), Instant::ZERO);
        assert_eq!(monitor.violations().len(), 1, "{:?}", monitor.violations());
        assert!(monitor.violations()[0].contains("without a 2xx"), "{:?}", monitor.violations());
    }
}
