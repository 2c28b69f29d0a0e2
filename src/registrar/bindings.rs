//! The location service: which contact of which user is reachable over which connection,
//! until when. Bindings die with their connection, like Kamailio's `handle_lost_tcp`.

use std::collections::{BTreeMap, BTreeSet};
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
    /// Order of creation (or last refresh): the newest binding has the highest.
    seq: u64,
    contact: String,
    /// Contact header parameters other than `expires`, as `;name=value...`.
    params: String,
    connection: u64,
    until: Instant,
}

/// All bindings, indexed so that every operation on one user, contact or connection
/// costs the size of what it touches, not the number of bindings (the scale benchmark
/// registers 20,000 accounts on one registrar).
#[derive(Debug, Default)]
pub(crate) struct Bindings {
    /// User → that user's bindings, oldest first.
    by_user: BTreeMap<String, Vec<Entry>>,
    /// Contact URI key ([`uri_key`]) → users that may hold a binding for it (a
    /// superset: checked against `by_user`, cleaned when found stale).
    by_contact: BTreeMap<String, BTreeSet<String>>,
    /// Connection → users that may hold a binding over it (a superset likewise).
    by_connection: BTreeMap<u64, BTreeSet<String>>,
    next_seq: u64,
}

/// The part of a contact URI that identifies it: scheme, user and host:port, lowercased
/// (URI parameters ignored).
fn uri_key(u: &str) -> String {
    let u = u.trim().trim_start_matches('<');
    let end = u.find([';', '?', '>']).unwrap_or(u.len());
    u[..end].to_ascii_lowercase()
}

impl Bindings {
    /// `user`'s live bindings, expired ones dropped first.
    fn of_user(&mut self, user: &str, now: Instant) -> Option<&mut Vec<Entry>> {
        let entries = self.by_user.get_mut(user)?;
        entries.retain(|e| e.until > now);
        if entries.is_empty() {
            self.by_user.remove(user);
            return None;
        }
        self.by_user.get_mut(user)
    }

    /// Adds or refreshes `user`'s binding for `contact`, now over `connection`.
    pub fn upsert(&mut self, user: &str, contact: &str, params: String, connection: u64, expires: u32, now: Instant) {
        self.remove(user, contact);
        let until = now + Duration::from_secs(u64::from(expires));
        self.next_seq += 1;
        let entry = Entry { seq: self.next_seq, contact: contact.into(), params, connection, until };
        self.by_user.entry(user.into()).or_default().push(entry);
        self.by_contact.entry(uri_key(contact)).or_default().insert(user.into());
        self.by_connection.entry(connection).or_default().insert(user.into());
    }

    /// Removes `user`'s binding for `contact`.
    pub fn remove(&mut self, user: &str, contact: &str) {
        let key = uri_key(contact);
        if let Some(entries) = self.by_user.get_mut(user) {
            entries.retain(|e| uri_key(&e.contact) != key);
            if entries.is_empty() {
                self.by_user.remove(user);
            }
        }
    }

    /// Removes every binding of `user`.
    pub fn remove_user(&mut self, user: &str) {
        self.by_user.remove(user);
    }

    /// Drops the bindings of a closed connection.
    pub fn connection_closed(&mut self, connection: u64) {
        for user in self.by_connection.remove(&connection).unwrap_or_default() {
            if let Some(entries) = self.by_user.get_mut(&user) {
                entries.retain(|e| e.connection != connection);
                if entries.is_empty() {
                    self.by_user.remove(&user);
                }
            }
        }
    }

    /// The Contact header values of `user`'s bindings with their remaining lifetimes.
    pub fn contacts_of(&mut self, user: &str, now: Instant) -> Vec<String> {
        self.of_user(user, now).map_or_else(Vec::new, |entries| {
            entries.iter().map(|e| format!("<{}>{};expires={}", e.contact, e.params, remaining(e.until, now))).collect()
        })
    }

    /// The newest binding of `user`: (contact, connection).
    pub fn lookup_user(&mut self, user: &str, now: Instant) -> Option<(String, u64)> {
        let entries = self.of_user(user, now)?;
        entries.iter().max_by_key(|e| e.seq).map(|e| (e.contact.clone(), e.connection))
    }

    /// The newest binding whose contact is `uri`: (contact, connection).
    pub fn lookup_contact(&mut self, uri: &str, now: Instant) -> Option<(String, u64)> {
        let key = uri_key(uri);
        let users: Vec<String> = self.by_contact.get(&key)?.iter().cloned().collect();
        let mut best: Option<(u64, String, u64)> = None;
        let mut stale = Vec::new();
        for user in users {
            let found = self.of_user(&user, now).and_then(|entries| {
                entries.iter().filter(|e| uri_key(&e.contact) == key).max_by_key(|e| e.seq).cloned()
            });
            match found {
                Some(e) if best.as_ref().is_none_or(|b| e.seq > b.0) => best = Some((e.seq, e.contact, e.connection)),
                Some(_) => {}
                None => stale.push(user),
            }
        }
        if let Some(set) = self.by_contact.get_mut(&key) {
            for user in &stale {
                set.remove(user);
            }
            if set.is_empty() {
                self.by_contact.remove(&key);
            }
        }
        best.map(|(_, contact, connection)| (contact, connection))
    }

    /// A snapshot for the handle, oldest first.
    pub fn list(&mut self, now: Instant) -> Vec<Binding> {
        let mut all: Vec<(u64, Binding)> = Vec::new();
        for (user, entries) in &mut self.by_user {
            entries.retain(|e| e.until > now);
            all.extend(entries.iter().map(|e| {
                let b = Binding {
                    user: user.clone(),
                    contact: e.contact.clone(),
                    connection: e.connection,
                    expires: remaining(e.until, now),
                };
                (e.seq, b)
            }));
        }
        self.by_user.retain(|_, entries| !entries.is_empty());
        all.sort_by_key(|(seq, _)| *seq);
        all.into_iter().map(|(_, b)| b).collect()
    }
}

fn remaining(until: Instant, now: Instant) -> u32 {
    u32::try_from(until.saturating_duration_since(now).as_secs()).unwrap_or(u32::MAX)
}
