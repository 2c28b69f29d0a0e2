//! Scenario tests of where connections go: the engine asks for lookups, connects to the
//! located address with the configured name for the certificate (RFC 5922), walks every
//! address of every target before the server counts as failed, keeps answers for their
//! TTL, uses a stale answer when DNS fails, and ignores answers it never asked for.

use crate::config::{ServerAddr, TransportMode};
use crate::dns::records::{AddressRecord, Answer, HostAddress, Negative, NegativeKind, QueryType, SrvRecord};
use crate::dns::{AnyAnswer, DnsQueryType, LookupFailed, Query};
use crate::engine::{Event, FlowError, FlowState, Input, TransportError};
use crate::ids::Server;
use crate::sim::{ServerMode, Sim};
use crate::time::Instant;
use core::net::{IpAddr, SocketAddr};

use super::super::tests_support::{all_registered_on, assert_clean, cfg, secs};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

fn sock(text: &str) -> SocketAddr {
    text.parse().unwrap_or(SocketAddr::new(ip("0.0.0.0"), 0))
}

fn addresses(ttl: u32, addrs: &[&str]) -> Result<AnyAnswer, LookupFailed> {
    let records = addrs.iter().map(|a| AddressRecord { addr: ip(a), ttl }).collect();
    Ok(AnyAnswer::Addresses(Answer::Records { records, additional: Vec::new() }))
}

fn nodata() -> Result<AnyAnswer, LookupFailed> {
    Ok(AnyAnswer::Addresses(Answer::Negative(Negative { kind: NegativeKind::NoData, ttl: Some(300) })))
}

/// `_sips._tcp.example.test` with `targets` (priority, host, port), in that order.
fn srv(targets: &[(u16, &str, u16)], additional: Vec<HostAddress>) -> Result<AnyAnswer, LookupFailed> {
    let records = targets
        .iter()
        .map(|(priority, host, port)| SrvRecord {
            priority: *priority,
            weight: 0,
            port: *port,
            target: (*host).to_owned(),
            ttl: 300,
        })
        .collect();
    Ok(AnyAnswer::Srv(Answer::Records { records, additional }))
}

fn q(name: &str, qtype: QueryType) -> Query {
    Query::new(name, qtype)
}

/// The primary `example.test` with no port (SRV), the backup an address.
fn srv_sim() -> Sim {
    let mut config = cfg(1);
    config.proxy = Some(ServerAddr::new("example.test", 0));
    config.backup_proxy = Some(ServerAddr::new("192.0.2.200", 5061));
    config.dns_query_type = DnsQueryType::SrvAndA;
    let mut sim = Sim::new(config);
    sim.zone.set(
        q("_sips._tcp.example.test", QueryType::Srv),
        srv(&[(10, "sip1.example.test", 5070), (20, "sip2.example.test", 5071)], Vec::new()),
    );
    sim.zone.set(q("sip1.example.test", QueryType::A), addresses(300, &["192.0.2.11"]));
    sim.zone.set(q("sip1.example.test", QueryType::Aaaa), addresses(300, &["2001:db8::11"]));
    sim.zone.set(q("sip2.example.test", QueryType::A), addresses(300, &["192.0.2.12"]));
    sim.zone.set(q("sip2.example.test", QueryType::Aaaa), nodata());
    sim
}

fn dialed(sim: &Sim) -> Vec<(SocketAddr, String)> {
    sim.dials.iter().map(|(_, _, addr, name)| (*addr, name.clone())).collect()
}

#[test]
fn a_name_with_a_port_is_looked_up_and_the_certificate_is_checked_against_it() {
    let mut sim = Sim::new(cfg(1));
    sim.start();
    sim.run_for(secs(1));
    assert!(all_registered_on(&sim, Server::Primary));
    let asked: Vec<&Query> = sim.lookups.iter().map(|(_, q)| q).collect();
    assert_eq!(asked, [&q("primary.test", QueryType::Aaaa), &q("primary.test", QueryType::A)]);
    assert_eq!(dialed(&sim), [(sock("192.0.2.1:5061"), "primary.test".to_owned())]);
    assert_clean(&sim);
}

#[test]
fn srv_gives_the_port_and_the_order_and_the_certificate_name_stays_the_domain() {
    let mut sim = srv_sim();
    sim.start();
    sim.run_for(secs(1));
    assert!(all_registered_on(&sim, Server::Primary));
    // IPv6 first (RFC 8305), at the SRV port; the name is the configured domain (RFC
    // 5922), never the SRV target.
    assert_eq!(dialed(&sim), [(sock("[2001:db8::11]:5070"), "example.test".to_owned())]);
    assert_clean(&sim);
}

#[test]
fn a_failed_address_is_left_for_the_next_one_then_the_next_target_then_the_backup() {
    let mut sim = srv_sim();
    sim.address_modes.insert(ip("2001:db8::11"), ServerMode::Refusing);
    sim.address_modes.insert(ip("192.0.2.11"), ServerMode::Refusing);
    sim.start();
    sim.run_for(secs(1));
    // The first target's two addresses refuse; the second target takes the phone.
    assert!(all_registered_on(&sim, Server::Primary));
    let addrs: Vec<SocketAddr> = dialed(&sim).into_iter().map(|(a, _)| a).collect();
    assert_eq!(addrs, [sock("[2001:db8::11]:5070"), sock("192.0.2.11:5070"), sock("192.0.2.12:5071")]);
    let failed = sim.count_events(|e| matches!(e, Event::AttemptFailed { server: Server::Primary, .. }));
    assert_eq!(failed, 2);
    assert_eq!(sim.count_events(|e| matches!(e, Event::ConnectFailed { .. })), 0);
    assert_clean(&sim);

    // Every primary target refusing: then, and only then, the backup.
    let mut sim = srv_sim();
    for a in ["2001:db8::11", "192.0.2.11", "192.0.2.12"] {
        sim.address_modes.insert(ip(a), ServerMode::Refusing);
    }
    sim.start();
    sim.run_for(secs(1));
    assert_eq!(sim.core.flow_state(), FlowState::Up { server: Server::Backup });
    let addrs: Vec<SocketAddr> = dialed(&sim).into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        addrs,
        [sock("[2001:db8::11]:5070"), sock("192.0.2.11:5070"), sock("192.0.2.12:5071"), sock("192.0.2.200:5061")]
    );
    assert_eq!(sim.count_events(|e| matches!(e, Event::ConnectFailed { server: Server::Primary, .. })), 1);
    assert_clean(&sim);
}

#[test]
fn an_address_that_swallows_the_handshake_is_raced_by_the_next_after_its_head_start() {
    let mut sim = srv_sim();
    sim.address_modes.insert(ip("2001:db8::11"), ServerMode::Frozen);
    sim.start();
    sim.run_for(secs(10));
    assert!(all_registered_on(&sim, Server::Primary));
    // RFC 8305: IPv6 first; IPv4 250 ms later beside it; IPv4 wins and the IPv6 attempt,
    // still connecting, is closed before anything is sent. Nothing failed.
    let at: Vec<(u64, SocketAddr)> = sim.dials.iter().map(|(t, _, a, _)| (t.as_millis(), *a)).collect();
    assert_eq!(at, [(0, sock("[2001:db8::11]:5070")), (250, sock("192.0.2.11:5070"))]);
    let (v6, v4) = (sim.dials[0].1, sim.dials[1].1);
    assert!(sim.core.connections().all(|(id, _, _)| id != v6), "the losing attempt is closed");
    assert_eq!(sim.core.flow_state(), FlowState::Up { server: Server::Primary });
    assert!(sim.core.connections().any(|(id, _, up)| id == v4 && up));
    assert_eq!(sim.count_events(|e| matches!(e, Event::AttemptFailed { .. } | Event::ConnectFailed { .. })), 0);
    assert_clean(&sim);
}

#[test]
fn an_address_that_answers_within_its_head_start_has_no_rival() {
    let mut sim = srv_sim();
    sim.start();
    sim.run_for(secs(10));
    assert!(all_registered_on(&sim, Server::Primary));
    assert_eq!(sim.dials.len(), 1, "{:?}", sim.dials);
    assert_clean(&sim);
}

#[test]
fn a_refused_address_starts_the_next_at_once_and_the_next_target_waits_for_the_race() {
    let mut sim = srv_sim();
    sim.address_modes.insert(ip("2001:db8::11"), ServerMode::Refusing);
    sim.address_modes.insert(ip("192.0.2.11"), ServerMode::Frozen);
    sim.start();
    sim.run_for(secs(30));
    assert!(all_registered_on(&sim, Server::Primary));
    let at: Vec<(u64, SocketAddr)> = sim.dials.iter().map(|(t, _, a, _)| (t.as_millis(), *a)).collect();
    // The refusal comes after one round trip (20 ms): the IPv4 address at once, not after
    // the head start. It swallows the handshake: the second target, only after that
    // attempt's own connect timeout, since racing attempts share a target.
    let timeout = sim.core.config().connect_timeout.as_millis();
    assert_eq!(
        at,
        [(0, sock("[2001:db8::11]:5070")), (20, sock("192.0.2.11:5070")), (20 + timeout, sock("192.0.2.12:5071"))]
    );
    assert_eq!(sim.count_events(|e| matches!(e, Event::AttemptFailed { .. })), 2);
    assert_clean(&sim);
}

#[test]
fn a_lookup_that_fails_fails_the_server_and_the_backup_takes_over() {
    let mut sim = srv_sim();
    sim.zone.set(q("_sips._tcp.example.test", QueryType::Srv), Err(LookupFailed::new("no DNS answer")));
    sim.start();
    sim.run_for(secs(1));
    assert_eq!(sim.core.flow_state(), FlowState::Up { server: Server::Backup });
    let failed = sim.events.iter().find_map(|(_, e)| match e {
        Event::ConnectFailed {
            server: Server::Primary,
            reason: FlowError::Transport(TransportError::Resolve(why)),
        } => Some(why.clone()),
        _ => None,
    });
    assert!(failed.is_some_and(|why| why.contains("_sips._tcp.example.test")), "{:?}", sim.events);
    assert_clean(&sim);
}

#[test]
fn answers_are_kept_for_their_ttl_and_asked_again_after() {
    let mut config = cfg(1);
    config.mode = TransportMode::PerCallTls;
    let mut sim = Sim::new(config);
    sim.zone.set(q("primary.test", QueryType::A), addresses(60, &["192.0.2.1"]));
    sim.start();
    sim.run_for(secs(1));
    let asked = |sim: &Sim| sim.lookups.iter().filter(|(_, q)| q.name == "primary.test").count();
    assert_eq!(asked(&sim), 2);
    // A call within the minute: no new lookup.
    assert!(sim.place_call(crate::ids::AccountId(0), "2000").is_some());
    sim.run_for(secs(5));
    assert_eq!(asked(&sim), 2);
    // After the A record's 60 s: A asked again at the next connection; the AAAA
    // NODATA, kept for its 300 s, is not.
    sim.run_for(secs(60));
    assert!(sim.place_call(crate::ids::AccountId(0), "2000").is_some());
    sim.run_for(secs(5));
    let last = sim.lookups.last().map(|(_, q)| q.clone());
    assert_eq!((asked(&sim), last), (3, Some(q("primary.test", QueryType::A))));
    assert_clean(&sim);
}

#[test]
fn a_stale_answer_is_used_when_dns_fails_after_the_ttl() {
    let mut config = cfg(1);
    config.mode = TransportMode::PerCallTls;
    let mut sim = Sim::new(config);
    sim.zone.set(q("primary.test", QueryType::A), addresses(60, &["192.0.2.1"]));
    sim.start();
    sim.run_for(secs(70));
    sim.zone.set(q("primary.test", QueryType::A), Err(LookupFailed::new("timed out")));
    sim.zone.set(q("primary.test", QueryType::Aaaa), Err(LookupFailed::new("timed out")));
    let dials = sim.dials.len();
    assert!(sim.place_call(crate::ids::AccountId(0), "2000").is_some());
    sim.run_for(secs(5));
    assert_eq!(sim.dials.get(dials).map(|d| d.2), Some(sock("192.0.2.1:5061")));
    assert_eq!(sim.count_events(|e| matches!(e, Event::ConnectFailed { .. })), 0);
    assert_clean(&sim);
}

#[test]
fn an_answer_nobody_asked_for_is_ignored() {
    let mut sim = Sim::new(cfg(1));
    sim.start();
    sim.run_for(secs(1));
    let dials = sim.dials.len();
    let now = sim.now;
    let query = q("primary.test", QueryType::A);
    sim.core.handle_input(now, Input::Resolved { query, outcome: addresses(60, &["203.0.113.9"]) });
    let query = q("elsewhere.test", QueryType::Srv);
    sim.core.handle_input(now, Input::Resolved { query, outcome: Err(LookupFailed::new("x")) });
    sim.drain();
    sim.run_for(secs(1));
    assert_eq!(sim.dials.len(), dials);
    assert!(all_registered_on(&sim, Server::Primary));
    assert_clean(&sim);
}

#[test]
fn a_lookup_still_unanswered_at_the_connect_timeout_is_asked_again_next_time() {
    let mut config = cfg(1);
    config.backup_proxy = None;
    let mut core = crate::engine::Core::new(config, Instant::ZERO);
    core.start(Instant::ZERO);
    let asked = |core: &mut crate::engine::Core| {
        std::iter::from_fn(|| core.poll_output()).filter(|o| matches!(o, crate::engine::Output::Resolve { .. })).count()
    };
    assert_eq!(asked(&mut core), 2);
    // Nobody answers: the connection fails at its connect timeout, and the back-off's
    // next round asks DNS again rather than waiting for the lost answers.
    let timeout = core.config().connect_timeout;
    core.handle_timeout(Instant::ZERO + timeout);
    let events: Vec<crate::engine::Output> = std::iter::from_fn(|| core.poll_output()).collect();
    assert!(events.iter().any(|o| matches!(
        o,
        crate::engine::Output::Event(Event::ConnectFailed { reason: FlowError::ConnectTimeout, .. })
    )));
    let retry = core.poll_timeout().unwrap_or(Instant::ZERO);
    core.handle_timeout(retry);
    assert_eq!(asked(&mut core), 2);
}

#[test]
fn an_address_that_takes_the_connection_and_answers_nothing_is_left_for_the_next() {
    let mut sim = srv_sim();
    // The first target's IPv6 address completes TLS and never answers the REGISTER.
    sim.address_modes.insert(ip("2001:db8::11"), ServerMode::Silent);
    sim.start();
    let timeout = sim.core.config().transaction_timeout;
    sim.run_for(timeout + secs(1));
    // The next address of the same server, not the backup: the server did not fail.
    assert!(all_registered_on(&sim, Server::Primary), "{:?}", sim.core.flow_state());
    let addrs: Vec<SocketAddr> = dialed(&sim).into_iter().map(|(a, _)| a).collect();
    assert_eq!(addrs, [sock("[2001:db8::11]:5070"), sock("192.0.2.11:5070")]);
    assert_eq!(sim.count_events(|e| matches!(e, Event::ConnectFailed { .. })), 0);
    assert_eq!(sim.count_events(|e| matches!(e, Event::FlowLost { server: Server::Primary, .. })), 1);
    assert_clean(&sim);

    // Every address silent: each is tried once, then the server fails over.
    let mut sim = srv_sim();
    for a in ["2001:db8::11", "192.0.2.11", "192.0.2.12"] {
        sim.address_modes.insert(ip(a), ServerMode::Silent);
    }
    sim.start();
    sim.run_for(timeout.saturating_mul(3) + secs(1));
    assert_eq!(sim.core.flow_state(), FlowState::Up { server: Server::Backup });
    let addrs: Vec<SocketAddr> = dialed(&sim).into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        &addrs[..4],
        [sock("[2001:db8::11]:5070"), sock("192.0.2.11:5070"), sock("192.0.2.12:5071"), sock("192.0.2.200:5061")]
    );
    assert_clean(&sim);
}
