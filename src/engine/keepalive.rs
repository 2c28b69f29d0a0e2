//! Keep-alive and dead-connection detection on the persistent connection: RFC 5626
//! `CRLFCRLF` pings at the configured interval (capped by the registrar's Flow-Timer), the
//! pong deadline, and the OPTIONS fallback for servers that never answer pings.
//!
//! [`KeepAlive`] decides; the `Core` methods below carry its decisions out (timers in the
//! table, bytes on the connection). The path of `sip persistent tls keep alive` is:
//! `config/aastra.rs` → `Config::keepalive_interval` → [`KeepAlive::interval`] →
//! `Core::schedule_ping` → `Core::on_ping_timer` → `Output::Transmit`.

use super::Core;
use super::bugs::Bug;
use super::io::{Event, FlowError};
use super::timer::{FlowTimer, Timer};
use super::transaction::ClientTx;
use crate::config::Config;
use crate::ids::{ConnId, Server};
use crate::time::Duration;

/// The shortest interval of OPTIONS keep-alive, which a server chooses by answering
/// OPTIONS but never pings: no more than six such requests a minute come from a server's
/// answers alone, whatever its Flow-Timer. CRLF pings (four bytes) follow the Flow-Timer
/// as RFC 5626 asks, since a server that sets a short one may close idle connections;
/// a shorter interval configured by the user is kept.
pub(super) const SERVER_INTERVAL_FLOOR: Duration = Duration::from_secs(10);

/// What a keep-alive deadline asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Check {
    /// Send `CRLFCRLF` and wait for the pong.
    Ping,
    /// Ask at the SIP layer with OPTIONS.
    Options,
    /// The connection is dead.
    Dead(FlowError),
}

/// What the keep-alive knows about the servers and the current flow.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct KeepAlive {
    /// What each server showed about pongs (by [`Server::index`]): `Some(true)` it
    /// answered a ping, `Some(false)` it never did but answered OPTIONS, so keep-alive
    /// uses OPTIONS with it.
    pongs: [Option<bool>; 2],
    /// Flow-Timer from the registrar on the current flow.
    flow_timer: Option<Duration>,
    /// The flow's own OPTIONS waiting for its answer.
    pub options_tx: Option<ClientTx>,
}

impl KeepAlive {
    /// A new flow: nothing is learnt yet about its Flow-Timer, nothing is in flight.
    pub fn flow_up(&mut self) {
        self.flow_timer = None;
        self.options_tx = None;
    }

    /// The interval between keep-alives: the configured one (0 means RFC 5626's 120 s),
    /// no longer than the Flow-Timer.
    pub fn interval(&self, config: &Config) -> Duration {
        config.effective_keepalive(self.flow_timer)
    }

    /// The interval for `server`: keep-alive by OPTIONS, which a server chooses by never
    /// answering pings, is never more frequent than [`SERVER_INTERVAL_FLOOR`] unless the
    /// user configured it so.
    pub fn interval_for(&self, config: &Config, server: Server) -> Duration {
        let i = self.interval(config);
        if self.pongs[server.index()] == Some(false) {
            i.max(SERVER_INTERVAL_FLOOR.min(config.effective_keepalive(None)))
        } else {
            i
        }
    }

    #[cfg(any(test, feature = "sim"))]
    /// The pong knowledge of each server (for the decision view).
    pub fn pongs(&self) -> [Option<bool>; 2] {
        self.pongs
    }

    #[cfg(any(test, feature = "sim"))]
    pub fn has_flow_timer(&self) -> bool {
        self.flow_timer.is_some()
    }

    /// The ping timer fired on a flow to `server`.
    pub fn ping_due(&self, server: Server) -> Check {
        if self.pongs[server.index()] == Some(false) { Check::Options } else { Check::Ping }
    }

    /// The pong of the last ping did not arrive in time. A server that has ponged before
    /// is dead; one that never has is asked with OPTIONS before it is called dead.
    pub fn pong_missed(&self, server: Server) -> Check {
        if self.pongs[server.index()] == Some(true) { Check::Dead(FlowError::PongTimeout) } else { Check::Options }
    }

    /// A pong arrived from `server`.
    pub fn pong(&mut self, server: Server) {
        self.pongs[server.index()] = Some(true);
    }

    /// The flow's OPTIONS got a final answer from `server`; true the first time this
    /// shows that the server answers OPTIONS but not pings.
    pub fn options_answered(&mut self, server: Server) -> bool {
        self.options_tx = None;
        let first = self.pongs[server.index()] != Some(false);
        self.pongs[server.index()] = Some(false);
        first
    }

    /// The registrar announced a Flow-Timer; true when it shortens the interval.
    pub fn flow_timer_received(&mut self, flow_timer: Duration, config: &Config) -> bool {
        let before = self.interval(config);
        self.flow_timer = Some(flow_timer);
        self.interval(config) < before
    }
}

impl Core {
    /// Schedules the next keep-alive, drawn in `[0.8·I, I]` (RFC 5626 §4.4.1).
    pub(super) fn schedule_ping(&mut self) {
        let i = self.planted_ping_interval().unwrap_or_else(|| match self.flow.conn {
            Some(conn) => self.keepalive.interval_for(&self.config, conn.server),
            None => self.keepalive.interval(&self.config),
        });
        let low =
            self.planted_jitter_low(i).unwrap_or_else(|| Duration::from_millis(i.as_millis() - i.as_millis() / 5));
        let wait = self.jitter(low, i);
        self.timers.set(Timer::Flow(FlowTimer::Ping), self.now + wait);
    }

    /// The ping timer fired.
    pub(super) fn on_ping_timer(&mut self) {
        let conn = match self.flow.conn {
            Some(c) if self.conn_is_up(c) || self.planted(Bug::PingWithoutConnection) => c,
            _ => {
                if self.planted(Bug::PingWithoutConnection)
                    && let Some(at) = self.timers.get(Timer::Flow(FlowTimer::Retry))
                {
                    // The bug: the ping survives into whatever connection comes next.
                    self.timers.set(Timer::Flow(FlowTimer::Ping), at);
                }
                return;
            }
        };
        match self.keepalive.ping_due(conn.server) {
            Check::Ping => {
                self.transmit(conn, b"\r\n\r\n".to_vec());
                self.stats.keepalive_sent(self.now);
                if !self.planted(Bug::NoPongDeadline) {
                    self.timers.set(Timer::Flow(FlowTimer::PongDeadline), self.now + self.config.pong_timeout);
                }
            }
            Check::Options | Check::Dead(_) => self.send_keepalive_options(conn),
        }
    }

    /// The pong deadline passed.
    pub(super) fn on_pong_deadline(&mut self) {
        let Some(conn) = self.flow.conn else { return };
        if self.planted(Bug::DeadWithoutAskingPongless) {
            self.flow_dead(conn, FlowError::PongTimeout);
            return;
        }
        match self.keepalive.pong_missed(conn.server) {
            Check::Dead(reason) => self.flow_dead(conn, reason),
            Check::Options | Check::Ping => self.send_keepalive_options(conn),
        }
    }

    /// The flow's OPTIONS got no answer in time.
    pub(super) fn on_keepalive_options_timeout(&mut self) {
        self.keepalive.options_tx = None;
        if let Some(conn) = self.flow.conn {
            self.flow_dead(conn, FlowError::TransactionTimeout);
        }
    }

    fn send_keepalive_options(&mut self, conn: ConnId) {
        let tx = self.send_options(conn, conn.server);
        self.keepalive.options_tx = Some(tx);
        self.stats.keepalive_sent(self.now);
        self.timers.set(Timer::Flow(FlowTimer::OptionsTx), self.now + self.config.transaction_timeout);
    }

    /// A `CRLF` arrived on the flow: the pong of an outstanding ping proves the flow.
    pub(super) fn flow_pong(&mut self, conn: ConnId) {
        if self.flow.conn != Some(conn) || !self.timers.is_armed(Timer::Flow(FlowTimer::PongDeadline)) {
            return;
        }
        self.timers.stop(Timer::Flow(FlowTimer::PongDeadline));
        self.keepalive.pong(conn.server);
        self.stats.keepalive_answered(self.now);
        self.flow_survived_keepalive();
        self.schedule_ping();
    }

    /// A response to the flow's own OPTIONS; returns whether it was one.
    pub(super) fn keepalive_response(&mut self, conn: ConnId, branch: &str, status: u16) -> bool {
        if !self.keepalive.options_tx.as_ref().is_some_and(|t| t.branch == branch && t.conn == conn) {
            return false;
        }
        if status < 200 {
            return true;
        }
        self.timers.stop(Timer::Flow(FlowTimer::OptionsTx));
        if self.keepalive.options_answered(conn.server) {
            self.emit(Event::PongsUnsupported { server: conn.server });
        }
        self.stats.keepalive_answered(self.now);
        self.flow_survived_keepalive();
        self.schedule_ping();
        true
    }

    /// A 2xx to REGISTER on the flow carried a Flow-Timer: a ping scheduled beyond it
    /// would come too late, so it is drawn again.
    pub(super) fn flow_timer_received(&mut self, conn: ConnId, seconds: u32) {
        if self.flow.conn != Some(conn) || seconds == 0 {
            return;
        }
        if self.planted(Bug::FlowTimerIgnored) {
            return;
        }
        let ft = Duration::from_secs(u64::from(seconds));
        self.keepalive.flow_timer_received(ft, &self.config);
        if let Some(at) = self.timers.get(Timer::Flow(FlowTimer::Ping))
            && at > self.now + ft
            && !self.planted(Bug::NoRescheduleOnFlowTimer)
        {
            self.schedule_ping();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_that_ponged_is_dead_at_the_first_missing_pong() {
        let mut k = KeepAlive::default();
        assert_eq!(k.ping_due(Server::Primary), Check::Ping);
        assert_eq!(k.pong_missed(Server::Primary), Check::Options, "never ponged: ask with OPTIONS");
        k.pong(Server::Primary);
        assert_eq!(k.pong_missed(Server::Primary), Check::Dead(FlowError::PongTimeout));
        assert_eq!(k.pong_missed(Server::Backup), Check::Options, "knowledge is per server");
    }

    #[test]
    fn a_server_that_answers_only_options_is_kept_alive_with_options() {
        let mut k = KeepAlive::default();
        assert!(k.options_answered(Server::Backup), "learnt once");
        assert!(!k.options_answered(Server::Backup));
        assert_eq!(k.ping_due(Server::Backup), Check::Options);
        assert_eq!(k.ping_due(Server::Primary), Check::Ping);
        let fast = Config { keepalive_interval: Duration::from_secs(1), ..Config::default() };
        assert_eq!(k.interval_for(&fast, Server::Primary), Duration::from_secs(1), "the user's choice for pings");
        assert_eq!(k.interval_for(&fast, Server::Backup), Duration::from_secs(1), "and for OPTIONS");
        let mut tiny = KeepAlive::default();
        tiny.options_answered(Server::Backup);
        tiny.flow_timer_received(Duration::from_secs(1), &Config::default());
        assert_eq!(tiny.interval_for(&Config::default(), Server::Backup), SERVER_INTERVAL_FLOOR, "a server's floor");
    }

    #[test]
    fn the_flow_timer_caps_the_interval_until_the_next_flow() {
        let mut config = Config { keepalive_interval: Duration::from_secs(30), ..Config::default() };
        let mut k = KeepAlive::default();
        assert_eq!(k.interval(&config), Duration::from_secs(30));
        assert!(k.flow_timer_received(Duration::from_secs(10), &config));
        assert_eq!(k.interval(&config), Duration::from_secs(10));
        k.flow_timer_received(Duration::from_secs(3), &config);
        assert_eq!(k.interval(&config), Duration::from_secs(3), "pings follow a short Flow-Timer");
        k.options_answered(Server::Primary);
        assert_eq!(k.interval_for(&config, Server::Primary), SERVER_INTERVAL_FLOOR, "OPTIONS do not");
        assert!(!k.flow_timer_received(Duration::from_secs(60), &config), "a longer Flow-Timer shortens nothing");
        k.flow_up();
        assert_eq!(k.interval(&config), Duration::from_secs(30));
        config.keepalive_interval = Duration::ZERO;
        assert_eq!(k.interval(&config), Duration::from_secs(120), "0 means RFC 5626's default");
    }
}
