//! Fuzz body `framer`: `sip::Framer` fed one stream whole, in arbitrary chunks and byte by
//! byte must give the same frames and the same error; no panic; after every push the
//! buffer holds at most `max_message` bytes (plus the chunk just pushed), after draining
//! at most `max(max_message, 1)`; an error is repeated forever and drops the buffer.
//!
//! Input: a mode byte (even: the default limits; odd: small limits read from the next
//! five bytes), a cut count and that many 16-bit cut positions, then the stream.

// The input reader is a module of the crate root (fuzz target or replay test), next to
// this body, so that it is compiled once where several bodies share it.
use crate::input::Input;
use sip_ptls::sip::{Frame, Framer, FramingError, Limits};

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let limits = if input.byte() & 1 == 0 {
        Limits::default()
    } else {
        Limits {
            max_message: usize::from(input.u16()) % 4096,
            max_headers: usize::from(input.byte()) % 16,
            max_line: usize::from(input.u16()) % 1024,
        }
    };
    let cuts: Vec<usize> = (0..input.byte() % 32).map(|_| usize::from(input.u16())).collect();
    let stream = input.rest();

    let whole = feed(limits, &[stream]);
    let chunked = feed(limits, &cut(stream, &cuts));
    assert_eq!(chunked, whole, "chunked at {cuts:?} differs from whole");
    if stream.len() <= 2048 {
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(feed(limits, &bytewise), whole, "byte by byte differs from whole");
    }
    for frame in &whole.0 {
        if let Frame::Message(m) = frame {
            assert!(m.headers.len() <= limits.max_headers, "{} headers framed", m.headers.len());
            assert!(m.body.len() <= limits.max_message, "body of {} bytes framed", m.body.len());
        }
    }
}

/// Cut positions (any values, reduced modulo the length plus one) into chunks.
fn cut<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.extend([0, data.len()]);
    points.sort_unstable();
    points.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

/// Feeds the chunks, draining after each, checking the memory bound; returns the frames
/// and the error.
fn feed(limits: Limits, chunks: &[&[u8]]) -> (Vec<Frame>, Option<FramingError>) {
    let bound = limits.max_message.max(1);
    let mut f = Framer::new(limits);
    let mut frames = Vec::new();
    for chunk in chunks {
        f.push(chunk);
        assert!(f.buffered() <= bound + chunk.len(), "{} bytes buffered after a push of {}", f.buffered(), chunk.len());
        loop {
            match f.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(f.buffered(), 0, "the buffer is kept after {e}");
                    assert_eq!(f.next_frame(), Err(e.clone()), "the error is not repeated");
                    f.push(b"SIP/2.0 200 OK\r\nl: 0\r\n\r\n");
                    assert_eq!(f.buffered(), 0, "bytes accepted after {e}");
                    assert_eq!(f.next_frame(), Err(e.clone()), "the error is not repeated after a push");
                    return (frames, Some(e));
                }
            }
        }
        assert!(f.buffered() <= bound, "{} bytes buffered after draining (bound {bound})", f.buffered());
    }
    (frames, None)
}
