//! Locating a SIP server (RFC 3263) as pure decisions: the core's half of DNS. The
//! runtime's resolver (`runtime::dns`) performs the lookups; this module decides which
//! to ask, in which order to try what they return, how long to keep it, and which
//! address to try when (Happy Eyeballs, RFC 8305). No IO, no clock: time is passed in,
//! randomness comes from the core's seeded [`Rng`](crate::rng::Rng).
//!
//! Bottom first: [`records`] (the results, plain data shared with the resolver), `name`
//! (names as compared), [`lookup`] (a query and its answer or failure), [`spec`] (what
//! the configuration asks for), [`naptr`] (the NAPTR filter), [`srv_order`] (RFC 2782
//! order), [`eyeballs`] (address order and the attempt schedule), [`cache`] (TTLs,
//! negative and stale answers), [`error`] and [`locator`] (one server's state machine).
//!
//! The engine uses it in `engine/locate.rs`: one locator per server, the lookups as
//! outputs, every address of every target tried, Happy Eyeballs' head start
//! (`docs/dns.md`, "The core's half: locating a server"). `eyeballs::decide` is not used
//! there: the engine keeps one head-start timer per attempt instead.

pub mod cache;
pub mod error;
pub mod eyeballs;
pub mod locator;
pub mod lookup;
mod name;
pub mod naptr;
pub mod records;
pub mod spec;
pub mod srv_order;

pub use cache::{CachePolicy, DnsCache, Served};
pub use error::LocateError;
pub use eyeballs::HappyEyeballs;
pub use locator::{LocatorConfig, ServerLocator, Target};
pub use lookup::{AnyAnswer, LookupFailed, Query};
pub use spec::{DnsQueryType, SIPS_PORT, ServerSpec};

#[cfg(test)]
mod locator_tests;
