//! The exchange between the core and the shell's resolver: a [`Query`] the core asks, and
//! what came back for it, an [`AnyAnswer`] (records or a negative answer) or a
//! [`LookupFailed`] (no server answered). Plain data.

use core::fmt;

use super::records::{AddressRecord, Answer, NaptrRecord, Negative, QueryType, SrvRecord};

/// A lookup the shell must perform: a name, absolute and written without the final dot,
/// and the record type asked.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Query {
    /// The name asked, in lower case, without the final dot.
    pub name: String,
    /// The record type asked.
    pub qtype: QueryType,
}

impl Query {
    /// The query for `name` (taken as written: the caller normalizes it) and `qtype`.
    pub fn new(name: impl Into<String>, qtype: QueryType) -> Query {
        Query { name: name.into(), qtype }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.qtype)
    }
}

/// The answer to one query, whatever its type: what the shell's `lookup_a`,
/// `lookup_aaaa`, `lookup_srv` or `lookup_naptr` returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AnyAnswer {
    /// The answer to an A or an AAAA query.
    Addresses(Answer<AddressRecord>),
    /// The answer to an SRV query.
    Srv(Answer<SrvRecord>),
    /// The answer to a NAPTR query.
    Naptr(Answer<NaptrRecord>),
}

impl AnyAnswer {
    /// Whether this answer can answer a query of `qtype` (an SRV answer cannot answer an
    /// A query; the core takes a mismatch as a failure of the lookup, never as data).
    pub fn fits(&self, qtype: QueryType) -> bool {
        matches!(
            (self, qtype),
            (AnyAnswer::Addresses(_), QueryType::A | QueryType::Aaaa)
                | (AnyAnswer::Srv(_), QueryType::Srv)
                | (AnyAnswer::Naptr(_), QueryType::Naptr)
        )
    }

    /// The negative answer, if this is one.
    pub fn negative(&self) -> Option<Negative> {
        match self {
            AnyAnswer::Addresses(Answer::Negative(n))
            | AnyAnswer::Srv(Answer::Negative(n))
            | AnyAnswer::Naptr(Answer::Negative(n)) => Some(*n),
            _ => None,
        }
    }

    /// The smallest TTL, in seconds, of the records this answer holds, those of the
    /// additional section included (a cached SRV answer brings its volunteered addresses
    /// with it, so it must not outlive them). For a negative answer, its own TTL (`None`:
    /// not to be cached). An answer without a single record, which the resolver never
    /// gives, has no TTL to go by: `None` too.
    pub fn ttl(&self) -> Option<u32> {
        fn smallest<T>(answer: &Answer<T>, ttl: impl Fn(&T) -> u32) -> Option<u32> {
            match answer {
                Answer::Negative(n) => n.ttl,
                Answer::Records { records, additional } => {
                    records.iter().map(ttl).chain(additional.iter().map(|a| a.ttl)).min()
                }
            }
        }
        match self {
            AnyAnswer::Addresses(a) => smallest(a, |r| r.ttl),
            AnyAnswer::Srv(a) => smallest(a, |r| r.ttl),
            AnyAnswer::Naptr(a) => smallest(a, |r| r.ttl),
        }
    }
}

/// No DNS server answered the query (every exchange timed out or was refused): not an
/// answer, so nothing is learnt about the name. `reason` is the shell's account of it,
/// for the error the core reports (such as the runtime's `DnsError` as text).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LookupFailed {
    /// What went wrong, in words.
    pub reason: String,
}

impl LookupFailed {
    /// A failure described by `reason`.
    pub fn new(reason: impl Into<String>) -> LookupFailed {
        LookupFailed { reason: reason.into() }
    }
}

impl fmt::Display for LookupFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::records::{AddressRecord, Answer, HostAddress, Negative, NegativeKind, QueryType, SrvRecord};

    fn srv(ttl: u32) -> SrvRecord {
        SrvRecord { priority: 0, weight: 0, port: 5061, target: "a.example.com".into(), ttl }
    }

    #[test]
    fn an_answer_fits_only_its_own_types() {
        let addresses = AnyAnswer::Addresses(Answer::Records { records: vec![], additional: vec![] });
        assert!(addresses.fits(QueryType::A) && addresses.fits(QueryType::Aaaa));
        assert!(!addresses.fits(QueryType::Srv) && !addresses.fits(QueryType::Naptr));
        let srv = AnyAnswer::Srv(Answer::Records { records: vec![], additional: vec![] });
        assert!(srv.fits(QueryType::Srv) && !srv.fits(QueryType::A));
        let naptr = AnyAnswer::Naptr(Answer::Negative(Negative { kind: NegativeKind::NoData, ttl: None }));
        assert!(naptr.fits(QueryType::Naptr) && !naptr.fits(QueryType::Srv));
    }

    #[test]
    fn the_ttl_is_the_smallest_including_additional_addresses() {
        let additional =
            vec![HostAddress { host: "a.example.com".into(), addr: "192.0.2.1".parse().unwrap(), ttl: 30 }];
        let answer = AnyAnswer::Srv(Answer::Records { records: vec![srv(300), srv(100)], additional });
        assert_eq!(answer.ttl(), Some(30));
        let answer = AnyAnswer::Srv(Answer::Records { records: vec![srv(300), srv(100)], additional: vec![] });
        assert_eq!(answer.ttl(), Some(100));
        let a = AnyAnswer::Addresses(Answer::Records {
            records: vec![AddressRecord { addr: "192.0.2.1".parse().unwrap(), ttl: 7 }],
            additional: vec![],
        });
        assert_eq!(a.ttl(), Some(7));
        let empty = AnyAnswer::Addresses(Answer::Records { records: vec![], additional: vec![] });
        assert_eq!(empty.ttl(), None);
    }

    #[test]
    fn a_negative_answer_keeps_its_soa_ttl_or_none() {
        let with_soa = AnyAnswer::Srv(Answer::Negative(Negative { kind: NegativeKind::NxDomain, ttl: Some(900) }));
        assert_eq!((with_soa.ttl(), with_soa.negative().map(|n| n.kind)), (Some(900), Some(NegativeKind::NxDomain)));
        let without = AnyAnswer::Srv(Answer::Negative(Negative { kind: NegativeKind::NoData, ttl: None }));
        assert_eq!(without.ttl(), None);
        assert_eq!(AnyAnswer::Srv(Answer::Records { records: vec![srv(1)], additional: vec![] }).negative(), None);
    }

    #[test]
    fn a_query_shows_its_name_and_type() {
        assert_eq!(Query::new("_sips._tcp.example.com", QueryType::Srv).to_string(), "_sips._tcp.example.com SRV");
    }
}
