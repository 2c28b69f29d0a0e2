//! The resolver: asks the configured servers in order, round after round, and returns
//! the first answer (records or a negative answer) or every failure on the way.
//! It decides nothing about SIP: which names to ask and what to do with the records is
//! the core's job (RFC 3263).

use super::config::ResolverConfig;
use super::error::{DnsError, Problem, ServerFailure, Transport};
use super::exchange::{self, Query};
use super::query::Question;
use super::records::{AddressRecord, Answer, NaptrRecord, QueryType, SrvRecord};
use super::reply::{FromRData, host_text};
use std::net::SocketAddr;

/// Looks names up over UDP and TCP on the async-io reactor; runs under smol or any
/// executor (it spawns nothing).
#[derive(Clone, Debug)]
pub struct Resolver {
    config: ResolverConfig,
}

impl Resolver {
    /// A resolver asking as `config` says.
    pub fn new(config: ResolverConfig) -> Resolver {
        Resolver { config }
    }

    /// What it was made with.
    pub fn config(&self) -> &ResolverConfig {
        &self.config
    }

    /// The A records of `name` (absolute, with or without the final dot).
    ///
    /// # Errors
    ///
    /// A name that cannot be asked, or no server gave an answer.
    pub async fn lookup_a(&self, name: &str) -> Result<Answer<AddressRecord>, DnsError> {
        self.lookup(name, QueryType::A).await
    }

    /// The AAAA records of `name`.
    ///
    /// # Errors
    ///
    /// As [`Resolver::lookup_a`].
    pub async fn lookup_aaaa(&self, name: &str) -> Result<Answer<AddressRecord>, DnsError> {
        self.lookup(name, QueryType::Aaaa).await
    }

    /// The SRV records of `name` (such as `_sips._tcp.example.com`), in the server's
    /// order: sorting by priority and weight is the core's.
    ///
    /// # Errors
    ///
    /// As [`Resolver::lookup_a`].
    pub async fn lookup_srv(&self, name: &str) -> Result<Answer<SrvRecord>, DnsError> {
        self.lookup(name, QueryType::Srv).await
    }

    /// The NAPTR records of `name`, in the server's order.
    ///
    /// # Errors
    ///
    /// As [`Resolver::lookup_a`].
    pub async fn lookup_naptr(&self, name: &str) -> Result<Answer<NaptrRecord>, DnsError> {
        self.lookup(name, QueryType::Naptr).await
    }

    async fn lookup<T: FromRData>(&self, name: &str, kind: QueryType) -> Result<Answer<T>, DnsError> {
        let question = Question::new(name, kind)?;
        if self.config.servers.is_empty() {
            return Err(DnsError::NoServers);
        }
        let mut failures = Vec::new();
        for _round in 0..self.config.attempts.max(1) {
            for &server in &self.config.servers {
                match self.ask(server, &question).await? {
                    Ok(answer) => return Ok(answer),
                    Err(failure) => {
                        tracing::debug!(%failure, name, query = %kind, "DNS exchange failed");
                        failures.push(failure);
                    }
                }
            }
        }
        Err(DnsError::Failed { name: host_text(&question.name), query: kind, failures })
    }

    /// One exchange with `server`: UDP, then TCP if the reply was truncated. The outer
    /// error stops the lookup (no random id); the inner one moves on to the next server.
    async fn ask<T: FromRData>(
        &self,
        server: SocketAddr,
        question: &Question,
    ) -> Result<Result<Answer<T>, ServerFailure>, DnsError> {
        let failed = |transport, problem: Problem| Ok(Err(ServerFailure { server, transport, problem }));
        let (id, bytes) = encode(question)?;
        let query = Query { server, id, bytes: &bytes, question, timeout: self.config.timeout };
        match exchange::udp::<T>(&query).await {
            Ok(Some(answer)) => return Ok(Ok(answer)),
            Ok(None) => {}
            Err(problem) => return failed(Transport::Udp, problem),
        }
        // A fresh id for the TCP query too: an id is never used twice.
        let (id, bytes) = encode(question)?;
        let query = Query { id, bytes: &bytes, ..query };
        match exchange::tcp::<T>(&query).await {
            Ok(answer) => Ok(Ok(answer)),
            Err(problem) => failed(Transport::Tcp, problem),
        }
    }
}

/// The query with a fresh id from the OS random source: with the random source port, the
/// 16 bits an off-path attacker must guess to slip in a forged answer (RFC 5452).
fn encode(question: &Question) -> Result<(u16, Vec<u8>), DnsError> {
    let mut id = [0u8; 2];
    getrandom::fill(&mut id).map_err(|e| DnsError::Random(e.to_string()))?;
    let id = u16::from_be_bytes(id);
    Ok((id, question.encode(id)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>(_: &T) {}

    #[test]
    fn lookups_can_run_on_the_drivers_multi_threaded_executor() {
        let resolver = Resolver::new(ResolverConfig::with_servers(Vec::new()));
        is_send(&resolver.lookup_a("a.example"));
        is_send(&resolver.lookup_aaaa("a.example"));
        is_send(&resolver.lookup_srv("a.example"));
        is_send(&resolver.lookup_naptr("a.example"));
    }

    #[test]
    fn without_servers_nothing_is_asked() {
        let resolver = Resolver::new(ResolverConfig::with_servers(Vec::new()));
        assert_eq!(async_io::block_on(resolver.lookup_a("a.example")), Err(DnsError::NoServers));
        // A bad name is reported as such before the missing servers.
        let bad = async_io::block_on(resolver.lookup_a("a..example"));
        assert!(matches!(bad, Err(DnsError::BadName { .. })), "{bad:?}");
    }
}
