//! What a lookup gives back: typed records with their TTLs, or a negative answer. Plain
//! data with no DNS library type in it, shared by the core, which decides from these
//! values, and the runtime's resolver, which produces them.

use core::fmt;
use core::net::IpAddr;

/// The record types the resolver asks for: the ones RFC 3263 needs to find a SIP server.
/// Ordered only so that it can key the core's sorted maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QueryType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// Service records (RFC 2782), such as `_sips._tcp.example.com`.
    Srv,
    /// Naming authority pointers (RFC 3403), such as the `SIPS+D2T` rule of a domain.
    Naptr,
}

impl fmt::Display for QueryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueryType::A => "A",
            QueryType::Aaaa => "AAAA",
            QueryType::Srv => "SRV",
            QueryType::Naptr => "NAPTR",
        })
    }
}

/// An address record (A or AAAA). `ttl` is in seconds, as the server sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressRecord {
    /// The address.
    pub addr: IpAddr,
    /// Seconds the record may be used for.
    pub ttl: u32,
}

/// An address the server volunteered in the additional section (typically the targets of
/// an SRV answer), with the name it belongs to. The core may use it to save an A/AAAA
/// query, as `sip dns query type 1` does ("SRV for port, and usually the address in the
/// additional section").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostAddress {
    /// The owner name, absolute, without the trailing dot.
    pub host: String,
    /// One of its addresses.
    pub addr: IpAddr,
    /// Seconds the record may be used for.
    pub ttl: u32,
}

/// An SRV record (RFC 2782). `target` is absolute and written without the trailing dot,
/// except the root `"."`, which means the service is decidedly not offered at this name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// The share among records of equal priority.
    pub weight: u16,
    /// The port the service listens on.
    pub port: u16,
    /// The host offering the service.
    pub target: String,
    /// Seconds the record may be used for.
    pub ttl: u32,
}

/// A NAPTR record (RFC 3403). The character strings are decoded as UTF-8 with invalid
/// bytes replaced, since they are ASCII in every SIP use; `replacement` is written like
/// an SRV target (`"."` when the rule uses `regexp` instead).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NaptrRecord {
    /// Lower is used first; records of a higher order only when no lower one applies.
    pub order: u16,
    /// Lower is preferred among records of equal order.
    pub preference: u16,
    /// `s` for an SRV name in `replacement`, `a` for an address name, empty for a
    /// non-terminal rule.
    pub flags: String,
    /// Such as `SIPS+D2T` (SIP over TLS over TCP).
    pub services: String,
    /// A substitution expression, empty in SIP's records.
    pub regexp: String,
    /// The next name to look up.
    pub replacement: String,
    /// Seconds the record may be used for.
    pub ttl: u32,
}

/// Why a name has no records of the type asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NegativeKind {
    /// NXDOMAIN: the name does not exist at all.
    NxDomain,
    /// NODATA: the name exists but has no record of this type.
    NoData,
}

/// A negative answer, which is an answer and not a failure: the server was reached and
/// says there is nothing. `ttl` is how long it may be cached (RFC 2308 §5: the smaller of
/// the SOA record's TTL and its MINIMUM field), or `None` when the reply carried no SOA,
/// in which case RFC 2308 says not to cache it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Negative {
    /// NXDOMAIN or NODATA.
    pub kind: NegativeKind,
    /// Seconds the answer may be cached, if at all.
    pub ttl: Option<u32>,
}

/// The outcome of one lookup that reached a server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Answer<T> {
    /// At least one record of the type asked (found at the name or at the end of its
    /// CNAME chain), and the addresses of the additional section.
    Records {
        /// The records, in the server's order.
        records: Vec<T>,
        /// Addresses volunteered in the additional section, whatever their name.
        additional: Vec<HostAddress>,
    },
    /// NXDOMAIN or NODATA.
    Negative(Negative),
}

impl<T> Answer<T> {
    /// The records, or none for a negative answer.
    pub fn records(&self) -> &[T] {
        match self {
            Answer::Records { records, .. } => records,
            Answer::Negative(_) => &[],
        }
    }
}
