//! Tests of the framer's state after frames are drained, which mutation testing found
//! unchecked (docs/mutation-testing.md, `framer.rs`): once the caller has taken every
//! complete frame, the consumed bytes are gone, so a framer holding a partial message
//! equals (and hashes like) a fresh one that was given only that partial message. The
//! framer lives inside model-checked state; without the compaction, equal logical states
//! would compare unequal and the buffer would grow with every message of the stream.

use std::hash::{BuildHasher, RandomState};

use super::framer::{Frame, Framer};
use super::limits::Limits;
use super::message::Message;

/// Drains every complete frame of `f`.
fn drain(f: &mut Framer) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Some(frame) = f.next_frame().expect("well-formed stream") {
        frames.push(frame);
    }
    frames
}

const PARTIAL: &[u8] = b"OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\n";

#[test]
fn a_drained_framer_equals_a_fresh_one_holding_only_the_unconsumed_bytes() {
    let m = Message::response(200, "OK").with_header("Call-ID", "y");
    let mut used = Framer::new(Limits::default());
    let mut stream = b"\r\n".to_vec();
    stream.extend(m.to_bytes());
    stream.extend(PARTIAL);
    used.push(&stream);
    assert_eq!(drain(&mut used), vec![Frame::Crlf, Frame::Message(m)]);

    let mut fresh = Framer::new(Limits::default());
    fresh.push(PARTIAL);
    assert_eq!(drain(&mut fresh), vec![]);

    assert_eq!(used.buffered(), PARTIAL.len());
    assert_eq!(used, fresh, "the consumed bytes were dropped: equal logical states compare equal");
    let hasher = RandomState::new();
    assert_eq!(hasher.hash_one(&used), hasher.hash_one(&fresh), "and hash alike");
}
