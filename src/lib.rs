//! Persistent TLS for SIP endpoints.
//!
//! `sip_ptls` gives a phone, softphone, gateway or load generator one long-lived,
//! verified TLS connection to its SIP proxy, shared by every line, every registration
//! refresh, every outgoing call and every incoming request; it keeps that connection
//! alive with RFC 5626 CRLF pings, notices quickly when it dies, reconnects, fails over to
//! a backup proxy and back, and re-registers every account on each new connection.
//!
//! The crate is split the way quinn-proto and str0m are: the core ([`engine`]) is a deterministic
//! state machine with no IO (time is passed in, randomness comes from a seed in the
//! configuration); the runtime shell, behind the default `runtime` feature, owns the
//! sockets, TLS, timers and files and only performs what the core asks. See
//! `docs/architecture.md` for the run loop and the time contract.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod engine;
pub mod ids;
#[cfg(feature = "registrar")]
pub mod registrar;
pub mod rng;
#[cfg(feature = "runtime")]
pub mod runtime;
pub mod sim;
pub mod sip;
pub mod time;

pub use engine::{
    CallFailure, CallOutcome, CommandError, ConnPurpose, Core, EndReason, Event, FlowError, FlowState, Input, Output,
    RegError, RegState, TransportError,
};
