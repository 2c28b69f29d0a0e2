//! The persistent connection's life: opening it, what happens when it comes up, the one
//! place that decides it is dead ([`Core::flow_dead`]), and where to go after it failed
//! (the other server at once, or back-off; see `backoff.rs`).
//!
//! Keep-alive lives in `keepalive.rs` and failback in `failback.rs`.

use super::bugs::Bug;
use super::io::{ConnPurpose, Event, FlowError, FlowState};
use super::message::{name_addr, scheme};
use super::timer::{FlowTimer, Timer};
use super::transaction::ClientTx;
use super::{Conn, Core};
use crate::ids::{AccountId, ConnId, Server};

/// State of the persistent connection itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Flow {
    /// The persistent connection, connecting or up.
    pub conn: Option<ConnId>,
    /// The server of the last flow that came up (to tell failover from failback).
    pub last_up: Option<Server>,
    /// The current flow has proven itself (a 2xx or a pong arrived on it).
    pub proven: bool,
}

impl Core {
    /// The persistent connection's public state.
    pub(super) fn flow_public_state(&self, conns: &[Conn]) -> FlowState {
        if self.failback.is_switching() {
            return FlowState::Switching;
        }
        match self.flow.conn.and_then(|id| conns.iter().find(|c| c.id == id)) {
            Some(c) if c.local.is_some() => FlowState::Up { server: c.id.server },
            Some(c) => FlowState::Connecting { server: c.id.server },
            None if self.timers.is_armed(Timer::Flow(FlowTimer::Retry)) => FlowState::Waiting,
            None => FlowState::Idle,
        }
    }

    /// The persistent connection if it is up (and not being left for the primary).
    pub(super) fn flow_up_conn(&self) -> Option<ConnId> {
        let id = self.flow.conn?;
        (self.conn_is_up(id) && !self.failback.is_switching()).then_some(id)
    }

    /// Opens the persistent connection to `server`, unless one exists or is opening.
    pub(super) fn open_flow(&mut self, server: Server) {
        self.timers.stop(Timer::Flow(FlowTimer::Retry));
        if self.flow.conn.is_some() {
            return;
        }
        self.flow.conn = self.connect(server, ConnPurpose::Flow);
    }

    /// The back-off wait is over: a new round starts with the primary.
    pub(super) fn on_retry_timer(&mut self) {
        self.open_flow(Server::Primary);
    }

    pub(super) fn flow_connected(&mut self, conn: ConnId) {
        if self.flow.conn != Some(conn) {
            self.close_conn(conn);
            return;
        }
        let server = conn.server;
        // The round is kept: a connection that comes up and dies before proving itself
        // still counts as a failure of its server, so such a server cannot make the
        // phone spin.
        self.flow.proven = false;
        if self.planted(Bug::ForgetRoundsOnConnect) {
            self.backoff.proven();
        }
        self.keepalive.flow_up();
        self.timers.stop(Timer::Flow(FlowTimer::PongDeadline));
        self.timers.stop(Timer::Flow(FlowTimer::OptionsTx));
        self.emit(Event::FlowUp { server });
        match (self.flow.last_up, server) {
            (Some(Server::Backup), Server::Primary) => self.emit(Event::FailedBack),
            (last, Server::Backup) if last != Some(Server::Backup) => self.emit(Event::FailedOver),
            _ => {}
        }
        self.flow.last_up = Some(server);
        self.schedule_ping();
        self.failback.flow_up();
        let probe_at = match server {
            Server::Backup => Some(self.now + self.config.failback.probe_interval),
            Server::Primary => None,
        };
        self.timers.set_opt(Timer::Flow(FlowTimer::ProbeAt), probe_at);
        self.register_all_on_flow(conn);
    }

    /// The one place that decides the persistent connection is dead, for every reason
    /// but the transport's own report: no pong from a server that pongs
    /// (`keepalive.rs`), no answer to its OPTIONS (`keepalive.rs`), no answer to a
    /// REGISTER or an INVITE on it ([`Core::transaction_timed_out`]), bytes that cannot be
    /// framed as SIP and a peer that does not read what the phone writes
    /// (`Core::connection_dead` in `mod.rs`), and the switch of failback (`failback.rs`). The
    /// connection is closed and [`Core::flow_failed`] picks the next attempt.
    pub(super) fn flow_dead(&mut self, conn: ConnId, reason: FlowError) {
        self.fail_conn(conn, reason);
    }

    /// A client transaction on `conn` got no answer in time. On the persistent
    /// connection that means the connection is dead (returns true); elsewhere the caller
    /// decides (per-call TLS).
    pub(super) fn transaction_timed_out(&mut self, conn: ConnId) -> bool {
        if self.flow.conn != Some(conn) {
            return false;
        }
        if !self.planted(Bug::FlowIgnoresTransactionTimeout) {
            self.flow_dead(conn, FlowError::TransactionTimeout);
        }
        true
    }

    /// The persistent connection is gone: clean up, tell, and pick the next attempt.
    pub(super) fn flow_failed(&mut self, failed: &Conn, reason: FlowError) {
        let (conn, was_up) = (failed.id, failed.local.is_some());
        if self.flow.conn != Some(conn) {
            return;
        }
        let unproven = was_up && !self.flow.proven;
        let server = conn.server;
        self.flow.conn = None;
        if !self.planted(Bug::PingWithoutConnection) {
            self.timers.stop(Timer::Flow(FlowTimer::Ping));
        }
        self.timers.stop(Timer::Flow(FlowTimer::PongDeadline));
        self.timers.stop(Timer::Flow(FlowTimer::OptionsTx));
        self.keepalive.options_tx = None;
        let failing_back = self.failback.flow_down();
        if was_up {
            self.emit(Event::FlowLost { server, reason: reason.clone() });
            self.registrations_lost();
            self.note_lost_address(conn, failed.addr);
            self.calls_connection_lost(conn);
        } else {
            self.emit(Event::ConnectFailed { server, reason });
        }
        if !self.running() {
            return;
        }
        if server == Server::Backup {
            self.close_probe();
            self.timers.stop(Timer::Flow(FlowTimer::ProbeAt));
        }
        // Came up and died before it proved itself (no REGISTER accepted, no keep-alive
        // answered): its address is left like one that refused, and the server's next
        // address is tried before the server fails, so that an address that takes
        // connections and answers nothing cannot keep the phone from the others
        // (docs/dns.md).
        if unproven
            && !failing_back
            && !self.planted(Bug::UnprovenAddressFailsServer)
            && let Some(next) = self.start_attempt(server, ConnPurpose::Flow, failed.attempt)
        {
            self.flow.conn = Some(next);
            return;
        }
        let next = if failing_back {
            // Leaving a healthy backup is not a failure of the backup.
            self.backoff.left_on_purpose();
            Some(Server::Primary)
        } else {
            let other = server.other();
            // The primary may always be tried again; the backup only when configured.
            let allowed =
                other == Server::Primary || (self.has_backup() && !self.planted(Bug::BackoffForeverOnPrimary));
            self.backoff.server_failed(server, allowed)
        };
        match next {
            Some(other) => self.open_flow(other),
            None => self.start_backoff(),
        }
    }

    /// Every server failed in this round: wait before the next one.
    fn start_backoff(&mut self) {
        let capped = !self.planted(Bug::BackoffNoCap);
        let wait = self.backoff.round_failed(self.config.backoff, capped, &mut self.rng);
        self.timers.set(Timer::Flow(FlowTimer::Retry), self.now + wait);
        self.emit(Event::Backoff { wait, failures: self.backoff.failed_rounds() });
    }

    /// The flow answered a keep-alive (a pong, or OPTIONS for a server that never pongs):
    /// it has lived at least one keep-alive round, so the failed rounds are forgotten.
    pub(super) fn flow_survived_keepalive(&mut self) {
        self.flow.proven = true;
        self.backoff.proven();
    }

    /// Sends an OPTIONS on `conn` (flow liveness, keep-alive or probe).
    pub(super) fn send_options(&mut self, conn: ConnId, server: Server) -> ClientTx {
        let host = self.server_addr(server).map(|a| a.host).unwrap_or_default();
        let uri = format!("{}:{}", scheme(&self.config), host);
        let (mut m, branch) = self.base_request("OPTIONS", &uri, conn);
        let tag = self.new_token();
        let call_id = self.new_token();
        let from = super::message::aor(&self.config, AccountId(0), server);
        m.push_header("From", name_addr("", &from, Some(&tag)));
        m.push_header("To", name_addr("", &uri, None));
        m.push_header("Call-ID", call_id);
        m.push_header("CSeq", "1 OPTIONS");
        m.push_header("Accept", "application/sdp");
        m.push_header("User-Agent", super::message::USER_AGENT);
        self.send(conn, &m);
        ClientTx { branch, conn, cseq: 1 }
    }
}
