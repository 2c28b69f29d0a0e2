//! The addresses the model's servers live at, and the DNS zone that names them.
//!
//! Without targets (the default bounds) each server is one IPv4 literal, as before the
//! core located its servers, so nothing is looked up. With targets the primary is the
//! name `primary.test` with no port: the core asks for its SRV records and finds two
//! targets, the first with an IPv6 and an IPv4 address (they race, RFC 8305), the second
//! with one IPv4 address. The backup stays a literal so that the state space grows only
//! by what the primary's targets add. Each address is a *site* with its own mode (up,
//! refusing, silent), so that one target can fail while the other works.

use sip_ptls::dns::records::{AddressRecord, Answer, Negative, NegativeKind, QueryType, SrvRecord};
use sip_ptls::dns::{AnyAnswer, Query};
use sip_ptls::ids::Server;
use sip_ptls::sim::Zone;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Sites, by index: the primary's first target over IPv6, the same target over IPv4 (the
/// primary's only address without targets), the primary's second target, the backup.
pub const SITES: usize = 4;

/// The first target's IPv6 address.
pub const T1_V6: usize = 0;
/// The first target's IPv4 address; without targets, the primary's literal address.
pub const T1_V4: usize = 1;
/// The second target's address.
pub const T2: usize = 2;
/// The backup's literal address.
pub const BACKUP: usize = 3;

/// The port every site listens on.
pub const PORT: u16 = 5061;

/// The primary's name when it has targets.
pub const PRIMARY_NAME: &str = "primary.test";

/// How long every record may be cached: longer than any run of the model, so that the
/// core never has to look anything up again because a record expired. (It may still
/// locate again after a failure; the zone gives the same answers, instantly.)
const TTL: u32 = 86_400;

fn ip(site: usize) -> IpAddr {
    match site {
        T1_V6 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        T1_V4 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        T2 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3)),
        _ => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
    }
}

/// The literal the configuration names `server` by without targets, or the backup's
/// literal with them.
pub fn literal(server: Server) -> String {
    ip(match server {
        Server::Primary => T1_V4,
        Server::Backup => BACKUP,
    })
    .to_string()
}

/// The site an address the core dialed belongs to, if it is one of the model's.
pub fn site_of(addr: SocketAddr) -> Option<usize> {
    (0..SITES).find(|s| ip(*s) == addr.ip() && addr.port() == PORT)
}

/// The server a site belongs to.
pub fn server_of(site: usize) -> Server {
    if site == BACKUP { Server::Backup } else { Server::Primary }
}

/// Which of its server's targets a site is: sites of one target race each other.
pub fn target_of(site: usize) -> usize {
    match site {
        T1_V6 | T1_V4 => 0,
        T2 => 1,
        _ => 2,
    }
}

/// The sites of the primary that a round must dial before the primary may fail, as a
/// bit mask by site index.
pub fn primary_sites(targets: bool) -> u8 {
    if targets { (1 << T1_V6) | (1 << T1_V4) | (1 << T2) } else { 1 << T1_V4 }
}

/// The site a round of attempts to the primary starts at: its best target's first
/// address (IPv6 first, RFC 8305).
pub fn primary_first_site(targets: bool) -> usize {
    if targets { T1_V6 } else { T1_V4 }
}

/// The sites whose mode the environment may change.
pub fn active_sites(targets: bool) -> &'static [usize] {
    if targets { &[T1_V6, T1_V4, T2, BACKUP] } else { &[T1_V4, BACKUP] }
}

/// The zone: SRV `_sips._tcp.primary.test` with the first target at priority 10 and the
/// second at 20, their A and AAAA records; every other name gets the simulator's
/// defaults (no records but an A record), which the model never asks for.
pub fn zone() -> Zone {
    let mut zone = Zone::default();
    let srv = |priority, target: &str| SrvRecord { priority, weight: 0, port: PORT, target: target.into(), ttl: TTL };
    let records = vec![srv(10, "t1.primary.test"), srv(20, "t2.primary.test")];
    let query = Query::new(format!("_sips._tcp.{PRIMARY_NAME}"), QueryType::Srv);
    zone.set(query, Ok(AnyAnswer::Srv(Answer::Records { records, additional: Vec::new() })));
    let addresses = |site: usize| {
        AnyAnswer::Addresses(Answer::Records {
            records: vec![AddressRecord { addr: ip(site), ttl: TTL }],
            additional: Vec::new(),
        })
    };
    let nodata = || AnyAnswer::Addresses(Answer::Negative(Negative { kind: NegativeKind::NoData, ttl: Some(TTL) }));
    zone.set(Query::new("t1.primary.test", QueryType::Aaaa), Ok(addresses(T1_V6)));
    zone.set(Query::new("t1.primary.test", QueryType::A), Ok(addresses(T1_V4)));
    zone.set(Query::new("t2.primary.test", QueryType::Aaaa), Ok(nodata()));
    zone.set(Query::new("t2.primary.test", QueryType::A), Ok(addresses(T2)));
    zone
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_site_maps_back_to_itself_and_to_its_server() {
        for site in 0..SITES {
            assert_eq!(site_of(SocketAddr::new(ip(site), PORT)), Some(site));
        }
        assert_eq!(site_of(SocketAddr::new(ip(T2), PORT + 1)), None);
        assert_eq!(server_of(BACKUP), Server::Backup);
        assert_eq!(server_of(T2), Server::Primary);
        assert_eq!(target_of(T1_V6), target_of(T1_V4));
        assert_ne!(target_of(T1_V4), target_of(T2));
    }
}
