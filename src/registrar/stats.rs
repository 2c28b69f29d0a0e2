//! Counters of what the registrar saw, kept in atomics so the handle can read them while
//! the registrar's threads update them.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the registrar's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// TCP connections accepted.
    pub accepted: u64,
    /// Connections currently open.
    pub open: u64,
    /// TLS handshakes completed.
    pub handshakes_ok: u64,
    /// TLS handshakes that failed (bad certificate, closed early, ...).
    pub handshakes_failed: u64,
    /// REGISTER requests received.
    pub registers: u64,
    /// INVITE requests received (initial and re-INVITEs, challenged or not).
    pub invites: u64,
    /// CRLFCRLF keep-alive pings received.
    pub pings: u64,
    /// CRLF pongs sent.
    pub pongs: u64,
    /// OPTIONS requests received.
    pub options: u64,
    /// INVITEs answered here with a 200 rather than routed ([`RegistrarConfig::answer_invites`](crate::registrar::RegistrarConfig::answer_invites)).
    pub invites_answered: u64,
    /// Challenges sent with `stale=true`: credentials computed on a nonce the registrar
    /// no longer remembers (the scale benchmark requires none).
    pub stale_challenges: u64,
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub accepted: AtomicU64,
    pub open: AtomicU64,
    pub handshakes_ok: AtomicU64,
    pub handshakes_failed: AtomicU64,
    pub registers: AtomicU64,
    pub invites: AtomicU64,
    pub pings: AtomicU64,
    pub pongs: AtomicU64,
    pub options: AtomicU64,
    pub invites_answered: AtomicU64,
    pub stale_challenges: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Takes one from a counter (never below zero).
pub(crate) fn drop_one(c: &AtomicU64) {
    let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(1)));
}

impl Counters {
    /// The current values.
    pub fn snapshot(&self) -> Stats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            accepted: g(&self.accepted),
            open: g(&self.open),
            handshakes_ok: g(&self.handshakes_ok),
            handshakes_failed: g(&self.handshakes_failed),
            registers: g(&self.registers),
            invites: g(&self.invites),
            pings: g(&self.pings),
            pongs: g(&self.pongs),
            options: g(&self.options),
            invites_answered: g(&self.invites_answered),
            stale_challenges: g(&self.stale_challenges),
        }
    }
}
