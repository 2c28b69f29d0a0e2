//! The shell's half of "the core asks for lookups, the shell performs them": a
//! [`Query`] of the core answered from the hosts table, else by the DNS resolver, and
//! handed back as the core takes it ([`AnyAnswer`] or [`LookupFailed`]). It decides
//! nothing: what to ask, what to keep and for how long is the core's.

use super::hosts::{HostsTable, is_localhost};
use super::records::{Answer, Negative, NegativeKind, QueryType};
use super::resolver::Resolver;
use crate::dns::lookup::{AnyAnswer, LookupFailed, Query};

/// Where the shell's answers come from: the hosts table first, then the resolver.
#[derive(Clone, Debug)]
pub struct Lookups {
    hosts: HostsTable,
    resolver: Option<Resolver>,
}

impl Lookups {
    /// Lookups answered from `hosts`, and by `resolver` for what the table does not
    /// answer. `None` is a machine without a usable DNS server: only the table (and
    /// `localhost`) can then answer, and every other query fails saying so, rather than
    /// waiting on a server that is not there.
    pub fn new(hosts: HostsTable, resolver: Option<Resolver>) -> Lookups {
        Lookups { hosts, resolver }
    }

    /// Performs `query`: the hosts table for A and AAAA (as the C library's
    /// `hosts: files dns`), then the resolver. The future is `Send`, so that the driver's
    /// multi-threaded executor can run it.
    ///
    /// # Errors
    ///
    /// The table does not answer and there is no resolver, or no server answered (the
    /// resolver's error, in words). A negative answer is an answer, not an error.
    pub async fn perform(&self, query: &Query) -> Result<AnyAnswer, LookupFailed> {
        if let Some(answer) = self.hosts.lookup(&query.name, query.qtype) {
            tracing::debug!(%query, "answered from the hosts table");
            return Ok(AnyAnswer::Addresses(answer));
        }
        // RFC 6761 §6.3: every other type of query for a localhost name gets a negative
        // answer without asking DNS. NODATA without a TTL: not cached, costs nothing.
        if is_localhost(&query.name) {
            let none = Negative { kind: NegativeKind::NoData, ttl: None };
            return Ok(match query.qtype {
                QueryType::Srv => AnyAnswer::Srv(Answer::Negative(none)),
                QueryType::Naptr => AnyAnswer::Naptr(Answer::Negative(none)),
                QueryType::A | QueryType::Aaaa => AnyAnswer::Addresses(Answer::Negative(none)),
            });
        }
        let Some(resolver) = &self.resolver else {
            return Err(LookupFailed::new(format!("no DNS server to ask for {query}")));
        };
        let name = query.name.as_str();
        let answer = match query.qtype {
            QueryType::A => resolver.lookup_a(name).await.map(AnyAnswer::Addresses),
            QueryType::Aaaa => resolver.lookup_aaaa(name).await.map(AnyAnswer::Addresses),
            QueryType::Srv => resolver.lookup_srv(name).await.map(AnyAnswer::Srv),
            QueryType::Naptr => resolver.lookup_naptr(name).await.map(AnyAnswer::Naptr),
        };
        // `DnsError`'s text names the query and every server tried with what went wrong.
        answer.map_err(|error| LookupFailed::new(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    // Run with `async_io::block_on`, which `smol::block_on` re-exports: smol comes with
    // the command's features, not with `runtime`, and these tests must build without it.

    use super::*;
    use crate::runtime::dns::ResolverConfig;
    use crate::runtime::dns::hosts::HOSTS_TTL;
    use crate::runtime::dns::records::{AddressRecord, Answer, Negative, NegativeKind};
    use hickory_proto::op::{Message, OpCode, ResponseCode};
    use hickory_proto::rr::rdata::{A, AAAA};
    use hickory_proto::rr::{RData, Record, RecordType};
    use std::net::{SocketAddr, UdpSocket};
    use std::time::{Duration, Instant};

    fn is_send<T: Send>(_: &T) {}

    fn hosts() -> HostsTable {
        HostsTable::parse("192.0.2.1 pinned.example\n")
    }

    /// A resolver asking only `server`, once, waiting at most `timeout`.
    fn resolver(server: SocketAddr, timeout: Duration) -> Resolver {
        Resolver::new(ResolverConfig { servers: vec![server], timeout, attempts: 1 })
    }

    #[test]
    fn a_lookup_can_run_on_the_drivers_multi_threaded_executor() {
        let lookups = Lookups::new(hosts(), Some(resolver("127.0.0.1:53".parse().unwrap(), Duration::from_secs(1))));
        is_send(&lookups.perform(&Query::new("sip.example", QueryType::Srv)));
    }

    #[test]
    fn srv_and_naptr_for_localhost_are_negative_without_asking_dns() {
        let lookups = Lookups::new(HostsTable::default(), None);
        for query in [Query::new("_sips._tcp.localhost", QueryType::Srv), Query::new("LocalHost.", QueryType::Naptr)] {
            let answer = async_io::block_on(lookups.perform(&query));
            let negative = answer.as_ref().ok().and_then(AnyAnswer::negative);
            assert_eq!(negative, Some(Negative { kind: NegativeKind::NoData, ttl: None }), "{query}: {answer:?}");
        }
        let answer = async_io::block_on(lookups.perform(&Query::new("_sips._tcp.example.test", QueryType::Srv)));
        assert!(answer.is_err(), "not localhost: DNS, and there is none");
    }

    #[test]
    fn the_hosts_table_answers_without_a_resolver() {
        let lookups = Lookups::new(hosts(), None);
        let answer = async_io::block_on(lookups.perform(&Query::new("pinned.example", QueryType::A)));
        let records = vec![AddressRecord { addr: "192.0.2.1".parse().unwrap(), ttl: HOSTS_TTL }];
        assert_eq!(answer, Ok(AnyAnswer::Addresses(Answer::Records { records, additional: vec![] })));
        // The table's NODATA is an answer too.
        let answer = async_io::block_on(lookups.perform(&Query::new("pinned.example", QueryType::Aaaa)));
        let nodata = Negative { kind: NegativeKind::NoData, ttl: None };
        assert_eq!(answer, Ok(AnyAnswer::Addresses(Answer::Negative(nodata))));
        let answer = async_io::block_on(lookups.perform(&Query::new("localhost", QueryType::Aaaa)));
        let records = vec![AddressRecord { addr: "::1".parse().unwrap(), ttl: HOSTS_TTL }];
        assert_eq!(answer, Ok(AnyAnswer::Addresses(Answer::Records { records, additional: vec![] })));
    }

    #[test]
    fn without_a_resolver_what_the_table_does_not_answer_fails_naming_the_query() {
        let lookups = Lookups::new(hosts(), None);
        for query in [Query::new("other.example", QueryType::A), Query::new("pinned.example", QueryType::Srv)] {
            let failed = async_io::block_on(lookups.perform(&query)).unwrap_err();
            assert_eq!(failed.reason, format!("no DNS server to ask for {query}"));
        }
    }

    #[test]
    fn a_silent_server_is_a_failure_within_the_timeout_and_the_table_still_answers() {
        // A socket of the test's own that never reads: nobody answers, whatever else runs
        // on the machine (a fixed "unused" port could be in use).
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server = silent.local_addr().unwrap();
        let lookups = Lookups::new(hosts(), Some(resolver(server, Duration::from_millis(200))));

        let started = Instant::now();
        let answer = async_io::block_on(lookups.perform(&Query::new("pinned.example", QueryType::A)));
        assert!(matches!(answer, Ok(AnyAnswer::Addresses(Answer::Records { .. }))), "{answer:?}");
        assert!(started.elapsed() < Duration::from_millis(200), "the table was not asked first");

        let started = Instant::now();
        let failed = async_io::block_on(lookups.perform(&Query::new("other.example", QueryType::Aaaa))).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!(
            failed.reason,
            format!("no DNS answer for other.example AAAA: {server} over UDP: no reply within 200 ms")
        );
    }

    /// Answers `count` queries on 127.0.0.1 with what each asks: 192.0.2.10 for A,
    /// 2001:db8::10 for AAAA, NXDOMAIN (without SOA) for anything else.
    fn answering_server(count: usize) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let addr = socket.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            for _ in 0..count {
                let (len, from) = socket.recv_from(&mut buffer).unwrap();
                let query = Message::from_vec(&buffer[..len]).unwrap();
                let question = query.queries[0].clone();
                let mut reply = Message::response(query.metadata.id, OpCode::Query);
                reply.metadata.recursion_desired = true;
                reply.metadata.recursion_available = true;
                let data = match question.query_type() {
                    RecordType::A => Some(RData::A(A::new(192, 0, 2, 10))),
                    RecordType::AAAA => Some(RData::AAAA(AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10))),
                    _ => None,
                };
                match data {
                    Some(data) => {
                        reply.add_answer(Record::from_rdata(question.name().clone(), 300, data));
                    }
                    None => reply.metadata.response_code = ResponseCode::NXDomain,
                }
                reply.add_query(question);
                socket.send_to(&reply.to_vec().unwrap(), from).unwrap();
            }
        });
        (addr, thread)
    }

    #[test]
    fn each_query_type_goes_to_its_lookup_and_comes_back_as_its_answer() {
        let (server, thread) = answering_server(4);
        let lookups = Lookups::new(HostsTable::default(), Some(resolver(server, Duration::from_secs(1))));
        let perform = |qtype| async_io::block_on(lookups.perform(&Query::new("sip.example", qtype))).unwrap();
        let address = |addr: &str| {
            let records = vec![AddressRecord { addr: addr.parse().unwrap(), ttl: 300 }];
            AnyAnswer::Addresses(Answer::Records { records, additional: vec![] })
        };
        let nxdomain = Negative { kind: NegativeKind::NxDomain, ttl: None };
        assert_eq!(perform(QueryType::A), address("192.0.2.10"));
        assert_eq!(perform(QueryType::Aaaa), address("2001:db8::10"));
        assert_eq!(perform(QueryType::Srv), AnyAnswer::Srv(Answer::Negative(nxdomain)));
        assert_eq!(perform(QueryType::Naptr), AnyAnswer::Naptr(Answer::Negative(nxdomain)));
        thread.join().unwrap();
    }
}
