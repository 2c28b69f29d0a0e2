//! A small SIP codec: stream framing, message parsing and building, digest authentication.
