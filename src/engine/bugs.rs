//! Deliberate mistakes that can be switched on in a core built with the `planted-bugs`
//! feature, so that the property tests and the model checker can prove they catch them.
//! Without the feature [`Core::planted`] is constant `false` and the mistakes compile away.

use super::Core;
use super::timer::Timer;
use crate::ids::Server;
use crate::time::{Duration, Instant};

/// A mistake the checks must catch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    /// Accounts after the first are not registered again on the backup.
    SkipBackupReregistration,
    /// A timed-out connect is left open while the next attempt starts.
    DoubleConnect,
    /// The keep-alive timer survives the connection and pings whatever comes next.
    PingWithoutConnection,
    /// The pong deadline is never armed: a silent server is never noticed.
    NoPongDeadline,
    /// The backup is never tried: the phone backs off on the dead primary forever.
    BackoffForeverOnPrimary,
    /// One queued call is dropped without an outcome when the queue is released.
    DropQueuedCall,
    /// The back-off window is not capped.
    BackoffNoCap,
    /// Failback follows the first good probe, whatever `stable_probes` says.
    FailbackOnFirstProbe,
    /// Failback ignores the call policy: it leaves the backup during a call.
    FailbackDuringCall,
    /// The far end's BYE ends an answered call but leaves it in the table, so it ends a
    /// second time later (at shutdown, for one).
    KeepCallAfterRemoteBye,
    /// TLS mode: a registration exchange's connection is left open when it ends.
    KeepExchangeConnection,
    /// A connect or handshake that never completes is waited for forever.
    NoConnectTimeout,
    /// A transaction that gets no answer on the persistent connection does not kill it.
    FlowIgnoresTransactionTimeout,
    /// A failed failback probe does not break the run of good ones.
    ProbeFailureKeepsRun,
    /// Failing back opens the primary's connection before the backup's is closed.
    MakeBeforeBreak,
    /// Answer-driven REGISTERs are not paced: a server's answers alone set the rate.
    NoRegisterPacing,
    /// The registrar's Flow-Timer is ignored: pings keep the configured interval.
    FlowTimerIgnored,
    /// A Flow-Timer shorter than the wait of the ping already scheduled does not
    /// reschedule it: the first ping comes too late.
    NoRescheduleOnFlowTimer,
    /// A missing pong kills the flow even on a server that has never ponged.
    DeadWithoutAskingPongless,
    /// A server that never pongs sets the OPTIONS keep-alive rate with a tiny Flow-Timer.
    NoOptionsFloor,
    /// A binding is refreshed at its expiry instead of by the Aastra renewal rule.
    RefreshAtExpiry,
    /// The lifetime the registrar granted is ignored; the one asked for is used.
    IgnoreGrantedExpires,
    /// `Retry-After` is ignored: a failed REGISTER is retried after the retry timer.
    IgnoreRetryAfter,
    /// A rejection for good is forgotten on a new connection: REGISTER at once.
    RejectionForgottenOnReconnect,
    /// The failed rounds are forgotten when a connection comes up, not when a keep-alive
    /// is answered on it: a server that accepts and dies gets reconnects without back-off.
    ForgetRoundsOnConnect,
    /// A call that rings is never given up on (no Timer C).
    NoTimerC,
    /// Pings are drawn in `[0.5·I, I]`, more often than RFC 5626's `[0.8·I, I]`.
    PingJitterTooWide,
    /// Calls placed while the connection is down queue without limit.
    NoCallQueueLimit,
    /// Incoming INVITEs ring without limit (no 486 beyond `max_ringing_calls`).
    NoRingingLimit,
    /// An established call whose connection is gone is kept for ever.
    NoOrphanDeadline,
    /// A hang-up before any provisional response sends CANCEL at once (RFC 3261 §9.1
    /// forbids it: the CANCEL may overtake its INVITE).
    CancelBeforeProvisional,
    /// The INVITE challenge is answered but not kept: every call is challenged again.
    NoInviteCredentialsInAdvance,
    /// A REGISTER exchange answers challenges for ever (a server refusing the credentials
    /// with fresh nonces is never given up on).
    UnboundedChallenges,
    /// A REGISTER exchange follows 423 Interval Too Brief for ever.
    Unbounded423,
    /// An incoming INVITE for any of the lines rings the first one.
    IncomingToFirstAccount,
    /// A peer that takes nothing of what the phone writes is waited for for ever, as
    /// long as the backlog stays under its limit.
    NoWriteStallTimeout,
    /// The timer table orders its timers by key before deadline: the first armed timer
    /// in key order is the next one, and an earlier one behind it waits for it.
    TimersInKeyOrder,
    /// The decisions that follow every input (release of queued calls, failback, the end
    /// of shutdown) are not taken again after the timers fired.
    NoReevaluationAfterTimer,
    /// A new keep-alive interval taken while running leaves the ping already drawn from
    /// the old one: with a shorter interval the next ping comes too late.
    StalePingAfterReconfigure,
    /// The server fails once its first target has: the other targets are never tried.
    BackoffAfterFirstTarget,
    /// No head start ends: the next address is tried only after an attempt failed, so an
    /// address that swallows the handshake costs its whole connect timeout.
    NoHeadStartRace,
    /// The race's losers are left open beside the winner.
    RaceLoserLeftOpen,
    /// A connection that came up and died before proving itself fails its whole server,
    /// as before the server had several addresses: an address that takes the connection
    /// and never answers keeps the phone from the others.
    UnprovenAddressFailsServer,
    /// An established call that lost its connection is never moved onto the new one: it
    /// waits for the orphaned-call timeout, unreachable.
    NoDialogMove,
}

#[cfg(feature = "planted-bugs")]
impl Bug {
    /// Every planted bug.
    pub const ALL: [Bug; 44] = [
        Bug::SkipBackupReregistration,
        Bug::DoubleConnect,
        Bug::PingWithoutConnection,
        Bug::NoPongDeadline,
        Bug::BackoffForeverOnPrimary,
        Bug::DropQueuedCall,
        Bug::BackoffNoCap,
        Bug::FailbackOnFirstProbe,
        Bug::FailbackDuringCall,
        Bug::KeepCallAfterRemoteBye,
        Bug::KeepExchangeConnection,
        Bug::NoConnectTimeout,
        Bug::FlowIgnoresTransactionTimeout,
        Bug::ProbeFailureKeepsRun,
        Bug::MakeBeforeBreak,
        Bug::NoRegisterPacing,
        Bug::FlowTimerIgnored,
        Bug::NoRescheduleOnFlowTimer,
        Bug::DeadWithoutAskingPongless,
        Bug::NoOptionsFloor,
        Bug::RefreshAtExpiry,
        Bug::IgnoreGrantedExpires,
        Bug::IgnoreRetryAfter,
        Bug::RejectionForgottenOnReconnect,
        Bug::ForgetRoundsOnConnect,
        Bug::NoTimerC,
        Bug::PingJitterTooWide,
        Bug::NoCallQueueLimit,
        Bug::NoRingingLimit,
        Bug::NoOrphanDeadline,
        Bug::CancelBeforeProvisional,
        Bug::NoInviteCredentialsInAdvance,
        Bug::UnboundedChallenges,
        Bug::Unbounded423,
        Bug::IncomingToFirstAccount,
        Bug::NoWriteStallTimeout,
        Bug::TimersInKeyOrder,
        Bug::NoReevaluationAfterTimer,
        Bug::StalePingAfterReconfigure,
        Bug::BackoffAfterFirstTarget,
        Bug::NoHeadStartRace,
        Bug::RaceLoserLeftOpen,
        Bug::UnprovenAddressFailsServer,
        Bug::NoDialogMove,
    ];
}

impl Core {
    /// Is `bug` switched on?
    #[inline]
    pub(super) fn planted(&self, bug: Bug) -> bool {
        #[cfg(feature = "planted-bugs")]
        {
            self.bug == Some(bug)
        }
        #[cfg(not(feature = "planted-bugs"))]
        {
            let _ = bug;
            false
        }
    }

    /// [`Bug::DropQueuedCall`]: the last of several queued calls, at `i`, is dropped as the
    /// queue is released. The conditions live here, outside the decision files, so that
    /// mutation testing finds no mutant in code the shipped build compiles away.
    pub(super) fn planted_drops_queued_call(&self, i: usize) -> bool {
        self.planted(Bug::DropQueuedCall) && i + 1 == self.calls.len() && i > 0
    }

    /// [`Bug::SkipBackupReregistration`]: accounts after the first are not registered on a
    /// connection to the backup.
    pub(super) fn planted_skips_reregistration(&self, server: Server, i: usize) -> bool {
        self.planted(Bug::SkipBackupReregistration) && server == Server::Backup && i > 0
    }

    /// [`Bug::NoOptionsFloor`]: the keep-alive interval on a flow without the OPTIONS floor.
    pub(super) fn planted_ping_interval(&self) -> Option<Duration> {
        (self.planted(Bug::NoOptionsFloor) && self.flow.conn.is_some()).then(|| self.keepalive.interval(&self.config))
    }

    /// [`Bug::PingJitterTooWide`]: the low end of the ping's draw at half the interval `i`.
    pub(super) fn planted_jitter_low(&self, i: Duration) -> Option<Duration> {
        self.planted(Bug::PingJitterTooWide).then(|| Duration::from_millis(i.as_millis() / 2))
    }

    /// The next timer as [`Bug::TimersInKeyOrder`] has it: the first armed one in key
    /// order, whatever its deadline.
    pub(super) fn planted_next_timer(&self) -> Option<(Timer, Instant)> {
        #[cfg(feature = "planted-bugs")]
        {
            self.timers.iter().next()
        }
        #[cfg(not(feature = "planted-bugs"))]
        {
            self.timers.next()
        }
    }

    /// Switches a planted bug on (test builds with the `planted-bugs` feature only).
    #[cfg(feature = "planted-bugs")]
    pub fn plant(&mut self, bug: Option<Bug>) {
        self.bug = bug;
    }
}
