//! A small SIP codec for the pure core: stream framing of the TLS plaintext (messages and
//! RFC 5626 CRLF keep-alives), message parsing and building, typed views of the headers
//! the connection manager reads, and digest authentication.
//!
//! No IO, clock or randomness: everything is a function of its inputs, and every type is
//! `Clone + Eq + Hash` so it can live inside model-checked state.
//!
//! The modules are layered, each using only those before it in this list, so each can be
//! read and tested on its own: [`syntax`] (tokens, start and header lines) and [`limits`]
//! (size bounds), [`framing_error`] (the error of a bad message), [`headers`] (typed views of header values), [`message`] (the value type
//! and the parsing of one complete message), [`framer`] (the stream); [`digest`] uses
//! [`syntax`] only. A test below keeps it so.

pub mod digest;
pub mod framer;
pub mod framing_error;
pub mod headers;
pub mod limits;
pub mod message;
pub mod syntax;

#[cfg(test)]
#[path = "framer_tests.rs"]
mod framer_tests;

pub use framer::{Frame, Framer};
pub use framing_error::FramingError;
pub use limits::Limits;
pub use message::{Message, ParseError};
pub use syntax::{Header, StartLine, SyntaxError};

/// The proptest settings of the codec's properties: 256 cases, regressions kept in the
/// top-level `proptest-regressions/` directory.
#[cfg(test)]
pub(crate) fn test_proptest_config() -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: 256,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        ..proptest::test_runner::Config::default()
    }
}
