//! A small SIP codec for the pure core: stream framing of the TLS plaintext (messages and
//! RFC 5626 CRLF keep-alives), message parsing and building, typed views of the headers
//! the connection manager reads, and digest authentication.
//!
//! No IO, clock or randomness: everything is a function of its inputs, and every type is
//! `Clone + Eq + Hash` so it can live inside model-checked state.

pub mod digest;
pub mod framer;
pub mod headers;
pub mod message;

pub use framer::{Frame, Framer, FramingError, Limits};
pub use message::{Header, Message, StartLine};

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
