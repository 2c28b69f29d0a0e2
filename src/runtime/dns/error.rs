//! The resolver's errors. A failure names every server tried and what went wrong with
//! each, so that a log line is enough to tell a dead server from a broken one; a
//! negative answer (NXDOMAIN, NODATA) is never an error (see `records::Answer`).

use super::records::QueryType;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// The transport an exchange used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The first exchange with each server.
    Udp,
    /// After a truncated UDP reply.
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        })
    }
}

/// What went wrong in one exchange with one server.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Problem {
    /// No acceptable reply within the attempt's timeout. `ignored` counts the datagrams
    /// that arrived but did not answer this query (wrong id or question).
    #[error("no reply within {}", timeout_text(*.after, *.ignored))]
    TimedOut {
        /// The attempt's timeout.
        after: Duration,
        /// Datagrams received and ignored.
        ignored: usize,
    },
    /// RCODE 2: the server could not get an answer (often: the zone's servers failed).
    #[error("answered SERVFAIL")]
    ServFail,
    /// RCODE 5: the server will not answer this client.
    #[error("answered REFUSED")]
    Refused,
    /// Any other error RCODE (FORMERR, NOTIMP, ...).
    #[error("answered {name} (RCODE {code})")]
    OtherRcode {
        /// The RCODE.
        code: u16,
        /// Its mnemonic.
        name: String,
    },
    /// A reply that matched the query's id but could not be used.
    #[error("malformed reply: {0}")]
    Malformed(String),
    /// The socket failed (no route, connection refused over TCP, reset, ...).
    #[error("{0}")]
    Io(String),
}

fn timeout_text(after: Duration, ignored: usize) -> String {
    let mut text = format!("{} ms", after.as_millis());
    if ignored > 0 {
        text.push_str(&format!(" ({ignored} non-matching replies ignored)"));
    }
    text
}

/// One failed exchange: the server, the transport and the problem.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{server} over {transport}: {problem}")]
pub struct ServerFailure {
    /// The server asked.
    pub server: SocketAddr,
    /// How it was asked.
    pub transport: Transport,
    /// What went wrong.
    pub problem: Problem,
}

/// A lookup that got no answer, positive or negative.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DnsError {
    /// The name cannot be written in a query (an empty label, a label over 63 bytes, ...).
    #[error("{name:?} is not a valid DNS name: {reason}")]
    BadName {
        /// The name as given.
        name: String,
        /// Why it cannot be asked.
        reason: String,
    },
    /// The configuration lists no server.
    #[error("no DNS server configured")]
    NoServers,
    /// The OS random source failed, so no unpredictable query id could be drawn; a query
    /// with a guessable id would invite spoofed answers, so none is sent.
    #[error("no random query id: {0}")]
    Random(String),
    /// Every exchange failed, in the order tried.
    #[error("no DNS answer for {name} {query}: {}", list(failures))]
    Failed {
        /// The name asked, absolute, without the trailing dot.
        name: String,
        /// The type asked.
        query: QueryType,
        /// Each exchange that failed, in order.
        failures: Vec<ServerFailure>,
    },
}

fn list(failures: &[ServerFailure]) -> String {
    failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// The system configuration could not give a server list.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ResolvConfError {
    /// The file is missing or unreadable.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        error: String,
    },
    /// The file has no `nameserver` line this resolver can use.
    #[error("{} names no usable nameserver", path.display())]
    NoNameserver {
        /// The file.
        path: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_each_server_and_its_problem() {
        let e = DnsError::Failed {
            name: "_sips._tcp.example.com".into(),
            query: QueryType::Srv,
            failures: vec![
                ServerFailure {
                    server: "192.0.2.1:53".parse().unwrap(),
                    transport: Transport::Udp,
                    problem: Problem::TimedOut { after: Duration::from_secs(2), ignored: 1 },
                },
                ServerFailure {
                    server: "192.0.2.2:53".parse().unwrap(),
                    transport: Transport::Tcp,
                    problem: Problem::ServFail,
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "no DNS answer for _sips._tcp.example.com SRV: 192.0.2.1:53 over UDP: no reply within 2000 ms \
             (1 non-matching replies ignored); 192.0.2.2:53 over TCP: answered SERVFAIL"
        );
    }
}
