//! The simulator's DNS: answers the core's lookups at once, from records a test sets or,
//! for any other name, a default that keeps the scenarios of one server per name as they
//! were before the core located its servers: one IPv4 address, no IPv6 address, no SRV
//! or NAPTR record, all cacheable for five minutes.

use crate::dns::records::{AddressRecord, Answer, Negative, NegativeKind, QueryType};
use crate::dns::{AnyAnswer, LookupFailed, Query};
use crate::engine::{Core, Input, Output};
use crate::time::Instant;
use core::net::{IpAddr, Ipv4Addr};
use std::collections::BTreeMap;

/// The TTL of the default answers, in seconds.
pub const DEFAULT_TTL: u32 = 300;

/// The address every name without records of its own resolves to (TEST-NET-1).
pub const DEFAULT_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// Answers by query; what is not set gets the default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Zone {
    answers: BTreeMap<Query, Result<AnyAnswer, LookupFailed>>,
}

impl Zone {
    /// From now on `query` gets `outcome`.
    pub fn set(&mut self, query: Query, outcome: Result<AnyAnswer, LookupFailed>) {
        self.answers.insert(query, outcome);
    }

    /// What the zone says to `query`.
    pub fn answer(&self, query: &Query) -> Result<AnyAnswer, LookupFailed> {
        if let Some(set) = self.answers.get(query) {
            return set.clone();
        }
        let none = Negative { kind: NegativeKind::NoData, ttl: Some(DEFAULT_TTL) };
        Ok(match query.qtype {
            QueryType::A => AnyAnswer::Addresses(Answer::Records {
                records: vec![AddressRecord { addr: DEFAULT_ADDR, ttl: DEFAULT_TTL }],
                additional: Vec::new(),
            }),
            QueryType::Aaaa => AnyAnswer::Addresses(Answer::Negative(none)),
            QueryType::Srv => AnyAnswer::Srv(Answer::Negative(none)),
            QueryType::Naptr => AnyAnswer::Naptr(Answer::Negative(none)),
        })
    }
}

/// Drains every output of `core`, answering each lookup from `zone` at once (the answers'
/// own outputs included), and returns the other outputs in order: for tests that drive a
/// core by hand and want it to connect.
pub fn drain_answering(core: &mut Core, now: Instant, zone: &Zone) -> Vec<Output> {
    let mut outputs = Vec::new();
    while let Some(out) = core.poll_output() {
        match out {
            Output::Resolve { query } => {
                let outcome = zone.answer(&query);
                core.handle_input(now, Input::Resolved { query, outcome });
            }
            other => outputs.push(other),
        }
    }
    outputs
}
