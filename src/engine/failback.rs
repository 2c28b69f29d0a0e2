//! Failback: while the phone runs on the backup it probes the primary (a short second
//! connection carrying one OPTIONS, answered with any final status), and once the
//! primary has answered `stable_probes` probes in a row it moves back: de-REGISTER every
//! account on the backup, close the backup, connect to the primary (break before make).
//!
//! [`Failback::decide`] is where failback is decided; the `Core` methods below run the
//! probes and the switch.

use super::bugs::Bug;
use super::io::{ConnPurpose, Event, FlowError};
use super::timer::{FlowTimer, Timer};
use super::transaction::ClientTx;
use super::{Conn, Core};
use crate::ids::{ConnId, Server};

/// A check of the primary while the phone runs on the backup.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Probe {
    pub conn: ConnId,
    /// The OPTIONS in flight once the probe connection is up.
    pub tx: Option<ClientTx>,
}

/// What [`Failback::decide`] concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// Stay where the phone is.
    Stay,
    /// The phone is on the primary: probe counts from another time are forgotten.
    Forget,
    /// Leave the backup for the primary now.
    Switch,
}

/// Probing and switching state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Failback {
    /// The probe in progress.
    pub probe: Option<Probe>,
    /// Consecutive good probes.
    good_probes: u8,
    /// De-registering on the backup before moving to the primary.
    switching: bool,
}

impl Failback {
    pub fn good_probes(&self) -> u8 {
        self.good_probes
    }

    pub fn is_switching(&self) -> bool {
        self.switching
    }

    /// A new persistent connection came up: counting starts again.
    pub fn flow_up(&mut self) {
        self.good_probes = 0;
    }

    /// The persistent connection went away: a switch in progress is over.
    pub fn flow_down(&mut self) -> bool {
        std::mem::take(&mut self.switching)
    }

    /// The primary answered a probe.
    pub fn probe_answered(&mut self) {
        self.probe = None;
        self.good_probes = self.good_probes.saturating_add(1);
    }

    /// A probe failed: the run of good probes is broken.
    pub fn probe_failed(&mut self) {
        self.probe = None;
        self.good_probes = 0;
    }

    /// The failback decision. `on_backup`: the persistent connection is up on the backup;
    /// `call_pins_backup`: a call other than a queued one is live, and the policy is
    /// never to tear a call down to fail back.
    pub fn decide(&self, stable_probes: u8, on: Option<Server>, call_pins_backup: bool) -> Decision {
        if self.good_probes < stable_probes || self.switching {
            return Decision::Stay;
        }
        match on {
            None => Decision::Stay,
            Some(Server::Primary) => Decision::Forget,
            Some(Server::Backup) if call_pins_backup => Decision::Stay,
            Some(Server::Backup) => Decision::Switch,
        }
    }

    /// The decision was taken: switching starts.
    pub fn start_switch(&mut self) {
        self.switching = true;
    }

    /// See [`Decision::Forget`].
    pub fn forget(&mut self) {
        self.good_probes = 0;
    }
}

impl Core {
    /// The probe timer fired: connect to the primary, if the phone still runs on the backup.
    pub(super) fn on_probe_timer(&mut self) {
        if self.failback.probe.is_none()
            && self.flow_up_conn().is_some_and(|c| c.server == Server::Backup)
            && let Some(conn) = self.connect(Server::Primary, ConnPurpose::Probe)
        {
            self.failback.probe = Some(Probe { conn, tx: None });
        }
    }

    /// The probe's OPTIONS got no answer in time.
    pub(super) fn on_probe_timeout(&mut self) {
        if let Some(p) = self.failback.probe.clone() {
            self.fail_conn(p.conn, FlowError::TransactionTimeout);
        }
    }

    pub(super) fn probe_connected(&mut self, conn: ConnId) {
        if self.failback.probe.as_ref().map(|p| p.conn) != Some(conn) {
            self.close_conn(conn);
            return;
        }
        let tx = self.send_options(conn, Server::Primary);
        if let Some(p) = self.failback.probe.as_mut() {
            p.tx = Some(tx);
        }
        self.timers.set(Timer::Flow(FlowTimer::ProbeTx), self.now + self.config.transaction_timeout);
    }

    /// A response to the probe's OPTIONS; returns whether it was one.
    pub(super) fn probe_response(&mut self, conn: ConnId, branch: &str, status: u16) -> bool {
        let ours = self
            .failback
            .probe
            .as_ref()
            .and_then(|p| p.tx.as_ref())
            .is_some_and(|t| t.branch == branch && t.conn == conn);
        if !ours {
            return false;
        }
        if status < 200 {
            return true;
        }
        self.close_probe();
        self.failback.probe_answered();
        self.timers.set(Timer::Flow(FlowTimer::ProbeAt), self.now + self.config.failback.probe_interval);
        true
    }

    pub(super) fn probe_failed(&mut self, failed: &Conn, reason: FlowError) {
        let conn = failed.id;
        if self.failback.probe.as_ref().map(|p| p.conn) != Some(conn) {
            return;
        }
        self.timers.stop(Timer::Flow(FlowTimer::ProbeTx));
        // The probe came up and its OPTIONS went unanswered (or the connection died):
        // that address is left for the primary's next one, as the flow would leave it.
        if failed.local.is_some()
            && !self.planted(Bug::UnprovenAddressFailsServer)
            && let Some(next) = self.start_attempt(Server::Primary, ConnPurpose::Probe, failed.attempt)
        {
            if let Some(p) = self.failback.probe.as_mut() {
                p.conn = next;
                p.tx = None;
            }
            if let Some(addr) = failed.addr {
                self.emit(Event::AttemptFailed { server: Server::Primary, addr, reason });
            }
            return;
        }
        if self.planted(Bug::ProbeFailureKeepsRun) {
            self.failback.probe = None;
        } else {
            self.failback.probe_failed();
        }
        self.emit(Event::ConnectFailed { server: Server::Primary, reason });
        if self.running() && self.flow_up_conn().is_some_and(|c| c.server == Server::Backup) {
            self.timers.set(Timer::Flow(FlowTimer::ProbeAt), self.now + self.config.failback.probe_interval);
        }
    }

    /// Closes the probe connection, if any.
    pub(super) fn close_probe(&mut self) {
        if let Some(p) = self.failback.probe.take() {
            self.timers.stop(Timer::Flow(FlowTimer::ProbeTx));
            self.close_conn(p.conn);
        }
    }

    /// Re-evaluated after every input: moves back to the primary once it has proved
    /// stable, unless a call pins the backup.
    pub(super) fn maybe_fail_back(&mut self) {
        let on = self.flow_up_conn().map(|c| c.server);
        let pinned = self.calls.iter().any(|c| !c.is_queued()) && !self.planted(Bug::FailbackDuringCall);
        let stable = if self.planted(Bug::FailbackOnFirstProbe) { 1 } else { self.config.failback.stable_probes };
        match self.failback.decide(stable, on, pinned) {
            Decision::Stay => {}
            Decision::Forget => self.failback.forget(),
            Decision::Switch => {
                self.failback.start_switch();
                self.timers.stop(Timer::Flow(FlowTimer::ProbeAt));
                self.close_probe();
                self.emit(Event::FailingBack);
                if self.planted(Bug::MakeBeforeBreak) {
                    self.connect(Server::Primary, super::io::ConnPurpose::Flow);
                }
                self.unregister_all();
                self.maybe_finish_switch();
            }
        }
    }

    /// Once every de-REGISTER on the backup is answered (or timed out), leaves it.
    pub(super) fn maybe_finish_switch(&mut self) {
        if !self.failback.is_switching() || self.accounts.iter().any(|a| a.is_unregistering()) {
            return;
        }
        if let Some(conn) = self.flow.conn {
            self.flow_dead(conn, FlowError::Failback);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_back_only_after_enough_good_probes_in_a_row() {
        let mut f = Failback::default();
        f.probe_answered();
        assert_eq!(f.decide(2, Some(Server::Backup), false), Decision::Stay);
        f.probe_failed();
        f.probe_answered();
        assert_eq!(f.decide(2, Some(Server::Backup), false), Decision::Stay, "a failure breaks the run");
        f.probe_answered();
        assert_eq!(f.decide(2, Some(Server::Backup), false), Decision::Switch);
    }

    #[test]
    fn a_live_call_pins_the_backup_and_a_switch_happens_once() {
        let mut f = Failback::default();
        f.probe_answered();
        assert_eq!(f.decide(1, Some(Server::Backup), true), Decision::Stay);
        assert_eq!(f.decide(1, None, false), Decision::Stay, "no flow up: nothing to leave");
        assert_eq!(f.decide(1, Some(Server::Primary), false), Decision::Forget);
        f.start_switch();
        assert_eq!(f.decide(1, Some(Server::Backup), false), Decision::Stay);
        assert!(f.flow_down());
        assert!(!f.is_switching());
    }
}
