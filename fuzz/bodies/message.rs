//! Fuzz body `message`: `Message::parse` on arbitrary bytes never panics and agrees with
//! the stream framer on the same bytes; what parses is within the limits, its accessors
//! do not panic, and it survives `to_bytes` then `parse` unchanged whenever its
//! serialisation is itself within the limits (it may be longer than the input: folded
//! lines are joined, `Name:value` gains a space, `l` becomes `Content-Length`).

use sip_ptls::sip::framer::parse_by_framing;
use sip_ptls::sip::headers::{NameAddr, Via};
use sip_ptls::sip::{Limits, Message};

pub fn run(data: &[u8]) {
    let parsed = Message::parse(data);
    assert_eq!(parsed, parse_by_framing(data, Limits::default()), "Message::parse and the framer disagree");
    let Ok(m) = parsed else { return };
    let limits = Limits::default();
    assert!(m.headers.len() <= limits.max_headers);
    assert!(m.body.len() <= limits.max_message);
    assert!(m.header("Content-Length").is_none(), "Content-Length kept as a header");

    // The accessors the core uses, on every header.
    let _ = (m.is_request(), m.method(), m.status(), m.call_id(), m.cseq(), m.top_via());
    for h in &m.headers {
        let _ = (m.header(&h.name), m.header_all(&h.name), m.header_values(&h.name));
        let _ = (NameAddr::parse(&h.value), Via::parse(&h.value));
    }

    let wire = m.to_bytes();
    if within_limits(&wire, &limits) {
        assert_eq!(Message::parse(&wire), Ok(m.clone()), "round trip through to_bytes");
    }
}

/// Whether a serialised message keeps to the limits (size and line length; the header
/// count cannot grow through `to_bytes`).
fn within_limits(wire: &[u8], limits: &Limits) -> bool {
    if wire.len() > limits.max_message {
        return false;
    }
    let head_end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(wire.len());
    wire[..head_end]
        .split(|b| *b == b'\n')
        .all(|line| line.strip_suffix(b"\r").unwrap_or(line).len() <= limits.max_line)
}
