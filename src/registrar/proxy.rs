//! SIP behaviour: registrar (digest, bindings, outbound), proxy (INVITE routing over the
//! callee's connection, Record-Route, response relay, CANCEL, in-dialog requests) and the
//! small transaction table that makes the relay possible.

use super::bindings::Bindings;
use super::config::RegistrarConfig;
use super::connection::Command;
use super::stats::Counters;
use crate::sip::Message;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Everything the registrar remembers, behind one mutex.
pub(crate) struct State {
    /// Registered contacts.
    pub bindings: Bindings,
    /// Outboxes of the open connections.
    pub conns: BTreeMap<u64, async_channel::Sender<Command>>,
    /// One line per request received.
    pub log: Vec<String>,
    domain: String,
    users: BTreeMap<String, String>,
    flow_timer: Option<u32>,
    addr: SocketAddr,
}

impl State {
    /// Fresh state for a registrar listening on `addr`.
    pub fn new(config: &RegistrarConfig, addr: SocketAddr) -> State {
        State {
            bindings: Bindings::default(),
            conns: BTreeMap::new(),
            log: Vec::new(),
            domain: config.domain.clone(),
            users: config.users.iter().cloned().collect(),
            flow_timer: config.flow_timer,
            addr,
        }
    }

    /// Forgets a closed connection and its bindings.
    pub fn connection_closed(&mut self, conn: u64) {
        self.conns.remove(&conn);
        self.bindings.connection_closed(conn);
    }

    /// Handles one message received on `conn`; returns what to write on which connection.
    pub fn handle(&mut self, conn: u64, msg: Message, counters: &Counters) -> Vec<(u64, Vec<u8>)> {
        let _ = (conn, msg, counters, &self.domain, &self.users, self.flow_timer, self.addr);
        Vec::new()
    }
}
