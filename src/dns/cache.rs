//! The core's DNS cache: answers kept for their TTL within bounds, negative answers for
//! the TTL of their SOA (RFC 2308), and an expired answer served again, for a short
//! while and a bounded time, when no server answers (RFC 8767). Time is passed in; the
//! cache reads no clock.

// Ordered, not hashed: the cache is then `Hash`, and its eviction depends on no hasher's
// seed.
use std::collections::BTreeMap;

use super::lookup::{AnyAnswer, Query};
use crate::time::{Duration, Instant};

/// The bounds of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CachePolicy {
    /// The shortest time an answer is kept, whatever its TTL (5 s): a TTL of 0 would
    /// otherwise send every connection of per-call TLS, and every reconnection, to the
    /// DNS servers.
    pub min_ttl: Duration,
    /// The longest time an answer is kept, whatever its TTL (1 day): a phone runs for
    /// months, and a mistaken TTL of years must not pin an address that long.
    pub max_ttl: Duration,
    /// The longest time a negative answer is kept (1 hour, the low end of the one to
    /// three hours RFC 2308 §5 finds to work well): a name added after an NXDOMAIN is
    /// seen within the hour.
    pub max_negative_ttl: Duration,
    /// How long after its expiry an answer may still be served when no server answers
    /// (1 day, the low end of the one to three days RFC 8767 §5 suggests). Past that it
    /// is dropped.
    pub max_stale: Duration,
    /// How long an answer served stale is then used before it is asked again (30 s, the
    /// TTL RFC 8767 §4 gives stale answers).
    pub stale_answer_ttl: Duration,
    /// The most entries kept (128: a primary and a backup, each with a NAPTR, a few SRV
    /// names and A and AAAA for eight targets, fit twice). When full, the entry that
    /// expired first goes.
    pub capacity: usize,
}

impl Default for CachePolicy {
    fn default() -> CachePolicy {
        CachePolicy {
            min_ttl: Duration::from_secs(5),
            max_ttl: Duration::from_secs(86_400),
            max_negative_ttl: Duration::from_secs(3600),
            max_stale: Duration::from_secs(86_400),
            stale_answer_ttl: Duration::from_secs(30),
            capacity: 128,
        }
    }
}

/// An answer the cache gives back, and until when it may be used.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Served {
    /// The cached answer.
    pub answer: AnyAnswer,
    /// Until when to use it: its expiry when fresh; for a stale answer,
    /// [`CachePolicy::stale_answer_ttl`] from now, never past the stale bound.
    pub until: Instant,
    /// Whether it had expired (served after a failed lookup).
    pub stale: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Entry {
    answer: AnyAnswer,
    expires: Instant,
}

/// Answers by query (name and type).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DnsCache {
    policy: CachePolicy,
    entries: BTreeMap<Query, Entry>,
}

impl DnsCache {
    /// An empty cache with these bounds.
    pub fn new(policy: CachePolicy) -> DnsCache {
        DnsCache { policy, entries: BTreeMap::new() }
    }

    /// The bounds.
    pub fn policy(&self) -> &CachePolicy {
        &self.policy
    }

    /// How many answers are kept, stale ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How long `answer` is kept from now: its TTL within the bounds, or `None` when it
    /// is not kept (a negative answer without SOA, RFC 2308 §5; an answer without
    /// records; an answer of another type than the query's).
    pub fn lifetime(&self, query: &Query, answer: &AnyAnswer) -> Option<Duration> {
        if !answer.fits(query.qtype) {
            return None;
        }
        let ttl = Duration::from_secs(u64::from(answer.ttl()?));
        let max = if answer.negative().is_some() { self.policy.max_negative_ttl } else { self.policy.max_ttl };
        // `max` first, then the floor: a floor set above the cap wins.
        Some(ttl.min(max).max(self.policy.min_ttl))
    }

    /// Keeps the answer to `query` received at `now`, replacing any earlier one, and
    /// returns its expiry; `None` when it is not kept, and then an earlier answer to the
    /// same query is forgotten too, since the new one says it no longer holds.
    pub fn insert(&mut self, now: Instant, query: &Query, answer: AnyAnswer) -> Option<Instant> {
        let Some(lifetime) = self.lifetime(query, &answer) else {
            if answer.fits(query.qtype) {
                self.entries.remove(query);
            }
            return None;
        };
        let expires = now + lifetime;
        if !self.entries.contains_key(query) {
            self.make_room(now);
        }
        if self.policy.capacity == 0 {
            return None;
        }
        self.entries.insert(query.clone(), Entry { answer, expires });
        Some(expires)
    }

    /// The answer to `query` if it has not expired at `now`.
    pub fn fresh(&self, now: Instant, query: &Query) -> Option<Served> {
        let entry = self.entries.get(query)?;
        (now < entry.expires).then(|| Served { answer: entry.answer.clone(), until: entry.expires, stale: false })
    }

    /// The answer to `query` after a lookup of it failed at `now` (no server answered):
    /// a fresh one as [`fresh`](Self::fresh) gives it, or an expired one within
    /// [`CachePolicy::max_stale`] of its expiry, to be used for
    /// [`CachePolicy::stale_answer_ttl`] (RFC 8767). Never an answer further past its
    /// expiry, and never a stale one without a failed lookup (`fresh` gives none).
    pub fn after_failure(&self, now: Instant, query: &Query) -> Option<Served> {
        if let Some(fresh) = self.fresh(now, query) {
            return Some(fresh);
        }
        let entry = self.entries.get(query)?;
        let stale_limit = entry.expires + self.policy.max_stale;
        (now < stale_limit).then(|| Served {
            answer: entry.answer.clone(),
            until: (now + self.policy.stale_answer_ttl).min(stale_limit),
            stale: true,
        })
    }

    /// Forgets every answer past its stale bound at `now`.
    pub fn purge(&mut self, now: Instant) {
        let max_stale = self.policy.max_stale;
        self.entries.retain(|_, e| now < e.expires + max_stale);
    }

    /// Frees one place when the cache is full: what is past its stale bound first, then
    /// the entry that expires first (the first in key order among equals).
    fn make_room(&mut self, now: Instant) {
        if self.entries.len() < self.policy.capacity {
            return;
        }
        self.purge(now);
        while self.entries.len() >= self.policy.capacity.max(1) {
            let oldest = self.entries.iter().min_by_key(|(_, e)| e.expires).map(|(q, _)| q.clone());
            match oldest {
                Some(query) => self.entries.remove(&query),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::lookup::{AnyAnswer, Query};
    use crate::dns::records::{AddressRecord, Answer, Negative, NegativeKind, QueryType, SrvRecord};
    use crate::time::{Duration, Instant};

    fn at(s: u64) -> Instant {
        Instant::from_millis(s * 1000)
    }

    fn a(name: &str) -> Query {
        Query::new(name, QueryType::A)
    }

    fn addresses(ttl: u32) -> AnyAnswer {
        AnyAnswer::Addresses(Answer::Records {
            records: vec![AddressRecord { addr: "192.0.2.1".parse().unwrap(), ttl }],
            additional: vec![],
        })
    }

    fn negative(ttl: Option<u32>) -> AnyAnswer {
        AnyAnswer::Addresses(Answer::Negative(Negative { kind: NegativeKind::NxDomain, ttl }))
    }

    #[test]
    fn an_answer_is_fresh_for_its_ttl() {
        let mut cache = DnsCache::default();
        assert_eq!(cache.insert(at(100), &a("x"), addresses(60)), Some(at(160)));
        assert_eq!(cache.fresh(at(159), &a("x")).map(|s| (s.until, s.stale)), Some((at(160), false)));
        assert_eq!(cache.fresh(at(160), &a("x")), None);
        assert_eq!(cache.fresh(at(100), &Query::new("x", QueryType::Aaaa)), None);
    }

    #[test]
    fn ttls_are_held_within_the_bounds() {
        let mut cache = DnsCache::default();
        assert_eq!(cache.insert(at(0), &a("zero"), addresses(0)), Some(at(5)));
        assert_eq!(cache.insert(at(0), &a("huge"), addresses(u32::MAX)), Some(at(86_400)));
        assert_eq!(cache.insert(at(0), &a("neg"), negative(Some(u32::MAX))), Some(at(3600)));
        assert_eq!(cache.insert(at(0), &a("neg0"), negative(Some(0))), Some(at(5)));
        assert_eq!(cache.insert(at(0), &a("neg"), negative(Some(900))), Some(at(900)));
    }

    #[test]
    fn a_negative_answer_without_soa_is_not_kept_and_forgets_the_old_one() {
        let mut cache = DnsCache::default();
        cache.insert(at(0), &a("x"), addresses(600));
        assert_eq!(cache.insert(at(10), &a("x"), negative(None)), None);
        assert_eq!(cache.fresh(at(10), &a("x")), None);
        assert_eq!(cache.after_failure(at(10), &a("x")), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn an_answer_of_another_type_is_not_kept() {
        let mut cache = DnsCache::default();
        let srv = AnyAnswer::Srv(Answer::Records {
            records: vec![SrvRecord { priority: 0, weight: 0, port: 5061, target: "t".into(), ttl: 60 }],
            additional: vec![],
        });
        cache.insert(at(0), &a("x"), addresses(600));
        assert_eq!(cache.insert(at(0), &a("x"), srv), None);
        // The mismatch is the caller's fault, not news about the name: the old answer stays.
        assert!(cache.fresh(at(1), &a("x")).is_some());
    }

    #[test]
    fn an_expired_answer_is_served_stale_only_after_a_failure_and_within_the_bound() {
        let mut cache = DnsCache::default();
        cache.insert(at(0), &a("x"), addresses(60));
        // Fresh, a failure changes nothing.
        assert_eq!(cache.after_failure(at(30), &a("x")).map(|s| (s.until, s.stale)), Some((at(60), false)));
        // Expired: not fresh, but stale after a failure, for 30 s.
        assert_eq!(cache.fresh(at(61), &a("x")), None);
        assert_eq!(
            cache.after_failure(at(61), &a("x")),
            Some(Served { answer: addresses(60), until: at(91), stale: true })
        );
        // Near the bound (expiry + 1 day) the 30 s are cut at the bound.
        let limit = 60 + 86_400;
        assert_eq!(cache.after_failure(at(limit - 10), &a("x")).map(|s| s.until), Some(at(limit)));
        assert_eq!(cache.after_failure(at(limit), &a("x")), None);
    }

    #[test]
    fn purge_drops_what_is_past_the_stale_bound() {
        let mut cache = DnsCache::default();
        cache.insert(at(0), &a("short"), addresses(60));
        cache.insert(at(0), &a("long"), addresses(86_400));
        cache.purge(at(60 + 86_399));
        assert_eq!(cache.len(), 2);
        cache.purge(at(60 + 86_400));
        assert_eq!(cache.len(), 1);
        assert!(cache.after_failure(at(60 + 86_400), &a("long")).is_some());
    }

    #[test]
    fn a_full_cache_drops_the_entry_that_expires_first() {
        let policy = CachePolicy { capacity: 2, ..CachePolicy::default() };
        let mut cache = DnsCache::new(policy);
        cache.insert(at(0), &a("one"), addresses(300));
        cache.insert(at(0), &a("two"), addresses(100));
        // Replacing an entry needs no room.
        cache.insert(at(1), &a("one"), addresses(400));
        assert_eq!(cache.len(), 2);
        cache.insert(at(2), &a("three"), addresses(200));
        assert_eq!(cache.len(), 2);
        assert!(cache.fresh(at(2), &a("two")).is_none());
        assert!(cache.fresh(at(2), &a("one")).is_some() && cache.fresh(at(2), &a("three")).is_some());
        let mut none = DnsCache::new(CachePolicy { capacity: 0, ..CachePolicy::default() });
        assert_eq!(none.insert(at(0), &a("x"), addresses(60)), None);
        assert!(none.is_empty());
    }

    #[test]
    fn a_floor_above_the_cap_wins() {
        let policy =
            CachePolicy { min_ttl: Duration::from_secs(10), max_ttl: Duration::from_secs(5), ..Default::default() };
        let mut cache = DnsCache::new(policy);
        assert_eq!(cache.insert(at(0), &a("x"), addresses(60)), Some(at(10)));
    }
}
