//! Stream framing of the TLS plaintext: splits the byte stream into SIP messages
//! (RFC 3261 §7.5, §18.3: header block, then exactly Content-Length body bytes) and the
//! CRLF keep-alives sent between messages (RFC 5626 §4.4.1).
//!
//! Every CRLF (or lone LF) between messages is reported on its own as soon as it arrives,
//! because a pong is a single CRLF and must not wait for bytes that may never come; the
//! caller decides whether two in a row were a ping.
//!
//! The framer is bounded and chunking-independent: each line of a header block is judged
//! against the [`Limits`] by the earliest byte that proves a violation (see
//! [`super::limits`]) before its syntax is checked. Since that only depends on the bytes,
//! not on when they arrived, the frames and the error are the same for every way of
//! cutting the stream into chunks, and an oversized message is rejected before more than
//! `max_message` of it is held.

use super::framing_error::FramingError;
use super::limits::{Exceeded, first_exceeded};
use super::message::Message;
use super::syntax::{
    BodyLength, Header, StartLine, SyntaxError, parse_start_line, push_header_line, strip_cr, take_content_length,
};

// Defined apart so that `Message::parse` applies the same bounds without the framer.
pub use super::limits::Limits;

/// One unit of the received stream.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Frame {
    /// One CRLF (or lone LF) between messages: a keep-alive pong, or half of a ping.
    Crlf,
    /// A complete SIP message.
    Message(Message),
}

/// Progress through the header block of the message at the front of the buffer.
/// Offsets are relative to the start of that message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Scan {
    /// Start of the first line not yet known to be complete.
    line_start: usize,
    /// Parsed start line, once its line is complete.
    start_line: Option<StartLine>,
    /// Headers parsed so far (continuations already folded in).
    headers: Vec<Header>,
    /// Header block length (blank line included) and Content-Length, once known.
    head: Option<(usize, usize)>,
}

/// Incremental splitter of a received byte stream into [`Frame`]s.
///
/// Call [`Framer::next_frame`] until it returns `Ok(None)` after every
/// [`Framer::push`]; the buffer then never holds more than `max(max_message, 1)` bytes
/// (a lone CR between messages is kept until the next byte shows whether it is a CRLF).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Framer {
    limits: Limits,
    /// Received bytes; `buf[start..]` is not yet consumed. Compacted whenever the caller
    /// has drained all complete frames, so equal logical states compare equal.
    buf: Vec<u8>,
    start: usize,
    scan: Scan,
    /// Set by the first error, which is then repeated forever.
    poisoned: Option<FramingError>,
}

impl Framer {
    /// An empty framer with these limits.
    pub fn new(limits: Limits) -> Framer {
        Framer { limits, buf: Vec::new(), start: 0, scan: Scan::default(), poisoned: None }
    }

    /// Appends received bytes; parsing happens in [`Framer::next_frame`]. Bytes arriving
    /// after an error are dropped, since the stream is unusable anyway.
    pub fn push(&mut self, data: &[u8]) {
        if self.poisoned.is_none() {
            self.compact();
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or the framing error
    /// (repeated on every later call).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        if let Some(err) = &self.poisoned {
            return Err(err.clone());
        }
        match self.step() {
            Ok(Some(frame)) => {
                if self.start >= self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                Ok(Some(frame))
            }
            Ok(None) => {
                self.compact();
                Ok(None)
            }
            Err(err) => {
                self.poisoned = Some(err.clone());
                self.buf = Vec::new();
                self.start = 0;
                self.scan = Scan::default();
                Err(err)
            }
        }
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start.min(self.buf.len()));
            self.start = 0;
        }
    }

    fn step(&mut self) -> Result<Option<Frame>, FramingError> {
        let data = self.buf.get(self.start..).unwrap_or_default();
        if self.scan == Scan::default() {
            // Between messages: RFC 3261 §7.5 leading CRLFs, i.e. RFC 5626 pings/pongs.
            match (data.first(), data.get(1)) {
                (None, _) | (Some(b'\r'), None) => return Ok(None),
                (Some(b'\n'), _) => {
                    self.start += 1;
                    return Ok(Some(Frame::Crlf));
                }
                (Some(b'\r'), Some(b'\n')) => {
                    self.start += 2;
                    return Ok(Some(Frame::Crlf));
                }
                (Some(b'\r'), Some(_)) => return Err(SyntaxError::StrayCr.into()),
                _ => {}
            }
        }
        let (head_len, body_len) = match self.scan.head {
            Some(head) => head,
            None => match scan_head(&mut self.scan, data, &self.limits)? {
                Some(head) => head,
                None => return Ok(None),
            },
        };
        let total = head_len.saturating_add(body_len);
        let Some(body) = data.get(head_len..total) else {
            return Ok(None);
        };
        let body = body.to_vec();
        let scan = std::mem::take(&mut self.scan);
        let start = scan.start_line.ok_or(SyntaxError::MissingStartLine)?;
        self.start += total;
        Ok(Some(Frame::Message(Message { start, headers: scan.headers, body })))
    }
}

/// Advances `scan` over the complete lines of `data` (the message so far). Returns the
/// header block length and body length once the blank line has been seen.
fn scan_head(scan: &mut Scan, data: &[u8], limits: &Limits) -> Result<Option<(usize, usize)>, FramingError> {
    loop {
        let ls = scan.line_start;
        let rest = data.get(ls..).unwrap_or_default();
        let newline = rest.iter().position(|&b| b == b'\n');
        // Only bytes up to `end` (exclusive) may be used as proof positions.
        let end = newline.map_or(data.len(), |i| ls + i + 1);
        let in_head = scan.start_line.is_some();
        if let Some(exceeded) = first_exceeded(data, ls, end, in_head.then_some(scan.headers.len()), limits) {
            return Err(exceeded.into());
        }
        let Some(i) = newline else {
            return Ok(None);
        };
        let line = strip_cr(&rest[..i]);
        scan.line_start = end;
        if !in_head {
            scan.start_line = Some(parse_start_line(line)?);
        } else if line.is_empty() {
            return finish_head(scan, end, limits).map(Some);
        } else {
            push_header_line(&mut scan.headers, line)?;
        }
    }
}

/// Validates the complete header block: Content-Length present, well-formed and
/// consistent, and the whole message within `max_message`.
fn finish_head(scan: &mut Scan, head_len: usize, limits: &Limits) -> Result<(usize, usize), FramingError> {
    let body_len = match take_content_length(&mut scan.headers)? {
        BodyLength::Bytes(n) => n,
        BodyLength::Missing => return Err(FramingError::MissingContentLength),
        BodyLength::Unrepresentable => return Err(Exceeded::Message { limit: limits.max_message }.into()),
    };
    if head_len.saturating_add(body_len) > limits.max_message {
        return Err(Exceeded::Message { limit: limits.max_message }.into());
    }
    scan.head = Some((head_len, body_len));
    Ok((head_len, body_len))
}

/// What the framer makes of `data` taken as one whole message: the one message after any
/// keep-alives, or its error in [`ParseError`] terms. `Message::parse` must agree with it
/// on every input (checked by the property tests and the `message` fuzz target).
#[cfg(any(test, feature = "sim"))]
pub fn parse_by_framing(data: &[u8], limits: Limits) -> Result<Message, super::message::ParseError> {
    use super::message::ParseError;
    let mut framer = Framer::new(limits);
    framer.push(data);
    loop {
        return match framer.next_frame() {
            Ok(Some(Frame::Crlf)) => continue,
            Ok(Some(Frame::Message(m))) if framer.buffered() == 0 => Ok(m),
            Ok(Some(Frame::Message(_))) => Err(ParseError::TrailingBytes),
            Ok(None) => Err(ParseError::Incomplete),
            Err(e) => Err(ParseError::Framing(e)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::tests::message;
    use proptest::prelude::*;

    /// Feeds `chunks` one by one, draining after each; returns the frames and the error.
    fn run(limits: Limits, chunks: &[&[u8]]) -> (Vec<Frame>, Option<FramingError>) {
        let mut f = Framer::new(limits);
        let mut frames = Vec::new();
        for chunk in chunks {
            f.push(chunk);
            loop {
                match f.next_frame() {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => break,
                    Err(e) => return (frames, Some(e)),
                }
            }
        }
        (frames, None)
    }

    fn bytewise(data: &[u8]) -> Vec<&[u8]> {
        data.chunks(1).collect()
    }

    fn small() -> Limits {
        Limits { max_message: 200, max_headers: 3, max_line: 40 }
    }

    #[test]
    fn crlf_is_delivered_at_once() {
        let mut f = Framer::new(Limits::default());
        f.push(b"\r\n");
        assert_eq!(f.next_frame(), Ok(Some(Frame::Crlf)));
        assert_eq!(f.next_frame(), Ok(None));
        f.push(b"\r");
        assert_eq!(f.next_frame(), Ok(None));
        assert_eq!(f.buffered(), 1);
        f.push(b"\n\n\r\n");
        for _ in 0..3 {
            assert_eq!(f.next_frame(), Ok(Some(Frame::Crlf)));
        }
        assert_eq!(f.next_frame(), Ok(None));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn messages_between_keepalives() {
        let m = Message::response(200, "OK").with_header("Call-ID", "x");
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend(m.to_bytes());
        stream.extend(b"\r\n");
        let want = vec![Frame::Crlf, Frame::Crlf, Frame::Message(m.clone()), Frame::Crlf];
        assert_eq!(run(Limits::default(), &[&stream]), (want.clone(), None));
        assert_eq!(run(Limits::default(), &bytewise(&stream)), (want, None));
    }

    #[test]
    fn body_may_contain_crlf_and_lf_only_lines_work() {
        let raw = b"MESSAGE sip:a SIP/2.0\nl: 4\nSubject: a\n b\n\n\r\n\r\n";
        let (frames, err) = run(Limits::default(), &[raw]);
        assert_eq!(err, None);
        let want = Message::request("MESSAGE", "sip:a").with_header("Subject", "a b");
        let want = Message { body: b"\r\n\r\n".to_vec(), ..want };
        assert_eq!(frames, vec![Frame::Message(want)]);
    }

    #[test]
    fn cr_junk_between_messages_is_malformed() {
        let (_, err) = run(Limits::default(), &[b"\r", b"X"]);
        assert!(matches!(err, Some(FramingError::Malformed(_))));
    }

    fn assert_poisoned(limits: Limits, data: &[u8], want: FramingError) {
        for chunks in [vec![data], bytewise(data)] {
            let mut f = Framer::new(limits);
            let mut got = None;
            for c in chunks {
                f.push(c);
                loop {
                    match f.next_frame() {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            got = Some(e);
                            break;
                        }
                    }
                }
                if got.is_some() {
                    break;
                }
            }
            assert_eq!(got.as_ref(), Some(&want));
            assert_eq!(f.buffered(), 0);
            f.push(b"\r\nSIP/2.0 200 OK\r\nl: 0\r\n\r\n");
            assert_eq!(f.next_frame(), Err(want.clone()));
            assert_eq!(f.next_frame(), Err(want.clone()));
        }
    }

    #[test]
    fn too_many_headers() {
        let raw = b"SIP/2.0 200 OK\r\nA: 1\r\nB: 2\r\n  cont\r\nC: 3\r\nD: 4\r\n\r\n";
        assert_poisoned(small(), raw, FramingError::TooManyHeaders { limit: 3 });
        // Exactly at the limit is fine (continuations do not count).
        let ok = b"SIP/2.0 200 OK\r\nA: 1\r\nB: 2\r\n  cont\r\nl: 0\r\n\r\n";
        assert_eq!(run(small(), &[ok]).1, None);
    }

    #[test]
    fn line_too_long() {
        let mut raw = b"SIP/2.0 200 OK\r\nX: ".to_vec();
        raw.extend(vec![b'a'; 40]);
        assert_poisoned(small(), &raw, FramingError::LineTooLong { limit: 40 });
        // A line of exactly max_line bytes is fine, even when its CR arrives alone.
        let mut ok = b"SIP/2.0 200 OK\r\nl: 0\r\nX: ".to_vec();
        ok.extend(vec![b'a'; 37]);
        ok.extend(b"\r\n\r\n");
        assert_eq!(run(small(), &bytewise(&ok)).1, None);
    }

    #[test]
    fn message_too_large() {
        let m = Message::request("INFO", "sip:a").with_header("To", "b");
        let mut big = m.clone();
        big.body = vec![b'x'; 200];
        assert_poisoned(small(), &big.to_bytes(), FramingError::MessageTooLarge { limit: 200 });
        // Announced too-large bodies are refused before the body arrives.
        let mut head = b"INFO sip:a SIP/2.0\r\nl: 500\r\n\r\n".to_vec();
        assert_poisoned(small(), &head, FramingError::MessageTooLarge { limit: 200 });
        head = b"INFO sip:a SIP/2.0\r\nl: 99999999999999999999999999\r\n\r\n".to_vec();
        assert_poisoned(small(), &head, FramingError::MessageTooLarge { limit: 200 });
        // A header block that never ends is refused once it passes the limit.
        let mut endless = b"INFO sip:a SIP/2.0\r\n".to_vec();
        for _ in 0..30 {
            endless.extend(b"\t1234567890\r\n");
        }
        endless.splice(20..20, b"X: 0\r\n".iter().copied());
        assert_poisoned(small(), &endless, FramingError::MessageTooLarge { limit: 200 });
        // Exactly max_message is fine.
        let mut exact = m;
        while exact.to_bytes().len() < 200 {
            exact.body.push(b'y');
        }
        assert_eq!(exact.to_bytes().len(), 200);
        assert_eq!(run(small(), &[&exact.to_bytes()]), (vec![Frame::Message(exact)], None));
    }

    #[test]
    fn header_starting_with_cr_is_proved_by_its_second_byte() {
        // The 17th byte is a CR, which could still begin the blank line; only the byte
        // after it shows a 1st header (one too many). The size limit is passed at that CR,
        // one byte earlier, so it must win however the bytes arrive.
        let limits = Limits { max_message: 16, max_headers: 0, max_line: 100 };
        assert_poisoned(limits, b"SIP/2.0 200 OK\r\n\rX: 1\r\n\r\n", FramingError::MessageTooLarge { limit: 16 });
        let limits = Limits { max_message: 17, ..limits };
        assert_poisoned(limits, b"SIP/2.0 200 OK\r\n\rX: 1\r\n\r\n", FramingError::TooManyHeaders { limit: 0 });
    }

    #[test]
    fn missing_content_length() {
        assert_poisoned(small(), b"SIP/2.0 200 OK\r\nTo: x\r\n\r\n", FramingError::MissingContentLength);
    }

    #[test]
    fn error_texts_name_the_problem() {
        assert_eq!(FramingError::LineTooLong { limit: 9 }.to_string(), "SIP header line is longer than 9 bytes");
        assert!(FramingError::MissingContentLength.to_string().contains("Content-Length"));
    }

    /// Cut positions (any values; reduced modulo the length) into chunks.
    fn cut<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut points: Vec<usize> =
            cuts.iter().map(|c| if data.is_empty() { 0 } else { c % (data.len() + 1) }).collect();
        points.push(0);
        points.push(data.len());
        points.sort_unstable();
        points.windows(2).map(|w| &data[w[0]..w[1]]).collect()
    }

    #[derive(Clone, Debug)]
    enum Item {
        Crlf(bool),
        Msg(Message),
    }

    fn items() -> impl Strategy<Value = Vec<Item>> {
        prop::collection::vec(prop_oneof![any::<bool>().prop_map(Item::Crlf), message().prop_map(Item::Msg),], 0..10)
    }

    /// Bytes that look like SIP often enough to reach every framer state.
    fn sipish() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"INVITE sip:a@b SIP/2.0\r\n".to_vec()),
            Just(b"SIP/2.0 200 OK\r\n".to_vec()),
            Just(b"l: 3\r\n".to_vec()),
            Just(b"Content-Length: 0\r\n".to_vec()),
            Just(b"Via: x\r\n".to_vec()),
            Just(b" folded\r\n".to_vec()),
            prop::collection::vec(any::<u8>(), 0..30),
        ];
        prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(crate::sip::test_proptest_config())]

        #[test]
        fn frames_do_not_depend_on_chunking(
            items in items(),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
        ) {
            let mut stream = Vec::new();
            let mut want = Vec::new();
            for item in items {
                match item {
                    Item::Crlf(lf_only) => {
                        stream.extend_from_slice(if lf_only { b"\n" } else { b"\r\n" });
                        want.push(Frame::Crlf);
                    }
                    Item::Msg(m) => {
                        stream.extend(m.to_bytes());
                        want.push(Frame::Message(m));
                    }
                }
            }
            let whole = run(Limits::default(), &[&stream]);
            prop_assert_eq!(&whole, &(want, None));
            prop_assert_eq!(&run(Limits::default(), &cut(&stream, &cuts)), &whole);
            prop_assert_eq!(&run(Limits::default(), &bytewise(&stream)), &whole);
        }

        #[test]
        fn arbitrary_bytes_are_bounded_and_chunking_independent(
            data in prop_oneof![sipish(), prop::collection::vec(any::<u8>(), 0..600)],
            cuts in prop::collection::vec(any::<usize>(), 0..30),
            max_message in 0usize..300,
            max_headers in 0usize..6,
            max_line in 0usize..50,
        ) {
            let limits = Limits { max_message, max_headers, max_line };
            let chunks = cut(&data, &cuts);
            let mut f = Framer::new(limits);
            let mut frames = Vec::new();
            let mut error = None;
            for chunk in &chunks {
                f.push(chunk);
                // A lone CR may be held back between messages (it may start a CRLF), so
                // with `max_message` 0 one byte is still allowed.
                prop_assert!(f.buffered() <= max_message.max(1) + chunk.len());
                loop {
                    match f.next_frame() {
                        Ok(Some(frame)) => frames.push(frame),
                        Ok(None) => break,
                        Err(e) => {
                            prop_assert_eq!(f.next_frame(), Err(e.clone()));
                            error = Some(e);
                            break;
                        }
                    }
                }
                prop_assert!(f.buffered() <= max_message.max(1));
                if error.is_some() {
                    break;
                }
            }
            prop_assert_eq!((frames, error), run(limits, &[&data]));
        }

        #[test]
        fn message_parse_agrees_with_the_framer(
            data in prop_oneof![
                sipish(),
                message().prop_map(|m| m.to_bytes()),
                prop::collection::vec(any::<u8>(), 0..300),
            ],
            max_message in 0usize..300,
            max_headers in 0usize..6,
            max_line in 0usize..50,
        ) {
            let limits = Limits { max_message, max_headers, max_line };
            prop_assert_eq!(Message::parse_within(&data, limits), parse_by_framing(&data, limits));
            prop_assert_eq!(Message::parse(&data), parse_by_framing(&data, Limits::default()));
        }

        #[test]
        fn limits_poison(
            extra in 1usize..5,
            which in 0u8..3,
            cuts in prop::collection::vec(any::<usize>(), 0..10),
        ) {
            let limits = small();
            let (raw, want) = match which {
                0 => {
                    let mut m = Message::response(200, "OK");
                    for i in 0..limits.max_headers + extra {
                        m.push_header("X", i.to_string());
                    }
                    (m.to_bytes(), FramingError::TooManyHeaders { limit: limits.max_headers })
                }
                1 => {
                    let m = Message::response(200, "OK")
                        .with_header("X", "v".repeat(limits.max_line + extra));
                    (m.to_bytes(), FramingError::LineTooLong { limit: limits.max_line })
                }
                _ => {
                    let mut m = Message::response(200, "OK");
                    m.body = vec![0; limits.max_message + extra];
                    (m.to_bytes(), FramingError::MessageTooLarge { limit: limits.max_message })
                }
            };
            let (frames, err) = run(limits, &cut(&raw, &cuts));
            prop_assert!(frames.is_empty());
            prop_assert_eq!(err, Some(want));
        }
    }
}
