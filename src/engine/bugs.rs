//! Deliberate mistakes that can be switched on in a core built with the `planted-bugs`
//! feature, so that the property tests and the model checker can prove they catch them.
//! Without the feature [`Core::planted`] is constant `false` and the mistakes compile away.

use super::Core;

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
}

#[cfg(feature = "planted-bugs")]
impl Bug {
    /// Every planted bug.
    pub const ALL: [Bug; 11] = [
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

    /// Switches a planted bug on (test builds with the `planted-bugs` feature only).
    #[cfg(feature = "planted-bugs")]
    pub fn plant(&mut self, bug: Option<Bug>) {
        self.bug = bug;
    }
}
