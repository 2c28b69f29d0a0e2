//! Locating a SIP server (RFC 3263) as pure decisions: the core's half of DNS. The
//! runtime's resolver (`runtime::dns`) performs the lookups; the results it gives back
//! are the plain data of [`records`], which the core takes as inputs.

pub mod cache;
pub mod eyeballs;
pub mod lookup;
mod name;
pub mod naptr;
pub mod records;
pub mod spec;
pub mod srv_order;

pub use cache::{CachePolicy, DnsCache, Served};
pub use eyeballs::HappyEyeballs;
pub use lookup::{AnyAnswer, LookupFailed, Query};
pub use spec::{DnsQueryType, ServerSpec};
