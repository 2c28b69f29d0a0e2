//! What the configuration says about one server, and the lookups it calls for: the rules
//! of `sip dns query type` (Aastra) read with RFC 3263 §4, for a phone whose transport
//! is always TLS over TCP.
//!
//! - An IP address literal is used as it is (port 0 means 5061).
//! - A name with an explicit port: A and AAAA on the name, whatever the query type.
//! - A name with port 0, by query type: 0, A and AAAA on the name with port 5061;
//!   1, SRV on `_sips._tcp.<name>`, then A and AAAA; 2, NAPTR on the name first for
//!   the SRV name, then SRV, then A and AAAA.

use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;

use super::name;

/// The port of SIP over TLS when none is given (RFC 3263 §4.2).
pub const SIPS_PORT: u16 = 5061;

/// The DNS procedure of `sip dns query type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DnsQueryType {
    /// `0`: A and AAAA records of the configured name only.
    AOnly = 0,
    /// `1` (the default): SRV records for the port and the targets, then A and AAAA for
    /// the targets whose addresses did not come with the SRV answer.
    #[default]
    SrvAndA = 1,
    /// `2`: NAPTR records first, to find the SRV name; then as `1`.
    NaptrSrvAndA = 2,
}

impl DnsQueryType {
    /// The query type written as the number `value`, if it is one of 0, 1 or 2.
    pub fn from_number(value: i64) -> Option<DnsQueryType> {
        match value {
            0 => Some(DnsQueryType::AOnly),
            1 => Some(DnsQueryType::SrvAndA),
            2 => Some(DnsQueryType::NaptrSrvAndA),
            _ => None,
        }
    }

    /// The number the configuration writes for it.
    pub fn number(self) -> u8 {
        self as u8
    }
}

/// A value of `sip dns query type` that is not 0, 1 or 2.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("sip dns query type must be 0, 1 or 2, not {0:?}")]
pub struct BadDnsQueryType(pub String);

impl FromStr for DnsQueryType {
    type Err = BadDnsQueryType;

    /// The value as the configuration file writes it: an integer, blanks around it
    /// ignored.
    fn from_str(text: &str) -> Result<DnsQueryType, BadDnsQueryType> {
        text.trim().parse::<i64>().ok().and_then(DnsQueryType::from_number).ok_or_else(|| BadDnsQueryType(text.into()))
    }
}

impl fmt::Display for DnsQueryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// One configured server (the primary or the backup) as the locator needs it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerSpec {
    /// A host name or an IP address literal (IPv6 with or without brackets), as
    /// configured.
    pub host: String,
    /// The configured port; 0 means "not given".
    pub port: u16,
    /// The procedure for a name without a port.
    pub query_type: DnsQueryType,
}

/// The lookups a [`ServerSpec`] calls for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Plan {
    /// An IP address literal: no lookup at all.
    Literal {
        /// The address.
        addr: IpAddr,
        /// The port to connect to.
        port: u16,
    },
    /// A and AAAA queries on `host`, then connections to `port`.
    Addresses {
        /// The name to look up, normalized.
        host: String,
        /// The port to connect to.
        port: u16,
    },
    /// SRV on `_sips._tcp.<domain>` (after NAPTR when `naptr`), and A and AAAA on the
    /// targets; A and AAAA on `domain` itself with port 5061 if no SRV record exists.
    Service {
        /// The configured name, normalized.
        domain: String,
        /// Whether NAPTR records are asked first.
        naptr: bool,
    },
}

impl ServerSpec {
    /// The server at `host` and `port` (0: not given), located by `query_type`.
    pub fn new(host: impl Into<String>, port: u16, query_type: DnsQueryType) -> ServerSpec {
        ServerSpec { host: host.into(), port, query_type }
    }

    /// The configured address, if the host is an IP literal (brackets around IPv6
    /// allowed).
    pub fn literal(&self) -> Option<IpAddr> {
        let host = self.host.trim();
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        bare.parse().ok()
    }

    /// The lookups this server calls for, or `None` when the host is neither an IP
    /// address nor a name that DNS can carry (empty, blanks, a label too long).
    pub fn plan(&self) -> Option<Plan> {
        if let Some(addr) = self.literal() {
            return Some(Plan::Literal { addr, port: self.port_or_default() });
        }
        let host = name::normalize(&self.host);
        if !name::is_valid(&host) {
            return None;
        }
        Some(match (self.port, self.query_type) {
            (0, DnsQueryType::AOnly) => Plan::Addresses { host, port: SIPS_PORT },
            (0, DnsQueryType::SrvAndA) => Plan::Service { domain: host, naptr: false },
            (0, DnsQueryType::NaptrSrvAndA) => Plan::Service { domain: host, naptr: true },
            (port, _) => Plan::Addresses { host, port },
        })
    }

    /// The name the server's certificate is checked against: the configured host,
    /// never an SRV target (RFC 5922). For a name, normalized; for an address
    /// literal, the address as written by `IpAddr`'s `Display`.
    pub fn tls_name(&self) -> String {
        match self.literal() {
            Some(addr) => addr.to_string(),
            None => name::normalize(&self.host),
        }
    }

    fn port_or_default(&self) -> u16 {
        if self.port == 0 { SIPS_PORT } else { self.port }
    }
}

/// The SRV name of SIP over TLS at `domain`: `_sips._tcp.<domain>` (RFC 3263 §4.1 and
/// RFC 5630: TLS over TCP is the `_sips` service on `_tcp`; `_sip._tls` is not a
/// registered form). Asked whatever `sip send sips over tls` says, since the connection
/// is TLS either way; `docs/dns.md` gives the reasoning.
pub fn srv_name(domain: &str) -> String {
    format!("_sips._tcp.{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(host: &str, port: u16, qt: DnsQueryType) -> ServerSpec {
        ServerSpec::new(host, port, qt)
    }

    #[test]
    fn the_query_type_reads_the_configured_integer() {
        assert_eq!("0".parse(), Ok(DnsQueryType::AOnly));
        assert_eq!(" 1 ".parse(), Ok(DnsQueryType::SrvAndA));
        assert_eq!("2".parse(), Ok(DnsQueryType::NaptrSrvAndA));
        assert!("3".parse::<DnsQueryType>().is_err());
        assert!("-1".parse::<DnsQueryType>().is_err());
        assert!("one".parse::<DnsQueryType>().is_err());
        assert_eq!(DnsQueryType::default(), DnsQueryType::SrvAndA);
        for qt in [DnsQueryType::AOnly, DnsQueryType::SrvAndA, DnsQueryType::NaptrSrvAndA] {
            assert_eq!(DnsQueryType::from_number(i64::from(qt.number())), Some(qt));
            assert_eq!(qt.to_string().parse(), Ok(qt));
        }
        assert_eq!(DnsQueryType::from_number(i64::MAX), None);
    }

    #[test]
    fn an_address_literal_is_used_as_it_is() {
        for qt in [DnsQueryType::AOnly, DnsQueryType::SrvAndA, DnsQueryType::NaptrSrvAndA] {
            assert_eq!(
                spec("192.0.2.10", 0, qt).plan(),
                Some(Plan::Literal { addr: "192.0.2.10".parse().unwrap(), port: SIPS_PORT })
            );
            assert_eq!(
                spec("[2001:db8::1]", 5071, qt).plan(),
                Some(Plan::Literal { addr: "2001:db8::1".parse().unwrap(), port: 5071 })
            );
        }
        assert_eq!(spec("2001:db8::1", 0, DnsQueryType::SrvAndA).tls_name(), "2001:db8::1");
    }

    #[test]
    fn a_name_with_a_port_is_looked_up_as_addresses_only() {
        for qt in [DnsQueryType::AOnly, DnsQueryType::SrvAndA, DnsQueryType::NaptrSrvAndA] {
            assert_eq!(
                spec("SIP.example.com.", 5062, qt).plan(),
                Some(Plan::Addresses { host: "sip.example.com".into(), port: 5062 })
            );
        }
    }

    #[test]
    fn a_name_without_a_port_follows_the_query_type() {
        let host = "sip.example.com";
        assert_eq!(
            spec(host, 0, DnsQueryType::AOnly).plan(),
            Some(Plan::Addresses { host: host.into(), port: SIPS_PORT })
        );
        assert_eq!(
            spec(host, 0, DnsQueryType::SrvAndA).plan(),
            Some(Plan::Service { domain: host.into(), naptr: false })
        );
        assert_eq!(
            spec(host, 0, DnsQueryType::NaptrSrvAndA).plan(),
            Some(Plan::Service { domain: host.into(), naptr: true })
        );
        assert_eq!(spec("Sip.Example.com", 0, DnsQueryType::SrvAndA).tls_name(), host);
    }

    #[test]
    fn a_host_dns_cannot_carry_has_no_plan() {
        for host in ["", " ", "a..b", "sip example.com", "[2001:db8::1", "fe80::1%eth0"] {
            assert_eq!(spec(host, 0, DnsQueryType::SrvAndA).plan(), None, "{host:?}");
        }
    }

    #[test]
    fn the_srv_name_is_sips_over_tcp() {
        assert_eq!(srv_name("example.com"), "_sips._tcp.example.com");
    }
}
