//! The line-level wire syntax of SIP (RFC 3261 §7, §25): tokens and white space, header
//! names and their compact forms, the start line, header lines with continuation folding,
//! and the Content-Length headers that delimit the body.
//!
//! This is the bottom of the codec: it uses nothing but `std`, so the header views, the
//! message type and the stream framer can all build on it without a cycle among them.

use std::fmt;

/// SIP linear white space inside a line; Unicode spaces are data, not separators.
pub(crate) const WS: &[char] = &[' ', '\t'];

/// RFC 3261 `token` characters, used for method and header names.
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

/// One header field, as written on the wire (name spelling preserved, value trimmed).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Field name as spelled by the sender (e.g. `Via`, `v`, `CALL-ID`).
    pub name: String,
    /// Field value with surrounding SP/HT removed and continuation lines folded.
    pub value: String,
}

/// The first line of a SIP message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StartLine {
    /// `METHOD uri SIP/2.0`.
    Request {
        /// Request method, e.g. `REGISTER`.
        method: String,
        /// Request-URI exactly as written.
        uri: String,
    },
    /// `SIP/2.0 status reason`.
    Response {
        /// Three-digit status code (100..=699).
        status: u16,
        /// Reason phrase, verbatim (may be empty).
        reason: String,
    },
}

/// Why bytes are not SIP. The texts are what a log or a closed connection reports, so
/// each names the offending part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyntaxError {
    /// A CR between messages is followed by something other than LF.
    StrayCr,
    /// The start line is not UTF-8.
    StartLineNotUtf8,
    /// A status line with a version other than `SIP/2.0`.
    NotSip20Status,
    /// A status code that is not three digits in 100..=699.
    BadStatusCode,
    /// A status code followed by something other than a space.
    NoSpaceBeforeReason,
    /// Neither a request line nor a status line.
    BadStartLine,
    /// A header block ended before any start line.
    MissingStartLine,
    /// A header line is not UTF-8.
    HeaderNotUtf8,
    /// A continuation line with no header to continue.
    ContinuationFirst,
    /// A header line without `:`.
    HeaderNoColon,
    /// A header name that is empty or not a token.
    BadHeaderName,
    /// A Content-Length value that is not a decimal number.
    BadContentLength,
    /// Content-Length headers with different values.
    ConflictingContentLength,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyntaxError::StrayCr => "CR not followed by LF between messages",
            SyntaxError::StartLineNotUtf8 => "start line is not UTF-8",
            SyntaxError::NotSip20Status => "status line is not SIP/2.0",
            SyntaxError::BadStatusCode => "status code is not 100..=699",
            SyntaxError::NoSpaceBeforeReason => "no space between status code and reason",
            SyntaxError::BadStartLine => "start line is neither `METHOD uri SIP/2.0` nor `SIP/2.0 code reason`",
            SyntaxError::MissingStartLine => "header block without a start line",
            SyntaxError::HeaderNotUtf8 => "header line is not UTF-8",
            SyntaxError::ContinuationFirst => "continuation line before the first header",
            SyntaxError::HeaderNoColon => "header line has no colon",
            SyntaxError::BadHeaderName => "header name is empty or not a token",
            SyntaxError::BadContentLength => "Content-Length is not a decimal number",
            SyntaxError::ConflictingContentLength => "conflicting Content-Length headers",
        })
    }
}

impl std::error::Error for SyntaxError {}

/// Compact forms (RFC 3261 §7.3.3 and later registrations), lower-case full names.
const COMPACT: &[(char, &str)] = &[
    ('i', "call-id"),
    ('m', "contact"),
    ('v', "via"),
    ('f', "from"),
    ('t', "to"),
    ('l', "content-length"),
    ('c', "content-type"),
    ('k', "supported"),
    ('e', "content-encoding"),
    ('s', "subject"),
    ('o', "event"),
    ('r', "refer-to"),
    ('x', "session-expires"),
    ('a', "accept-contact"),
    ('u', "allow-events"),
    ('j', "reject-contact"),
    ('d', "request-disposition"),
    ('y', "identity"),
    ('b', "referred-by"),
];

/// Maps a compact header name to its full name; other names are returned unchanged.
fn expand_name(name: &str) -> &str {
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        let c = c.to_ascii_lowercase();
        if let Some((_, full)) = COMPACT.iter().find(|(short, _)| *short == c) {
            return full;
        }
    }
    name
}

/// True when two header names denote the same field: case-insensitive, and a compact
/// form equals its full form (`v` = `Via`, `l` = `Content-Length`, ...).
pub fn same_header_name(a: &str, b: &str) -> bool {
    expand_name(a).eq_ignore_ascii_case(expand_name(b))
}

/// A line without its terminator: the LF is already gone, and a CR before it belongs to
/// the terminator too (RFC 3261 §7.5 lets lone LFs through).
pub(crate) fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Parses the request or status line (without its line terminator).
pub(crate) fn parse_start_line(line: &[u8]) -> Result<StartLine, SyntaxError> {
    let line = std::str::from_utf8(line).map_err(|_| SyntaxError::StartLineNotUtf8)?;
    let is_response = line.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/"));
    if is_response {
        let rest = line
            .get(..8)
            .filter(|p| p.eq_ignore_ascii_case("SIP/2.0 "))
            .and_then(|_| line.get(8..))
            .ok_or(SyntaxError::NotSip20Status)?;
        let code = rest
            .get(..3)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|c| (100..=699).contains(c))
            .ok_or(SyntaxError::BadStatusCode)?;
        let reason = match rest.get(3..) {
            Some("") | None => "",
            Some(r) => r.strip_prefix(' ').ok_or(SyntaxError::NoSpaceBeforeReason)?,
        };
        return Ok(StartLine::Response { status: code, reason: reason.to_string() });
    }
    let mut parts = line.split(WS).filter(|p| !p.is_empty());
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(uri), Some(version), None)
            if is_token(method) && version.eq_ignore_ascii_case("SIP/2.0") =>
        {
            Ok(StartLine::Request { method: method.to_string(), uri: uri.to_string() })
        }
        _ => Err(SyntaxError::BadStartLine),
    }
}

/// Adds one header line (without terminator) to `headers`, folding continuation lines.
pub(crate) fn push_header_line(headers: &mut Vec<Header>, line: &[u8]) -> Result<(), SyntaxError> {
    let line = std::str::from_utf8(line).map_err(|_| SyntaxError::HeaderNotUtf8)?;
    if line.starts_with(WS) {
        // RFC 3261 §7.3.1: folding is equivalent to a single space.
        let last = headers.last_mut().ok_or(SyntaxError::ContinuationFirst)?;
        let more = line.trim_matches(WS);
        if !more.is_empty() {
            if !last.value.is_empty() {
                last.value.push(' ');
            }
            last.value.push_str(more);
        }
        return Ok(());
    }
    let (name, value) = line.split_once(':').ok_or(SyntaxError::HeaderNoColon)?;
    let name = name.trim_end_matches(WS);
    if !is_token(name) {
        return Err(SyntaxError::BadHeaderName);
    }
    headers.push(Header { name: name.to_string(), value: value.trim_matches(WS).to_string() });
    Ok(())
}

/// The body length a header block declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyLength {
    /// No Content-Length header: on a stream the body cannot be delimited.
    Missing,
    /// This many bytes.
    Bytes(usize),
    /// A decimal number too large for memory, so certainly too large for any limit.
    Unrepresentable,
}

/// Removes the Content-Length headers of a complete header block and returns what they
/// declare. They are removed because the body length already carries them.
pub(crate) fn take_content_length(headers: &mut Vec<Header>) -> Result<BodyLength, SyntaxError> {
    let mut length: Option<usize> = None;
    for h in headers.iter().filter(|h| same_header_name(&h.name, "Content-Length")) {
        let value = h.value.as_str();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SyntaxError::BadContentLength);
        }
        let Ok(n) = value.parse::<usize>() else {
            return Ok(BodyLength::Unrepresentable);
        };
        if length.is_some_and(|prev| prev != n) {
            return Err(SyntaxError::ConflictingContentLength);
        }
        length = Some(n);
    }
    headers.retain(|h| !same_header_name(&h.name, "Content-Length"));
    Ok(length.map_or(BodyLength::Missing, BodyLength::Bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[&str]) -> Result<Vec<Header>, SyntaxError> {
        let mut out = Vec::new();
        for line in lines {
            push_header_line(&mut out, line.as_bytes())?;
        }
        Ok(out)
    }

    #[test]
    fn start_lines() {
        let req = StartLine::Request { method: "INVITE".into(), uri: "sip:a".into() };
        assert_eq!(parse_start_line(b"INVITE  sip:a\tsip/2.0"), Ok(req));
        let resp = StartLine::Response { status: 180, reason: String::new() };
        assert_eq!(parse_start_line(b"SIP/2.0 180"), Ok(resp));
        for (line, want) in [
            (&b"SIP/2.0 200 \xff"[..], SyntaxError::StartLineNotUtf8),
            (b"SIP/3.0 200 OK", SyntaxError::NotSip20Status),
            (b"SIP/2.0 099 Low", SyntaxError::BadStatusCode),
            (b"SIP/2.0 200-OK", SyntaxError::NoSpaceBeforeReason),
            (b"INVITE sip:a", SyntaxError::BadStartLine),
            (b"IN(VITE sip:a SIP/2.0", SyntaxError::BadStartLine),
        ] {
            assert_eq!(parse_start_line(line), Err(want), "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn header_lines_fold_and_trim() {
        let got = headers(&["Subject:  a ", "  b", "\t", "X :"]);
        let want = vec![
            Header { name: "Subject".into(), value: "a b".into() },
            Header { name: "X".into(), value: String::new() },
        ];
        assert_eq!(got, Ok(want));
        assert_eq!(headers(&[" x"]), Err(SyntaxError::ContinuationFirst));
        assert_eq!(headers(&["NoColon"]), Err(SyntaxError::HeaderNoColon));
        assert_eq!(headers(&[": v"]), Err(SyntaxError::BadHeaderName));
    }

    #[test]
    fn content_length_is_taken_out() {
        let mut h = headers(&["l: 3", "To: x", "Content-Length: 3"]).unwrap_or_default();
        assert_eq!(take_content_length(&mut h), Ok(BodyLength::Bytes(3)));
        assert_eq!(h, vec![Header { name: "To".into(), value: "x".into() }]);
        assert_eq!(take_content_length(&mut h), Ok(BodyLength::Missing));
        let mut conflict = headers(&["l: 1", "Content-Length: 2"]).unwrap_or_default();
        assert_eq!(take_content_length(&mut conflict), Err(SyntaxError::ConflictingContentLength));
        let mut bad = headers(&["l: +1"]).unwrap_or_default();
        assert_eq!(take_content_length(&mut bad), Err(SyntaxError::BadContentLength));
        let mut huge = headers(&["l: 1", "l: 99999999999999999999999999"]).unwrap_or_default();
        assert_eq!(take_content_length(&mut huge), Ok(BodyLength::Unrepresentable));
    }

    #[test]
    fn compact_names() {
        assert!(same_header_name("Content-Length", "L"));
        assert!(!same_header_name("x", "Session-Expiry"));
        assert!(same_header_name("x", "session-expires"));
    }

    #[test]
    fn error_texts_name_the_problem() {
        assert_eq!(SyntaxError::HeaderNoColon.to_string(), "header line has no colon");
        assert!(SyntaxError::BadContentLength.to_string().contains("Content-Length"));
    }
}
