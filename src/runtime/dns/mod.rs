//! DNS lookups for the runtime shell: A, AAAA, SRV and NAPTR queries to the system's (or
//! given) recursive servers, over UDP with a TCP retry for truncated replies, results
//! with their TTLs and negative answers told apart from failures.
//!
//! It performs lookups and decides nothing: which names to ask, in which order, how long
//! to keep the results and which address to connect to (RFC 3263, Happy Eyeballs) is
//! left to the core. Messages are built and parsed by hickory-proto; the exchanges run
//! on async-net sockets and async-io timers, the runtime the shell already uses, so no
//! second async runtime comes in (see `docs/dns.md`).
//!
//! Pure parts, unit-tested without a socket: [`records`] (the results, which live in the
//! core's [`crate::dns::records`] and are re-exported here), `query`
//! (building a query), `reply` (judging and parsing a reply) and [`resolv_conf`]
//! (parsing the system file). The IO parts: [`config`] (reading the file), `exchange`
//! (one UDP or TCP exchange) and [`resolver`] (servers in order, rounds, errors).
//!
//! Performing the core's lookups: [`hosts`] (the hosts file and RFC 6761's `localhost`,
//! pure but for reading the file) and [`perform`] (a core query answered from the hosts
//! table, else by the resolver).

pub mod config;
pub mod error;
mod exchange;
pub mod hosts;
pub mod perform;
mod query;
mod reply;
pub mod resolv_conf;
pub mod resolver;

pub use crate::dns::records;
pub use config::ResolverConfig;
pub use error::{DnsError, Problem, ResolvConfError, ServerFailure, Transport};
pub use records::{AddressRecord, Answer, HostAddress, NaptrRecord, Negative, NegativeKind, QueryType, SrvRecord};
pub use resolver::Resolver;
