//! The reply judge on replies built with hickory-proto, and on hostile bytes.

use super::*;
use crate::runtime::dns::records::QueryType;
use hickory_proto::op::Query;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NAPTR, SOA, SRV};
use proptest::prelude::*;
use std::str::FromStr;

const ID: u16 = 0x1234;

fn name(text: &str) -> Name {
    Name::from_str(text).unwrap()
}

fn question(text: &str, kind: QueryType) -> Question {
    Question::new(text, kind).unwrap()
}

/// A reply to `question` with `ID`, recursion available, as a resolver sends it.
fn reply(question: &Question, rcode: ResponseCode) -> Message {
    let mut message = Message::response(ID, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.metadata.recursion_available = true;
    message.metadata.response_code = rcode;
    message.add_query(Query::query(question.name.clone(), question.record_type()));
    message
}

fn record(owner: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(name(owner), ttl, data)
}

fn soa(ttl: u32, minimum: u32) -> Record {
    let data = SOA::new(name("ns.example.com."), name("hostmaster.example.com."), 1, 3600, 600, 86400, minimum);
    record("example.com.", ttl, RData::SOA(data))
}

fn judged<T: FromRData>(message: &Message, question: &Question) -> Verdict<T> {
    judge(&message.to_vec().unwrap(), ID, question)
}

#[test]
fn addresses_come_with_their_ttls() {
    let q = question("sip.example.com", QueryType::A);
    let mut m = reply(&q, ResponseCode::NoError);
    m.add_answer(record("sip.example.com.", 300, RData::A(A::new(192, 0, 2, 10))));
    m.add_answer(record("sip.example.com.", 299, RData::A(A::new(192, 0, 2, 11))));
    let expected = vec![
        AddressRecord { addr: "192.0.2.10".parse().unwrap(), ttl: 300 },
        AddressRecord { addr: "192.0.2.11".parse().unwrap(), ttl: 299 },
    ];
    assert_eq!(judged(&m, &q), Verdict::Answer(Answer::Records { records: expected, additional: vec![] }));

    let q = question("sip.example.com", QueryType::Aaaa);
    let mut m = reply(&q, ResponseCode::NoError);
    m.add_answer(record("sip.example.com.", 600, RData::AAAA(AAAA::from_str("2001:db8::10").unwrap())));
    let records = vec![AddressRecord { addr: "2001:db8::10".parse().unwrap(), ttl: 600 }];
    assert_eq!(judged(&m, &q), Verdict::Answer(Answer::Records { records, additional: vec![] }));
}

#[test]
fn srv_records_are_read_in_full_with_the_additional_addresses() {
    let q = question("_sips._tcp.example.com", QueryType::Srv);
    let mut m = reply(&q, ResponseCode::NoError);
    m.add_answer(record("_sips._tcp.example.com.", 120, RData::SRV(SRV::new(10, 60, 5061, name("sip1.example.com.")))));
    m.add_answer(record("_sips._tcp.example.com.", 120, RData::SRV(SRV::new(20, 0, 5062, name(".")))));
    m.add_additional(record("sip1.example.com.", 30, RData::A(A::new(192, 0, 2, 1))));
    // Whatever else the additional section holds is not an address.
    m.add_additional(record("sip1.example.com.", 30, RData::CNAME(CNAME(name("x.example.com.")))));
    let Verdict::Answer(Answer::Records { records, additional }) = judged::<SrvRecord>(&m, &q) else { panic!() };
    assert_eq!(
        records,
        [
            SrvRecord { priority: 10, weight: 60, port: 5061, target: "sip1.example.com".into(), ttl: 120 },
            SrvRecord { priority: 20, weight: 0, port: 5062, target: ".".into(), ttl: 120 },
        ]
    );
    assert_eq!(
        additional,
        [HostAddress { host: "sip1.example.com".into(), addr: "192.0.2.1".parse().unwrap(), ttl: 30 }]
    );
}

#[test]
fn naptr_records_are_read_in_full() {
    let q = question("example.com", QueryType::Naptr);
    let mut m = reply(&q, ResponseCode::NoError);
    let naptr = NAPTR::new(
        10,
        50,
        b"s".to_vec().into(),
        b"SIPS+D2T".to_vec().into(),
        b"".to_vec().into(),
        name("_sips._tcp.example.com."),
    );
    m.add_answer(record("example.com.", 3600, RData::NAPTR(naptr)));
    let Verdict::Answer(Answer::Records { records, .. }) = judged::<NaptrRecord>(&m, &q) else { panic!() };
    assert_eq!(
        records,
        [NaptrRecord {
            order: 10,
            preference: 50,
            flags: "s".into(),
            services: "SIPS+D2T".into(),
            regexp: String::new(),
            replacement: "_sips._tcp.example.com".into(),
            ttl: 3600,
        }]
    );
}

#[test]
fn records_at_the_end_of_a_cname_chain_count_and_last_no_longer_than_the_chain() {
    let q = question("sip.example.com", QueryType::A);
    let mut m = reply(&q, ResponseCode::NoError);
    m.add_answer(record("sip.example.com.", 60, RData::CNAME(CNAME(name("edge.example.net.")))));
    m.add_answer(record("edge.example.net.", 600, RData::CNAME(CNAME(name("host.example.net.")))));
    m.add_answer(record("host.example.net.", 300, RData::A(A::new(192, 0, 2, 7))));
    // Not on the chain: a record nobody asked for is not taken.
    m.add_answer(record("elsewhere.example.org.", 300, RData::A(A::new(203, 0, 113, 1))));
    let records = vec![AddressRecord { addr: "192.0.2.7".parse().unwrap(), ttl: 60 }];
    assert_eq!(judged(&m, &q), Verdict::Answer(Answer::Records { records, additional: vec![] }));
}

#[test]
fn a_cname_loop_ends() {
    let q = question("a.example.com", QueryType::A);
    let mut m = reply(&q, ResponseCode::NoError);
    m.add_answer(record("a.example.com.", 60, RData::CNAME(CNAME(name("b.example.com.")))));
    m.add_answer(record("b.example.com.", 60, RData::CNAME(CNAME(name("a.example.com.")))));
    let negative = Negative { kind: NegativeKind::NoData, ttl: None };
    assert_eq!(judged::<AddressRecord>(&m, &q), Verdict::Answer(Answer::Negative(negative)));
}

#[test]
fn names_compare_without_case() {
    let q = question("SIP.Example.COM", QueryType::A);
    let mut m = reply(&question("sip.example.com", QueryType::A), ResponseCode::NoError);
    m.add_answer(record("Sip.EXAMPLE.com.", 5, RData::A(A::new(192, 0, 2, 1))));
    assert_eq!(judged::<AddressRecord>(&m, &q).records_len(), Some(1));
}

#[test]
fn nxdomain_is_a_negative_answer_cached_for_the_smaller_of_the_soa_ttl_and_minimum() {
    let q = question("nowhere.example.com", QueryType::A);
    let mut m = reply(&q, ResponseCode::NXDomain);
    m.add_authority(soa(900, 60));
    let negative = Negative { kind: NegativeKind::NxDomain, ttl: Some(60) };
    assert_eq!(judged::<AddressRecord>(&m, &q), Verdict::Answer(Answer::Negative(negative)));

    let mut m = reply(&q, ResponseCode::NXDomain);
    m.add_authority(soa(30, 3600));
    let negative = Negative { kind: NegativeKind::NxDomain, ttl: Some(30) };
    assert_eq!(judged::<AddressRecord>(&m, &q), Verdict::Answer(Answer::Negative(negative)));

    // Without an SOA, RFC 2308 says not to cache.
    let m = reply(&q, ResponseCode::NXDomain);
    let negative = Negative { kind: NegativeKind::NxDomain, ttl: None };
    assert_eq!(judged::<AddressRecord>(&m, &q), Verdict::Answer(Answer::Negative(negative)));
}

#[test]
fn no_record_of_the_type_is_nodata() {
    let q = question("sip.example.com", QueryType::Aaaa);
    let mut m = reply(&q, ResponseCode::NoError);
    // An A record answers another question than AAAA.
    m.add_answer(record("sip.example.com.", 300, RData::A(A::new(192, 0, 2, 10))));
    m.add_authority(soa(900, 120));
    let negative = Negative { kind: NegativeKind::NoData, ttl: Some(120) };
    assert_eq!(judged::<AddressRecord>(&m, &q), Verdict::Answer(Answer::Negative(negative)));
}

#[test]
fn error_codes_are_failures() {
    let q = question("sip.example.com", QueryType::A);
    let cases = [
        (ResponseCode::ServFail, Problem::ServFail),
        (ResponseCode::Refused, Problem::Refused),
        (ResponseCode::NotImp, Problem::OtherRcode { code: 4, name: "Not Implemented".into() }),
    ];
    for (rcode, problem) in cases {
        let m = reply(&q, rcode);
        assert_eq!(judged::<AddressRecord>(&m, &q), Verdict::Failed(problem.clone()));
    }
    // FORMERR without the question: still this server's answer to us.
    let mut m = reply(&q, ResponseCode::FormErr);
    m.queries.clear();
    assert!(matches!(judged::<AddressRecord>(&m, &q), Verdict::Failed(Problem::OtherRcode { code: 1, .. })));
}

#[test]
fn truncation_asks_for_tcp() {
    let q = question("sip.example.com", QueryType::A);
    let mut m = reply(&q, ResponseCode::NoError);
    m.metadata.truncation = true;
    assert_eq!(judged::<AddressRecord>(&m, &q), Verdict::Truncated);
}

#[test]
fn what_does_not_answer_this_query_is_ignored() {
    let q = question("sip.example.com", QueryType::A);
    let mut good = reply(&q, ResponseCode::NoError);
    good.add_answer(record("sip.example.com.", 300, RData::A(A::new(192, 0, 2, 10))));

    let mut other_id = good.clone();
    other_id.metadata.id = ID ^ 1;
    assert_eq!(judged::<AddressRecord>(&other_id, &q), Verdict::Ignore("another query id"));

    let mut not_response = good.clone();
    not_response.metadata.message_type = MessageType::Query;
    assert_eq!(judged::<AddressRecord>(&not_response, &q), Verdict::Ignore("not a response"));

    let mut update = good.clone();
    update.metadata.op_code = OpCode::Update;
    assert!(matches!(judged::<AddressRecord>(&update, &q), Verdict::Ignore(_)));

    for (other_name, other_type) in [("evil.example.com", QueryType::A), ("sip.example.com", QueryType::Aaaa)] {
        let mut other = good.clone();
        other.queries = vec![Query::query(name(other_name), super::super::query::record_type(other_type))];
        assert_eq!(judged::<AddressRecord>(&other, &q), Verdict::Ignore("another question"));
    }

    let mut no_question = good.clone();
    no_question.queries.clear();
    assert_eq!(judged::<AddressRecord>(&no_question, &q), Verdict::Ignore("another question"));

    let mut two_questions = good.clone();
    two_questions.add_query(Query::query(name("sip.example.com."), RecordType::A));
    assert_eq!(judged::<AddressRecord>(&two_questions, &q), Verdict::Ignore("another question"));

    assert_eq!(judge::<AddressRecord>(&[0x12], ID, &q), Verdict::Ignore("shorter than a DNS header"));
    assert_eq!(judged::<AddressRecord>(&good, &q).records_len(), Some(1));
}

#[test]
fn a_reply_with_our_id_that_does_not_decode_is_malformed() {
    let q = question("sip.example.com", QueryType::A);
    let mut m = reply(&q, ResponseCode::NoError);
    m.add_answer(record("sip.example.com.", 300, RData::A(A::new(192, 0, 2, 10))));
    let bytes = m.to_vec().unwrap();
    // Cut inside the answer record.
    let cut = &bytes[..bytes.len() - 2];
    assert!(matches!(judge::<AddressRecord>(cut, ID, &q), Verdict::Failed(Problem::Malformed(_))));
}

impl<T> Verdict<T> {
    fn records_len(&self) -> Option<usize> {
        match self {
            Verdict::Answer(answer) => Some(answer.records().len()),
            _ => None,
        }
    }
}

/// A valid SRV reply with an additional address, to mutate.
fn srv_reply_bytes() -> (Question, Vec<u8>) {
    let q = question("_sips._tcp.example.com", QueryType::Srv);
    let mut m = reply(&q, ResponseCode::NoError);
    m.add_answer(record("_sips._tcp.example.com.", 120, RData::SRV(SRV::new(10, 60, 5061, name("sip1.example.com.")))));
    m.add_additional(record("sip1.example.com.", 30, RData::A(A::new(192, 0, 2, 1))));
    m.add_authority(soa(900, 60));
    (q, m.to_vec().unwrap())
}

proptest! {
    #[test]
    fn no_bytes_make_the_judge_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let q = question("sip.example.com", QueryType::Naptr);
        let _ = judge::<NaptrRecord>(&bytes, ID, &q);
        // With our id in front, the decoder is reached.
        let mut ours = bytes.clone();
        if ours.len() >= 3 {
            ours[..2].copy_from_slice(&ID.to_be_bytes());
            ours[2] |= 0x80;
        }
        let _ = judge::<NaptrRecord>(&ours, ID, &q);
        let _ = judge::<SrvRecord>(&ours, ID, &q);
        let _ = judge::<AddressRecord>(&ours, ID, &q);
    }

    #[test]
    fn no_damage_to_a_real_reply_makes_the_judge_panic(
        cut in 0usize..200,
        flips in proptest::collection::vec((12usize..200, any::<u8>()), 0..8),
    ) {
        let (q, mut bytes) = srv_reply_bytes();
        for (at, value) in flips {
            if let Some(byte) = bytes.get_mut(at) {
                *byte = value;
            }
        }
        bytes.truncate(cut.max(12));
        let _ = judge::<SrvRecord>(&bytes, ID, &q);
    }
}
