//! Client transactions over a reliable transport: no retransmissions, one deadline.

use crate::ids::ConnId;
use crate::time::Instant;

/// A request we sent and whose response we wait for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct ClientTx {
    /// The Via branch that identifies the transaction.
    pub branch: String,
    /// The connection the request went on; its response must come back on it.
    pub conn: ConnId,
    /// CSeq number of the request.
    pub cseq: u32,
    /// No response by then means the connection is dead; `None` once a provisional
    /// response showed the far side is alive (INVITE).
    pub deadline: Option<Instant>,
}

impl ClientTx {
    /// True when the deadline has passed at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d <= now)
    }
}
