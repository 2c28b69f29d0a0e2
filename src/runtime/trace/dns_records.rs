//! The DNS part of a trace: the lookups the core asked (`Output::Resolve`) and what came
//! back (`Input::Resolved`), as plain records, so that a replay gives the core the very
//! answers it had, TTLs and additional addresses included.

use crate::dns::records::{
    AddressRecord, Answer, HostAddress, NaptrRecord, Negative, NegativeKind, QueryType, SrvRecord,
};
use crate::dns::{AnyAnswer, LookupFailed, Query};
use core::net::IpAddr;
use serde::{Deserialize, Serialize};

/// A lookup: the name and the record type (`A`, `AAAA`, `SRV`, `NAPTR`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QueryRecord {
    pub name: String,
    pub qtype: String,
}

/// What came back for a lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub(crate) enum OutcomeRecord {
    /// No server answered.
    Failed { reason: String },
    /// NXDOMAIN or NODATA; `ttl` `None` when it may not be cached.
    Negative { kind: NegativeRecord, ttl: Option<u32> },
    /// A or AAAA records.
    Addresses { records: Vec<AddrRecord>, additional: Vec<HostRecord> },
    /// SRV records.
    Srv { records: Vec<SrvLine>, additional: Vec<HostRecord> },
    /// NAPTR records.
    Naptr { records: Vec<NaptrLine>, additional: Vec<HostRecord> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NegativeRecord {
    Nxdomain,
    Nodata,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AddrRecord {
    pub addr: String,
    pub ttl: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HostRecord {
    pub host: String,
    pub addr: String,
    pub ttl: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SrvLine {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
    pub ttl: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NaptrLine {
    pub order: u16,
    pub preference: u16,
    pub flags: String,
    pub services: String,
    pub regexp: String,
    pub replacement: String,
    pub ttl: u32,
}

impl From<&Query> for QueryRecord {
    fn from(q: &Query) -> QueryRecord {
        QueryRecord { name: q.name.clone(), qtype: q.qtype.to_string() }
    }
}

impl QueryRecord {
    /// The query, or what is wrong with the record.
    pub fn query(&self) -> Result<Query, String> {
        let qtype = match self.qtype.as_str() {
            "A" => QueryType::A,
            "AAAA" => QueryType::Aaaa,
            "SRV" => QueryType::Srv,
            "NAPTR" => QueryType::Naptr,
            other => return Err(format!("`qtype` {other:?} is not A, AAAA, SRV or NAPTR")),
        };
        Ok(Query::new(self.name.clone(), qtype))
    }
}

fn ip(text: &str) -> Result<IpAddr, String> {
    text.parse().map_err(|_| format!("`addr` {text:?} is not an IP address"))
}

fn hosts_of(additional: &[HostAddress]) -> Vec<HostRecord> {
    additional.iter().map(|h| HostRecord { host: h.host.clone(), addr: h.addr.to_string(), ttl: h.ttl }).collect()
}

fn hosts_from(records: &[HostRecord]) -> Result<Vec<HostAddress>, String> {
    records.iter().map(|h| Ok(HostAddress { host: h.host.clone(), addr: ip(&h.addr)?, ttl: h.ttl })).collect()
}

fn negative(n: Negative) -> OutcomeRecord {
    let kind = match n.kind {
        NegativeKind::NxDomain => NegativeRecord::Nxdomain,
        NegativeKind::NoData => NegativeRecord::Nodata,
    };
    OutcomeRecord::Negative { kind, ttl: n.ttl }
}

impl From<&Result<AnyAnswer, LookupFailed>> for OutcomeRecord {
    fn from(outcome: &Result<AnyAnswer, LookupFailed>) -> OutcomeRecord {
        match outcome {
            Err(failed) => OutcomeRecord::Failed { reason: failed.reason.clone() },
            Ok(AnyAnswer::Addresses(Answer::Negative(n)))
            | Ok(AnyAnswer::Srv(Answer::Negative(n)))
            | Ok(AnyAnswer::Naptr(Answer::Negative(n))) => negative(*n),
            Ok(AnyAnswer::Addresses(Answer::Records { records, additional })) => OutcomeRecord::Addresses {
                records: records.iter().map(|r| AddrRecord { addr: r.addr.to_string(), ttl: r.ttl }).collect(),
                additional: hosts_of(additional),
            },
            Ok(AnyAnswer::Srv(Answer::Records { records, additional })) => OutcomeRecord::Srv {
                records: records
                    .iter()
                    .map(|r| SrvLine {
                        priority: r.priority,
                        weight: r.weight,
                        port: r.port,
                        target: r.target.clone(),
                        ttl: r.ttl,
                    })
                    .collect(),
                additional: hosts_of(additional),
            },
            Ok(AnyAnswer::Naptr(Answer::Records { records, additional })) => OutcomeRecord::Naptr {
                records: records
                    .iter()
                    .map(|r| NaptrLine {
                        order: r.order,
                        preference: r.preference,
                        flags: r.flags.clone(),
                        services: r.services.clone(),
                        regexp: r.regexp.clone(),
                        replacement: r.replacement.clone(),
                        ttl: r.ttl,
                    })
                    .collect(),
                additional: hosts_of(additional),
            },
        }
    }
}

impl OutcomeRecord {
    /// The outcome for `query` (a negative answer takes the query's type), or what is
    /// wrong with the record.
    pub fn outcome(&self, query: &Query) -> Result<Result<AnyAnswer, LookupFailed>, String> {
        Ok(Ok(match self {
            OutcomeRecord::Failed { reason } => return Ok(Err(LookupFailed::new(reason.clone()))),
            OutcomeRecord::Negative { kind, ttl } => {
                let kind = match kind {
                    NegativeRecord::Nxdomain => NegativeKind::NxDomain,
                    NegativeRecord::Nodata => NegativeKind::NoData,
                };
                let n = Negative { kind, ttl: *ttl };
                match query.qtype {
                    QueryType::A | QueryType::Aaaa => AnyAnswer::Addresses(Answer::Negative(n)),
                    QueryType::Srv => AnyAnswer::Srv(Answer::Negative(n)),
                    QueryType::Naptr => AnyAnswer::Naptr(Answer::Negative(n)),
                }
            }
            OutcomeRecord::Addresses { records, additional } => AnyAnswer::Addresses(Answer::Records {
                records: records
                    .iter()
                    .map(|r| Ok(AddressRecord { addr: ip(&r.addr)?, ttl: r.ttl }))
                    .collect::<Result<_, String>>()?,
                additional: hosts_from(additional)?,
            }),
            OutcomeRecord::Srv { records, additional } => AnyAnswer::Srv(Answer::Records {
                records: records
                    .iter()
                    .map(|r| SrvRecord {
                        priority: r.priority,
                        weight: r.weight,
                        port: r.port,
                        target: r.target.clone(),
                        ttl: r.ttl,
                    })
                    .collect(),
                additional: hosts_from(additional)?,
            }),
            OutcomeRecord::Naptr { records, additional } => AnyAnswer::Naptr(Answer::Records {
                records: records
                    .iter()
                    .map(|r| NaptrRecord {
                        order: r.order,
                        preference: r.preference,
                        flags: r.flags.clone(),
                        services: r.services.clone(),
                        regexp: r.regexp.clone(),
                        replacement: r.replacement.clone(),
                        ttl: r.ttl,
                    })
                    .collect(),
                additional: hosts_from(additional)?,
            }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(query: Query, outcome: Result<AnyAnswer, LookupFailed>) {
        let q = QueryRecord::from(&query);
        let o = OutcomeRecord::from(&outcome);
        let o: OutcomeRecord =
            serde_json::from_str(&serde_json::to_string(&o).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.query(), Ok(query.clone()));
        assert_eq!(o.outcome(&query), Ok(outcome));
    }

    #[test]
    fn every_kind_of_answer_comes_back_as_it_was() {
        let v6: IpAddr = "2001:db8::1".parse().unwrap_or(IpAddr::from([0u8; 16]));
        let host = HostAddress { host: "sip1.example.com".into(), addr: v6, ttl: 30 };
        round_trip(Query::new("sip1.example.com", QueryType::Aaaa), Err(LookupFailed::new("no server")));
        round_trip(
            Query::new("example.com", QueryType::Naptr),
            Ok(AnyAnswer::Naptr(Answer::Negative(Negative { kind: NegativeKind::NxDomain, ttl: None }))),
        );
        round_trip(
            Query::new("x.example.com", QueryType::A),
            Ok(AnyAnswer::Addresses(Answer::Negative(Negative { kind: NegativeKind::NoData, ttl: Some(60) }))),
        );
        round_trip(
            Query::new("sip1.example.com", QueryType::Aaaa),
            Ok(AnyAnswer::Addresses(Answer::Records {
                records: vec![AddressRecord { addr: v6, ttl: 300 }],
                additional: vec![host.clone()],
            })),
        );
        round_trip(
            Query::new("_sips._tcp.example.com", QueryType::Srv),
            Ok(AnyAnswer::Srv(Answer::Records {
                records: vec![SrvRecord {
                    priority: 1,
                    weight: 2,
                    port: 5061,
                    target: "sip1.example.com".into(),
                    ttl: 9,
                }],
                additional: vec![host.clone()],
            })),
        );
        round_trip(
            Query::new("example.com", QueryType::Naptr),
            Ok(AnyAnswer::Naptr(Answer::Records {
                records: vec![NaptrRecord {
                    order: 1,
                    preference: 2,
                    flags: "s".into(),
                    services: "SIPS+D2T".into(),
                    regexp: String::new(),
                    replacement: "_sips._tcp.example.com".into(),
                    ttl: 3,
                }],
                additional: vec![host],
            })),
        );
    }

    #[test]
    fn a_bad_type_or_address_is_an_error_naming_it() {
        let q = QueryRecord { name: "x".into(), qtype: "MX".into() };
        assert!(q.query().is_err_and(|e| e.contains("\"MX\"")));
        let o =
            OutcomeRecord::Addresses { records: vec![AddrRecord { addr: "nope".into(), ttl: 1 }], additional: vec![] };
        assert!(o.outcome(&Query::new("x", QueryType::A)).is_err_and(|e| e.contains("\"nope\"")));
    }
}
