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
//! `docs/architecture.md` for the time contract and the decision table.
//!
//! # Run loop
//!
//! Whoever drives a [`Core`] waits for the earliest of its next deadline, a transport
//! happening or an application command; applies exactly one of them; then drains every
//! output before the next. The core never reads a clock: `now` goes in with every call.
//!
//! ```
//! use sip_ptls::config::{AccountConfig, Config, ServerAddr};
//! use sip_ptls::dns::records::{AddressRecord, Answer, Negative, NegativeKind, QueryType};
//! use sip_ptls::dns::AnyAnswer;
//! use sip_ptls::time::Instant;
//! use sip_ptls::{Core, Event, Input, Output};
//!
//! let config = Config {
//!     proxy: Some(ServerAddr::new("sip.example.com", 5061)),
//!     accounts: vec![AccountConfig::new("1001", "secret")],
//!     seed: 7.into(),
//!     ..Config::default()
//! };
//! let mut now = Instant::ZERO;
//! let mut core = Core::new(config, now);
//! core.start(now);
//!
//! let (mut sent, mut events) = (Vec::new(), Vec::new());
//! for _ in 0..3 {
//!     // Drain: perform every output the last mutation produced.
//!     while let Some(output) = core.poll_output() {
//!         match output {
//!             // A real shell asks DNS here; this one knows one IPv4 address.
//!             Output::Resolve { query } => {
//!                 let answer = match query.qtype {
//!                     QueryType::A => Answer::Records {
//!                         records: vec![AddressRecord { addr: "192.0.2.1".parse().unwrap(), ttl: 300 }],
//!                         additional: Vec::new(),
//!                     },
//!                     _ => Answer::Negative(Negative { kind: NegativeKind::NoData, ttl: Some(300) }),
//!                 };
//!                 let outcome = Ok(AnyAnswer::Addresses(answer));
//!                 core.handle_input(now, Input::Resolved { query, outcome });
//!             }
//!             // A real shell opens TCP and TLS here; this one pretends it succeeded.
//!             Output::Connect { conn, addr, server_name } => {
//!                 assert_eq!((addr.to_string().as_str(), server_name.as_str()), ("192.0.2.1:5061", "sip.example.com"));
//!                 let local = "192.0.2.10:40000".parse().unwrap();
//!                 core.handle_input(now, Input::Connected { conn, local });
//!             }
//!             Output::Transmit { data, .. } => sent.push(data),
//!             Output::Close { .. } => {}
//!             Output::Event(event) => events.push(event),
//!         }
//!     }
//!     // Wait: here nothing else happens, so the next deadline comes.
//!     let Some(deadline) = core.poll_timeout() else { break };
//!     if let Some((timer, _)) = core.timeout_reason() {
//!         println!("sleeping until {} ms for the {timer}", deadline.as_millis());
//!     }
//!     now = deadline;
//!     core.handle_timeout(now);
//! }
//! assert!(sent[0].starts_with(b"REGISTER sips:sip.example.com SIP/2.0\r\n"));
//! // Nobody answered the REGISTER: after the transaction timer the connection is dead,
//! // and the core, with no backup configured, backs off before the next round.
//! assert!(events.contains(&Event::FlowLost {
//!     server: sip_ptls::ids::Server::Primary,
//!     reason: sip_ptls::FlowError::TransactionTimeout,
//! }));
//! assert!(events.iter().any(|e| matches!(e, Event::Backoff { failures: 1, .. })));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod dns;
pub mod engine;
pub mod ids;
#[cfg(feature = "registrar")]
pub mod registrar;
#[cfg(all(feature = "runtime", feature = "sim"))]
pub mod replay;
pub mod rng;
#[cfg(feature = "runtime")]
pub mod runtime;
/// The simulator and invariant monitor: test scaffolding, compiled with the `sim` feature
/// (the command, the model checker and the tests turn it on) and in unit tests.
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod sip;
pub mod time;
#[cfg(feature = "web")]
pub mod web;

// The examples of docs/embedding.md are compiled as doctests, so the document cannot
// drift from the API.
#[cfg(all(doctest, feature = "runtime"))]
#[doc = include_str!("../docs/embedding.md")]
pub struct EmbeddingDoc;

pub use engine::{
    CallFailure, CallInfo, CallOutcome, CallStage, CommandError, ConnPurpose, Core, EndReason, Event, FlowError,
    FlowState, Input, LinkStats, NeedsRestart, Output, RegError, RegState, TransportError, tunable_values,
    with_tunable_values,
};
