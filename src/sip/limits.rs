//! Size bounds on the wire form of one message, and the byte of a stream at which a line
//! of the header block is proven to break one. The framer and [`super::Message::parse`]
//! both judge lines here, so they reject the same bytes with the same error.
//!
//! Each violation has a *proof position*: the first byte at which it becomes certain (for
//! example the `max_line + 1`-th byte of a line). The violation with the smallest proof
//! position wins, ties broken in the fixed order header count, line length, message size.
//! Since this depends only on the bytes, not on when they arrived, a stream gets the same
//! error however it is cut into chunks.

/// Size bounds that keep a misbehaving peer from exhausting memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest message (header block plus body) in bytes.
    pub max_message: usize,
    /// Most header lines in one message (continuation lines not counted).
    pub max_headers: usize,
    /// Longest line of the header block in bytes, line terminator excluded.
    pub max_line: usize,
}

impl Default for Limits {
    /// 64 KiB messages (the usual stack convention), 64 headers, 4 KiB lines.
    fn default() -> Self {
        Limits { max_message: 65536, max_headers: 64, max_line: 4096 }
    }
}

/// A limit a message breaks, with the bound that was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exceeded {
    /// More header lines than `max_headers`.
    Headers { limit: usize },
    /// A line longer than `max_line`.
    Line { limit: usize },
    /// More bytes than `max_message`.
    Message { limit: usize },
}

/// The limit that the header-block line starting at `ls` is proven to break, if any.
/// `data` is the message so far, `end` one past the line's LF (or `data.len()` while the
/// line is incomplete: only bytes before `end` may serve as proof), and `headers_before`
/// the number of header fields before the line, `None` for the start line.
pub(crate) fn first_exceeded(
    data: &[u8],
    ls: usize,
    end: usize,
    headers_before: Option<usize>,
    limits: &Limits,
) -> Option<Exceeded> {
    let mut found: Vec<(usize, u8, Exceeded)> = Vec::new();
    if headers_before.is_some_and(|n| n >= limits.max_headers)
        && let Some(at) = header_start_proof(data, ls, end)
    {
        found.push((at, 0, Exceeded::Headers { limit: limits.max_headers }));
    }
    if let Some(at) = line_too_long_proof(data, ls, end, limits.max_line) {
        found.push((at, 1, Exceeded::Line { limit: limits.max_line }));
    }
    if limits.max_message < end {
        found.push((limits.max_message, 2, Exceeded::Message { limit: limits.max_message }));
    }
    found.into_iter().min_by_key(|(at, prio, _)| (*at, *prio)).map(|(_, _, e)| e)
}

/// Where the line starting at `ls` becomes known to be a new header line (not a
/// continuation, not the blank line), if that is already visible before `end`.
fn header_start_proof(data: &[u8], ls: usize, end: usize) -> Option<usize> {
    let byte = |i: usize| data.get(i).copied().filter(|_| i < end);
    match byte(ls)? {
        b' ' | b'\t' | b'\n' => None,
        b'\r' => match byte(ls + 1)? {
            b'\n' => None,
            _ => Some(ls + 1),
        },
        _ => Some(ls),
    }
}

/// Where the line starting at `ls` becomes known to have more than `max_line` bytes
/// before its terminator, if that is already visible before `end`.
fn line_too_long_proof(data: &[u8], ls: usize, end: usize, max_line: usize) -> Option<usize> {
    let byte = |i: usize| data.get(i).copied().filter(|_| i < end);
    let at = ls.checked_add(max_line)?;
    match byte(at)? {
        b'\n' => None,
        // A CR is content only if it is not the one right before the LF.
        b'\r' => match byte(at + 1)? {
            b'\n' => None,
            _ => Some(at + 1),
        },
        _ => Some(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_proof_wins() {
        let limits = Limits { max_message: 16, max_headers: 0, max_line: 100 };
        let data = b"SIP/2.0 200 OK\r\n\rX: 1\r\n";
        // The CR at 16 may still start the blank line, but it is the 17th byte.
        assert_eq!(first_exceeded(data, 16, data.len(), Some(0), &limits), Some(Exceeded::Message { limit: 16 }));
        let limits = Limits { max_message: 17, ..limits };
        assert_eq!(first_exceeded(data, 16, data.len(), Some(0), &limits), Some(Exceeded::Headers { limit: 0 }));
        // The start line is no header, and a lone CR at the end proves nothing yet.
        assert_eq!(first_exceeded(data, 0, 16, None, &limits), None);
        assert_eq!(first_exceeded(b"ab\r", 0, 3, None, &Limits { max_line: 2, ..limits }), None);
        assert_eq!(
            first_exceeded(b"abc", 0, 3, None, &Limits { max_line: 2, ..limits }),
            Some(Exceeded::Line { limit: 2 })
        );
    }
}
