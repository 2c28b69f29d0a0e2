//! What the core counts for people and dashboards, never for its own decisions: the
//! persistent connection's age, keep-alives sent and answered with the last round trip,
//! and when each account's binding expires. Nothing here is read by a decision, so the
//! decision view (`view.rs`) leaves it out and a model checker does not see the counts
//! grow.

use super::Core;
use super::io::Event;
use super::timer::{FlowTimer, Timer};
use crate::ids::{AccountId, Server};
use crate::time::{Duration, Instant};

/// Counters of the persistent connection, as the phone's status reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LinkStats {
    /// The server the persistent connection is up on, and since when; `None` while it
    /// is not up.
    pub up_since: Option<(Server, Instant)>,
    /// Keep-alives sent on the current connection: `CRLFCRLF` pings, and OPTIONS
    /// requests to a server that does not answer pings.
    pub pings_sent: u64,
    /// Keep-alives answered on the current connection (a pong, or a final response to the
    /// keep-alive OPTIONS).
    pub pongs_received: u64,
    /// The round trip of the last answered keep-alive on the current connection.
    pub last_pong_rtt: Option<Duration>,
    /// Persistent connections that came up since the start (the first one included).
    pub connections_up: u64,
}

/// The counters and the instant of the keep-alive waiting for its answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Stats {
    link: LinkStats,
    keepalive_sent_at: Option<Instant>,
    /// When each account's binding expires (by account index).
    binding_expiry: Vec<Option<Instant>>,
}

impl Stats {
    /// Follows what the core tells the application.
    pub fn observe(&mut self, now: Instant, event: &Event) {
        match event {
            Event::FlowUp { server } => {
                self.link = LinkStats {
                    up_since: Some((*server, now)),
                    connections_up: self.link.connections_up + 1,
                    ..LinkStats::default()
                };
                self.keepalive_sent_at = None;
            }
            Event::FlowLost { .. } => {
                self.link = LinkStats { connections_up: self.link.connections_up, ..LinkStats::default() };
                self.keepalive_sent_at = None;
            }
            Event::Registered { account, expires, .. } => {
                self.set_expiry(*account, Some(now + Duration::from_secs(u64::from(*expires))));
            }
            Event::RegistrationLost { account } | Event::Unregistered { account } => self.set_expiry(*account, None),
            _ => {}
        }
    }

    /// A keep-alive went out on the persistent connection.
    pub fn keepalive_sent(&mut self, now: Instant) {
        self.link.pings_sent += 1;
        self.keepalive_sent_at = Some(now);
    }

    /// The keep-alive that went out was answered.
    pub fn keepalive_answered(&mut self, now: Instant) {
        if let Some(sent) = self.keepalive_sent_at.take() {
            self.link.pongs_received += 1;
            self.link.last_pong_rtt = Some(now.saturating_since(sent));
        }
    }

    fn set_expiry(&mut self, account: AccountId, at: Option<Instant>) {
        let i = usize::from(account.0);
        if self.binding_expiry.len() <= i {
            self.binding_expiry.resize(i + 1, None);
        }
        self.binding_expiry[i] = at;
    }
}

impl Core {
    /// The persistent connection's counters (all zero in TLS mode, which has none).
    pub fn link_stats(&self) -> LinkStats {
        self.stats.link
    }

    /// When `account`'s binding expires at the registrar: the instant of the 2xx plus the
    /// lifetime granted; `None` while it has none.
    pub fn binding_expiry(&self, account: AccountId) -> Option<Instant> {
        self.stats.binding_expiry.get(usize::from(account.0)).copied().flatten()
    }

    /// When the next reconnect round starts, while the phone waits after every server
    /// failed (the back-off countdown).
    pub fn next_retry(&self) -> Option<Instant> {
        self.timers.get(Timer::Flow(FlowTimer::Retry))
    }

    /// The calls in progress, oldest first.
    pub fn calls_in_progress(&self) -> Vec<CallInfo> {
        self.calls.iter().map(|c| c.info()).collect()
    }
}

/// Where a call in progress stands, as a person would say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallStage {
    /// Placed, waiting for the persistent connection or its registration.
    Queued,
    /// Placed in TLS mode, its own connection opening.
    Connecting,
    /// INVITE sent, no ringing yet.
    Calling,
    /// Ringing: at the far end for a placed call, here for an incoming one.
    Ringing,
    /// Answered here, waiting for the caller's ACK.
    Answering,
    /// Established.
    Established,
    /// Ending: our CANCEL or BYE is out.
    Ending,
}

/// One call in progress.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallInfo {
    /// The call's handle.
    pub call: crate::ids::CallId,
    /// The account (line) it is on.
    pub account: AccountId,
    /// Placed by this phone.
    pub outgoing: bool,
    /// Where it stands.
    pub stage: CallStage,
    /// The other party: the target of a placed call, the caller (From URI) of an incoming
    /// one.
    pub peer: String,
}
