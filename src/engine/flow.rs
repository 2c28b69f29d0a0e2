//! The persistent connection: opening it, keep-alive and dead-connection detection,
//! reconnect rounds with back-off, failover to the backup, probing the primary and
//! failing back once it is stable.

use super::bugs::Bug;
use super::io::{ConnPurpose, Event, FlowError, FlowState};
use super::message::{name_addr, scheme};
use super::transaction::ClientTx;
use super::{Conn, Core};
use crate::config::TransportMode;
use crate::ids::{ConnId, Server};
use crate::sip::Message;
use crate::time::{Duration, Instant};

/// A check of the primary while the phone runs on the backup.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Probe {
    pub conn: ConnId,
    /// The OPTIONS in flight once the probe connection is up.
    pub tx: Option<ClientTx>,
}

/// State of the persistent connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Flow {
    /// The persistent connection, connecting or up.
    pub conn: Option<ConnId>,
    /// The server of the last flow that came up (to tell failover from failback).
    pub last_up: Option<Server>,
    /// Servers that failed in the current round (index 0 primary, 1 backup).
    pub tried: [bool; 2],
    /// Rounds that failed in a row; reset once a flow proves itself.
    pub failed_rounds: u32,
    /// When the next round starts.
    pub retry_at: Option<Instant>,
    /// When the next ping goes out.
    pub ping_at: Option<Instant>,
    /// A ping is out and its pong must arrive by then.
    pub pong_deadline: Option<Instant>,
    /// What each server showed about pongs: `Some(true)` it answered a ping,
    /// `Some(false)` it never did but answered OPTIONS (keep-alive uses OPTIONS then).
    pub pongs: [Option<bool>; 2],
    /// An OPTIONS on the flow (liveness check or keep-alive) waiting for its response.
    pub options_tx: Option<ClientTx>,
    /// Flow-Timer from the registrar, if it sent one.
    pub flow_timer: Option<Duration>,
    /// The current flow has proven itself (a 2xx or a pong arrived on it).
    pub proven: bool,
    /// A probe of the primary in progress.
    pub probe: Option<Probe>,
    /// When the next probe starts.
    pub probe_at: Option<Instant>,
    /// Consecutive good probes.
    pub good_probes: u8,
    /// De-registering on the backup before moving to the primary.
    pub switching: bool,
}

fn idx(server: Server) -> usize {
    match server {
        Server::Primary => 0,
        Server::Backup => 1,
    }
}

impl Flow {
    pub fn public_state(&self, conns: &[Conn]) -> FlowState {
        if self.switching {
            return FlowState::Switching;
        }
        match self.conn.and_then(|id| conns.iter().find(|c| c.id == id)) {
            Some(c) if c.local.is_some() => FlowState::Up { server: c.id.server },
            Some(c) => FlowState::Connecting { server: c.id.server },
            None if self.retry_at.is_some() => FlowState::Waiting,
            None => FlowState::Idle,
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.retry_at,
            self.ping_at,
            self.pong_deadline,
            self.options_tx.as_ref().and_then(|t| t.deadline),
            self.probe_at,
            self.probe.as_ref().and_then(|p| p.tx.as_ref()).and_then(|t| t.deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Stops probing and any pending switch (shutdown).
    pub fn stop_failback_work(&mut self) {
        self.probe_at = None;
        self.switching = false;
        self.good_probes = 0;
    }
}

impl Core {
    /// The persistent connection if it is up (and not being left for the primary).
    pub(super) fn flow_up_conn(&self) -> Option<ConnId> {
        let id = self.flow.conn?;
        (self.conn_is_up(id) && !self.flow.switching).then_some(id)
    }

    /// Opens the persistent connection to `server`, unless one exists or is opening.
    pub(super) fn open_flow(&mut self, server: Server) {
        self.flow.retry_at = None;
        if self.flow.conn.is_some() {
            return;
        }
        self.flow.conn = self.connect(server, ConnPurpose::Flow);
    }

    pub(super) fn flow_connected(&mut self, conn: ConnId) {
        if self.flow.conn != Some(conn) {
            self.close_conn(conn);
            return;
        }
        let server = conn.server;
        // `tried` is kept: a connection that comes up and dies before proving itself still
        // counts as a failure of its server, so such a server cannot make the phone spin.
        self.flow.proven = false;
        self.flow.flow_timer = None;
        self.flow.pong_deadline = None;
        self.flow.options_tx = None;
        self.emit(Event::FlowUp { server });
        match (self.flow.last_up, server) {
            (Some(Server::Backup), Server::Primary) => self.emit(Event::FailedBack),
            (last, Server::Backup) if last != Some(Server::Backup) => self.emit(Event::FailedOver),
            _ => {}
        }
        self.flow.last_up = Some(server);
        let wait = self.keepalive_wait();
        self.flow.ping_at = Some(self.now + wait);
        self.flow.good_probes = 0;
        self.flow.probe_at = match server {
            Server::Backup => Some(self.now + self.config.failback.probe_interval),
            Server::Primary => None,
        };
        self.register_all_on_flow(conn);
    }

    /// The persistent connection is gone: clean up, tell, and pick the next attempt.
    pub(super) fn flow_failed(&mut self, conn: ConnId, was_up: bool, reason: FlowError) {
        if self.flow.conn != Some(conn) {
            return;
        }
        let server = conn.server;
        self.flow.conn = None;
        if !self.planted(Bug::PingWithoutConnection) {
            self.flow.ping_at = None;
        }
        self.flow.pong_deadline = None;
        self.flow.options_tx = None;
        let failing_back = self.flow.switching;
        self.flow.switching = false;
        if was_up {
            self.emit(Event::FlowLost { server, reason: reason.clone() });
            self.registrations_lost();
            self.calls_connection_lost(conn);
        } else {
            self.emit(Event::ConnectFailed { server, reason });
        }
        if !self.running() {
            return;
        }
        if server == Server::Backup {
            self.close_probe();
            self.flow.probe_at = None;
        }
        if failing_back {
            // Leaving a healthy backup is not a failure of the backup.
            self.flow.tried = [false; 2];
        } else {
            self.flow.tried[idx(server)] = true;
        }
        let other = server.other();
        let try_other = !self.planted(Bug::BackoffForeverOnPrimary) || other == Server::Primary;
        if try_other && (other == Server::Primary || self.has_backup()) && !self.flow.tried[idx(other)] {
            self.open_flow(other);
            return;
        }
        self.start_backoff();
    }

    /// Every server failed in this round: wait `[W/2, W]`, `W = min(max, base·2^n)`.
    fn start_backoff(&mut self) {
        let b = self.config.backoff;
        let shift = self.flow.failed_rounds.min(20);
        let mut window = b.base.saturating_mul(1u64 << shift);
        if !self.planted(Bug::BackoffNoCap) {
            window = window.min(b.max);
        }
        let wait = self.jitter(Duration::from_millis(window.as_millis() / 2), window);
        self.flow.failed_rounds = self.flow.failed_rounds.saturating_add(1);
        self.flow.tried = [false; 2];
        self.flow.retry_at = Some(self.now + wait);
        self.emit(Event::Backoff { wait, failures: self.flow.failed_rounds });
    }

    /// The current back-off window bound for `failed_rounds` failures (for checkers).
    pub fn backoff_window(&self, failed_rounds: u32) -> Duration {
        let b = self.config.backoff;
        b.base.saturating_mul(1u64 << failed_rounds.min(20)).min(b.max)
    }

    /// The flow carried a 2xx or a pong: it is good, and so are the next rounds' odds.
    pub(super) fn flow_proven(&mut self) {
        self.flow.proven = true;
        self.flow.failed_rounds = 0;
        self.flow.tried = [false; 2];
    }

    pub(super) fn flow_pong(&mut self, conn: ConnId) {
        if self.flow.conn != Some(conn) || self.flow.pong_deadline.is_none() {
            return;
        }
        self.flow.pong_deadline = None;
        self.flow.pongs[idx(conn.server)] = Some(true);
        self.flow_proven();
        let wait = self.keepalive_wait();
        self.flow.ping_at = Some(self.now + wait);
    }

    /// A response to one of the flow's own OPTIONS or to a probe's OPTIONS.
    pub(super) fn flow_response(&mut self, conn: ConnId, branch: &str, msg: &Message) -> bool {
        if self.flow.options_tx.as_ref().is_some_and(|t| t.branch == branch && t.conn == conn) {
            if msg.status().is_some_and(|s| s < 200) {
                return true;
            }
            self.flow.options_tx = None;
            let server = conn.server;
            if self.flow.pongs[idx(server)] != Some(false) {
                self.flow.pongs[idx(server)] = Some(false);
                self.emit(Event::PongsUnsupported { server });
            }
            self.flow_proven();
            let wait = self.keepalive_wait();
            self.flow.ping_at = Some(self.now + wait);
            return true;
        }
        let is_probe =
            self.flow.probe.as_ref().and_then(|p| p.tx.as_ref()).is_some_and(|t| t.branch == branch && t.conn == conn);
        if is_probe {
            if msg.status().is_some_and(|s| s < 200) {
                return true;
            }
            self.close_probe();
            self.flow.good_probes = self.flow.good_probes.saturating_add(1);
            self.flow.probe_at = Some(self.now + self.config.failback.probe_interval);
            return true;
        }
        false
    }

    /// Sends an OPTIONS on `conn` (flow liveness, keep-alive or probe).
    fn send_options(&mut self, conn: ConnId, server: Server) -> ClientTx {
        let host = self.server_addr(server).map(|a| a.host).unwrap_or_default();
        let uri = format!("{}:{}", scheme(&self.config), host);
        let (mut m, branch) = self.base_request("OPTIONS", &uri, conn);
        let tag = self.new_token();
        let call_id = self.new_token();
        let from = super::message::aor(&self.config, crate::ids::AccountId(0), server);
        m.push_header("From", name_addr("", &from, Some(&tag)));
        m.push_header("To", name_addr("", &uri, None));
        m.push_header("Call-ID", call_id);
        m.push_header("CSeq", "1 OPTIONS");
        m.push_header("Accept", "application/sdp");
        m.push_header("User-Agent", super::message::USER_AGENT);
        self.send(conn, &m);
        ClientTx { branch, conn, cseq: 1, deadline: Some(self.now + self.config.transaction_timeout) }
    }

    pub(super) fn flow_timeouts(&mut self) {
        if self.config.mode != TransportMode::PersistentTls || !self.running() {
            // Nothing of the flow's own work goes on once the phone stops running.
            self.flow.retry_at = None;
            self.flow.ping_at = None;
            self.flow.pong_deadline = None;
            self.flow.options_tx = None;
            self.flow.probe_at = None;
            return;
        }
        let now = self.now;
        if self.flow.retry_at.is_some_and(|t| t <= now) {
            self.flow.retry_at = None;
            self.open_flow(Server::Primary);
        }
        if let Some(conn) = self.flow.conn {
            if self.flow.options_tx.as_ref().is_some_and(|t| t.expired(now)) {
                self.flow.options_tx = None;
                self.fail_conn(conn, FlowError::TransactionTimeout);
                return;
            }
            if self.flow.pong_deadline.is_some_and(|t| t <= now) {
                self.flow.pong_deadline = None;
                if self.flow.pongs[idx(conn.server)] == Some(true) {
                    self.fail_conn(conn, FlowError::PongTimeout);
                    return;
                }
                // The server never answered a ping: before calling the flow dead, ask it
                // at the SIP layer whether it is alive.
                let tx = self.send_options(conn, conn.server);
                self.flow.options_tx = Some(tx);
            }
            let pingable = self.conn_is_up(conn) || self.planted(Bug::PingWithoutConnection);
            if self.flow.ping_at.is_some_and(|t| t <= now) && pingable {
                self.flow.ping_at = None;
                if self.flow.pongs[idx(conn.server)] == Some(false) {
                    let tx = self.send_options(conn, conn.server);
                    self.flow.options_tx = Some(tx);
                } else {
                    self.transmit(conn, b"\r\n\r\n".to_vec());
                    if !self.planted(Bug::NoPongDeadline) {
                        self.flow.pong_deadline = Some(now + self.config.pong_timeout);
                    }
                }
            }
        }
        if self.flow.probe_at.is_some_and(|t| t <= now) {
            self.flow.probe_at = None;
            if self.flow.probe.is_none()
                && self.flow_up_conn().is_some_and(|c| c.server == Server::Backup)
                && let Some(conn) = self.connect(Server::Primary, ConnPurpose::Probe)
            {
                self.flow.probe = Some(Probe { conn, tx: None });
            }
        }
        let probe_expired = self.flow.probe.as_ref().and_then(|p| p.tx.as_ref()).is_some_and(|t| t.expired(now));
        if probe_expired && let Some(p) = self.flow.probe.clone() {
            self.fail_conn(p.conn, FlowError::TransactionTimeout);
        }
    }

    pub(super) fn probe_connected(&mut self, conn: ConnId) {
        if self.flow.probe.as_ref().map(|p| p.conn) != Some(conn) {
            self.close_conn(conn);
            return;
        }
        let tx = self.send_options(conn, Server::Primary);
        if let Some(p) = self.flow.probe.as_mut() {
            p.tx = Some(tx);
        }
    }

    pub(super) fn probe_failed(&mut self, conn: ConnId, reason: FlowError) {
        if self.flow.probe.as_ref().map(|p| p.conn) != Some(conn) {
            return;
        }
        self.flow.probe = None;
        self.flow.good_probes = 0;
        self.emit(Event::ConnectFailed { server: Server::Primary, reason });
        if self.running() && self.flow_up_conn().is_some_and(|c| c.server == Server::Backup) {
            self.flow.probe_at = Some(self.now + self.config.failback.probe_interval);
        }
    }

    pub(super) fn close_probe(&mut self) {
        if let Some(p) = self.flow.probe.take() {
            self.close_conn(p.conn);
        }
    }

    /// Moves back to the primary once it has proved stable, unless a call pins the backup.
    pub(super) fn maybe_fail_back(&mut self) {
        if self.flow.good_probes < self.config.failback.stable_probes || self.flow.switching {
            return;
        }
        let Some(conn) = self.flow_up_conn() else { return };
        if conn.server != Server::Backup {
            self.flow.good_probes = 0;
            return;
        }
        if self.calls.iter().any(|c| !c.is_queued()) {
            return;
        }
        self.flow.switching = true;
        self.flow.probe_at = None;
        self.close_probe();
        self.emit(Event::FailingBack);
        self.unregister_all();
        self.maybe_finish_switch();
    }

    /// Once every de-REGISTER on the backup is answered (or timed out), leaves it.
    pub(super) fn maybe_finish_switch(&mut self) {
        if !self.flow.switching || self.accounts.iter().any(|a| a.is_unregistering()) {
            return;
        }
        if let Some(conn) = self.flow.conn {
            self.fail_conn(conn, FlowError::Failback);
        }
    }
}
