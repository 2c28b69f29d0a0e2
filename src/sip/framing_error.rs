//! Why bytes cannot be taken as a SIP message on a stream: the one error type of the
//! framer, which [`super::message::ParseError`] wraps for the same faults, so that both
//! report a bad message with the same value and the same text.

use super::limits::Exceeded;
use super::syntax::SyntaxError;

/// Why the stream cannot be framed. The stream cannot be resynchronised after any of
/// these, so the connection should be closed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FramingError {
    /// The message (header block plus declared body) exceeds the size limit.
    #[error("SIP message exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The `max_message` applied.
        limit: usize,
    },
    /// The header block has too many header lines.
    #[error("SIP message has more than {limit} header fields")]
    TooManyHeaders {
        /// The `max_headers` applied.
        limit: usize,
    },
    /// A line of the header block is too long.
    #[error("SIP header line is longer than {limit} bytes")]
    LineTooLong {
        /// The `max_line` applied.
        limit: usize,
    },
    /// The bytes are not a SIP message.
    #[error("malformed SIP message: {0}")]
    Malformed(#[from] SyntaxError),
    /// The header block has no Content-Length, so the body cannot be delimited.
    #[error("SIP message on a stream transport has no Content-Length header")]
    MissingContentLength,
}

impl From<Exceeded> for FramingError {
    fn from(e: Exceeded) -> Self {
        match e {
            Exceeded::Headers { limit } => FramingError::TooManyHeaders { limit },
            Exceeded::Line { limit } => FramingError::LineTooLong { limit },
            Exceeded::Message { limit } => FramingError::MessageTooLarge { limit },
        }
    }
}
