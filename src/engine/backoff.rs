//! Reconnect rounds: which server the persistent connection tries next, and how long it
//! waits once every server of the round has failed.
//!
//! A round tries the other server at once after a failure; when both have failed the
//! phone waits a time drawn in `[W/2, W]`, `W = min(max, base·2^n)` for `n` failed rounds
//! in a row, and starts the next round with the primary. A round is forgotten only when
//! a connection proves itself (a 2xx or a pong on it), so a server that accepts TLS and
//! then dies cannot make the phone spin.

use crate::config;
use crate::ids::Server;
use crate::rng::Rng;
use crate::time::Duration;

/// The exponent stops growing here: `2^20` times any base is far beyond any cap.
const MAX_SHIFT: u32 = 20;

/// Reconnect-round state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Backoff {
    /// Servers that failed in the current round (by [`Server::index`]).
    tried: [bool; 2],
    /// Rounds that failed in a row; reset once a flow proves itself.
    failed_rounds: u32,
}

impl Backoff {
    /// The window `W = min(max, base·2^n)` for `n` failed rounds; `capped: false` only
    /// for the planted bug that forgets the cap.
    pub fn window(policy: config::Backoff, failed_rounds: u32, capped: bool) -> Duration {
        let w = policy.base.saturating_mul(1u64 << failed_rounds.min(MAX_SHIFT));
        if capped { w.min(policy.max) } else { w }
    }

    pub fn failed_rounds(&self) -> u32 {
        self.failed_rounds
    }

    #[cfg(any(test, feature = "sim"))]
    pub fn tried(&self) -> [bool; 2] {
        self.tried
    }

    /// A connection to `server` failed or died before the phone chose to leave it.
    /// Returns the server to try at once: the other one, if `other_allowed` (it is
    /// configured) and it has not failed in this round.
    pub fn server_failed(&mut self, server: Server, other_allowed: bool) -> Option<Server> {
        self.tried[server.index()] = true;
        let other = server.other();
        (other_allowed && !self.tried[other.index()]).then_some(other)
    }

    /// The phone left a healthy server on purpose (failback): that is no failure, and the
    /// round starts afresh.
    pub fn left_on_purpose(&mut self) {
        self.tried = [false; 2];
    }

    /// Every server failed: the wait before the next round, drawn in `[W/2, W]`.
    pub fn round_failed(&mut self, policy: config::Backoff, capped: bool, rng: &mut Rng) -> Duration {
        let w = Backoff::window(policy, self.failed_rounds, capped);
        let wait = Duration::from_millis(rng.between(w.as_millis() / 2, w.as_millis()));
        self.failed_rounds = self.failed_rounds.saturating_add(1);
        self.tried = [false; 2];
        wait
    }

    /// The current connection proved itself: the next failure starts from the first window.
    pub fn proven(&mut self) {
        self.failed_rounds = 0;
        self.tried = [false; 2];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> config::Backoff {
        config::Backoff { base: Duration::from_secs(2), max: Duration::from_secs(120) }
    }

    #[test]
    fn the_other_server_is_tried_once_per_round() {
        let mut b = Backoff::default();
        assert_eq!(b.server_failed(Server::Primary, true), Some(Server::Backup));
        assert_eq!(b.server_failed(Server::Backup, true), None, "both failed: back off");
        let mut b = Backoff::default();
        assert_eq!(b.server_failed(Server::Primary, false), None, "no backup: back off at once");
    }

    #[test]
    fn waits_stay_in_the_window_and_the_window_doubles_to_its_cap() {
        let mut b = Backoff::default();
        let mut rng = Rng::new(7.into());
        for n in 0..12u32 {
            let w = Backoff::window(policy(), n, true);
            assert_eq!(w, Duration::from_secs((2u64 << n).min(120)));
            let wait = b.round_failed(policy(), true, &mut rng);
            assert!(wait >= Duration::from_millis(w.as_millis() / 2) && wait <= w, "{wait:?} outside {w:?}");
            assert_eq!(b.failed_rounds(), n + 1);
            assert_eq!(b.tried(), [false; 2], "a new round forgets who failed");
        }
        assert!(Backoff::window(policy(), 40, false) > policy().max);
    }

    #[test]
    fn a_proven_connection_resets_the_rounds() {
        let mut b = Backoff::default();
        let mut rng = Rng::new(1.into());
        b.round_failed(policy(), true, &mut rng);
        b.server_failed(Server::Primary, true);
        b.proven();
        assert_eq!((b.failed_rounds(), b.tried()), (0, [false; 2]));
        b.server_failed(Server::Backup, true);
        b.left_on_purpose();
        assert_eq!(b.tried(), [false; 2]);
    }
}
