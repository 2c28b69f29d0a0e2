//! Every deadline of the core in one table, keyed by what it is for.
//!
//! A timer is armed with [`TimerTable::set`] and disarmed with [`TimerTable::stop`];
//! nothing else in the core stores a deadline. [`Core::poll_timeout`](super::Core::poll_timeout)
//! is the table's earliest entry, [`Core::handle_timeout`](super::Core::handle_timeout)
//! fires the expired entries one at a time through one `match` on [`Timer`], and the
//! model checker's view of the timers is read from the same table, so a new timer is one
//! variant here and one arm in `Core::on_timer`.
//!
//! Order: expired timers fire earliest deadline first; timers due at the same instant
//! fire in the order of [`Timer`] (connect, flow, registration, calls, shutdown), the
//! order the core has always used.

use crate::ids::{AccountId, CallId, ConnId};
use crate::time::Instant;
use core::fmt;

/// A deadline the core may have armed, and the reason for the next wake-up.
///
/// The declaration order is the firing order of timers due at the same instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// Connect plus handshake of this connection must finish by then.
    Connect(ConnId),
    /// The peer must take some of the bytes waiting for it by then.
    WriteStall(ConnId),
    /// Happy Eyeballs: this attempt's head start ends, and the next address is tried
    /// beside it if it is still connecting.
    HeadStart(ConnId),
    /// One of the persistent connection's timers.
    Flow(FlowTimer),
    /// One of an account's registration timers.
    Registration(AccountId, RegTimer),
    /// The one deadline of a call in its current state (queued, connecting, INVITE or
    /// CANCEL or BYE transaction, ringing, waiting for an ACK).
    Call(CallId),
    /// Shutdown gives up on unanswered de-REGISTERs then.
    Shutdown,
}

/// The persistent connection's timers, in firing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlowTimer {
    /// The next reconnect round starts (back-off).
    Retry,
    /// The flow's own OPTIONS (liveness check or keep-alive) must be answered by then.
    OptionsTx,
    /// The pong of the last ping must arrive by then.
    PongDeadline,
    /// The next keep-alive ping (or OPTIONS) goes out.
    Ping,
    /// The next probe of the primary starts (while on the backup).
    ProbeAt,
    /// The probe's OPTIONS must be answered by then.
    ProbeTx,
}

impl FlowTimer {
    /// Every flow timer, in firing order.
    pub const ALL: [FlowTimer; 6] = [
        FlowTimer::Retry,
        FlowTimer::OptionsTx,
        FlowTimer::PongDeadline,
        FlowTimer::Ping,
        FlowTimer::ProbeAt,
        FlowTimer::ProbeTx,
    ];

    const fn slot(self) -> usize {
        match self {
            FlowTimer::Retry => 0,
            FlowTimer::OptionsTx => 1,
            FlowTimer::PongDeadline => 2,
            FlowTimer::Ping => 3,
            FlowTimer::ProbeAt => 4,
            FlowTimer::ProbeTx => 5,
        }
    }
}

/// An account's registration timers, in firing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RegTimer {
    /// The REGISTER in flight must be answered by then.
    Transaction,
    /// The binding is refreshed then.
    Refresh,
    /// After a failure, the next attempt starts then.
    Retry,
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timer::Connect(c) => write!(f, "connect timeout of {c}"),
            Timer::WriteStall(c) => write!(f, "write stall of {c}"),
            Timer::HeadStart(c) => write!(f, "head start of {c} over the next address"),
            Timer::Flow(t) => f.write_str(match t {
                FlowTimer::Retry => "next reconnect round",
                FlowTimer::OptionsTx => "OPTIONS on the flow unanswered",
                FlowTimer::PongDeadline => "pong deadline",
                FlowTimer::Ping => "keep-alive ping",
                FlowTimer::ProbeAt => "next probe of the primary",
                FlowTimer::ProbeTx => "probe OPTIONS unanswered",
            }),
            Timer::Registration(a, t) => match t {
                RegTimer::Transaction => write!(f, "REGISTER of {a} unanswered"),
                RegTimer::Refresh => write!(f, "registration refresh of {a}"),
                RegTimer::Retry => write!(f, "registration retry of {a}"),
            },
            Timer::Call(c) => write!(f, "deadline of {c}"),
            Timer::Shutdown => f.write_str("shutdown deadline"),
        }
    }
}

/// The armed deadlines: fixed slots for the flow's timers and shutdown, and entries
/// keyed by connection, account or call for the others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct TimerTable {
    flow: [Option<Instant>; 6],
    shutdown: Option<Instant>,
    /// Connect, registration and call timers, sorted by key.
    keyed: Vec<(Timer, Instant)>,
}

impl TimerTable {
    /// Arms `timer` at `at`, replacing any earlier deadline of the same timer.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        match timer {
            Timer::Flow(t) => self.flow[t.slot()] = Some(at),
            Timer::Shutdown => self.shutdown = Some(at),
            _ => match self.keyed.binary_search_by(|(k, _)| k.cmp(&timer)) {
                Ok(i) => self.keyed[i].1 = at,
                Err(i) => self.keyed.insert(i, (timer, at)),
            },
        }
    }

    /// Arms `timer` at `at`, or disarms it for `None`.
    pub fn set_opt(&mut self, timer: Timer, at: Option<Instant>) {
        match at {
            Some(at) => self.set(timer, at),
            None => self.stop(timer),
        }
    }

    /// Disarms `timer` (a no-op when it is not armed).
    pub fn stop(&mut self, timer: Timer) {
        match timer {
            Timer::Flow(t) => self.flow[t.slot()] = None,
            Timer::Shutdown => self.shutdown = None,
            _ => {
                if let Ok(i) = self.keyed.binary_search_by(|(k, _)| k.cmp(&timer)) {
                    self.keyed.remove(i);
                }
            }
        }
    }

    /// The deadline of `timer`, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        match timer {
            Timer::Flow(t) => self.flow[t.slot()],
            Timer::Shutdown => self.shutdown,
            _ => self.keyed.binary_search_by(|(k, _)| k.cmp(&timer)).ok().map(|i| self.keyed[i].1),
        }
    }

    /// True when `timer` is armed.
    pub fn is_armed(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    /// Disarms every timer for which `drop` is true.
    pub fn stop_where(&mut self, mut drop: impl FnMut(Timer) -> bool) {
        for t in FlowTimer::ALL {
            if drop(Timer::Flow(t)) {
                self.flow[t.slot()] = None;
            }
        }
        if drop(Timer::Shutdown) {
            self.shutdown = None;
        }
        self.keyed.retain(|(k, _)| !drop(*k));
    }

    /// Every armed timer with its deadline, in key order (for the checker's view and the
    /// tests; the core itself only asks for the earliest).
    #[cfg(any(test, feature = "sim"))]
    pub fn iter(&self) -> impl Iterator<Item = (Timer, Instant)> + '_ {
        let flow = FlowTimer::ALL.into_iter().filter_map(|t| self.flow[t.slot()].map(|at| (Timer::Flow(t), at)));
        let shutdown = self.shutdown.map(|at| (Timer::Shutdown, at));
        let mut all: Vec<(Timer, Instant)> = self.keyed.iter().copied().chain(flow).chain(shutdown).collect();
        all.sort_unstable_by_key(|(k, _)| *k);
        all.into_iter()
    }

    /// The earliest deadline and its timer (the first in key order among equal ones).
    /// Called after every input, so it walks the table without allocating.
    pub fn next(&self) -> Option<(Timer, Instant)> {
        let flow = FlowTimer::ALL.into_iter().filter_map(|t| self.flow[t.slot()].map(|at| (Timer::Flow(t), at)));
        let shutdown = self.shutdown.map(|at| (Timer::Shutdown, at));
        self.keyed.iter().copied().chain(flow).chain(shutdown).min_by_key(|(k, at)| (*at, *k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Server;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// What `Core::handle_timeout` fires next at `now`.
    fn next_expired(t: &TimerTable, now: Instant) -> Option<Timer> {
        t.next().filter(|(_, at)| *at <= now).map(|(k, _)| k)
    }

    #[test]
    fn earliest_deadline_wins_and_ties_follow_the_declared_order() {
        let mut t = TimerTable::default();
        let conn = ConnId { server: Server::Primary, generation: 7 };
        t.set(Timer::Shutdown, at(5));
        t.set(Timer::Call(CallId(3)), at(5));
        t.set(Timer::Registration(AccountId(1), RegTimer::Refresh), at(5));
        t.set(Timer::Flow(FlowTimer::Ping), at(5));
        t.set(Timer::Connect(conn), at(5));
        t.set(Timer::Flow(FlowTimer::Retry), at(9));
        assert_eq!(t.next(), Some((Timer::Connect(conn), at(5))));
        let order: Vec<Timer> = t.iter().map(|(k, _)| k).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "iteration follows the firing order");
        assert_eq!(next_expired(&t, at(4)), None);
        let mut fired = Vec::new();
        while let Some(k) = next_expired(&t, at(5)) {
            t.stop(k);
            fired.push(k);
        }
        assert_eq!(
            fired,
            vec![
                Timer::Connect(conn),
                Timer::Flow(FlowTimer::Ping),
                Timer::Registration(AccountId(1), RegTimer::Refresh),
                Timer::Call(CallId(3)),
                Timer::Shutdown,
            ]
        );
        assert_eq!(t.next(), Some((Timer::Flow(FlowTimer::Retry), at(9))));
    }

    #[test]
    fn an_earlier_deadline_fires_before_an_earlier_kind() {
        let mut t = TimerTable::default();
        t.set(Timer::Shutdown, at(1));
        t.set(Timer::Flow(FlowTimer::Ping), at(2));
        assert_eq!(next_expired(&t, at(10)), Some(Timer::Shutdown));
    }

    #[test]
    fn set_replaces_and_stop_disarms() {
        let mut t = TimerTable::default();
        let reg = Timer::Registration(AccountId(0), RegTimer::Retry);
        t.set(reg, at(10));
        t.set(reg, at(20));
        assert_eq!(t.get(reg), Some(at(20)));
        assert_eq!(t.iter().count(), 1);
        t.stop(reg);
        assert!(!t.is_armed(reg));
        t.set_opt(Timer::Flow(FlowTimer::ProbeAt), Some(at(3)));
        t.set_opt(Timer::Flow(FlowTimer::ProbeAt), None);
        assert_eq!(t.next(), None);
    }

    #[test]
    fn stop_where_disarms_a_family() {
        let mut t = TimerTable::default();
        t.set(Timer::Call(CallId(1)), at(1));
        t.set(Timer::Call(CallId(2)), at(2));
        t.set(Timer::Flow(FlowTimer::Ping), at(3));
        t.stop_where(|k| matches!(k, Timer::Call(_)));
        assert_eq!(t.iter().map(|(k, _)| k).collect::<Vec<_>>(), vec![Timer::Flow(FlowTimer::Ping)]);
    }
}
