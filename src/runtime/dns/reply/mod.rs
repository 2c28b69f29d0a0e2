//! Judging a reply against the query it should answer, and turning its records into
//! typed values. Pure, and fed with bytes from the network: nothing here may panic on
//! any input, so every field is read through hickory-proto's checked decoder and every
//! mismatch is a value, never an `unwrap`.

use super::error::Problem;
use super::query::Question;
use super::records::{AddressRecord, Answer, HostAddress, NaptrRecord, Negative, NegativeKind, SrvRecord};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// What to do with one message received for a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict<T> {
    /// Not a reply to this query (another id, not a response, another question): a stale
    /// or spoofed datagram. The exchange keeps waiting for the real reply.
    Ignore(&'static str),
    /// The server set TC: the answer did not fit, ask again over TCP.
    Truncated,
    /// The server answered, with records or a negative answer.
    Answer(Answer<T>),
    /// The server answered with an error, or with something unusable.
    Failed(Problem),
}

/// A typed record built from one resource record's data.
pub(crate) trait FromRData: Sized {
    fn from_rdata(data: &RData, ttl: u32) -> Option<Self>;
}

impl FromRData for AddressRecord {
    fn from_rdata(data: &RData, ttl: u32) -> Option<Self> {
        match data {
            RData::A(a) => Some(AddressRecord { addr: a.0.into(), ttl }),
            RData::AAAA(aaaa) => Some(AddressRecord { addr: aaaa.0.into(), ttl }),
            _ => None,
        }
    }
}

impl FromRData for SrvRecord {
    fn from_rdata(data: &RData, ttl: u32) -> Option<Self> {
        let RData::SRV(srv) = data else { return None };
        Some(SrvRecord {
            priority: srv.priority,
            weight: srv.weight,
            port: srv.port,
            target: host_text(&srv.target),
            ttl,
        })
    }
}

impl FromRData for NaptrRecord {
    fn from_rdata(data: &RData, ttl: u32) -> Option<Self> {
        let RData::NAPTR(naptr) = data else { return None };
        Some(NaptrRecord {
            order: naptr.order,
            preference: naptr.preference,
            flags: String::from_utf8_lossy(&naptr.flags).into_owned(),
            services: String::from_utf8_lossy(&naptr.services).into_owned(),
            regexp: String::from_utf8_lossy(&naptr.regexp).into_owned(),
            replacement: host_text(&naptr.replacement),
            ttl,
        })
    }
}

/// A name as the records module writes it: absolute, without the trailing dot, and the
/// root as `"."`.
pub(crate) fn host_text(name: &Name) -> String {
    if name.is_root() {
        return ".".into();
    }
    let text = name.to_ascii();
    match text.strip_suffix('.') {
        Some(relative) => relative.to_string(),
        None => text,
    }
}

/// The length of a DNS header; anything shorter cannot even carry an id.
const HEADER_LEN: usize = 12;

/// How many CNAMEs a chain inside one reply may have. A recursive resolver hands back
/// the whole chain; this bound only stops a reply whose CNAMEs loop.
const MAX_CHAIN: usize = 16;

/// Judges `bytes` as the reply to the query with `id` asking `question`.
pub(crate) fn judge<T: FromRData>(bytes: &[u8], id: u16, question: &Question) -> Verdict<T> {
    // The id and the QR bit are looked at before decoding, so that a datagram which is
    // not our reply is ignored even when it does not decode, rather than ending the
    // exchange as "malformed".
    let Some(header) = bytes.get(..HEADER_LEN) else { return Verdict::Ignore("shorter than a DNS header") };
    if u16::from_be_bytes([header[0], header[1]]) != id {
        return Verdict::Ignore("another query id");
    }
    if header[2] & 0x80 == 0 {
        return Verdict::Ignore("not a response");
    }
    let message = match Message::from_vec(bytes) {
        Ok(message) => message,
        Err(e) => return Verdict::Failed(Problem::Malformed(e.to_string())),
    };
    let meta = &message.metadata;
    if meta.message_type != MessageType::Response || meta.op_code != OpCode::Query {
        return Verdict::Ignore("not a response to a standard query");
    }
    let rcode = meta.response_code;
    let asks_ours = message.queries.len() == 1 && {
        let q = &message.queries[0];
        // `Name`'s equality ignores case, as DNS names compare.
        q.name() == &question.name && q.query_type() == question.record_type() && q.query_class() == DNSClass::IN
    };
    // Servers may leave the question out of an error reply (FORMERR in particular). Such
    // a reply is taken, since an error only sends the lookup on to the next server and
    // cannot plant a record; an answer must repeat our question.
    let is_error = !matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain);
    let error_without_question = is_error && message.queries.is_empty();
    if !(asks_ours || error_without_question) {
        return Verdict::Ignore("another question");
    }
    if meta.truncation {
        return Verdict::Truncated;
    }
    match rcode {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => {
            return Verdict::Answer(Answer::Negative(Negative {
                kind: NegativeKind::NxDomain,
                ttl: negative_ttl(&message),
            }));
        }
        ResponseCode::ServFail => return Verdict::Failed(Problem::ServFail),
        ResponseCode::Refused => return Verdict::Failed(Problem::Refused),
        other => {
            return Verdict::Failed(Problem::OtherRcode { code: u16::from(other), name: other.to_str().to_string() });
        }
    }
    let records = answers::<T>(&message, question);
    if records.is_empty() {
        return Verdict::Answer(Answer::Negative(Negative { kind: NegativeKind::NoData, ttl: negative_ttl(&message) }));
    }
    Verdict::Answer(Answer::Records { records, additional: additional_addresses(&message) })
}

/// The answer records of the type asked, at the name asked or at the end of its CNAME
/// chain. A record reached through CNAMEs gets at most the smallest TTL of the chain,
/// because it answers the name asked only as long as every link holds.
fn answers<T: FromRData>(message: &Message, question: &Question) -> Vec<T> {
    let wanted = question.record_type();
    let mut owners = vec![question.name.clone()];
    let mut chain_ttl = u32::MAX;
    while owners.len() <= MAX_CHAIN {
        let Some(last) = owners.last() else { break };
        let next = message.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if in_class(r) && &r.name == last => Some((target.0.clone(), r.ttl)),
            _ => None,
        });
        match next {
            Some((target, ttl)) if !owners.contains(&target) => {
                chain_ttl = chain_ttl.min(ttl);
                owners.push(target);
            }
            _ => break,
        }
    }
    message
        .answers
        .iter()
        .filter(|r| in_class(r) && r.record_type() == wanted && owners.contains(&r.name))
        .filter_map(|r| T::from_rdata(&r.data, r.ttl.min(chain_ttl)))
        .collect()
}

/// How long a negative answer may be cached (RFC 2308 §5): the smaller of the SOA
/// record's own TTL and its MINIMUM field, from the authority section. `None` without an
/// SOA: such an answer should not be cached at all.
fn negative_ttl(message: &Message) -> Option<u32> {
    message.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) if in_class(r) => Some(r.ttl.min(soa.minimum)),
        _ => None,
    })
}

/// The A and AAAA records of the additional section, by owner name.
fn additional_addresses(message: &Message) -> Vec<HostAddress> {
    message
        .additionals
        .iter()
        .filter(|r| in_class(r) && matches!(r.record_type(), RecordType::A | RecordType::AAAA))
        .filter_map(|r| {
            let address = AddressRecord::from_rdata(&r.data, r.ttl)?;
            Some(HostAddress { host: host_text(&r.name), addr: address.addr, ttl: address.ttl })
        })
        .collect()
}

fn in_class(record: &Record) -> bool {
    record.dns_class == DNSClass::IN
}

#[cfg(test)]
mod tests;
