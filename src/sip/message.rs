//! SIP message value type: building, deterministic serialisation, parsing of one complete
//! message, and header look-up that understands the compact header forms of RFC 3261 §7.3.3.
//!
//! Content-Length is not stored as a header: on a stream transport it is a framing fact,
//! and [`Message::body`] already carries it. [`Message::to_bytes`] always writes it from the
//! body length and parsing removes it, so a message and its wire form cannot disagree.

use super::framing_error::FramingError;
use super::headers::split_list;
use super::limits::{Exceeded, Limits, first_exceeded};
use super::syntax::{
    BodyLength, SyntaxError, WS, is_token, parse_start_line, push_header_line, strip_cr, take_content_length,
};

// The line-level types live in `syntax`, which parsing builds on; they are part of a
// message, so they are reachable from here too.
pub use super::syntax::{Header, StartLine, same_header_name};

/// A complete SIP request or response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Message {
    /// Request line or status line.
    pub start: StartLine,
    /// Header fields in wire order, without Content-Length.
    pub headers: Vec<Header>,
    /// Message body (its length is the Content-Length).
    pub body: Vec<u8>,
}

/// Why bytes are not exactly one SIP message: what the framer would say of the same bytes,
/// or that they are not exactly one message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ParseError {
    /// A fault the framer reports too (a limit broken, bad syntax, no Content-Length),
    /// with the same value and text.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// The header block or the body is cut short.
    #[error("malformed SIP message: incomplete message")]
    Incomplete,
    /// More bytes follow the body.
    #[error("malformed SIP message: bytes after the end of the message")]
    TrailingBytes,
}

impl From<Exceeded> for ParseError {
    fn from(e: Exceeded) -> Self {
        ParseError::Framing(e.into())
    }
}

impl From<SyntaxError> for ParseError {
    fn from(e: SyntaxError) -> Self {
        ParseError::Framing(e.into())
    }
}

impl Message {
    /// A request with no headers and no body.
    pub fn request(method: &str, uri: &str) -> Message {
        Message {
            start: StartLine::Request { method: method.to_string(), uri: uri.to_string() },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response with no headers and no body.
    pub fn response(status: u16, reason: &str) -> Message {
        Message {
            start: StartLine::Response { status, reason: reason.to_string() },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Appends a header after all existing ones.
    pub fn push_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push(Header { name: name.to_string(), value: value.into() });
    }

    /// Builder form of [`Message::push_header`].
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Message {
        self.push_header(name, value);
        self
    }

    /// Sets the body and its Content-Type, dropping any previous Content-Type header.
    /// An empty `content_type` adds no Content-Type header.
    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        self.headers.retain(|h| !same_header_name(&h.name, "Content-Type"));
        if !content_type.is_empty() {
            self.push_header("Content-Type", content_type);
        }
        self.body = body;
    }

    /// Wire form: start line, headers in order (any stored Content-Length skipped),
    /// `Content-Length` from the body length, empty line, body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        match &self.start {
            StartLine::Request { method, uri } => {
                out.extend_from_slice(method.as_bytes());
                out.push(b' ');
                out.extend_from_slice(uri.as_bytes());
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response { status, reason } => {
                out.extend_from_slice(format!("SIP/2.0 {status} {reason}\r\n").as_bytes());
            }
        }
        for h in &self.headers {
            if same_header_name(&h.name, "Content-Length") {
                continue;
            }
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// Parses exactly one complete message (leading CRLFs are skipped, as RFC 3261 §7.5
    /// asks), with the limits of [`Limits::default`]. Content-Length is mandatory and is
    /// consumed into [`Message::body`]; bytes after the body are an error.
    ///
    /// Round trip: `Message::parse(&m.to_bytes()) == Ok(m)` holds when the method is a
    /// token, the URI is non-empty without SP/HT, the status is 100..=699, nothing
    /// contains CR or LF, header names are tokens, header values have no leading or
    /// trailing SP/HT, no header is a Content-Length, and the limits are respected.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        Message::parse_within(bytes, Limits::default())
    }

    /// [`Message::parse`] with other limits.
    pub(crate) fn parse_within(bytes: &[u8], limits: Limits) -> Result<Message, ParseError> {
        let data = skip_keepalives(bytes)?;
        let (start, mut headers, head_len) = parse_head(data, limits)?;
        let body_len = match take_content_length(&mut headers)? {
            BodyLength::Bytes(n) => n,
            BodyLength::Missing => return Err(FramingError::MissingContentLength.into()),
            BodyLength::Unrepresentable => return Err(Exceeded::Message { limit: limits.max_message }.into()),
        };
        let total = head_len.saturating_add(body_len);
        if total > limits.max_message {
            return Err(Exceeded::Message { limit: limits.max_message }.into());
        }
        let body = data.get(head_len..total).ok_or(ParseError::Incomplete)?;
        if data.len() > total {
            return Err(ParseError::TrailingBytes);
        }
        Ok(Message { start, headers, body: body.to_vec() })
    }

    /// True for a request, false for a response.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method; `None` for a response.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code; `None` for a request.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    /// Value of the first header with this name (case-insensitive, compact forms equal to
    /// their full forms), unsplit.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|h| same_header_name(&h.name, name)).map(|h| h.value.as_str())
    }

    /// Whole values of every header with this name, one entry per header line, unsplit.
    /// Use this for fields whose values contain commas that are not list separators,
    /// such as `WWW-Authenticate`.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|h| same_header_name(&h.name, name)).map(|h| h.value.as_str()).collect()
    }

    /// Every list element of every header with this name: comma-separated values are
    /// split (commas inside quotes or `<...>` do not split), trimmed, empty ones dropped.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|h| same_header_name(&h.name, name)).flat_map(|h| split_list(&h.value)).collect()
    }

    /// The Call-ID (or `i`) value.
    pub fn call_id(&self) -> Option<&str> {
        self.header("Call-ID")
    }

    /// CSeq number and method, e.g. `(2, "REGISTER")`.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let value = self.header("CSeq")?;
        let mut parts = value.split(WS).filter(|p| !p.is_empty());
        match (parts.next(), parts.next(), parts.next()) {
            (Some(num), Some(method), None) if num.bytes().all(|b| b.is_ascii_digit()) && is_token(method) => {
                Some((num.parse().ok()?, method))
            }
            _ => None,
        }
    }

    /// The first value of the first Via header (the one this hop added).
    pub fn top_via(&self) -> Option<&str> {
        split_list(self.header("Via")?).into_iter().next()
    }
}

/// The start line, the headers (Content-Length still among them) and the length of the
/// header block, blank line included.
fn parse_head(data: &[u8], limits: Limits) -> Result<(StartLine, Vec<Header>, usize), ParseError> {
    let mut start: Option<StartLine> = None;
    let mut headers = Vec::new();
    let mut line_start = 0;
    loop {
        let rest = data.get(line_start..).unwrap_or_default();
        let newline = rest.iter().position(|&b| b == b'\n');
        let end = newline.map_or(data.len(), |i| line_start + i + 1);
        let line = strip_cr(rest.get(..newline.unwrap_or(rest.len())).unwrap_or_default());
        // Limits before syntax, as the framer judges them, so both report the same error.
        if let Some(exceeded) = first_exceeded(data, line_start, end, start.is_some().then_some(headers.len()), &limits)
        {
            return Err(exceeded.into());
        }
        if newline.is_none() {
            return Err(ParseError::Incomplete);
        }
        line_start = end;
        if start.is_none() {
            start = Some(parse_start_line(line)?);
        } else if let Some(start) = start.take_if(|_| line.is_empty()) {
            return Ok((start, headers, end));
        } else {
            push_header_line(&mut headers, line)?;
        }
    }
}

/// The bytes after the CRLFs (or lone LFs) that RFC 3261 §7.5 allows before a message.
fn skip_keepalives(mut data: &[u8]) -> Result<&[u8], ParseError> {
    loop {
        data = match data {
            [b'\n', rest @ ..] | [b'\r', b'\n', rest @ ..] => rest,
            [b'\r'] => return Err(ParseError::Incomplete),
            [b'\r', ..] => return Err(SyntaxError::StrayCr.into()),
            _ => return Ok(data),
        };
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn register() -> Message {
        Message::request("REGISTER", "sips:example.com")
            .with_header("Via", "SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bK1;keep")
            .with_header("Call-ID", "abc@host")
            .with_header("CSeq", "2 REGISTER")
    }

    #[test]
    fn to_bytes_layout() {
        let mut m = register();
        m.push_header("Content-Length", "99");
        m.set_body("text/plain", b"hi".to_vec());
        let text = String::from_utf8(m.to_bytes()).unwrap();
        assert_eq!(
            text,
            "REGISTER sips:example.com SIP/2.0\r\n\
             Via: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bK1;keep\r\n\
             Call-ID: abc@host\r\nCSeq: 2 REGISTER\r\n\
             Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
        );
        let r = Message::response(200, "OK");
        assert_eq!(r.to_bytes(), b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    }

    #[test]
    fn set_body_replaces_content_type() {
        let mut m = register().with_header("c", "a/b");
        m.set_body("application/sdp", b"v=0".to_vec());
        assert_eq!(m.header_all("Content-Type"), vec!["application/sdp"]);
        m.set_body("", Vec::new());
        assert_eq!(m.header("Content-Type"), None);
    }

    #[test]
    fn accessors() {
        let m = register();
        assert!(m.is_request());
        assert_eq!(m.method(), Some("REGISTER"));
        assert_eq!(m.status(), None);
        assert_eq!(m.call_id(), Some("abc@host"));
        assert_eq!(m.cseq(), Some((2, "REGISTER")));
        let r = Message::response(401, "Unauthorized").with_header("CSeq", "x REGISTER");
        assert!(!r.is_request());
        assert_eq!(r.status(), Some(401));
        assert_eq!(r.method(), None);
        assert_eq!(r.cseq(), None);
        assert_eq!(Message::response(200, "OK").with_header("CSeq", "99999999999 A").cseq(), None);
    }

    #[test]
    fn compact_forms_match_both_ways() {
        let raw = b"SIP/2.0 200 OK\r\nv: SIP/2.0/TLS a;branch=z9hG4bKx, SIP/2.0/TLS b\r\n\
                    Via: SIP/2.0/TLS c\r\ni: cid\r\nm: <sip:a@b>\r\nl: 0\r\nk: outbound\r\n\
                    CALL-ID: second\r\n\r\n";
        let m = Message::parse(raw).unwrap();
        assert_eq!(m.call_id(), Some("cid"));
        assert_eq!(m.header("i"), Some("cid"));
        assert_eq!(m.header("call-id"), Some("cid"));
        assert_eq!(m.header("Contact"), Some("<sip:a@b>"));
        assert_eq!(m.header("Supported"), Some("outbound"));
        assert_eq!(m.header("K"), Some("outbound"));
        assert_eq!(m.top_via(), Some("SIP/2.0/TLS a;branch=z9hG4bKx"));
        assert_eq!(m.header_values("V"), vec!["SIP/2.0/TLS a;branch=z9hG4bKx", "SIP/2.0/TLS b", "SIP/2.0/TLS c"]);
        // Content-Length is framing, not a stored header.
        assert_eq!(m.header("Content-Length"), None);
        assert!(same_header_name("Content-Length", "L"));
        assert!(!same_header_name("x", "Session-Expiry"));
        assert!(same_header_name("x", "session-expires"));
    }

    #[test]
    fn header_values_respect_quotes_and_angles() {
        let m = Message::response(200, "OK")
            .with_header("Contact", r#""Doe, John" <sip:j@h;a=1,2>;expires=60 , <sip:k@h>;q="0,5\",x","#)
            .with_header("contact", "sip:z@h");
        assert_eq!(
            m.header_values("m"),
            vec![r#""Doe, John" <sip:j@h;a=1,2>;expires=60"#, r#"<sip:k@h>;q="0,5\",x""#, "sip:z@h"]
        );
    }

    #[test]
    fn parse_folds_and_trims() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nSubject:  first\r\n  second \r\n\tthird\r\n\
                    X-Empty:\r\nContent-Length : 0\r\n\r\n";
        let m = Message::parse(raw).unwrap();
        assert_eq!(m.header("s"), Some("first second third"));
        assert_eq!(m.header("X-Empty"), Some(""));
        assert_eq!(m.headers.len(), 2);
    }

    #[test]
    fn parse_rejects() {
        use ParseError::{Incomplete, TrailingBytes};
        let malformed = |e: SyntaxError| ParseError::Framing(FramingError::Malformed(e));
        use SyntaxError::*;
        let bad: &[(&[u8], ParseError)] = &[
            (b"", Incomplete),
            (b"\r", Incomplete),
            (b"\r\rINVITE sip:a SIP/2.0\r\nl: 0\r\n\r\n", malformed(StrayCr)),
            (b"INVITE sip:a SIP/2.0\r\nContent-Length: 0\r\n", Incomplete),
            (b"INVITE sip:a SIP/2.0\r\nContent-Length: 2\r\n\r\nX", Incomplete),
            (b"INVITE sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\nX", TrailingBytes),
            (b"INVITE sip:a SIP/3.0\r\nContent-Length: 0\r\n\r\n", malformed(BadStartLine)),
            (b"INVITE sip:a\r\nContent-Length: 0\r\n\r\n", malformed(BadStartLine)),
            (b"SIP/2.0 99 Low\r\nContent-Length: 0\r\n\r\n", malformed(BadStatusCode)),
            (b"SIP/2.0 2000 OK\r\nContent-Length: 0\r\n\r\n", malformed(NoSpaceBeforeReason)),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", malformed(BadStartLine)),
            (b"INVITE sip:a SIP/2.0\r\n folded\r\nContent-Length: 0\r\n\r\n", malformed(ContinuationFirst)),
            (b"INVITE sip:a SIP/2.0\r\nNoColon\r\nContent-Length: 0\r\n\r\n", malformed(HeaderNoColon)),
            (b"INVITE sip:a SIP/2.0\r\n: v\r\nContent-Length: 0\r\n\r\n", malformed(BadHeaderName)),
            (b"INVITE sip:a SIP/2.0\r\nX: \xff\r\nContent-Length: 0\r\n\r\n", malformed(HeaderNotUtf8)),
            (b"INVITE sip:a SIP/2.0\r\nContent-Length: x\r\n\r\n", malformed(BadContentLength)),
            (b"INVITE sip:a SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab", malformed(ConflictingContentLength)),
            (b"INVITE sip:a SIP/2.0\r\nTo: x\r\n\r\n", ParseError::Framing(FramingError::MissingContentLength)),
        ];
        for (raw, want) in bad {
            assert_eq!(&Message::parse(raw), &Err(want.clone()), "{:?}", String::from_utf8_lossy(raw));
        }
        // Equal duplicates are harmless; leading CRLFs are ignored; reason may be empty.
        let m = Message::parse(b"\r\n\nSIP/2.0 180\r\nl: 1\r\nContent-Length: 1\r\n\r\nZ");
        assert_eq!(m.map(|m| (m.status(), m.body)), Ok((Some(180), b"Z".to_vec())));
    }

    #[test]
    fn parse_applies_the_limits() {
        let limits = Limits { max_message: 60, max_headers: 2, max_line: 30 };
        let ok = b"SIP/2.0 200 OK\r\nA: 1\r\n  more\r\nl: 0\r\n\r\n";
        assert!(Message::parse_within(ok, limits).is_ok());
        let cases: &[(&[u8], ParseError)] = &[
            (
                b"SIP/2.0 200 OK\r\nA: 1\r\nB: 2\r\nl: 0\r\n\r\n",
                ParseError::Framing(FramingError::TooManyHeaders { limit: 2 }),
            ),
            (
                b"SIP/2.0 200 OK\r\nA: 1234567890123456789012345678\r\nl: 0\r\n\r\n",
                ParseError::Framing(FramingError::LineTooLong { limit: 30 }),
            ),
            (b"SIP/2.0 200 OK\r\nl: 50\r\n\r\n", ParseError::Framing(FramingError::MessageTooLarge { limit: 60 })),
            (
                b"SIP/2.0 200 OK\r\nl: 99999999999999999999999\r\n\r\n",
                ParseError::Framing(FramingError::MessageTooLarge { limit: 60 }),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(&Message::parse_within(raw, limits), &Err(want.clone()), "{:?}", String::from_utf8_lossy(raw));
        }
        let text = ParseError::Framing(FramingError::LineTooLong { limit: 9 }).to_string();
        assert_eq!(text, "SIP header line is longer than 9 bytes");
    }

    pub(crate) fn token() -> impl Strategy<Value = String> {
        "[A-Za-z][A-Za-z0-9.!%*_+`'~-]{0,12}"
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "[!-~]", "[!-~][ -~\u{a0}é€\u{3000}]{0,40}[!-~é]",]
    }

    /// Messages meeting the round-trip precondition documented on [`Message::parse`].
    pub(crate) fn message() -> impl Strategy<Value = Message> {
        let start = prop_oneof![
            (token(), "[!-~]{1,40}").prop_map(|(method, uri)| StartLine::Request { method, uri }),
            (100u16..700, "[ -~é]{0,20}").prop_map(|(status, reason)| StartLine::Response { status, reason }),
        ];
        let header = (token(), value())
            .prop_filter("Content-Length is framing", |(n, _)| !same_header_name(n, "Content-Length"))
            .prop_map(|(name, value)| Header { name, value });
        (start, prop::collection::vec(header, 0..8), prop::collection::vec(any::<u8>(), 0..80))
            .prop_map(|(start, headers, body)| Message { start, headers, body })
    }

    proptest! {
        #![proptest_config(crate::sip::test_proptest_config())]

        #[test]
        fn to_bytes_parse_round_trip(m in message()) {
            prop_assert_eq!(Message::parse(&m.to_bytes()), Ok(m));
        }

        #[test]
        fn header_lookup_never_panics(m in message(), name in "[a-zA-Z-]{0,3}") {
            let _ = (m.header(&name), m.header_values(&name), m.cseq(), m.top_via());
        }
    }
}
