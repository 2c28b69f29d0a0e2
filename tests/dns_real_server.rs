//! The two halves of DNS end to end against a real DNS server: the core's locator
//! (`sip_ptls::dns::ServerLocator`) decides what to ask, the runtime's resolver
//! (`sip_ptls::runtime::dns::Resolver`) asks Debian's dnsmasq on loopback
//! (`tests/common/dnsmasq.rs`), and the targets that come out are checked: SRV priority,
//! NAPTR services, the fallback to A and AAAA, a TTL running out, and the name the
//! certificate is checked against.
//!
//! The test plays the engine's part for one locator, so that each step can be checked: it
//! drains the locator's queries, performs each with the shell's `Lookups` (as the
//! driver does), and hands the answer back. `tests/runtime_dns_location.rs` runs the
//! whole phone against the same server.
//! The core's clock is the test's own; dnsmasq serves its records straight from its
//! configuration and needs no waiting.
#![cfg(feature = "runtime")]

#[path = "common/dnsmasq.rs"]
mod dnsmasq;
#[path = "common/watchdog.rs"]
mod watchdog;

use dnsmasq::{Dnsmasq, Record, Zone};
use futures_lite::future;
use sip_ptls::dns::{AnyAnswer, CachePolicy, DnsCache, DnsQueryType, LookupFailed, Query, ServerSpec, Target};
use sip_ptls::rng::{Rng, Seed};
use sip_ptls::runtime::dns::hosts::HostsTable;
use sip_ptls::runtime::dns::perform::Lookups;
use sip_ptls::runtime::dns::{QueryType, Resolver, ResolverConfig};
use sip_ptls::time::Instant;
use std::net::IpAddr;
use std::time::Duration;
use watchdog::Watchdog;

/// Every test here takes well under a second; one still running after this has hung.
const LIMIT: Duration = Duration::from_secs(60);

/// The configured domain of every test.
const DOMAIN: &str = "example.test";

fn watchdog(name: &'static str) -> Watchdog {
    watchdog::watchdog_with(name, LIMIT, dnsmasq::kill_all)
}

/// The core's DNS state (its cache and generator) and the shell's resolver, asking
/// dnsmasq: what the engine and the runtime will be once DNS is wired in.
struct Locating {
    resolver: Resolver,
    cache: DnsCache,
    rng: Rng,
}

/// What one location gave.
#[derive(Debug)]
struct Located {
    targets: Vec<Target>,
    /// The queries the resolver performed, in order, as `name TYPE`.
    asked: Vec<String>,
    /// When to locate again (the locator's `expires`).
    expires: Option<Instant>,
}

impl Locating {
    fn new(server: &Dnsmasq, seed: u64) -> Locating {
        Locating {
            resolver: Resolver::new(ResolverConfig::with_servers(vec![server.addr()])),
            cache: DnsCache::new(CachePolicy::default()),
            rng: Rng::new(Seed::from(seed)),
        }
    }

    /// Locates `spec` at `now`: every query the locator asks is performed, one after
    /// the other, until it has its result, which must be targets.
    fn locate(&mut self, spec: &ServerSpec, now: Instant) -> Located {
        let mut locator = sip_ptls::dns::ServerLocator::new(spec.clone());
        locator.start(now, &mut self.cache, &mut self.rng);
        let mut asked = Vec::new();
        while locator.result().is_none() {
            let query = locator.poll_query().expect("the locator waits for an answer without asking anything");
            let outcome = block_on(perform(&self.resolver, &query));
            asked.push(query.to_string());
            locator.handle_answer(now, &query, outcome, &mut self.cache, &mut self.rng);
        }
        assert_eq!(locator.poll_query(), None, "a query left after the result");
        match locator.result() {
            Some(Ok(targets)) => Located { targets: targets.clone(), asked, expires: locator.expires() },
            other => panic!("locating {spec:?} failed: {other:?}; queries: {asked:?}"),
        }
    }
}

/// Performs `query` as the driver does: the shell's `Lookups`, here with no hosts file,
/// so that every answer comes from the server.
async fn perform(resolver: &Resolver, query: &Query) -> Result<AnyAnswer, LookupFailed> {
    Lookups::new(HostsTable::default(), Some(resolver.clone())).perform(query).await
}

/// Runs a lookup on async-io's `block_on`, failing the test instead of hanging.
fn block_on<T>(lookup: impl Future<Output = T>) -> T {
    async_io::block_on(future::or(lookup, async {
        async_io::Timer::after(LIMIT).await;
        panic!("a lookup was still running after {LIMIT:?}");
    }))
}

fn at_secs(s: u64) -> Instant {
    Instant::from_millis(s * 1000)
}

/// A target as expected: `host:port` and its addresses in the order to try them, with
/// the configured domain as the certificate's name.
fn target(host: &str, port: u16, addrs: &[&str]) -> Target {
    Target {
        host: host.into(),
        port,
        addrs: addrs.iter().map(|a| a.parse::<IpAddr>().unwrap()).collect(),
        tls_name: DOMAIN.into(),
    }
}

/// The queries dnsmasq saw are exactly the ones the resolver performed: every answer
/// came from the server, over UDP, once.
fn assert_server_saw(server: &Dnsmasq, asked: &[String]) {
    assert_eq!(server.queries(), asked, "dnsmasq's log:\n{}", server.log());
}

/// Three SIP servers: sip1 at 127.0.0.1, sip2 at 127.0.0.2, sip3 at 127.0.0.3 and ::1.
fn hosts() -> Vec<Record> {
    vec![
        Record::address("sip1.example.test", "127.0.0.1"),
        Record::address("sip2.example.test", "127.0.0.2"),
        Record::address("sip3.example.test", "127.0.0.3"),
        Record::address("sip3.example.test", "::1"),
    ]
}

fn zone(ttl: u32, records: Vec<Record>) -> Zone {
    Zone::new(ttl, hosts().into_iter().chain(records).collect())
}

#[test]
fn srv_priority_is_followed_and_each_target_comes_with_its_addresses() {
    let _w = watchdog("srv priority");
    // Written out of priority order, so that neither the file's order nor its reverse
    // (dnsmasq's) is the priority order.
    let server = Dnsmasq::start(&zone(
        300,
        vec![
            Record::srv("_sips._tcp.example.test", 20, 10, 5062, "sip2.example.test"),
            Record::srv("_sips._tcp.example.test", 10, 10, 5061, "sip1.example.test"),
            Record::srv("_sips._tcp.example.test", 30, 10, 5063, "sip3.example.test"),
        ],
    ));
    let served = block_on(perform(
        &Resolver::new(ResolverConfig::with_servers(vec![server.addr()])),
        &Query::new("_sips._tcp.example.test", QueryType::Srv),
    ));
    let Ok(AnyAnswer::Srv(answer)) = served else { panic!("{served:?}") };
    let priorities: Vec<u16> = answer.records().iter().map(|r| r.priority).collect();
    assert!(!priorities.is_sorted(), "dnsmasq served the SRV records in priority order already: {priorities:?}");

    let spec = ServerSpec::new(DOMAIN, 0, DnsQueryType::SrvAndA);
    let expected = [
        target("sip1.example.test", 5061, &["127.0.0.1"]),
        target("sip2.example.test", 5062, &["127.0.0.2"]),
        // IPv6 first (RFC 8305).
        target("sip3.example.test", 5063, &["::1", "127.0.0.3"]),
    ];
    let mut all_asked = vec!["_sips._tcp.example.test SRV".to_owned()];
    // Priority is no draw: every seed gives the same order.
    for seed in 0..8 {
        let located = Locating::new(&server, seed).locate(&spec, at_secs(0));
        assert_eq!(located.targets, expected, "seed {seed}");
        // The SRV answer's additional section gave every IPv4 address and sip3's IPv6
        // one; only the other AAAA records are asked (sip1's and sip2's: none).
        let mut asked = located.asked.clone();
        asked[1..].sort();
        assert_eq!(
            asked,
            ["_sips._tcp.example.test SRV", "sip1.example.test AAAA", "sip2.example.test AAAA"],
            "seed {seed}"
        );
        all_asked.extend(located.asked);
    }
    assert_server_saw(&server, &all_asked);
}

#[test]
fn naptr_for_sips_over_tcp_leads_to_its_srv_name_and_other_services_are_ignored() {
    let _w = watchdog("naptr");
    let records = |with_sips: bool| {
        let mut records = vec![
            // Order 10, before the SIPS one: followed, it would lead to UDP on sip1.
            Record::naptr(DOMAIN, 10, 10, "SIP+D2U", "_sip._udp.example.test"),
            Record::srv("_sip._udp.example.test", 10, 10, 5060, "sip1.example.test"),
            Record::srv("_sips._tcp.naptr.example.test", 10, 10, 5071, "sip2.example.test"),
            // The default SRV name, for when no NAPTR leads anywhere.
            Record::srv("_sips._tcp.example.test", 10, 10, 5061, "sip3.example.test"),
        ];
        if with_sips {
            records.push(Record::naptr(DOMAIN, 20, 10, "SIPS+D2T", "_sips._tcp.naptr.example.test"));
        }
        zone(300, records)
    };
    let mut server = Dnsmasq::start(&records(true));
    let spec = ServerSpec::new(DOMAIN, 0, DnsQueryType::NaptrSrvAndA);

    let located = Locating::new(&server, 1).locate(&spec, at_secs(0));
    assert_eq!(located.targets, [target("sip2.example.test", 5071, &["127.0.0.2"])]);
    assert_eq!(
        located.asked,
        ["example.test NAPTR", "_sips._tcp.naptr.example.test SRV", "sip2.example.test AAAA"],
        "neither the UDP service's SRV name nor the default one is asked"
    );
    assert_server_saw(&server, &located.asked);

    // With the UDP service alone, NAPTR leads nowhere usable: the default SRV name.
    server.set_zone(&records(false));
    let located = Locating::new(&server, 1).locate(&spec, at_secs(0));
    assert_eq!(located.targets, [target("sip3.example.test", 5061, &["::1", "127.0.0.3"])]);
    assert_eq!(located.asked, ["example.test NAPTR", "_sips._tcp.example.test SRV"]);
}

#[test]
fn without_srv_records_the_domain_itself_is_used_on_port_5061() {
    let _w = watchdog("no srv");
    let server = Dnsmasq::start(&zone(300, vec![Record::address(DOMAIN, "127.0.0.1"), Record::address(DOMAIN, "::1")]));
    let spec = ServerSpec::new(DOMAIN, 0, DnsQueryType::SrvAndA);
    let located = Locating::new(&server, 1).locate(&spec, at_secs(0));
    assert_eq!(located.targets, [target(DOMAIN, 5061, &["::1", "127.0.0.1"])]);
    // dnsmasq answers NXDOMAIN for the SRV name, which has no record at all.
    assert_eq!(located.asked, ["_sips._tcp.example.test SRV", "example.test AAAA", "example.test A"]);
    assert_server_saw(&server, &located.asked);
}

#[test]
fn a_changed_record_is_used_once_its_ttl_has_run_out_and_not_before() {
    let _w = watchdog("ttl");
    // A TTL above the cache's 5 s floor, so that the record's own counts.
    const TTL: u64 = 10;
    let before = vec![Record::srv("_sips._tcp.example.test", 10, 10, 5063, "sip3.example.test")];
    let mut server = Dnsmasq::start(&zone(TTL as u32, before));
    let spec = ServerSpec::new(DOMAIN, 0, DnsQueryType::SrvAndA);
    let mut locating = Locating::new(&server, 1);

    let first = locating.locate(&spec, at_secs(0));
    let sip3 = [target("sip3.example.test", 5063, &["::1", "127.0.0.3"])];
    assert_eq!(first.targets, sip3);
    // sip3's A and AAAA records came with the SRV answer: one query in all, and the
    // answer is kept for its TTL.
    assert_eq!(first.asked, ["_sips._tcp.example.test SRV"]);
    assert_eq!(first.expires, Some(at_secs(TTL)));

    server.set_zone(&zone(TTL as u32, vec![Record::srv("_sips._tcp.example.test", 10, 10, 5062, "sip2.example.test")]));
    // A moment before the TTL runs out: the kept answer, no query.
    let cached = locating.locate(&spec, Instant::from_millis(TTL * 1000 - 1));
    assert_eq!(cached.targets, sip3);
    assert_eq!(cached.asked, Vec::<String>::new());
    assert_server_saw(&server, &[]);

    // Once it has run out: asked again, and the new record is used.
    let after = locating.locate(&spec, at_secs(TTL));
    assert_eq!(after.targets, [target("sip2.example.test", 5062, &["127.0.0.2"])]);
    assert_eq!(after.asked, ["_sips._tcp.example.test SRV", "sip2.example.test AAAA"]);
    assert_server_saw(&server, &after.asked);
}

#[test]
fn every_target_is_checked_against_the_configured_domain_not_the_srv_target() {
    let _w = watchdog("tls name");
    // The SIP servers live in the provider's domain; the NAPTR leads there too.
    let server = Dnsmasq::start(&Zone::new(
        300,
        vec![
            Record::address("a.provider.test", "127.0.0.1"),
            Record::address("b.provider.test", "127.0.0.2"),
            Record::address("b.provider.test", "::1"),
            Record::naptr(DOMAIN, 10, 10, "SIPS+D2T", "_sips._tcp.provider.test"),
            Record::srv("_sips._tcp.provider.test", 10, 10, 5061, "a.provider.test"),
            Record::srv("_sips._tcp.provider.test", 20, 10, 5061, "b.provider.test"),
            Record::srv("_sips._tcp.example.test", 10, 10, 5061, "b.provider.test"),
        ],
    ));
    // Written as a user might: another case and a final dot.
    for (query_type, hosts) in [
        (DnsQueryType::SrvAndA, vec!["b.provider.test"]),
        (DnsQueryType::NaptrSrvAndA, vec!["a.provider.test", "b.provider.test"]),
    ] {
        let spec = ServerSpec::new("Example.TEST.", 0, query_type);
        let located = Locating::new(&server, 1).locate(&spec, at_secs(0));
        let found: Vec<&str> = located.targets.iter().map(|t| t.host.as_str()).collect();
        assert_eq!(found, hosts, "query type {query_type}");
        for target in &located.targets {
            assert_eq!(target.tls_name, DOMAIN, "{target:?}, query type {query_type}");
        }
    }
}

#[test]
#[should_panic(expected = "is missing: `bash scripts/deps.sh` installs it")]
fn a_missing_dnsmasq_fails_the_test_and_names_the_install_script() {
    let _w = watchdog("missing dnsmasq");
    Dnsmasq::start_program(std::path::Path::new("/nonexistent/dnsmasq"), &zone(300, Vec::new()));
}
