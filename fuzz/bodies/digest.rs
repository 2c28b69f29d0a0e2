//! Fuzz body `digest`: the digest parsers of `sip::digest` on arbitrary text (one header
//! value per line) never panic; `best_challenge` picks the first of the strongest
//! parseable challenges; and every challenge that parses can be answered: the
//! `Authorization` built for it parses back with the same realm, nonce, opaque, algorithm
//! and qop, and verifies with the password used and not with another.

use sip_ptls::sip::digest::{
    Algorithm, Challenge, authorization, best_challenge, parse_authorization, parse_challenge, verify,
};

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.split('\n').collect();
    let mut parsed: Vec<Challenge> = Vec::new();
    for value in &values {
        if let Ok(auth) = parse_authorization(value) {
            let _ = verify(&auth, "pw", "REGISTER");
        }
        if let Ok(ch) = parse_challenge(value) {
            answer(&ch);
            parsed.push(ch);
        }
    }
    let mut want: Option<&Challenge> = None;
    for ch in &parsed {
        if want.is_none_or(|w| strength(ch.algorithm) > strength(w.algorithm)) {
            want = Some(ch);
        }
    }
    assert_eq!(best_challenge(values.iter().copied()).as_ref(), want, "best_challenge");
}

fn strength(a: Algorithm) -> u8 {
    match a {
        Algorithm::Md5 | Algorithm::Md5Sess => 1,
        Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
    }
}

/// Answers `ch` as the core does and checks the server-side view of the answer.
fn answer(ch: &Challenge) {
    let (user, password, uri, cnonce) = ("1001 \"x\\", "pw\"\\é", "sips:example.com;x=\"y\"", "c\"n\\");
    let value = authorization(ch, user, password, "REGISTER", uri, 1, cnonce);
    let auth = parse_authorization(&value).unwrap_or_else(|e| panic!("{e}: {value}"));
    assert_eq!(auth.username, user);
    assert_eq!(auth.realm, ch.realm);
    assert_eq!(auth.nonce, ch.nonce);
    assert_eq!(auth.uri, uri);
    assert_eq!(auth.opaque, ch.opaque);
    assert_eq!(auth.algorithm, ch.algorithm);
    assert_eq!(auth.qop.as_deref(), ch.qop_auth.then_some("auth"));
    assert!(verify(&auth, password, "REGISTER"), "the answer does not verify: {value}");
    assert!(!verify(&auth, "other", "REGISTER"), "a wrong password verifies: {value}");
    assert!(!verify(&auth, password, "INVITE"), "the answer verifies for another method: {value}");
}
