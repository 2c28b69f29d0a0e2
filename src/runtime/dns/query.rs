//! The question of one lookup and the query message that asks it. Pure: the id is given
//! by the caller, who draws it from the OS random source for every exchange.

use super::error::DnsError;
use super::records::QueryType;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

/// An absolute name and the record type asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Question {
    pub(crate) name: Name,
    pub(crate) kind: QueryType,
}

impl Question {
    /// The question for `name`, taken as absolute whether or not it ends with a dot.
    /// No search domain is ever appended: the core asks for names from the
    /// configuration and from SRV and NAPTR records, which are all fully qualified, and
    /// a search list could turn a typo into a lookup of somebody else's name.
    pub(crate) fn new(name: &str, kind: QueryType) -> Result<Question, DnsError> {
        let bad = |reason: String| DnsError::BadName { name: name.to_string(), reason };
        let relative = name.strip_suffix('.').unwrap_or(name);
        if relative.is_empty() {
            return Err(bad("empty".into()));
        }
        // ASCII labels as written (the case kept), since host names in SIP are ASCII;
        // `from_ascii` checks the label and name lengths.
        let mut parsed = Name::from_ascii(relative).map_err(|e| bad(e.to_string()))?;
        parsed.set_fqdn(true);
        Ok(Question { name: parsed, kind })
    }

    pub(crate) fn record_type(&self) -> RecordType {
        record_type(self.kind)
    }

    /// The query message: one question of class IN, recursion desired (the servers of
    /// resolv.conf are recursive resolvers), no EDNS. Without EDNS a server sends at most
    /// 512 bytes over UDP and sets TC when the answer is longer, and the exchange then
    /// asks again over TCP; that works with every server, where EDNS needs a fallback for
    /// the old ones that answer it with FORMERR.
    pub(crate) fn encode(&self, id: u16) -> Result<Vec<u8>, DnsError> {
        let mut message = Message::new(id, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(self.name.clone(), self.record_type()));
        message.to_vec().map_err(|e| DnsError::BadName { name: self.name.to_ascii(), reason: e.to_string() })
    }
}

pub(crate) fn record_type(kind: QueryType) -> RecordType {
    match kind {
        QueryType::A => RecordType::A,
        QueryType::Aaaa => RecordType::AAAA,
        QueryType::Srv => RecordType::SRV,
        QueryType::Naptr => RecordType::NAPTR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::DNSClass;

    #[test]
    fn a_query_asks_one_question_with_recursion() {
        let question = Question::new("_sips._tcp.Example.com", QueryType::Srv).unwrap();
        let bytes = question.encode(0xbeef).unwrap();
        let message = Message::from_vec(&bytes).unwrap();
        assert_eq!(message.metadata.id, 0xbeef);
        assert_eq!(message.metadata.message_type, MessageType::Query);
        assert_eq!(message.metadata.op_code, OpCode::Query);
        assert!(message.metadata.recursion_desired);
        assert!(message.edns.is_none());
        assert_eq!(message.queries.len(), 1);
        let q = &message.queries[0];
        assert_eq!(q.query_type(), RecordType::SRV);
        assert_eq!(q.query_class(), DNSClass::IN);
        // Absolute, the case as written.
        assert_eq!(q.name().to_ascii(), "_sips._tcp.Example.com.");
        assert!(message.answers.is_empty() && message.authorities.is_empty() && message.additionals.is_empty());
    }

    #[test]
    fn a_trailing_dot_changes_nothing() {
        let a = Question::new("sip.example.com.", QueryType::A).unwrap();
        let b = Question::new("sip.example.com", QueryType::A).unwrap();
        assert_eq!(a.encode(1).unwrap(), b.encode(1).unwrap());
    }

    #[test]
    fn each_type_is_asked_as_its_record_type() {
        for (kind, rtype) in [
            (QueryType::A, RecordType::A),
            (QueryType::Aaaa, RecordType::AAAA),
            (QueryType::Srv, RecordType::SRV),
            (QueryType::Naptr, RecordType::NAPTR),
        ] {
            let bytes = Question::new("example.com", kind).unwrap().encode(7).unwrap();
            assert_eq!(Message::from_vec(&bytes).unwrap().queries[0].query_type(), rtype);
        }
    }

    #[test]
    fn names_that_cannot_be_asked_are_refused() {
        let long_label = "a".repeat(64);
        let long_name = vec!["abcdefghi"; 30].join(".");
        for name in ["", ".", "a..b", long_label.as_str(), long_name.as_str()] {
            let result = Question::new(name, QueryType::A);
            assert!(matches!(result, Err(DnsError::BadName { .. })), "{name:?}: {result:?}");
        }
    }
}
