//! Which final REGISTER responses reach the core, told from the outside: from the messages
//! the core transmits and the responses it is given. The [`Monitor`](super::Monitor)
//! needs them to judge `Registered` and INVITEs; the simulated servers know them because
//! they write the responses, but a harness that only sees bytes (a recorded trace, a
//! fuzzer's arbitrary server) has to match each response to the REGISTER it answers.
//!
//! A response belongs to an account's REGISTER when it comes on the connection the
//! REGISTER went out on with the REGISTER's Via branch. Only the latest REGISTER of each
//! account counts: the core sends a new one (new branch) for every challenge, refresh or
//! retry, and forgets the previous transaction.

use crate::engine::Core;
use crate::ids::ConnId;
use crate::sip::Message;
use crate::sip::headers::Via;
use std::collections::BTreeMap;

/// The latest REGISTER transaction of every account: its connection and Via branch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegisterTransactions {
    /// The accounts' user names, in configuration order.
    users: Vec<String>,
    open: BTreeMap<usize, (ConnId, String)>,
}

/// The Via branch of a message's top Via.
pub fn branch(m: &Message) -> Option<String> {
    Via::parse(m.top_via()?)?.branch().map(str::to_owned)
}

impl RegisterTransactions {
    /// Tracks the accounts with these user names (configuration order).
    pub fn new(users: Vec<String>) -> RegisterTransactions {
        RegisterTransactions { users, open: BTreeMap::new() }
    }

    /// The core sent `m` on `conn`: a REGISTER opens its account's transaction.
    pub fn sent(&mut self, conn: ConnId, m: &Message) {
        if !m.is_request() || m.method() != Some("REGISTER") {
            return;
        }
        let user = super::header_user(m, "To");
        let account = user.and_then(|u| self.users.iter().position(|x| *x == u));
        if let (Some(a), Some(b)) = (account, branch(m)) {
            self.open.insert(a, (conn, b));
        }
    }

    /// `m` is about to reach `core` on `conn`. When it is a final response that ends an
    /// account's REGISTER transaction, returns that account's user name and the status,
    /// to give to [`Monitor::register_final_delivered`](super::Monitor::register_final_delivered).
    ///
    /// The transaction is forgotten either way. A response the core no longer waits for
    /// (its transaction timed out or lost its connection) gives `None`: the core ignores
    /// it, so it is not a final answer the core received.
    pub fn final_response(&mut self, core: &Core, conn: ConnId, m: &Message) -> Option<(String, u16)> {
        let status = m.status().filter(|s| *s >= 200)?;
        let b = branch(m)?;
        let account = self.open.iter().find(|(_, (c, x))| *c == conn && *x == b).map(|(a, _)| *a)?;
        self.open.remove(&account);
        let waiting = core.decision_view().accounts.get(account).is_some_and(|v| v.tx.is_some());
        let user = self.users.get(account)?;
        waiting.then(|| (user.clone(), status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AccountConfig, Config, ServerAddr};
    use crate::engine::{Input, Output};
    use crate::ids::Server;
    use crate::time::Instant;

    fn register_sent(core: &mut Core) -> (ConnId, Message) {
        let t = Instant::ZERO;
        let conn = ConnId { server: Server::Primary, generation: 1 };
        core.start(t);
        let local = "127.0.0.1:40000".parse().expect("an address");
        core.handle_input(t, Input::Connected { conn, local });
        let sent = std::iter::from_fn(|| core.poll_output()).find_map(|o| match o {
            Output::Transmit { data, .. } => Message::parse(&data).ok(),
            _ => None,
        });
        (conn, sent.expect("a REGISTER sent"))
    }

    fn answer(req: &Message, status: u16) -> Message {
        let mut r = Message::response(status, "X");
        for (name, v) in [("Via", req.top_via()), ("To", req.header("To")), ("CSeq", req.header("CSeq"))] {
            r.push_header(name, v.unwrap_or_default());
        }
        r
    }

    #[test]
    fn a_final_response_with_the_branch_ends_the_transaction_once() {
        let config = Config {
            proxy: Some(ServerAddr::new("p.test", 5061)),
            accounts: vec![AccountConfig::new("1001", "pw")],
            ..Config::default()
        };
        let mut core = Core::new(config, Instant::ZERO);
        let (conn, register) = register_sent(&mut core);
        let mut tx = RegisterTransactions::new(vec!["1001".into()]);
        tx.sent(conn, &register);
        let other = ConnId { server: Server::Backup, generation: 2 };
        assert_eq!(tx.final_response(&core, other, &answer(&register, 200)), None, "another connection");
        assert_eq!(tx.final_response(&core, conn, &answer(&register, 100)), None, "provisional");
        assert_eq!(tx.final_response(&core, conn, &answer(&register, 401)), Some(("1001".into(), 401)));
        assert_eq!(tx.final_response(&core, conn, &answer(&register, 200)), None, "already ended");
    }
}
