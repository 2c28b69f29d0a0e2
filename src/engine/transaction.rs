//! Client transactions over a reliable transport: no retransmissions; the one deadline
//! of each lives in the timer table under the timer of its owner.

use crate::ids::ConnId;

/// A request we sent and whose response we wait for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct ClientTx {
    /// The Via branch that identifies the transaction.
    pub branch: String,
    /// The connection the request went on; its response must come back on it.
    pub conn: ConnId,
    /// CSeq number of the request.
    pub cseq: u32,
}
