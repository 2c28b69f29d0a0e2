//! The location service: which contact of which user is reachable over which connection,
//! until when. Bindings die with their connection, like Kamailio's `handle_lost_tcp`.

use std::time::{Duration, Instant};

/// One registered contact, as reported by [`super::Registrar::bindings`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The user (address-of-record user part).
    pub user: String,
    /// The Contact URI, without angle brackets or header parameters.
    pub contact: String,
    /// The registrar-side number of the connection it was registered over.
    pub connection: u64,
    /// Seconds left until it expires.
    pub expires: u32,
}

#[derive(Clone, Debug)]
struct Entry {
    user: String,
    contact: String,
    /// Contact header parameters other than `expires`, as `;name=value...`.
    params: String,
    connection: u64,
    until: Instant,
}

/// All bindings, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Bindings {
    entries: Vec<Entry>,
}

/// Compares contact URIs by scheme, user and host:port, ignoring URI parameters.
pub(crate) fn same_uri(a: &str, b: &str) -> bool {
    let base = |u: &str| {
        let u = u.trim().trim_start_matches('<');
        let end = u.find([';', '?', '>']).unwrap_or(u.len());
        u[..end].to_ascii_lowercase()
    };
    base(a) == base(b)
}

impl Bindings {
    fn prune(&mut self, now: Instant) {
        self.entries.retain(|e| e.until > now);
    }

    /// Adds or refreshes `user`'s binding for `contact`, now over `connection`.
    pub fn upsert(&mut self, user: &str, contact: &str, params: String, connection: u64, expires: u32, now: Instant) {
        self.remove(user, contact);
        let until = now + Duration::from_secs(u64::from(expires));
        self.entries.push(Entry { user: user.into(), contact: contact.into(), params, connection, until });
    }

    /// Removes `user`'s binding for `contact`.
    pub fn remove(&mut self, user: &str, contact: &str) {
        self.entries.retain(|e| !(e.user == user && same_uri(&e.contact, contact)));
    }

    /// Removes every binding of `user`.
    pub fn remove_user(&mut self, user: &str) {
        self.entries.retain(|e| e.user != user);
    }

    /// Drops the bindings of a closed connection.
    pub fn connection_closed(&mut self, connection: u64) {
        self.entries.retain(|e| e.connection != connection);
    }

    /// The Contact header values of `user`'s bindings with their remaining lifetimes.
    pub fn contacts_of(&mut self, user: &str, now: Instant) -> Vec<String> {
        self.prune(now);
        self.entries
            .iter()
            .filter(|e| e.user == user)
            .map(|e| format!("<{}>{};expires={}", e.contact, e.params, remaining(e.until, now)))
            .collect()
    }

    /// The newest binding of `user`: (contact, connection).
    pub fn lookup_user(&mut self, user: &str, now: Instant) -> Option<(String, u64)> {
        self.prune(now);
        self.entries.iter().rev().find(|e| e.user == user).map(|e| (e.contact.clone(), e.connection))
    }

    /// The newest binding whose contact is `uri`: (contact, connection).
    pub fn lookup_contact(&mut self, uri: &str, now: Instant) -> Option<(String, u64)> {
        self.prune(now);
        self.entries.iter().rev().find(|e| same_uri(&e.contact, uri)).map(|e| (e.contact.clone(), e.connection))
    }

    /// A snapshot for the handle.
    pub fn list(&mut self, now: Instant) -> Vec<Binding> {
        self.prune(now);
        self.entries
            .iter()
            .map(|e| Binding {
                user: e.user.clone(),
                contact: e.contact.clone(),
                connection: e.connection,
                expires: remaining(e.until, now),
            })
            .collect()
    }
}

fn remaining(until: Instant, now: Instant) -> u32 {
    u32::try_from(until.saturating_duration_since(now).as_secs()).unwrap_or(u32::MAX)
}
