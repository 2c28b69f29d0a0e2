//! Why a server could not be located: each reason names the name and, where one query
//! is to blame, its type, so that the log says what to fix in DNS or in the
//! configuration.

use super::records::QueryType;

/// Why locating a server gave no target.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum LocateError {
    /// The configured host is neither an IP address nor a name DNS can carry.
    #[error("{name:?} is neither an IP address nor a name DNS can look up")]
    InvalidName {
        /// The host as configured.
        name: String,
    },
    /// No DNS server answered this query, and no earlier answer to it was kept.
    #[error("no DNS answer for {name} {qtype}: {reason}")]
    LookupFailed {
        /// The name asked.
        name: String,
        /// The record type asked.
        qtype: QueryType,
        /// What the resolver said.
        reason: String,
    },
    /// The SRV records of this name say SIP over TLS is not offered there (a lone `"."`
    /// target, RFC 2782), or none of them can be used (port 0, a bad target).
    #[error("{name} SRV: SIP over TLS is not offered there (no usable SRV record)")]
    NotOffered {
        /// The SRV name.
        name: String,
    },
    /// No target has an address: every A and AAAA answer was negative. `name` is the
    /// first target's.
    #[error("{name} has no A or AAAA record")]
    NoAddresses {
        /// The host name of the first target.
        name: String,
    },
}

impl LocateError {
    /// The name the error is about.
    pub fn name(&self) -> &str {
        match self {
            LocateError::InvalidName { name }
            | LocateError::LookupFailed { name, .. }
            | LocateError::NotOffered { name }
            | LocateError::NoAddresses { name } => name,
        }
    }

    /// The type of the query to blame, if a single one is: the failed query; SRV for a
    /// service not offered; none for an invalid name or for addresses (A and AAAA both).
    pub fn qtype(&self) -> Option<QueryType> {
        match self {
            LocateError::LookupFailed { qtype, .. } => Some(*qtype),
            LocateError::NotOffered { .. } => Some(QueryType::Srv),
            LocateError::InvalidName { .. } | LocateError::NoAddresses { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LocateError;
    use crate::dns::records::QueryType;

    #[test]
    fn each_error_names_what_failed() {
        let failed = LocateError::LookupFailed {
            name: "_sips._tcp.example.com".into(),
            qtype: QueryType::Srv,
            reason: "192.0.2.53:53 over UDP: no reply within 5000 ms".into(),
        };
        assert_eq!(
            failed.to_string(),
            "no DNS answer for _sips._tcp.example.com SRV: 192.0.2.53:53 over UDP: no reply within 5000 ms"
        );
        assert_eq!((failed.name(), failed.qtype()), ("_sips._tcp.example.com", Some(QueryType::Srv)));
        let none = LocateError::NoAddresses { name: "sip.example.com".into() };
        assert_eq!(none.to_string(), "sip.example.com has no A or AAAA record");
        assert_eq!(none.qtype(), None);
        let not = LocateError::NotOffered { name: "_sips._tcp.example.com".into() };
        assert_eq!(not.qtype(), Some(QueryType::Srv));
        assert!(not.to_string().starts_with("_sips._tcp.example.com SRV: "));
        let bad = LocateError::InvalidName { name: "a b".into() };
        assert_eq!(bad.to_string(), "\"a b\" is neither an IP address nor a name DNS can look up");
    }
}
