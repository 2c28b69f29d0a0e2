//! Properties of the core's server location (`sip_ptls::dns`): the SRV order (priorities,
//! every record once, the weights' shares), the Happy Eyeballs order and race, the cache's
//! expiry and stale bounds, and a locator that ends, without panicking, whatever the
//! resolver answers.

use std::collections::BTreeMap;
use std::net::IpAddr;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};
use sip_ptls::dns::eyeballs::{self, Attempt, HappyEyeballs, Outcome, Step};
use sip_ptls::dns::records::{
    AddressRecord, Answer, HostAddress, NaptrRecord, Negative, NegativeKind, QueryType, SrvRecord,
};
use sip_ptls::dns::{
    AnyAnswer, CachePolicy, DnsCache, DnsQueryType, LocatorConfig, LookupFailed, Query, ServerLocator, ServerSpec,
    srv_order,
};
use sip_ptls::rng::{Rng, Seed};
use sip_ptls::time::{Duration, Instant};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/dns_locate_properties.txt",
        ))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// SRV order

/// Records with distinct, valid targets and non-zero ports: every one is usable.
fn usable_srv_records() -> impl Strategy<Value = Vec<SrvRecord>> {
    prop::collection::vec((0u16..4, any::<u16>(), 1u16..=u16::MAX), 0..12).prop_map(|fields| {
        fields
            .into_iter()
            .enumerate()
            .map(|(i, (priority, weight, port))| SrvRecord {
                priority,
                weight,
                port,
                target: format!("t{i}.example.com"),
                ttl: 300,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn srv_order_ascends_by_priority_and_keeps_every_record_once(
        records in usable_srv_records(),
        seed in any::<u64>(),
    ) {
        let ordered = srv_order::order(&records, &mut Rng::new(Seed::from(seed)));
        for pair in ordered.windows(2) {
            prop_assert!(pair[0].priority <= pair[1].priority, "{:?} before {:?}", pair[0], pair[1]);
        }
        let mut given = records.clone();
        let mut got = ordered.clone();
        given.sort_by(|a, b| a.target.cmp(&b.target));
        got.sort_by(|a, b| a.target.cmp(&b.target));
        prop_assert_eq!(got, given);
    }

    /// Junk among the records (port 0, the root target, duplicates, names in other case)
    /// never makes a record appear twice, and never lets an unusable one through.
    #[test]
    fn srv_order_never_repeats_or_lets_junk_through(
        records in prop::collection::vec(
            (0u16..3, 0u16..5, prop_oneof![Just(0u16), Just(5061u16), Just(5062u16)],
             prop::sample::select(vec!["a.example.com", "A.EXAMPLE.COM.", "b.example.com", ".", "", "c d.example.com"])),
            0..10,
        ),
        seed in any::<u64>(),
    ) {
        let records: Vec<SrvRecord> = records
            .into_iter()
            .map(|(priority, weight, port, target)| SrvRecord { priority, weight, port, target: target.into(), ttl: 60 })
            .collect();
        let ordered = srv_order::order(&records, &mut Rng::new(Seed::from(seed)));
        let mut keys: Vec<(String, u16)> = ordered.iter().map(|r| (r.target.clone(), r.port)).collect();
        prop_assert!(ordered.iter().all(|r| r.port != 0 && (r.target == "a.example.com" || r.target == "b.example.com")));
        let n = keys.len();
        keys.sort();
        keys.dedup();
        prop_assert_eq!(keys.len(), n, "a record twice: {:?}", ordered);
        for pair in ordered.windows(2) {
            prop_assert!(pair[0].priority <= pair[1].priority);
        }
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// Over many seeds, each record of one priority comes first about as often as its
    /// weight over the sum. RFC 2782's draw in `0..=sum` favours the first record by at
    /// most 1/(sum+1), under 0.05 with weights of 10 or more; 4000 draws keep the noise
    /// under 0.03 (four standard deviations); the bound of 0.08 holds both, and fails
    /// when weights are ignored (a uniform choice, or the server's order).
    #[test]
    fn weights_share_the_first_place(weights in prop::collection::vec(10u16..=1000, 2..=4)) {
        let records: Vec<SrvRecord> = weights
            .iter()
            .enumerate()
            .map(|(i, w)| SrvRecord { priority: 0, weight: *w, port: 5061, target: format!("t{i}.example.com"), ttl: 60 })
            .collect();
        let runs = 4000u32;
        let mut firsts: BTreeMap<String, u32> = BTreeMap::new();
        for seed in 0..u64::from(runs) {
            let ordered = srv_order::order(&records, &mut Rng::new(Seed::from(seed ^ 0x5eed_0000)));
            *firsts.entry(ordered[0].target.clone()).or_default() += 1;
        }
        let sum: f64 = weights.iter().map(|w| f64::from(*w)).sum();
        for record in &records {
            let share = f64::from(firsts.get(&record.target).copied().unwrap_or(0)) / f64::from(runs);
            let expected = f64::from(record.weight) / sum;
            prop_assert!((share - expected).abs() < 0.08, "{}: {share:.3} first, weight share {expected:.3}", record.target);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Happy Eyeballs

fn address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u8..6).prop_map(|n| IpAddr::from([192, 0, 2, n])),
        (0u16..6).prop_map(|n| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, n])),
    ]
}

/// What an address does when tried: connect or fail after some milliseconds, or stay
/// silent.
#[derive(Clone, Copy, Debug)]
enum Fate {
    Connects(u64),
    Fails(u64),
    Silent,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![(0u64..6000).prop_map(Fate::Connects), (0u64..6000).prop_map(Fate::Fails), Just(Fate::Silent)]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn the_address_order_interleaves_families_from_ipv6(addrs in prop::collection::vec(address(), 0..12)) {
        let ordered = eyeballs::interleave(&addrs, 1);
        let mut distinct = addrs.clone();
        distinct.sort();
        distinct.dedup();
        let mut got = ordered.clone();
        got.sort();
        prop_assert_eq!(got, distinct, "every address once");
        let v6: Vec<IpAddr> = addrs.iter().copied().filter(IpAddr::is_ipv6).collect();
        let v4: Vec<IpAddr> = addrs.iter().copied().filter(IpAddr::is_ipv4).collect();
        if !v6.is_empty() {
            prop_assert!(ordered[0].is_ipv6(), "IPv6 first: {:?}", ordered);
        }
        // Families alternate while both have addresses left.
        let (n6, n4) = (ordered.iter().filter(|a| a.is_ipv6()).count(), ordered.iter().filter(|a| a.is_ipv4()).count());
        let alternating = 2 * n6.min(n4);
        for pair in ordered[..alternating.min(ordered.len())].windows(2) {
            prop_assert_ne!(pair[0].is_ipv6(), pair[1].is_ipv6(), "{:?}", ordered);
        }
        // The resolver's order within a family.
        let first_seen = |family: &[IpAddr]| {
            let mut seen: Vec<IpAddr> = Vec::new();
            for a in family {
                if !seen.contains(a) {
                    seen.push(*a);
                }
            }
            seen
        };
        let got6: Vec<IpAddr> = ordered.iter().copied().filter(IpAddr::is_ipv6).collect();
        let got4: Vec<IpAddr> = ordered.iter().copied().filter(IpAddr::is_ipv4).collect();
        prop_assert_eq!(got6, first_seen(&v6));
        prop_assert_eq!(got4, first_seen(&v4));
    }

    /// The race run on a virtual clock: attempts start in order, never before the head
    /// start of the previous one unless every earlier attempt has ended; the first to
    /// connect wins and every other connection is abandoned; the race always ends.
    #[test]
    fn the_race_ends_with_one_connection_or_none(
        fates in prop::collection::vec(fate(), 0..6),
        delay in 0u64..3000,
        timeout in 1u64..8000,
    ) {
        let config = HappyEyeballs {
            attempt_delay: Duration::from_millis(delay),
            attempt_timeout: Duration::from_millis(timeout),
            first_family_count: 1,
        };
        let mut now = Instant::ZERO;
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut ended = false;
        for _ in 0..100 {
            let decision = eyeballs::decide(&config, fates.len(), &attempts, now);
            for i in &decision.timed_out {
                prop_assert_eq!(attempts[*i].outcome, Outcome::Running);
                prop_assert!(attempts[*i].started + config.attempt_timeout <= now);
                attempts[*i].outcome = Outcome::Failed(attempts[*i].started + config.attempt_timeout);
            }
            match decision.step {
                Step::Start { index } => {
                    prop_assert_eq!(index, attempts.len());
                    if let Some(last) = attempts.last() {
                        let all_ended = attempts.iter().all(|a| matches!(a.outcome, Outcome::Failed(_)));
                        prop_assert!(all_ended || now >= last.started + config.delay(), "started too early at {}", now);
                    }
                    attempts.push(Attempt { started: now, outcome: Outcome::Running });
                }
                Step::Wait { until } => {
                    prop_assert!(until > now, "waiting for the past");
                    // The next fate of a running attempt, if it comes before `until`.
                    let next_fate = attempts
                        .iter()
                        .zip(&fates)
                        .filter(|(a, _)| a.outcome == Outcome::Running)
                        .filter_map(|(a, f)| match f {
                            Fate::Connects(ms) | Fate::Fails(ms) => Some(a.started + Duration::from_millis(*ms)),
                            Fate::Silent => None,
                        })
                        .filter(|t| *t > now)
                        .min();
                    now = next_fate.map_or(until, |t| t.min(until));
                }
                Step::Won { winner, abandon } => {
                    prop_assert!(matches!(attempts[winner].outcome, Outcome::Connected(_)));
                    let others: Vec<usize> = (0..attempts.len())
                        .filter(|i| *i != winner && !matches!(attempts[*i].outcome, Outcome::Failed(_)))
                        .collect();
                    prop_assert_eq!(abandon, others, "every other connection closed");
                    ended = true;
                    break;
                }
                Step::Exhausted => {
                    prop_assert_eq!(attempts.len(), fates.len(), "every address tried");
                    prop_assert!(attempts.iter().all(|a| matches!(a.outcome, Outcome::Failed(_))));
                    ended = true;
                    break;
                }
            }
            // What happened by now, before each attempt's own deadline.
            for (attempt, fate) in attempts.iter_mut().zip(&fates) {
                let deadline = attempt.started + config.attempt_timeout;
                if attempt.outcome != Outcome::Running {
                    continue;
                }
                match fate {
                    Fate::Connects(ms) | Fate::Fails(ms) => {
                        let at = attempt.started + Duration::from_millis(*ms);
                        if at <= now && at < deadline {
                            attempt.outcome =
                                if matches!(fate, Fate::Connects(_)) { Outcome::Connected(at) } else { Outcome::Failed(at) };
                        }
                    }
                    Fate::Silent => {}
                }
            }
        }
        prop_assert!(ended, "the race did not end: {:?}", attempts);
    }
}

// ---------------------------------------------------------------------------------------
// Cache

#[derive(Clone, Debug)]
enum CacheOp {
    /// An answer to name `n`: records with this TTL, or a negative answer with this SOA
    /// TTL (`None`: no SOA).
    Insert(usize, Result<u32, Option<u32>>),
    Advance(u64),
    /// To name `n`'s expiry, moved by some milliseconds (the boundaries matter).
    ToExpiry(usize, i64),
    /// To name `n`'s stale bound, moved by some milliseconds.
    ToStaleBound(usize, i64),
    Fresh(usize),
    AfterFailure(usize),
    Purge,
}

fn cache_op() -> impl Strategy<Value = CacheOp> {
    let ttl = prop_oneof![0u32..120, Just(u32::MAX), any::<u32>()];
    prop_oneof![
        (0usize..6, prop_oneof![ttl.clone().prop_map(Ok), prop::option::of(ttl).prop_map(Err)])
            .prop_map(|(n, a)| CacheOp::Insert(n, a)),
        prop_oneof![0u64..200_000, 0u64..200_000_000].prop_map(CacheOp::Advance),
        (0usize..6, prop_oneof![-1i64..=1, -40_000i64..40_000]).prop_map(|(n, d)| CacheOp::ToExpiry(n, d)),
        (0usize..6, prop_oneof![-1i64..=1, -40_000i64..40_000]).prop_map(|(n, d)| CacheOp::ToStaleBound(n, d)),
        (0usize..6).prop_map(CacheOp::Fresh),
        (0usize..6).prop_map(CacheOp::AfterFailure),
        Just(CacheOp::Purge),
    ]
}

fn answer_for(kind: &Result<u32, Option<u32>>) -> AnyAnswer {
    match kind {
        Ok(ttl) => AnyAnswer::Addresses(Answer::Records {
            records: vec![AddressRecord { addr: IpAddr::from([192, 0, 2, 1]), ttl: *ttl }],
            additional: vec![],
        }),
        Err(ttl) => AnyAnswer::Addresses(Answer::Negative(Negative { kind: NegativeKind::NoData, ttl: *ttl })),
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Against a model of what was inserted when: nothing is given past its expiry except
    /// after a failure, nothing stale past the stale bound, every expiry within the TTL
    /// bounds, and, when nothing had to be evicted, everything kept is given back.
    #[test]
    fn the_cache_keeps_its_expiry_and_stale_bounds(
        ops in prop::collection::vec(cache_op(), 1..60),
        capacity in 0usize..8,
    ) {
        let policy = CachePolicy { capacity, ..CachePolicy::default() };
        let mut cache = DnsCache::new(policy);
        let no_eviction = capacity >= 6;
        // name -> (answer, expiry)
        let mut model: BTreeMap<usize, (AnyAnswer, Instant)> = BTreeMap::new();
        let mut now = Instant::from_millis(1_000_000);
        let query = |n: usize| Query::new(format!("n{n}.example.com"), QueryType::A);
        for op in ops {
            match op {
                CacheOp::Insert(n, kind) => {
                    let answer = answer_for(&kind);
                    let expires = cache.insert(now, &query(n), answer.clone());
                    match (kind, expires) {
                        (Err(None), got) => {
                            prop_assert_eq!(got, None, "a negative answer without SOA is not kept");
                            model.remove(&n);
                        }
                        (_, None) if capacity == 0 => {}
                        (kind, Some(expires)) => {
                            let lifetime = expires.saturating_since(now);
                            let max = if kind.is_ok() { policy.max_ttl } else { policy.max_negative_ttl };
                            prop_assert!(lifetime >= policy.min_ttl && lifetime <= max, "lifetime {}", lifetime);
                            model.insert(n, (answer, expires));
                        }
                        (kind, None) => prop_assert!(false, "{:?} not kept", kind),
                    }
                    prop_assert!(cache.len() <= capacity);
                }
                CacheOp::Advance(ms) => now = now + Duration::from_millis(ms),
                CacheOp::ToExpiry(n, delta) | CacheOp::ToStaleBound(n, delta) => {
                    // Time never goes back: a target in the past leaves `now` as it is.
                    if let Some((_, expires)) = model.get(&n) {
                        let base = match op {
                            CacheOp::ToStaleBound(..) => *expires + policy.max_stale,
                            _ => *expires,
                        };
                        let target = Instant::from_millis(base.as_millis().saturating_add_signed(delta));
                        now = now.max(target);
                    }
                }
                CacheOp::Purge => cache.purge(now),
                CacheOp::Fresh(n) => {
                    let got = cache.fresh(now, &query(n));
                    let expected = model.get(&n).filter(|(_, e)| now < *e);
                    match (&got, expected) {
                        (Some(served), Some((answer, expires))) => {
                            prop_assert_eq!(&served.answer, answer);
                            prop_assert_eq!(served.until, *expires);
                            prop_assert!(!served.stale);
                        }
                        (Some(served), None) => prop_assert!(false, "given past its expiry: {:?}", served),
                        (None, Some(_)) => prop_assert!(!no_eviction, "a fresh answer lost"),
                        (None, None) => {}
                    }
                }
                CacheOp::AfterFailure(n) => {
                    let got = cache.after_failure(now, &query(n));
                    let expected = model.get(&n).filter(|(_, e)| now < *e + policy.max_stale);
                    match (&got, expected) {
                        (Some(served), Some((answer, expires))) => {
                            prop_assert_eq!(&served.answer, answer);
                            prop_assert_eq!(served.stale, now >= *expires);
                            prop_assert!(served.until > now);
                            prop_assert!(served.until <= *expires + policy.max_stale, "stale past the bound");
                            if served.stale {
                                prop_assert!(served.until <= now + policy.stale_answer_ttl);
                            }
                        }
                        (Some(served), None) => prop_assert!(false, "stale beyond the bound: {:?}", served),
                        (None, Some(_)) => prop_assert!(!no_eviction, "a kept answer lost"),
                        (None, None) => {}
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The locator

/// One answer the resolver may give, whatever was asked: it is fitted to the query.
#[derive(Clone, Debug)]
enum Reply {
    Fail,
    Negative(Option<u32>),
    /// An answer of the wrong type.
    WrongType,
    Addresses(Vec<AddressRecord>),
    Srv(Vec<SrvRecord>, Vec<HostAddress>),
    Naptr(Vec<NaptrRecord>),
}

const NAMES: &[&str] =
    &["a.example.com", "B.example.com.", "example.com", ".", "", "x y", "_sips._tcp.example.com", "c.example.net"];

fn host_name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES).prop_map(String::from)
}

fn reply() -> impl Strategy<Value = Reply> {
    let ttl = prop_oneof![0u32..600, Just(u32::MAX)];
    let addr = (address(), ttl.clone()).prop_map(|(addr, ttl)| AddressRecord { addr, ttl });
    let srv = (0u16..3, 0u16..100, prop_oneof![Just(0u16), Just(5061u16), any::<u16>()], host_name(), ttl.clone())
        .prop_map(|(priority, weight, port, target, ttl)| SrvRecord { priority, weight, port, target, ttl });
    let extra = (host_name(), address(), ttl.clone()).prop_map(|(host, addr, ttl)| HostAddress { host, addr, ttl });
    let naptr = (
        0u16..3,
        0u16..3,
        prop::sample::select(vec!["s", "S", "a", ""]),
        prop::sample::select(vec!["SIPS+D2T", "SIP+D2T", "SIP+D2U", "sips+d2t"]),
        prop_oneof![host_name(), Just("_sips._tcp.example.com".to_string())],
    )
        .prop_map(|(order, preference, flags, services, replacement)| NaptrRecord {
            order,
            preference,
            flags: flags.into(),
            services: services.into(),
            regexp: String::new(),
            replacement,
            ttl: 300,
        });
    prop_oneof![
        Just(Reply::Fail),
        prop::option::of(ttl).prop_map(Reply::Negative),
        Just(Reply::WrongType),
        prop::collection::vec(addr, 0..4).prop_map(Reply::Addresses),
        (prop::collection::vec(srv, 0..5), prop::collection::vec(extra, 0..4)).prop_map(|(s, e)| Reply::Srv(s, e)),
        prop::collection::vec(naptr, 0..4).prop_map(Reply::Naptr),
    ]
}

/// `reply` as the answer to a query of `qtype`: records of another type than the query's
/// become an answer with no record of the query's type (still an answer).
fn fitted(reply: &Reply, qtype: QueryType) -> Result<AnyAnswer, LookupFailed> {
    let negative = |ttl| Negative { kind: NegativeKind::NxDomain, ttl };
    let empty_for = |qtype| match qtype {
        QueryType::A | QueryType::Aaaa => AnyAnswer::Addresses(Answer::Records { records: vec![], additional: vec![] }),
        QueryType::Srv => AnyAnswer::Srv(Answer::Records { records: vec![], additional: vec![] }),
        QueryType::Naptr => AnyAnswer::Naptr(Answer::Records { records: vec![], additional: vec![] }),
    };
    Ok(match (reply, qtype) {
        (Reply::Fail, _) => return Err(LookupFailed::new("no reply")),
        (Reply::Negative(ttl), QueryType::A | QueryType::Aaaa) => {
            AnyAnswer::Addresses(Answer::Negative(negative(*ttl)))
        }
        (Reply::Negative(ttl), QueryType::Srv) => AnyAnswer::Srv(Answer::Negative(negative(*ttl))),
        (Reply::Negative(ttl), QueryType::Naptr) => AnyAnswer::Naptr(Answer::Negative(negative(*ttl))),
        (Reply::WrongType, QueryType::Srv) => empty_for(QueryType::Naptr),
        (Reply::WrongType, _) => empty_for(QueryType::Srv),
        (Reply::Addresses(records), QueryType::A | QueryType::Aaaa) => {
            AnyAnswer::Addresses(Answer::Records { records: records.clone(), additional: vec![] })
        }
        (Reply::Srv(records, additional), QueryType::Srv) => {
            AnyAnswer::Srv(Answer::Records { records: records.clone(), additional: additional.clone() })
        }
        (Reply::Naptr(records), QueryType::Naptr) => {
            AnyAnswer::Naptr(Answer::Records { records: records.clone(), additional: vec![] })
        }
        (_, qtype) => empty_for(qtype),
    })
}

fn spec() -> impl Strategy<Value = ServerSpec> {
    let host = prop_oneof![
        4 => Just("example.com".to_string()),
        1 => host_name(),
        1 => Just("192.0.2.1".to_string()),
        1 => Just("[2001:db8::1]".to_string()),
    ];
    let query_type = prop::sample::select(vec![DnsQueryType::AOnly, DnsQueryType::SrvAndA, DnsQueryType::NaptrSrvAndA]);
    (host, prop_oneof![3 => Just(0u16), 1 => any::<u16>()], query_type)
        .prop_map(|(host, port, query_type)| ServerSpec::new(host, port, query_type))
}

/// The most answers a location can need with the default bounds: one NAPTR, the SRV
/// names (four from NAPTR and the default), A and AAAA for eight targets.
const MOST_ANSWERS: usize = 1 + 5 + 2 * 8;

proptest! {
    #![proptest_config(config(512))]

    /// Whatever the resolver answers, and in whatever order the answers come, the locator
    /// never panics, asks each query once, ends after a bounded number of answers, and
    /// gives targets that can be used: addresses, a port, the configured name for TLS.
    #[test]
    fn the_locator_always_ends(
        spec in spec(),
        replies in prop::collection::vec(reply(), MOST_ANSWERS),
        order in prop::collection::vec(any::<prop::sample::Index>(), MOST_ANSWERS),
        strays in prop::collection::vec((host_name(), reply()), 0..3),
        seed in any::<u64>(),
        later in prop_oneof![Just(0u64), 1u64..200_000_000],
    ) {
        let mut cache = DnsCache::default();
        let mut rng = Rng::new(Seed::from(seed));
        // Twice on the same cache: the second time from cached, expired or stale answers.
        for (round, now) in [Instant::from_millis(0), Instant::from_millis(later)].into_iter().enumerate() {
            let mut locator = ServerLocator::with_config(spec.clone(), LocatorConfig::default());
            locator.start(now, &mut cache, &mut rng);
            let mut out: Vec<Query> = Vec::new();
            let mut asked: Vec<Query> = Vec::new();
            let mut answered = 0usize;
            // An answer to a query that is not outstanding changes nothing at all.
            for (name, reply) in &strays {
                let stray = Query::new(name.clone(), QueryType::A);
                let (before, cached, outstanding) = (locator.clone(), cache.clone(), locator.outstanding());
                locator.handle_answer(now, &stray, fitted(reply, QueryType::A), &mut cache, &mut rng);
                if locator.outstanding() == outstanding {
                    prop_assert_eq!(&locator, &before);
                    prop_assert_eq!(&cache, &cached);
                }
            }
            while locator.result().is_none() {
                while let Some(query) = locator.poll_query() {
                    prop_assert!(!asked.contains(&query), "{} asked twice", query);
                    asked.push(query.clone());
                    out.push(query);
                }
                prop_assert!(!out.is_empty(), "no result and nothing asked");
                prop_assert!(answered < MOST_ANSWERS, "more than {} answers needed", MOST_ANSWERS);
                let query = out.remove(order[answered].index(out.len()));
                let reply = &replies[(answered + round) % replies.len()];
                locator.handle_answer(now, &query, fitted(reply, query.qtype), &mut cache, &mut rng);
                answered += 1;
                // The same query answered again, otherwise: ignored.
                let (before, cached) = (locator.clone(), cache.clone());
                let again = &replies[(answered + 7) % replies.len()];
                locator.handle_answer(now, &query, fitted(again, query.qtype), &mut cache, &mut rng);
                prop_assert_eq!(&locator, &before, "a second answer to {} was taken", query);
                prop_assert_eq!(&cache, &cached);
            }
            prop_assert_eq!(locator.outstanding(), 0);
            prop_assert_eq!(locator.poll_query(), None);
            if let Some(Ok(targets)) = locator.result() {
                prop_assert!(!targets.is_empty() && targets.len() <= 8);
                for target in targets {
                    prop_assert!(!target.addrs.is_empty(), "{:?}", target);
                    prop_assert!(target.port != 0);
                    prop_assert_eq!(&target.tls_name, &spec.tls_name());
                }
            }
            if let Some(expires) = locator.expires() {
                prop_assert!(expires >= now);
            }
        }
    }
}
