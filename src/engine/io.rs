//! What goes into the core and what comes out of it: inputs, outputs, events and the
//! reasons they carry.

use crate::dns::{AnyAnswer, LookupFailed, Query};
use crate::ids::{AccountId, CallId, ConnId, Server};
use crate::time::Duration;
use core::net::SocketAddr;
use thiserror::Error;

/// A transport happening on one connection, reported by the runtime.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input<'a> {
    /// TCP connected and the TLS handshake (with certificate verification) completed.
    Connected {
        /// The connection.
        conn: ConnId,
        /// The local address of the socket, used in Via and Contact.
        local: SocketAddr,
    },
    /// The connection could not be established.
    ConnectFailed {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: TransportError,
    },
    /// Decrypted bytes arrived, in any chunking.
    Received {
        /// The connection.
        conn: ConnId,
        /// The plaintext.
        data: &'a [u8],
    },
    /// How many plaintext bytes the shell holds for the connection that the peer has not
    /// taken yet (queued for the socket). Reported whenever the number changes, and 0
    /// once everything went out. The core decides when a peer that does not read is dead
    /// (`Config::write_stall_timeout`, `Config::max_write_backlog`).
    WriteBacklog {
        /// The connection.
        conn: ConnId,
        /// Bytes written by the core and not yet taken by the socket.
        bytes: usize,
    },
    /// An established connection ended.
    Closed {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: TransportError,
    },
    /// What came back for a lookup the core asked with [`Output::Resolve`]: records or a
    /// negative answer, or the failure of the lookup (no server answered). An answer to
    /// a query the core is not waiting for is ignored.
    Resolved {
        /// The query, as the core asked it.
        query: Query,
        /// The answer, or why there is none.
        outcome: Result<AnyAnswer, LookupFailed>,
    },
}

/// Why a connection failed or ended, as far as the runtime can tell.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Error)]
pub enum TransportError {
    /// The host name could not be resolved.
    #[error("name resolution failed: {0}")]
    Resolve(String),
    /// The peer refused the TCP connection.
    #[error("connection refused")]
    Refused,
    /// Connect or handshake did not finish in time (runtime's own guard).
    #[error("timed out")]
    TimedOut,
    /// The peer's certificate was not acceptable.
    #[error("certificate rejected: {0}")]
    Certificate(String),
    /// The TLS handshake or record layer failed for another reason.
    #[error("TLS failure: {0}")]
    Tls(String),
    /// The peer closed the connection (FIN or TLS close_notify).
    #[error("closed by peer")]
    PeerClosed,
    /// The connection was reset.
    #[error("connection reset")]
    Reset,
    /// Another I/O error.
    #[error("I/O error: {0}")]
    Io(String),
}

/// Something the runtime must do, or tell the application.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// Open a TCP connection to `addr` and run the TLS handshake, verifying the server's
    /// certificate against `server_name`; then report `Connected` or `ConnectFailed` for
    /// `conn`.
    Connect {
        /// The new connection's handle.
        conn: ConnId,
        /// The address the core chose among the server's located targets.
        addr: SocketAddr,
        /// The name the certificate must carry: the configured host (a name, or an IP
        /// address written without brackets), never an SRV target (RFC 5922).
        server_name: String,
    },
    /// Look up `query` (A, AAAA, SRV or NAPTR) and report what came back with
    /// [`Input::Resolved`]. Lookups are independent of each other and of connections.
    Resolve {
        /// The name and record type to ask.
        query: Query,
    },
    /// Write these plaintext bytes on the connection (TLS-encrypted by the runtime).
    Transmit {
        /// The connection.
        conn: ConnId,
        /// A SIP message or a `CRLFCRLF` ping (the core never sends a pong: see
        /// docs/architecture.md, "Keep-alive").
        data: Vec<u8>,
    },
    /// Close the connection; the core ignores anything reported about it afterwards.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Tell the application.
    Event(Event),
}

/// A happening the application may want to show or act on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// The persistent connection is up (TLS verified).
    FlowUp {
        /// Where it goes.
        server: Server,
    },
    /// The persistent connection is gone.
    FlowLost {
        /// Where it went.
        server: Server,
        /// Why it was declared dead.
        reason: FlowError,
    },
    /// The active connection moved from the primary to the backup.
    FailedOver,
    /// The primary proved stable again and the phone is moving back to it.
    FailingBack,
    /// The phone is connected to the primary again after running on the backup.
    FailedBack,
    /// A connection attempt (persistent or probe) failed.
    ConnectFailed {
        /// Where it went.
        server: Server,
        /// Why.
        reason: FlowError,
    },
    /// One address of a server did not connect; the next address (of the same target,
    /// or the next target) is being tried. The server's `ConnectFailed` comes only once
    /// every address has failed.
    AttemptFailed {
        /// The server.
        server: Server,
        /// The address that failed.
        addr: SocketAddr,
        /// Why.
        reason: FlowError,
    },
    /// Every server was tried; the next round starts after `wait`.
    Backoff {
        /// The wait before the next round.
        wait: Duration,
        /// Rounds that failed in a row.
        failures: u32,
    },
    /// A 2xx to REGISTER arrived on the current connection.
    Registered {
        /// The account.
        account: AccountId,
        /// The server the binding is on.
        server: Server,
        /// The lifetime the registrar granted, in seconds.
        expires: u32,
    },
    /// A REGISTER failed.
    RegistrationFailed {
        /// The account.
        account: AccountId,
        /// Why.
        reason: RegError,
        /// When the core tries again (`None`: it stopped trying for this server).
        retry_in: Option<Duration>,
    },
    /// The account's binding is no longer usable (its connection is gone).
    RegistrationLost {
        /// The account.
        account: AccountId,
    },
    /// The account was de-registered (shutdown or failback).
    Unregistered {
        /// The account.
        account: AccountId,
    },
    /// The server answered our pings with nothing but accepts OPTIONS: keep-alive goes
    /// on with OPTIONS requests.
    PongsUnsupported {
        /// The server.
        server: Server,
    },
    /// A request for a new call arrived.
    IncomingCall {
        /// Handle for answer/reject.
        call: CallId,
        /// The account called.
        account: AccountId,
        /// The caller (From header value).
        from: String,
    },
    /// A provisional response (e.g. 180 Ringing) for a placed call.
    CallProgress {
        /// The call.
        call: CallId,
        /// The status code.
        status: u16,
    },
    /// The one outcome of a placed call.
    CallOutcome {
        /// The call.
        call: CallId,
        /// What happened.
        outcome: CallOutcome,
    },
    /// An established call was moved onto the new persistent connection after a
    /// failover, failback or recovery: the far end answered its re-INVITE with a 2xx.
    CallMoved {
        /// The call.
        call: CallId,
        /// The server of the connection it moved to.
        server: Server,
    },
    /// An established (or incoming) call ended.
    CallEnded {
        /// The call.
        call: CallId,
        /// Why.
        reason: EndReason,
    },
    /// Shutdown finished: every connection is closed and the core is inert.
    ShutdownComplete,
}

/// Why the persistent connection was declared dead.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Error)]
pub enum FlowError {
    /// The transport failed or the peer closed.
    #[error("{0}")]
    Transport(TransportError),
    /// No pong arrived within the pong timeout.
    #[error("no pong within the pong timeout")]
    PongTimeout,
    /// A request on the connection got no response within the transaction timer.
    #[error("transaction timeout on the connection")]
    TransactionTimeout,
    /// Connect plus handshake took longer than the connect timeout.
    #[error("connect timeout")]
    ConnectTimeout,
    /// The peer sent bytes that cannot be framed as SIP.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The phone is leaving the backup for the primary.
    #[error("failing back to the primary")]
    Failback,
    /// The peer did not take what the phone wrote: no progress within the write-stall
    /// timeout, or more unsent bytes than the backlog limit.
    #[error("the peer does not read: {0} bytes unsent")]
    WriteStalled(usize),
}

/// Why a REGISTER failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Error)]
pub enum RegError {
    /// The registrar refused (403, 404, 603 …): tried again on this server only after
    /// `sip registration retry timer`.
    #[error("rejected with {0}")]
    Rejected(u16),
    /// The registrar answered with a temporary failure (5xx, 4xx other than the above).
    #[error("failed with {0}")]
    Failed(u16),
    /// The credentials were refused (a second challenge after answering one).
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The challenge used an algorithm or qop we do not support.
    #[error("unsupported challenge: {0}")]
    UnsupportedChallenge(String),
    /// No response in time (408 or the transaction timer).
    #[error("timed out")]
    Timeout,
    /// The connection carrying the REGISTER failed.
    #[error("transport failure: {0}")]
    Transport(TransportError),
    /// Repeated 423 Interval Too Brief.
    #[error("interval too brief (Min-Expires {0})")]
    IntervalTooBrief(u32),
    /// A 2xx that granted our Contact a lifetime of 0: the registrar holds no binding
    /// for it (RFC 3261 §10.3), so the account is not registered.
    #[error("accepted with {0} but granted no lifetime (expires 0)")]
    NoLifetime(u16),
}

/// The outcome of a placed call: exactly one per call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// 2xx: the call is established (ACK sent).
    Answered,
    /// A final failure response.
    Rejected {
        /// Status code.
        status: u16,
    },
    /// The call could not be set up.
    Failed(CallFailure),
}

/// Why a placed call failed without a final response from the far end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
pub enum CallFailure {
    /// No usable connection and registration before the call's deadline.
    #[error("no connection before the call deadline")]
    Deadline,
    /// Too many calls were already waiting for a connection.
    #[error("call queue full")]
    QueueFull,
    /// The connection carrying the INVITE died before a final response.
    #[error("connection lost during call setup")]
    ConnectionLost,
    /// The application hung up before an answer.
    #[error("cancelled")]
    Cancelled,
    /// The phone is shutting down.
    #[error("shutdown")]
    Shutdown,
    /// The account cannot register on any server (permanently rejected).
    #[error("account not registered")]
    AccountUnavailable,
    /// The far end's challenge could not be answered.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// No final answer within the call setup time after ringing began.
    #[error("no answer")]
    NoAnswer,
}

/// Why a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// The application hung up.
    LocalHangup,
    /// The far end sent BYE.
    RemoteHangup,
    /// The caller cancelled an incoming call.
    RemoteCancel,
    /// The application rejected an incoming call.
    Rejected,
    /// The connection died while an incoming call was still being set up, or an
    /// established call's connection was gone for the orphaned-call timeout.
    ConnectionLost,
    /// No ACK came for our 200 OK.
    NoAck,
    /// An incoming call rang for the ringing timeout without an answer (RFC 3261
    /// Timer C); it was ended with 480.
    Unanswered,
    /// Shutdown.
    Shutdown,
    /// After a failover the dialog's route set led only to the lost connection's address,
    /// so no request of the dialog could reach the far end: ended rather than left
    /// half-open (the deployment needs a shared record-route name, docs/architecture.md).
    RouteLost,
    /// The re-INVITE that moves the call onto the new connection was refused.
    MoveRefused {
        /// The final status.
        status: u16,
    },
    /// The re-INVITE that moves the call onto the new connection got no final answer.
    MoveTimedOut,
}

/// A command the core refused.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Error)]
pub enum CommandError {
    /// No such account.
    #[error("no account {0}")]
    UnknownAccount(AccountId),
    /// No such call, or it is not in a state that allows the command.
    #[error("no call {0} in a state that allows this")]
    UnknownCall(CallId),
    /// The call target is not a user name or a sip:/sips: URI.
    #[error("invalid call target {0:?}")]
    InvalidTarget(String),
    /// The core was not started, or is shutting down or closed.
    #[error("the phone is not running")]
    NotRunning,
}

/// The persistent connection's state, for the application and for checkers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowState {
    /// Not started (or per-call TLS mode, which has no persistent connection).
    Idle,
    /// Connect and handshake in progress.
    Connecting {
        /// Target.
        server: Server,
    },
    /// Up and carrying traffic.
    Up {
        /// Where it goes.
        server: Server,
    },
    /// Up on the backup, de-registering before moving to the stable primary.
    Switching,
    /// Every server failed; waiting before the next round.
    Waiting,
    /// Shut down.
    Closed,
}

/// How a person reads the state ("up on the primary"): the console and the web
/// interface show it.
impl core::fmt::Display for FlowState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FlowState::Idle => f.write_str("idle"),
            FlowState::Connecting { server } => write!(f, "connecting to the {server}"),
            FlowState::Up { server } => write!(f, "up on the {server}"),
            FlowState::Switching => f.write_str("moving back to the primary"),
            FlowState::Waiting => f.write_str("down, waiting before the next attempt"),
            FlowState::Closed => f.write_str("closed"),
        }
    }
}

/// An account's registration state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegState {
    /// No binding and no REGISTER in flight.
    Unregistered,
    /// A REGISTER is in flight (including a challenge round).
    Registering,
    /// A 2xx was received on the current connection.
    Registered {
        /// Where.
        server: Server,
    },
    /// Waiting for the retry timer after a failure.
    RetryWait,
    /// Rejected permanently by the current server.
    Rejected,
    /// A de-REGISTER is in flight.
    Unregistering,
}

/// How a person reads the state ("registered on the backup").
impl core::fmt::Display for RegState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RegState::Unregistered => f.write_str("not registered"),
            RegState::Registering => f.write_str("registering"),
            RegState::Registered { server } => write!(f, "registered on the {server}"),
            RegState::RetryWait => f.write_str("waiting to retry"),
            RegState::Rejected => f.write_str("rejected by the server"),
            RegState::Unregistering => f.write_str("de-registering"),
        }
    }
}

/// What a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnPurpose {
    /// The persistent connection.
    Flow,
    /// A short-lived check of the primary while running on the backup.
    Probe,
    /// Per-call TLS: one registration exchange of an account.
    Register(AccountId),
    /// Per-call TLS: one call.
    Call(CallId),
}
