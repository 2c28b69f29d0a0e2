//! Who may use the interface: login with the administrator password, sessions kept in
//! memory behind an HttpOnly, SameSite=Strict cookie, a CSRF token per session, and a
//! limit on failed logins.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A session lives this long after its last request.
const IDLE_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// At most this many failed logins in [`FAILURE_WINDOW`]; then logins wait.
const MAX_FAILURES: usize = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Sessions kept at most (the oldest goes first): a flood of logins cannot grow the phone.
const MAX_SESSIONS: usize = 64;

/// The name of the session cookie.
pub const COOKIE: &str = "sip_ptls_session";

/// One logged-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    /// The token every request that changes something must carry.
    pub csrf: String,
    last_used: Instant,
}

/// Why a login was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Not the administrator password.
    WrongPassword,
    /// Too many failures lately: try again after this long.
    TooMany(Duration),
    /// The OS random source failed, so no token nobody can guess could be made.
    NoRandom(String),
}

/// The sessions of the interface.
#[derive(Debug)]
pub struct Sessions {
    /// False when no administrator password is configured: then there is no login (the
    /// interface listens on loopback only) and one open session serves every request.
    login_required: bool,
    by_token: HashMap<String, Session>,
    failures: VecDeque<Instant>,
    /// The CSRF token of the open interface (no password).
    open_csrf: String,
}

impl Sessions {
    /// Empty; fails only when the OS random source does.
    pub fn new(login_required: bool) -> Result<Sessions, String> {
        Ok(Sessions { login_required, by_token: HashMap::new(), failures: VecDeque::new(), open_csrf: random_token()? })
    }

    /// True when a password is configured.
    pub fn login_required(&self) -> bool {
        self.login_required
    }

    /// The session of a request's cookie, if it is valid; the open session when no
    /// password is configured.
    pub fn find(&mut self, cookie: Option<&str>, now: Instant) -> Option<Session> {
        if !self.login_required {
            return Some(Session { csrf: self.open_csrf.clone(), last_used: now });
        }
        self.by_token.retain(|_, s| now.saturating_duration_since(s.last_used) < IDLE_LIFETIME);
        let s = self.by_token.get_mut(cookie?)?;
        s.last_used = now;
        Some(s.clone())
    }

    /// True while the session of `cookie` is open (always without a password). Unlike
    /// [`Sessions::find`] it does not count as a use: an open event stream does not keep
    /// its session alive.
    pub fn is_open(&self, cookie: Option<&str>, now: Instant) -> bool {
        !self.login_required
            || cookie
                .and_then(|c| self.by_token.get(c))
                .is_some_and(|s| now.saturating_duration_since(s.last_used) < IDLE_LIFETIME)
    }

    /// Checks `password` against the administrator's and opens a session: its cookie
    /// token.
    pub fn login(&mut self, password: &str, admin: &str, now: Instant) -> Result<String, LoginError> {
        while self.failures.front().is_some_and(|t| now.saturating_duration_since(*t) >= FAILURE_WINDOW) {
            self.failures.pop_front();
        }
        if self.failures.len() >= MAX_FAILURES {
            let oldest = self.failures.front().copied().unwrap_or(now);
            return Err(LoginError::TooMany(FAILURE_WINDOW.saturating_sub(now.saturating_duration_since(oldest))));
        }
        if !same_secret(password, admin) {
            self.failures.push_back(now);
            return Err(LoginError::WrongPassword);
        }
        if self.by_token.len() >= MAX_SESSIONS
            && let Some(oldest) = self.by_token.iter().min_by_key(|(_, s)| s.last_used).map(|(t, _)| t.clone())
        {
            self.by_token.remove(&oldest);
        }
        let token = random_token().map_err(LoginError::NoRandom)?;
        let csrf = random_token().map_err(LoginError::NoRandom)?;
        self.by_token.insert(token.clone(), Session { csrf, last_used: now });
        Ok(token)
    }

    /// Ends the session of `cookie`.
    pub fn logout(&mut self, cookie: Option<&str>) {
        if let Some(c) = cookie {
            self.by_token.remove(c);
        }
    }
}

/// Compares two secrets in a time that does not depend on where they differ: their
/// digests are compared in full.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 32 random bytes from the operating system, in hex.
fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("the OS random source failed: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_opens_a_session_that_expires_when_idle() {
        let t0 = Instant::now();
        let mut s = Sessions::new(true).expect("random");
        assert!(s.find(None, t0).is_none());
        let token = s.login("4321", "4321", t0).expect("right password");
        let session = s.find(Some(&token), t0).expect("session");
        assert_eq!(session.csrf.len(), 64);
        assert!(s.find(Some("forged"), t0).is_none());
        assert!(s.find(Some(&token), t0 + IDLE_LIFETIME + Duration::from_secs(1)).is_none());
    }

    #[test]
    fn failed_logins_are_limited_then_allowed_again() {
        let t0 = Instant::now();
        let mut s = Sessions::new(true).expect("random");
        for _ in 0..MAX_FAILURES {
            assert_eq!(s.login("0000", "4321", t0), Err(LoginError::WrongPassword));
        }
        assert!(matches!(s.login("4321", "4321", t0), Err(LoginError::TooMany(_))), "even the right one waits");
        assert!(s.login("4321", "4321", t0 + FAILURE_WINDOW).is_ok());
    }

    #[test]
    fn without_a_password_every_request_has_the_open_session() {
        let mut s = Sessions::new(false).expect("random");
        let a = s.find(None, Instant::now()).expect("open");
        let b = s.find(Some("anything"), Instant::now()).expect("open");
        assert_eq!(a.csrf, b.csrf);
    }

    #[test]
    fn a_session_is_open_until_logout_or_expiry_and_asking_does_not_keep_it() {
        let t0 = Instant::now();
        let mut s = Sessions::new(true).unwrap();
        let token = s.login("pw", "pw", t0).unwrap();
        assert!(s.is_open(Some(&token), t0 + IDLE_LIFETIME - Duration::from_secs(1)));
        assert!(!s.is_open(Some(&token), t0 + IDLE_LIFETIME), "asking did not renew it");
        assert!(!s.is_open(None, t0) && !s.is_open(Some("other"), t0));
        s.logout(Some(&token));
        assert!(!s.is_open(Some(&token), t0));
        assert!(Sessions::new(false).unwrap().is_open(None, t0));
    }

    #[test]
    fn logout_ends_the_session_and_the_oldest_session_goes_when_full() {
        let t0 = Instant::now();
        let mut s = Sessions::new(true).expect("random");
        let first = s.login("1", "1", t0).expect("login");
        for i in 1..=MAX_SESSIONS {
            s.login("1", "1", t0 + Duration::from_millis(i as u64)).expect("login");
        }
        assert!(s.find(Some(&first), t0).is_none(), "the oldest was dropped");
        let last = s.login("1", "1", t0 + Duration::from_secs(1)).expect("login");
        s.logout(Some(&last));
        assert!(s.find(Some(&last), t0 + Duration::from_secs(1)).is_none());
    }
}
