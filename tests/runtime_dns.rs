//! The DNS lookups of the runtime shell against a DNS server of the test's own on
//! loopback (UDP and TCP on one port, answering from a fixed zone): answers with their
//! TTLs, negative answers, the TCP retry after truncation, timeouts moving on to the next
//! server, and replies that must be ignored.
#![cfg(feature = "runtime")]

use futures_lite::future;
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, NAPTR, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use sip_ptls::runtime::dns::{
    AddressRecord, Answer, DnsError, HostAddress, NaptrRecord, Negative, NegativeKind, Problem, QueryType, Resolver,
    ResolverConfig, SrvRecord, Transport,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Far beyond any wait of these tests: a test that reaches it has hung.
const HUNG: Duration = Duration::from_secs(60);

/// Runs a lookup on async-io's `block_on`, failing the test instead of hanging.
fn run<T>(lookup: impl Future<Output = T>) -> T {
    async_io::block_on(future::or(lookup, async {
        async_io::Timer::after(HUNG).await;
        panic!("a lookup was still running after {HUNG:?}");
    }))
}

/// How the test server treats queries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Answers from the zone, truncating UDP replies over 512 bytes as a server does
    /// for a query without EDNS.
    Answer,
    /// Reads every query and never answers.
    Silent,
    /// First sends a forged reply (another id, another address), then the real one.
    ForgedFirst,
    /// Answers every query with SERVFAIL.
    ServFail,
}

/// A DNS server on 127.0.0.1, UDP and TCP on the same port, until dropped.
struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    udp_queries: Arc<AtomicUsize>,
    tcp_queries: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
}

impl TestServer {
    fn start(behaviour: Behaviour) -> TestServer {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let udp_queries = Arc::new(AtomicUsize::new(0));
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        let threads = vec![
            {
                let (stop, count) = (stop.clone(), udp_queries.clone());
                std::thread::spawn(move || serve_udp(&udp, behaviour, &stop, &count))
            },
            {
                let (stop, count) = (stop.clone(), tcp_queries.clone());
                std::thread::spawn(move || serve_tcp(&tcp, behaviour, &stop, &count))
            },
        ];
        TestServer { addr, stop, udp_queries, tcp_queries, threads }
    }

    fn udp_queries(&self) -> usize {
        self.udp_queries.load(Ordering::SeqCst)
    }

    fn tcp_queries(&self) -> usize {
        self.tcp_queries.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A UDP socket and a TCP listener on the same loopback port: the port the OS gives the
/// UDP socket may be taken for TCP, so a few ports are tried.
fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()) {
            return (udp, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

fn serve_udp(socket: &UdpSocket, behaviour: Behaviour, stop: &AtomicBool, count: &AtomicUsize) {
    socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut buffer = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let (len, peer) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => panic!("test server UDP: {e}"),
        };
        count.fetch_add(1, Ordering::SeqCst);
        let Ok(query) = Message::from_vec(&buffer[..len]) else { continue };
        let mut reply = match behaviour {
            Behaviour::Silent => continue,
            Behaviour::ServFail => Message::error_msg(query.metadata.id, OpCode::Query, ResponseCode::ServFail),
            Behaviour::Answer | Behaviour::ForgedFirst => answer(&query),
        };
        if behaviour == Behaviour::ServFail {
            reply.add_queries(query.queries.clone());
        }
        if behaviour == Behaviour::ForgedFirst {
            let mut forged = reply.clone();
            forged.metadata.id ^= 0x5a5a;
            forged.answers = vec![record("sip.example.test.", 86400, RData::A(A::new(198, 51, 100, 66)))];
            socket.send_to(&forged.to_vec().unwrap(), peer).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut bytes = reply.to_vec().unwrap();
        if bytes.len() > 512 {
            bytes = reply.truncate().to_vec().unwrap();
        }
        socket.send_to(&bytes, peer).unwrap();
    }
}

fn serve_tcp(listener: &TcpListener, behaviour: Behaviour, stop: &AtomicBool, count: &AtomicUsize) {
    listener.set_nonblocking(true).unwrap();
    while !stop.load(Ordering::SeqCst) {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => panic!("test server TCP: {e}"),
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if let Some(query) = read_framed(&mut stream) {
            count.fetch_add(1, Ordering::SeqCst);
            if behaviour != Behaviour::Silent {
                let bytes = answer(&query).to_vec().unwrap();
                let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                let _ = stream.write_all(&framed);
            }
        }
    }
}

fn read_framed(stream: &mut TcpStream) -> Option<Message> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut body).ok()?;
    Message::from_vec(&body).ok()
}

fn name(text: &str) -> Name {
    Name::from_str(text).unwrap()
}

fn record(owner: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(name(owner), ttl, data)
}

/// The zone's SOA: TTL 900, MINIMUM 60, so negative answers may be kept 60 s.
fn soa() -> Record {
    let data = SOA::new(name("ns.example.test."), name("hostmaster.example.test."), 2024, 3600, 600, 86400, 60);
    record("example.test.", 900, RData::SOA(data))
}

/// The fixed zone `example.test`, answered as a recursive resolver would.
fn answer(query: &Message) -> Message {
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_queries(query.queries.clone());
    let Some(question) = query.queries.first() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply;
    };
    let owner = question.name().to_lowercase().to_ascii();
    match (owner.as_str(), question.query_type()) {
        ("sip.example.test.", RecordType::A) => {
            reply.add_answer(record(&owner, 300, RData::A(A::new(192, 0, 2, 10))));
            reply.add_answer(record(&owner, 300, RData::A(A::new(192, 0, 2, 11))));
        }
        ("sip.example.test.", RecordType::AAAA) => {
            reply.add_answer(record(&owner, 600, RData::AAAA(AAAA::from_str("2001:db8::10").unwrap())));
        }
        ("_sips._tcp.example.test.", RecordType::SRV) => {
            reply.add_answer(record(&owner, 120, RData::SRV(SRV::new(10, 60, 5061, name("sip1.example.test.")))));
            reply.add_answer(record(&owner, 120, RData::SRV(SRV::new(20, 40, 5062, name("sip2.example.test.")))));
            reply.add_additional(record("sip1.example.test.", 30, RData::A(A::new(192, 0, 2, 21))));
        }
        ("example.test.", RecordType::NAPTR) => {
            for (order, service, target) in
                [(10, "SIPS+D2T", "_sips._tcp.example.test."), (20, "SIP+D2T", "_sip._tcp.example.test.")]
            {
                let naptr = NAPTR::new(
                    order,
                    50,
                    b"s".to_vec().into(),
                    service.as_bytes().to_vec().into(),
                    Vec::new().into(),
                    name(target),
                );
                reply.add_answer(record(&owner, 3600, RData::NAPTR(naptr)));
            }
        }
        ("many.example.test.", RecordType::A) => {
            // Sixty addresses: about a kilobyte, more than a UDP reply without EDNS holds.
            for i in 0..60 {
                reply.add_answer(record(&owner, 42, RData::A(A::new(10, 0, 0, i))));
            }
        }
        ("sip.example.test." | "_sips._tcp.example.test." | "example.test." | "many.example.test.", _) => {
            reply.add_authority(soa());
        }
        _ => {
            reply.metadata.response_code = ResponseCode::NXDomain;
            reply.add_authority(soa());
        }
    }
    reply
}

fn config(servers: &[&TestServer], timeout: Duration) -> ResolverConfig {
    ResolverConfig { servers: servers.iter().map(|s| s.addr).collect(), timeout, attempts: 1 }
}

/// A resolver with a generous timeout asking `server` alone.
fn resolver(server: &TestServer) -> Resolver {
    Resolver::new(config(&[server], Duration::from_secs(10)))
}

fn records<T: Clone>(answer: Result<Answer<T>, DnsError>) -> Vec<T> {
    match answer {
        Ok(Answer::Records { records, .. }) => records,
        other => panic!("expected records, got {:?}", other.map(|a| a.records().len())),
    }
}

fn address(text: &str, ttl: u32) -> AddressRecord {
    AddressRecord { addr: text.parse().unwrap(), ttl }
}

#[test]
fn a_and_aaaa_answers_carry_their_ttls() {
    let server = TestServer::start(Behaviour::Answer);
    let resolver = resolver(&server);
    assert_eq!(
        records(run(resolver.lookup_a("sip.example.test"))),
        [address("192.0.2.10", 300), address("192.0.2.11", 300)]
    );
    assert_eq!(records(run(resolver.lookup_aaaa("sip.example.test."))), [address("2001:db8::10", 600)]);
    assert_eq!(server.tcp_queries(), 0);
}

#[test]
fn srv_records_come_in_full_with_the_additional_addresses() {
    let server = TestServer::start(Behaviour::Answer);
    let answer = run(resolver(&server).lookup_srv("_sips._tcp.example.test")).unwrap();
    let Answer::Records { records, additional } = answer else { panic!("{answer:?}") };
    assert_eq!(
        records,
        [
            SrvRecord { priority: 10, weight: 60, port: 5061, target: "sip1.example.test".into(), ttl: 120 },
            SrvRecord { priority: 20, weight: 40, port: 5062, target: "sip2.example.test".into(), ttl: 120 },
        ]
    );
    assert_eq!(
        additional,
        [HostAddress { host: "sip1.example.test".into(), addr: "192.0.2.21".parse().unwrap(), ttl: 30 }]
    );
}

#[test]
fn naptr_records_come_in_full() {
    let server = TestServer::start(Behaviour::Answer);
    let naptr = |order, services: &str, replacement: &str| NaptrRecord {
        order,
        preference: 50,
        flags: "s".into(),
        services: services.into(),
        regexp: String::new(),
        replacement: replacement.into(),
        ttl: 3600,
    };
    assert_eq!(
        records(run(resolver(&server).lookup_naptr("example.test"))),
        [naptr(10, "SIPS+D2T", "_sips._tcp.example.test"), naptr(20, "SIP+D2T", "_sip._tcp.example.test")]
    );
}

#[test]
fn nxdomain_and_nodata_are_negative_answers_with_the_soa_ttl() {
    let server = TestServer::start(Behaviour::Answer);
    let resolver = resolver(&server);
    assert_eq!(
        run(resolver.lookup_a("nowhere.example.test")),
        Ok(Answer::Negative(Negative { kind: NegativeKind::NxDomain, ttl: Some(60) }))
    );
    assert_eq!(
        run(resolver.lookup_naptr("sip.example.test")),
        Ok(Answer::Negative(Negative { kind: NegativeKind::NoData, ttl: Some(60) }))
    );
}

#[test]
fn a_truncated_udp_reply_is_asked_again_over_tcp() {
    let server = TestServer::start(Behaviour::Answer);
    let found = records(run(resolver(&server).lookup_a("many.example.test")));
    let expected: Vec<AddressRecord> = (0..60).map(|i| address(&format!("10.0.0.{i}"), 42)).collect();
    assert_eq!(found, expected);
    assert_eq!((server.udp_queries(), server.tcp_queries()), (1, 1));
}

#[test]
fn a_server_that_never_answers_times_out_and_the_next_one_is_asked() {
    let silent = TestServer::start(Behaviour::Silent);
    let good = TestServer::start(Behaviour::Answer);
    let timeout = Duration::from_millis(300);
    let resolver = Resolver::new(config(&[&silent, &good], timeout));
    let started = Instant::now();
    let found = records(run(resolver.lookup_a("sip.example.test")));
    assert_eq!(found, [address("192.0.2.10", 300), address("192.0.2.11", 300)]);
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    assert_eq!((silent.udp_queries(), good.udp_queries()), (1, 1));
}

#[test]
fn when_no_server_answers_the_error_names_each_and_its_timeout() {
    let first = TestServer::start(Behaviour::Silent);
    let second = TestServer::start(Behaviour::Silent);
    let timeout = Duration::from_millis(200);
    let resolver = Resolver::new(ResolverConfig { attempts: 2, ..config(&[&first, &second], timeout) });
    let error = run(resolver.lookup_srv("_sips._tcp.example.test")).unwrap_err();
    let DnsError::Failed { name, query, failures } = &error else { panic!("{error:?}") };
    assert_eq!((name.as_str(), *query), ("_sips._tcp.example.test", QueryType::Srv));
    // Two rounds, each asking the servers in order.
    let servers: Vec<SocketAddr> = failures.iter().map(|f| f.server).collect();
    assert_eq!(servers, [first.addr, second.addr, first.addr, second.addr]);
    for failure in failures {
        assert_eq!(failure.transport, Transport::Udp);
        assert_eq!(failure.problem, Problem::TimedOut { after: timeout, ignored: 0 });
    }
    let text = error.to_string();
    assert!(text.contains(&format!("{} over UDP: no reply within 200 ms", first.addr)), "{text}");
    assert!(text.contains(&second.addr.to_string()), "{text}");
    assert_eq!((first.udp_queries(), second.udp_queries()), (2, 2));
}

#[test]
fn a_reply_with_another_id_is_ignored() {
    let server = TestServer::start(Behaviour::ForgedFirst);
    let found = records(run(resolver(&server).lookup_a("sip.example.test")));
    // Not the forged 198.51.100.66: the real reply that came after it.
    assert_eq!(found, [address("192.0.2.10", 300), address("192.0.2.11", 300)]);
}

#[test]
fn a_servfail_is_a_failure_naming_the_server_and_the_next_one_is_asked() {
    let failing = TestServer::start(Behaviour::ServFail);
    let good = TestServer::start(Behaviour::Answer);
    let resolver = Resolver::new(config(&[&failing, &good], Duration::from_secs(10)));
    assert_eq!(records(run(resolver.lookup_aaaa("sip.example.test"))), [address("2001:db8::10", 600)]);

    let alone = Resolver::new(config(&[&failing], Duration::from_secs(10)));
    let error = run(alone.lookup_a("sip.example.test")).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("no DNS answer for sip.example.test A: {} over UDP: answered SERVFAIL", failing.addr)
    );
}
