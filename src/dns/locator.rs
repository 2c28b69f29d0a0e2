//! Locating one server (RFC 3263 §4) as a small state machine: from its
//! [`ServerSpec`] to an ordered list of [`Target`]s, each with its addresses in Happy
//! Eyeballs order. It asks the shell for lookups ([`ServerLocator::poll_query`]), takes
//! their answers or failures ([`ServerLocator::handle_answer`]), consults and fills the
//! [`DnsCache`] and draws the SRV order from the core's generator. It performs nothing.
//!
//! The steps: NAPTR (query type 2) for the SRV names; SRV on each name in turn until one
//! has usable records; A and AAAA on every target at once (skipping a family whose
//! addresses came in the SRV answer's additional section); A and AAAA on the name itself
//! with port 5061 when no SRV record exists, or at once for query type 0 or a name with
//! a port. Every step asks a bounded number of queries, so a locator always ends.

use core::net::IpAddr;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::cache::DnsCache;
use super::error::LocateError;
use super::eyeballs;
use super::lookup::{AnyAnswer, LookupFailed, Query};
use super::name;
use super::naptr;
use super::records::{Answer, HostAddress, QueryType};
use super::spec::{Plan, SIPS_PORT, ServerSpec, srv_name};
use super::srv_order;
use crate::rng::Rng;
use crate::time::Instant;

/// One place to connect to: a host and port from SRV (or the configuration), with its
/// addresses in the order to try them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The SRV target, or the configured name or address when there was no SRV step.
    pub host: String,
    /// The port to connect to.
    pub port: u16,
    /// The host's addresses in Happy Eyeballs order (IPv6 first, families alternating);
    /// never empty.
    pub addrs: Vec<IpAddr>,
    /// The name the server certificate must carry: always the configured host, never
    /// the SRV target (RFC 5922).
    pub tls_name: String,
}

/// The bounds of one location.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocatorConfig {
    /// The most SRV targets kept, in SRV order (8): more would only lengthen a failover
    /// that the back-off ends anyway, and each costs two queries.
    pub max_targets: usize,
    /// The most SRV names taken from NAPTR records (4); the default SRV name comes after
    /// them.
    pub max_naptr_names: usize,
    /// Happy Eyeballs' "First Address Family Count" (1).
    pub first_family_count: usize,
}

impl Default for LocatorConfig {
    fn default() -> LocatorConfig {
        LocatorConfig { max_targets: 8, max_naptr_names: 4, first_family_count: 1 }
    }
}

/// What one address family of one host came to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Slot {
    /// Not known yet: asked, or about to be.
    Waiting,
    /// The addresses (none after a negative answer).
    Found(Vec<IpAddr>),
    /// No server answered: the reason.
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct HostSlots {
    v6: Slot,
    v4: Slot,
}

/// The SRV step: the names to ask in turn, and what the names asked so far said.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SrvStep {
    domain: String,
    candidates: Vec<String>,
    at: usize,
    /// The first SRV lookup that failed.
    failure: Option<LocateError>,
    /// The first SRV name whose records offered nothing usable.
    not_offered: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum State {
    /// Not started.
    Idle,
    /// Waiting for the NAPTR records of `domain`.
    Naptr { domain: String },
    /// Asking the SRV names in turn.
    Srv(SrvStep),
    /// Waiting for the addresses of the targets (host, port), in their final order.
    Addresses { targets: Vec<(String, u16)>, hosts: BTreeMap<String, HostSlots> },
    /// The result is in.
    Done,
}

/// Locates one server: [`start`](Self::start), then until [`result`](Self::result) is
/// `Some`: drain [`poll_query`](Self::poll_query), perform each lookup, and give each
/// answer or failure to [`handle_answer`](Self::handle_answer), in any order. Answers
/// found in the cache are used at once, so `start` itself may already give the result.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerLocator {
    spec: ServerSpec,
    config: LocatorConfig,
    state: State,
    /// Queries not yet handed to the shell.
    queue: VecDeque<Query>,
    /// Queries queued or handed out, not yet answered.
    outstanding: BTreeSet<Query>,
    /// The earliest instant until which an answer used may be used.
    expires: Option<Instant>,
    result: Option<Result<Vec<Target>, LocateError>>,
}

impl ServerLocator {
    /// A locator for `spec` with the default bounds.
    pub fn new(spec: ServerSpec) -> ServerLocator {
        ServerLocator::with_config(spec, LocatorConfig::default())
    }

    /// A locator for `spec` with these bounds.
    pub fn with_config(spec: ServerSpec, config: LocatorConfig) -> ServerLocator {
        ServerLocator {
            spec,
            config,
            state: State::Idle,
            queue: VecDeque::new(),
            outstanding: BTreeSet::new(),
            expires: None,
            result: None,
        }
    }

    /// The server being located.
    pub fn spec(&self) -> &ServerSpec {
        &self.spec
    }

    /// Begins: the first queries, or the result at once for an address literal, an
    /// invalid host or answers all in the cache. A second call does nothing.
    pub fn start(&mut self, now: Instant, cache: &mut DnsCache, rng: &mut Rng) {
        if self.state != State::Idle {
            return;
        }
        match self.spec.plan() {
            None => self.finish(Err(LocateError::InvalidName { name: self.spec.host.clone() })),
            Some(Plan::Literal { addr, port }) => {
                let target = Target { host: addr.to_string(), port, addrs: vec![addr], tls_name: self.spec.tls_name() };
                self.finish(Ok(vec![target]));
            }
            Some(Plan::Addresses { host, port }) => self.enter_addresses(now, vec![(host, port)], &[], cache, rng),
            Some(Plan::Service { domain, naptr: true }) => {
                let query = Query::new(domain.clone(), QueryType::Naptr);
                self.state = State::Naptr { domain };
                self.ask(now, query, cache, rng);
            }
            Some(Plan::Service { domain, naptr: false }) => {
                let candidates = vec![srv_name(&domain)];
                self.enter_srv(now, domain, candidates, cache, rng);
            }
        }
    }

    /// The next lookup the shell must perform, if any. Several may be out at once (A and
    /// AAAA of every target); each is given once.
    pub fn poll_query(&mut self) -> Option<Query> {
        self.queue.pop_front()
    }

    /// The answer to `query`, or the failure of its lookup, at `now`. A query not
    /// outstanding (never asked, answered already, or after the result) is ignored. An
    /// answer of another type than the query's counts as a failure. A failure is
    /// replaced by the cached answer when one is kept, stale or not (RFC 8767).
    pub fn handle_answer(
        &mut self,
        now: Instant,
        query: &Query,
        outcome: Result<AnyAnswer, LookupFailed>,
        cache: &mut DnsCache,
        rng: &mut Rng,
    ) {
        if !self.outstanding.remove(query) {
            return;
        }
        self.queue.retain(|q| q != query);
        let outcome = match outcome {
            Ok(answer) if answer.fits(query.qtype) => {
                let until = cache.insert(now, query, answer.clone());
                self.used_until(until.unwrap_or(now));
                Ok(answer)
            }
            Ok(_) => Err(LookupFailed::new(format!("the answer to {query} was of another type"))),
            Err(failed) => Err(failed),
        };
        let outcome = match outcome {
            Ok(answer) => Ok(answer),
            Err(failed) => match cache.after_failure(now, query) {
                Some(served) => {
                    self.used_until(served.until);
                    Ok(served.answer)
                }
                None => Err(failed.reason),
            },
        };
        self.use_answer(now, query, outcome, cache, rng);
    }

    /// The targets in the order to try them, or why there are none; `None` until the
    /// location ends.
    pub fn result(&self) -> Option<&Result<Vec<Target>, LocateError>> {
        self.result.as_ref()
    }

    /// When to locate again: the earliest expiry of the answers used (a stale answer's
    /// short lifetime, or `now` for an answer that could not be cached). `None` when no
    /// DNS answer was used (an address literal) or before the result.
    pub fn expires(&self) -> Option<Instant> {
        if self.result.is_some() { self.expires } else { None }
    }

    /// How many queries are waiting for an answer (handed out or not).
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    fn used_until(&mut self, until: Instant) {
        self.expires = Some(self.expires.map_or(until, |e| e.min(until)));
    }

    /// Asks `query`: from the cache when a fresh answer is kept, else from the shell.
    fn ask(&mut self, now: Instant, query: Query, cache: &mut DnsCache, rng: &mut Rng) {
        if self.outstanding.contains(&query) {
            return;
        }
        match cache.fresh(now, &query) {
            Some(served) => {
                self.used_until(served.until);
                self.use_answer(now, &query, Ok(served.answer), cache, rng);
            }
            None => {
                self.outstanding.insert(query.clone());
                self.queue.push_back(query);
            }
        }
    }

    fn finish(&mut self, result: Result<Vec<Target>, LocateError>) {
        self.state = State::Done;
        self.queue.clear();
        self.outstanding.clear();
        self.result = Some(result);
    }

    /// Takes what came for `query` (an answer, or the reason of a failure) in the current
    /// step; anything that is not the current step's is dropped.
    fn use_answer(
        &mut self,
        now: Instant,
        query: &Query,
        outcome: Result<AnyAnswer, String>,
        cache: &mut DnsCache,
        rng: &mut Rng,
    ) {
        match &mut self.state {
            State::Idle | State::Done => {}
            State::Naptr { domain } => {
                if query.qtype != QueryType::Naptr || query.name != *domain {
                    return;
                }
                let domain = domain.clone();
                let mut candidates = match &outcome {
                    Ok(AnyAnswer::Naptr(Answer::Records { records, .. })) => {
                        naptr::srv_names(records, self.config.max_naptr_names)
                    }
                    // Negative, failed or no usable record: the default SRV name (Aastra).
                    _ => Vec::new(),
                };
                let default = srv_name(&domain);
                if !candidates.contains(&default) {
                    candidates.push(default);
                }
                self.enter_srv(now, domain, candidates, cache, rng);
            }
            State::Srv(step) => {
                if query.qtype != QueryType::Srv || step.candidates.get(step.at) != Some(&query.name) {
                    return;
                }
                match outcome {
                    Ok(AnyAnswer::Srv(Answer::Records { records, additional })) => {
                        let mut ordered = srv_order::order(&records, rng);
                        if !ordered.is_empty() {
                            ordered.truncate(self.config.max_targets.max(1));
                            let targets = ordered.into_iter().map(|r| (r.target, r.port)).collect();
                            self.enter_addresses(now, targets, &additional, cache, rng);
                            return;
                        }
                        step.not_offered.get_or_insert_with(|| query.name.clone());
                    }
                    // NXDOMAIN or NODATA: the next name.
                    Ok(_) => {}
                    Err(reason) => {
                        step.failure.get_or_insert_with(|| LocateError::LookupFailed {
                            name: query.name.clone(),
                            qtype: QueryType::Srv,
                            reason,
                        });
                    }
                }
                step.at += 1;
                self.next_srv_name(now, cache, rng);
            }
            State::Addresses { hosts, .. } => {
                let Some(slots) = hosts.get_mut(&query.name) else { return };
                let (slot, v6) = match query.qtype {
                    QueryType::Aaaa => (&mut slots.v6, true),
                    QueryType::A => (&mut slots.v4, false),
                    QueryType::Srv | QueryType::Naptr => return,
                };
                *slot = match outcome {
                    Ok(AnyAnswer::Addresses(answer)) => {
                        Slot::Found(answer.records().iter().map(|r| r.addr).filter(|a| a.is_ipv6() == v6).collect())
                    }
                    Ok(_) => Slot::Failed(format!("the answer to {query} was of another type")),
                    Err(reason) => Slot::Failed(reason),
                };
                self.finish_if_addressed();
            }
        }
    }

    fn enter_srv(
        &mut self,
        now: Instant,
        domain: String,
        candidates: Vec<String>,
        cache: &mut DnsCache,
        rng: &mut Rng,
    ) {
        self.state = State::Srv(SrvStep { domain, candidates, at: 0, failure: None, not_offered: None });
        self.next_srv_name(now, cache, rng);
    }

    /// Asks the current SRV name, or ends the SRV step when every name was asked: with
    /// the first failure, else "not offered", else A and AAAA on the domain (RFC 3263
    /// §4.2: no SRV record, the name itself on port 5061).
    fn next_srv_name(&mut self, now: Instant, cache: &mut DnsCache, rng: &mut Rng) {
        let State::Srv(step) = &self.state else { return };
        if let Some(name) = step.candidates.get(step.at) {
            let query = Query::new(name.clone(), QueryType::Srv);
            self.ask(now, query, cache, rng);
        } else if let Some(failure) = step.failure.clone() {
            self.finish(Err(failure));
        } else if let Some(name) = step.not_offered.clone() {
            self.finish(Err(LocateError::NotOffered { name }));
        } else {
            let domain = step.domain.clone();
            self.enter_addresses(now, vec![(domain, SIPS_PORT)], &[], cache, rng);
        }
    }

    /// The address step for `targets` (in their final order): a family whose addresses
    /// came in `additional` is not asked; the others are, A and AAAA of every host at
    /// once.
    fn enter_addresses(
        &mut self,
        now: Instant,
        targets: Vec<(String, u16)>,
        additional: &[HostAddress],
        cache: &mut DnsCache,
        rng: &mut Rng,
    ) {
        let mut hosts: BTreeMap<String, HostSlots> = BTreeMap::new();
        for (host, _) in &targets {
            let given: Vec<IpAddr> =
                additional.iter().filter(|a| name::normalize(&a.host) == *host).map(|a| a.addr).collect();
            let slot = |v6: bool| {
                let family: Vec<IpAddr> = given.iter().copied().filter(|a| a.is_ipv6() == v6).collect();
                if family.is_empty() { Slot::Waiting } else { Slot::Found(family) }
            };
            hosts.entry(host.clone()).or_insert_with(|| HostSlots { v6: slot(true), v4: slot(false) });
        }
        let to_ask: Vec<Query> = hosts
            .iter()
            .flat_map(|(host, slots)| {
                let aaaa = (slots.v6 == Slot::Waiting).then(|| Query::new(host.clone(), QueryType::Aaaa));
                let a = (slots.v4 == Slot::Waiting).then(|| Query::new(host.clone(), QueryType::A));
                aaaa.into_iter().chain(a)
            })
            .collect();
        self.state = State::Addresses { targets, hosts };
        for query in to_ask {
            self.ask(now, query, cache, rng);
        }
        self.finish_if_addressed();
    }

    /// Ends the address step once every family of every host is known: the targets with
    /// at least one address, in order; or, with none, the first failed lookup, else "no
    /// addresses".
    fn finish_if_addressed(&mut self) {
        let State::Addresses { targets, hosts } = &self.state else { return };
        if hosts.values().any(|s| s.v6 == Slot::Waiting || s.v4 == Slot::Waiting) {
            return;
        }
        let found = |slot: &Slot| match slot {
            Slot::Found(addrs) => addrs.clone(),
            Slot::Waiting | Slot::Failed(_) => Vec::new(),
        };
        let mut usable = Vec::new();
        let mut failure = None;
        for (host, port) in targets {
            let Some(slots) = hosts.get(host) else { continue };
            let mut addrs = found(&slots.v6);
            addrs.extend(found(&slots.v4));
            for (slot, qtype) in [(&slots.v4, QueryType::A), (&slots.v6, QueryType::Aaaa)] {
                if let (Slot::Failed(reason), None) = (slot, &failure) {
                    failure = Some(LocateError::LookupFailed { name: host.clone(), qtype, reason: reason.clone() });
                }
            }
            if !addrs.is_empty() {
                usable.push(Target {
                    host: host.clone(),
                    port: *port,
                    addrs: eyeballs::interleave(&addrs, self.config.first_family_count),
                    tls_name: self.spec.tls_name(),
                });
            }
        }
        let first = targets.first().map(|(host, _)| host.clone()).unwrap_or_default();
        let result = match (usable.is_empty(), failure) {
            (false, _) => Ok(usable),
            (true, Some(failure)) => Err(failure),
            (true, None) => Err(LocateError::NoAddresses { name: first }),
        };
        self.finish(result);
    }
}
