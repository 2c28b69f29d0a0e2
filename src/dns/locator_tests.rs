//! The locator against a zone of the test's own: which queries it asks, in which steps,
//! and the targets it gives.

use std::collections::BTreeMap;

use super::cache::DnsCache;
use super::error::LocateError;
use super::locator::{LocatorConfig, ServerLocator, Target};
use super::lookup::{AnyAnswer, LookupFailed, Query};
use super::records::{AddressRecord, Answer, HostAddress, NaptrRecord, Negative, NegativeKind, QueryType, SrvRecord};
use super::spec::{DnsQueryType, ServerSpec};
use crate::rng::{Rng, Seed};
use crate::time::Instant;

/// What the shell would answer; a query not in the zone gets NXDOMAIN with a 300 s SOA.
#[derive(Default)]
struct Zone {
    answers: BTreeMap<Query, Result<AnyAnswer, LookupFailed>>,
}

impl Zone {
    fn set(&mut self, name: &str, qtype: QueryType, outcome: Result<AnyAnswer, LookupFailed>) -> &mut Zone {
        self.answers.insert(Query::new(name, qtype), outcome);
        self
    }

    fn addrs(&mut self, name: &str, qtype: QueryType, addrs: &[&str], ttl: u32) -> &mut Zone {
        let records = addrs.iter().map(|a| AddressRecord { addr: a.parse().unwrap(), ttl }).collect();
        self.set(name, qtype, Ok(AnyAnswer::Addresses(Answer::Records { records, additional: vec![] })))
    }

    fn srv(&mut self, name: &str, records: Vec<SrvRecord>, additional: Vec<HostAddress>) -> &mut Zone {
        self.set(name, QueryType::Srv, Ok(AnyAnswer::Srv(Answer::Records { records, additional })))
    }

    fn answer(&self, query: &Query) -> Result<AnyAnswer, LookupFailed> {
        self.answers.get(query).cloned().unwrap_or(Ok(nxdomain(query.qtype)))
    }
}

fn nxdomain(qtype: QueryType) -> AnyAnswer {
    let negative = Answer::Negative(Negative { kind: NegativeKind::NxDomain, ttl: Some(300) });
    match qtype {
        QueryType::A | QueryType::Aaaa => AnyAnswer::Addresses(negative),
        QueryType::Srv => AnyAnswer::Srv(Answer::Negative(Negative { kind: NegativeKind::NxDomain, ttl: Some(300) })),
        QueryType::Naptr => {
            AnyAnswer::Naptr(Answer::Negative(Negative { kind: NegativeKind::NxDomain, ttl: Some(300) }))
        }
    }
}

fn srv(priority: u16, weight: u16, port: u16, target: &str, ttl: u32) -> SrvRecord {
    SrvRecord { priority, weight, port, target: target.into(), ttl }
}

fn extra(host: &str, addr: &str) -> HostAddress {
    HostAddress { host: host.into(), addr: addr.parse().unwrap(), ttl: 600 }
}

fn naptr(order: u16, preference: u16, services: &str, replacement: &str) -> NaptrRecord {
    NaptrRecord {
        order,
        preference,
        flags: "s".into(),
        services: services.into(),
        regexp: String::new(),
        replacement: replacement.into(),
        ttl: 600,
    }
}

fn at(s: u64) -> Instant {
    Instant::from_millis(s * 1000)
}

/// A run: the queries asked, in rounds (all those out at once form a round).
struct Run {
    locator: ServerLocator,
    rounds: Vec<Vec<Query>>,
}

impl Run {
    fn result(&self) -> &Result<Vec<Target>, LocateError> {
        self.locator.result().expect("the locator ended")
    }

    fn targets(&self) -> Vec<(String, u16, Vec<String>)> {
        let targets = self.result().as_ref().expect("targets");
        targets.iter().map(|t| (t.host.clone(), t.port, t.addrs.iter().map(|a| a.to_string()).collect())).collect()
    }

    fn asked(&self) -> Vec<String> {
        self.rounds.iter().flatten().map(|q| q.to_string()).collect()
    }
}

fn locate_with(spec: ServerSpec, zone: &Zone, cache: &mut DnsCache, now: Instant, seed: u64) -> Run {
    let mut rng = Rng::new(Seed::from(seed));
    let mut locator = ServerLocator::with_config(spec, LocatorConfig::default());
    locator.start(now, cache, &mut rng);
    let mut rounds = Vec::new();
    for _ in 0..20 {
        let round: Vec<Query> = std::iter::from_fn(|| locator.poll_query()).collect();
        if round.is_empty() {
            break;
        }
        for query in &round {
            locator.handle_answer(now, query, zone.answer(query), cache, &mut rng);
        }
        rounds.push(round);
    }
    assert_eq!(locator.outstanding(), 0);
    Run { locator, rounds }
}

fn locate(host: &str, port: u16, qt: DnsQueryType, zone: &Zone) -> Run {
    locate_with(ServerSpec::new(host, port, qt), zone, &mut DnsCache::default(), at(0), 1)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn an_address_literal_needs_no_lookup() {
    let run = locate("192.0.2.10", 0, DnsQueryType::SrvAndA, &Zone::default());
    assert!(run.rounds.is_empty());
    assert_eq!(run.targets(), [("192.0.2.10".to_string(), 5061, strings(&["192.0.2.10"]))]);
    assert_eq!(run.result().as_ref().unwrap()[0].tls_name, "192.0.2.10");
    assert_eq!(run.locator.expires(), None);
}

#[test]
fn an_invalid_host_is_an_error_without_lookup() {
    let run = locate("sip example.com", 0, DnsQueryType::SrvAndA, &Zone::default());
    assert!(run.rounds.is_empty());
    assert_eq!(run.result(), &Err(LocateError::InvalidName { name: "sip example.com".into() }));
}

#[test]
fn srv_targets_in_priority_order_with_the_domain_as_tls_name() {
    let mut zone = Zone::default();
    zone.srv(
        "_sips._tcp.example.com",
        vec![srv(20, 0, 5062, "backup.example.com", 600), srv(10, 0, 5061, "main.example.com", 600)],
        vec![],
    )
    .addrs("main.example.com", QueryType::A, &["192.0.2.1", "192.0.2.2"], 600)
    .addrs("main.example.com", QueryType::Aaaa, &["2001:db8::1"], 600)
    .addrs("backup.example.com", QueryType::A, &["192.0.2.9"], 600);
    let run = locate("Example.COM", 0, DnsQueryType::SrvAndA, &zone);
    assert_eq!(run.rounds[0], [Query::new("_sips._tcp.example.com", QueryType::Srv)]);
    // Both targets' A and AAAA at once, in one round.
    assert_eq!(run.rounds.len(), 2);
    assert_eq!(run.rounds[1].len(), 4);
    assert_eq!(
        run.targets(),
        [
            ("main.example.com".to_string(), 5061, strings(&["2001:db8::1", "192.0.2.1", "192.0.2.2"])),
            ("backup.example.com".to_string(), 5062, strings(&["192.0.2.9"])),
        ]
    );
    assert!(run.result().as_ref().unwrap().iter().all(|t| t.tls_name == "example.com"));
}

#[test]
fn addresses_of_the_additional_section_save_their_queries() {
    let mut zone = Zone::default();
    zone.srv(
        "_sips._tcp.example.com",
        vec![srv(10, 0, 5061, "a.example.com", 600), srv(20, 0, 5061, "b.example.com", 600)],
        vec![
            extra("A.example.com.", "192.0.2.1"),
            extra("a.example.com", "2001:db8::1"),
            extra("b.example.com", "192.0.2.2"),
        ],
    )
    .addrs("b.example.com", QueryType::Aaaa, &["2001:db8::2"], 600);
    let run = locate("example.com", 0, DnsQueryType::SrvAndA, &zone);
    // a: both families given, nothing asked; b: only its AAAA asked.
    assert_eq!(run.asked(), ["_sips._tcp.example.com SRV", "b.example.com AAAA"]);
    assert_eq!(
        run.targets(),
        [
            ("a.example.com".to_string(), 5061, strings(&["2001:db8::1", "192.0.2.1"])),
            ("b.example.com".to_string(), 5061, strings(&["2001:db8::2", "192.0.2.2"])),
        ]
    );
}

#[test]
fn without_srv_records_the_name_itself_on_5061() {
    let mut zone = Zone::default();
    zone.addrs("example.com", QueryType::A, &["192.0.2.5"], 600);
    let run = locate("example.com", 0, DnsQueryType::SrvAndA, &zone);
    assert_eq!(run.asked(), ["_sips._tcp.example.com SRV", "example.com AAAA", "example.com A"]);
    assert_eq!(run.targets(), [("example.com".to_string(), 5061, strings(&["192.0.2.5"]))]);
}

#[test]
fn a_lone_root_target_ends_without_address_lookups() {
    let mut zone = Zone::default();
    zone.srv("_sips._tcp.example.com", vec![srv(0, 0, 5061, ".", 600)], vec![]);
    let run = locate("example.com", 0, DnsQueryType::SrvAndA, &zone);
    assert_eq!(run.asked(), ["_sips._tcp.example.com SRV"]);
    assert_eq!(run.result(), &Err(LocateError::NotOffered { name: "_sips._tcp.example.com".into() }));
}

#[test]
fn a_name_with_a_port_or_query_type_0_asks_addresses_only() {
    let mut zone = Zone::default();
    zone.addrs("sip.example.com", QueryType::A, &["192.0.2.5"], 600);
    for (port, qt, expected) in
        [(5070, DnsQueryType::NaptrSrvAndA, 5070), (5070, DnsQueryType::SrvAndA, 5070), (0, DnsQueryType::AOnly, 5061)]
    {
        let run = locate("sip.example.com", port, qt, &zone);
        assert_eq!(run.rounds.len(), 1, "A and AAAA at once");
        assert_eq!(run.asked(), ["sip.example.com AAAA", "sip.example.com A"]);
        assert_eq!(run.targets(), [("sip.example.com".to_string(), expected, strings(&["192.0.2.5"]))]);
    }
}

#[test]
fn naptr_leads_to_the_sips_srv_name_only() {
    let mut zone = Zone::default();
    let records = vec![
        naptr(10, 10, "SIP+D2T", "_sip._tcp.example.com"),
        naptr(10, 20, "SIP+D2U", "_sip._udp.example.com"),
        naptr(20, 10, "SIPS+D2T", "_sips._tcp.tls.example.com"),
    ];
    zone.set("example.com", QueryType::Naptr, Ok(AnyAnswer::Naptr(Answer::Records { records, additional: vec![] })))
        .srv("_sips._tcp.tls.example.com", vec![srv(0, 0, 5061, "sip.example.com", 600)], vec![])
        .addrs("sip.example.com", QueryType::A, &["192.0.2.7"], 600);
    let run = locate("example.com", 0, DnsQueryType::NaptrSrvAndA, &zone);
    assert_eq!(
        run.asked(),
        ["example.com NAPTR", "_sips._tcp.tls.example.com SRV", "sip.example.com AAAA", "sip.example.com A"]
    );
    assert_eq!(run.targets(), [("sip.example.com".to_string(), 5061, strings(&["192.0.2.7"]))]);
}

#[test]
fn naptr_without_a_usable_record_falls_back_to_the_default_srv_name() {
    let mut zone = Zone::default();
    let records = vec![naptr(10, 10, "SIP+D2T", "_sip._tcp.example.com")];
    zone.set("example.com", QueryType::Naptr, Ok(AnyAnswer::Naptr(Answer::Records { records, additional: vec![] })))
        .srv(
            "_sips._tcp.example.com",
            vec![srv(0, 0, 5061, "sip.example.com", 600)],
            vec![extra("sip.example.com", "192.0.2.7")],
        );
    let run = locate("example.com", 0, DnsQueryType::NaptrSrvAndA, &zone);
    assert_eq!(run.asked(), ["example.com NAPTR", "_sips._tcp.example.com SRV", "sip.example.com AAAA"]);
    // Negative and failed NAPTR lookups do the same.
    let mut negative = Zone::default();
    negative.srv(
        "_sips._tcp.example.com",
        vec![srv(0, 0, 5061, "sip.example.com", 600)],
        vec![extra("sip.example.com", "192.0.2.7")],
    );
    let run = locate("example.com", 0, DnsQueryType::NaptrSrvAndA, &negative);
    assert_eq!(run.asked(), ["example.com NAPTR", "_sips._tcp.example.com SRV", "sip.example.com AAAA"]);
    negative.set("example.com", QueryType::Naptr, Err(LookupFailed::new("timeout")));
    let run = locate("example.com", 0, DnsQueryType::NaptrSrvAndA, &negative);
    assert_eq!(run.asked(), ["example.com NAPTR", "_sips._tcp.example.com SRV", "sip.example.com AAAA"]);
    assert!(run.result().is_ok());
}

#[test]
fn a_naptr_name_without_srv_records_is_followed_by_the_default_one() {
    let mut zone = Zone::default();
    let records = vec![naptr(10, 10, "SIPS+D2T", "_sips._tcp.gone.example.com")];
    zone.set("example.com", QueryType::Naptr, Ok(AnyAnswer::Naptr(Answer::Records { records, additional: vec![] })))
        .srv(
            "_sips._tcp.example.com",
            vec![srv(0, 0, 5061, "sip.example.com", 600)],
            vec![extra("sip.example.com", "2001:db8::7")],
        );
    let run = locate("example.com", 0, DnsQueryType::NaptrSrvAndA, &zone);
    assert_eq!(
        run.asked(),
        ["example.com NAPTR", "_sips._tcp.gone.example.com SRV", "_sips._tcp.example.com SRV", "sip.example.com A"]
    );
    assert_eq!(run.targets(), [("sip.example.com".to_string(), 5061, strings(&["2001:db8::7"]))]);
}

#[test]
fn a_failed_srv_lookup_is_an_error_naming_it() {
    let mut zone = Zone::default();
    zone.set("_sips._tcp.example.com", QueryType::Srv, Err(LookupFailed::new("no reply within 5000 ms")));
    let run = locate("example.com", 0, DnsQueryType::SrvAndA, &zone);
    assert_eq!(
        run.result(),
        &Err(LocateError::LookupFailed {
            name: "_sips._tcp.example.com".into(),
            qtype: QueryType::Srv,
            reason: "no reply within 5000 ms".into(),
        })
    );
    // No guess at the name's own addresses when SRV could not be asked.
    assert_eq!(run.asked(), ["_sips._tcp.example.com SRV"]);
}

#[test]
fn a_failure_is_replaced_by_the_stale_answer() {
    let mut zone = Zone::default();
    zone.srv("_sips._tcp.example.com", vec![srv(0, 0, 5061, "sip.example.com", 60)], vec![]).addrs(
        "sip.example.com",
        QueryType::A,
        &["192.0.2.7"],
        60,
    );
    let mut cache = DnsCache::default();
    let spec = ServerSpec::new("example.com", 0, DnsQueryType::SrvAndA);
    let first = locate_with(spec.clone(), &zone, &mut cache, at(0), 1);
    assert_eq!(first.locator.expires(), Some(at(60)));
    // An hour later every server is silent: the expired answers are served stale.
    let silent =
        Zone { answers: zone.answers.keys().map(|q| (q.clone(), Err(LookupFailed::new("silence")))).collect() };
    let mut silent = silent;
    silent.set("sip.example.com", QueryType::Aaaa, Err(LookupFailed::new("silence")));
    let later = locate_with(spec.clone(), &silent, &mut cache, at(3600), 1);
    assert_eq!(later.targets(), first.targets());
    assert_eq!(later.asked(), first.asked(), "asked again, then served stale");
    assert_eq!(later.locator.expires(), Some(at(3630)));
    // Two days later the stale bound has passed: the failure shows.
    let too_late = locate_with(spec, &silent, &mut cache, at(2 * 86_400), 1);
    assert!(matches!(too_late.result(), Err(LocateError::LookupFailed { qtype: QueryType::Srv, .. })));
}

#[test]
fn fresh_cached_answers_need_no_query() {
    let mut zone = Zone::default();
    zone.srv("_sips._tcp.example.com", vec![srv(0, 0, 5061, "sip.example.com", 600)], vec![])
        .addrs("sip.example.com", QueryType::A, &["192.0.2.7"], 300)
        .addrs("sip.example.com", QueryType::Aaaa, &["2001:db8::7"], 900);
    let mut cache = DnsCache::default();
    let spec = ServerSpec::new("example.com", 0, DnsQueryType::SrvAndA);
    let first = locate_with(spec.clone(), &zone, &mut cache, at(0), 1);
    assert_eq!(first.locator.expires(), Some(at(300)), "the shortest TTL used");
    let again = locate_with(spec.clone(), &Zone::default(), &mut cache, at(299), 1);
    assert!(again.rounds.is_empty());
    assert_eq!(again.targets(), first.targets());
    assert_eq!(again.locator.expires(), Some(at(300)));
    // At 300 s the A answer has expired and only it is asked again.
    let partly = locate_with(spec, &zone, &mut cache, at(300), 1);
    assert_eq!(partly.asked(), ["sip.example.com A"]);
}

#[test]
fn targets_without_addresses_are_left_out_and_failures_named() {
    let mut zone = Zone::default();
    zone.srv(
        "_sips._tcp.example.com",
        vec![srv(0, 0, 5061, "dead.example.com", 600), srv(1, 0, 5061, "live.example.com", 600)],
        vec![],
    )
    .set("dead.example.com", QueryType::A, Err(LookupFailed::new("refused")))
    .set("dead.example.com", QueryType::Aaaa, Err(LookupFailed::new("refused")))
    .addrs("live.example.com", QueryType::A, &["192.0.2.8"], 600);
    let run = locate("example.com", 0, DnsQueryType::SrvAndA, &zone);
    assert_eq!(run.targets(), [("live.example.com".to_string(), 5061, strings(&["192.0.2.8"]))]);

    zone.set("live.example.com", QueryType::A, Ok(nxdomain(QueryType::A)));
    let run = locate("example.com", 0, DnsQueryType::SrvAndA, &zone);
    assert_eq!(
        run.result(),
        &Err(LocateError::LookupFailed {
            name: "dead.example.com".into(),
            qtype: QueryType::A,
            reason: "refused".into()
        })
    );

    let mut empty = Zone::default();
    empty.srv("_sips._tcp.example.com", vec![srv(0, 0, 5061, "none.example.com", 600)], vec![]);
    let run = locate("example.com", 0, DnsQueryType::SrvAndA, &empty);
    assert_eq!(run.result(), &Err(LocateError::NoAddresses { name: "none.example.com".into() }));
}

#[test]
fn answers_nobody_asked_for_or_of_another_type_change_nothing_bad() {
    let mut cache = DnsCache::default();
    let mut rng = Rng::new(Seed::from(1));
    let mut locator = ServerLocator::new(ServerSpec::new("sip.example.com", 5061, DnsQueryType::SrvAndA));
    locator.start(at(0), &mut cache, &mut rng);
    let queries: Vec<Query> = std::iter::from_fn(|| locator.poll_query()).collect();
    assert_eq!(queries.len(), 2);
    // Not asked: ignored.
    let stray = Query::new("other.example.com", QueryType::A);
    locator.handle_answer(at(0), &stray, Ok(nxdomain(QueryType::A)), &mut cache, &mut rng);
    assert_eq!(locator.outstanding(), 2);
    assert!(cache.is_empty());
    // An SRV answer to an AAAA query: a failure of that query, not data.
    locator.handle_answer(at(0), &queries[0], Ok(nxdomain(QueryType::Srv)), &mut cache, &mut rng);
    assert_eq!(locator.outstanding(), 1);
    // The same answer again: ignored.
    locator.handle_answer(at(0), &queries[0], Ok(nxdomain(QueryType::Aaaa)), &mut cache, &mut rng);
    assert_eq!(locator.outstanding(), 1);
    assert!(locator.result().is_none());
    let a = AnyAnswer::Addresses(Answer::Records {
        // An IPv6 address in an A answer is not taken.
        records: vec![
            AddressRecord { addr: "192.0.2.1".parse().unwrap(), ttl: 60 },
            AddressRecord { addr: "2001:db8::1".parse().unwrap(), ttl: 60 },
        ],
        additional: vec![],
    });
    locator.handle_answer(at(0), &queries[1], Ok(a), &mut cache, &mut rng);
    let targets = locator.result().cloned().unwrap().unwrap();
    assert_eq!(targets[0].addrs, ["192.0.2.1".parse::<std::net::IpAddr>().unwrap()]);
    // After the result: nothing more happens.
    locator.handle_answer(at(0), &queries[1], Ok(nxdomain(QueryType::A)), &mut cache, &mut rng);
    assert_eq!(locator.result().cloned().unwrap().unwrap(), targets);
    // A second start does nothing.
    locator.start(at(1), &mut cache, &mut rng);
    assert_eq!(locator.poll_query(), None);
}

#[test]
fn at_most_max_targets_are_kept_and_asked() {
    let records: Vec<SrvRecord> = (0..20).map(|i| srv(i, 0, 5061, &format!("t{i}.example.com"), 600)).collect();
    let mut zone = Zone::default();
    zone.srv("_sips._tcp.example.com", records, vec![]);
    for i in 0..20 {
        zone.addrs(&format!("t{i}.example.com"), QueryType::A, &["192.0.2.1"], 600);
    }
    let run = locate("example.com", 0, DnsQueryType::SrvAndA, &zone);
    assert_eq!(run.rounds[1].len(), 16);
    let hosts: Vec<String> = run.targets().into_iter().map(|t| t.0).collect();
    assert_eq!(hosts, (0..8).map(|i| format!("t{i}.example.com")).collect::<Vec<_>>());
}

#[test]
fn the_weighted_order_comes_from_the_seed() {
    let records = vec![srv(0, 50, 5061, "a.example.com", 600), srv(0, 50, 5061, "b.example.com", 600)];
    let mut zone = Zone::default();
    zone.srv(
        "_sips._tcp.example.com",
        records,
        vec![extra("a.example.com", "192.0.2.1"), extra("b.example.com", "192.0.2.2")],
    );
    let spec = ServerSpec::new("example.com", 0, DnsQueryType::SrvAndA);
    let first_host = |seed| {
        let run = locate_with(spec.clone(), &zone, &mut DnsCache::default(), at(0), seed);
        run.targets()[0].0.clone()
    };
    assert_eq!(first_host(3), first_host(3));
    let firsts: std::collections::BTreeSet<String> = (0..20).map(first_host).collect();
    assert_eq!(firsts.len(), 2, "both targets come first for some seed");
}
