//! Issue 10, "Identifiers are predictable": the attack on the core's old generator, and
//! proof that it no longer works on the identifiers the core sends.
//!
//! Every branch, tag, Call-ID and digest cnonce shows one 64-bit output of the generator
//! as 16 hex digits. SplitMix64's output function is a bijection that can be run
//! backwards, so one identifier gives its whole state, and from it every later output.
//! The attack is kept here, run against a local copy of SplitMix64 so that it is known to
//! work, and then against what the real core transmits, where it must find nothing.

use std::collections::BTreeSet;

use sip_ptls::config::{AccountConfig, CertificateFiles, Config, ServerAddr};
use sip_ptls::sim::Sim;
use sip_ptls::time::Duration;

/// SplitMix64's increment: the state moves by this much per output.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The old generator, kept only to show that the attack works.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        mix(self.0)
    }

    /// The core's `Rng::hex` spelling: low nibble first, one output per 16 digits.
    fn hex16(&mut self) -> String {
        hex16(self.next_u64())
    }
}

/// SplitMix64's output function.
fn mix(state: u64) -> u64 {
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The inverse of `x ^ (x >> shift)`: each pass recovers `shift` more high bits.
fn unxorshift(y: u64, shift: u32) -> u64 {
    let mut x = y;
    let mut known = shift;
    while known < 64 {
        x = y ^ (x >> shift);
        known += shift;
    }
    x
}

/// The inverse of an odd multiplier modulo 2^64 (Newton's iteration, 5 steps for 64 bits).
fn inverse(a: u64) -> u64 {
    let mut x = a;
    for _ in 0..5 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
    }
    x
}

/// The state that produced `output`: `mix` run backwards.
fn unmix(output: u64) -> u64 {
    let mut z = unxorshift(output, 31);
    z = unxorshift(z.wrapping_mul(inverse(0x94D0_49BB_1331_11EB)), 27);
    unxorshift(z.wrapping_mul(inverse(0xBF58_476D_1CE4_E5B9)), 30)
}

fn hex16(mut bits: u64) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(16);
    for _ in 0..16 {
        out.push(DIGITS[(bits & 0xF) as usize] as char);
        bits >>= 4;
    }
    out
}

/// The output behind 16 hex digits in the `hex16` spelling.
fn unhex16(digits: &str) -> Option<u64> {
    let bits = u64::from_str_radix(digits, 16).ok()?;
    // hex16 writes the low nibble first, so the text is the nibbles reversed.
    Some((0..16).fold(0u64, |acc, i| acc | (((bits >> (4 * i)) & 0xF) << (4 * (15 - i)))))
}

/// The attack: from one observed identifier, the next `n` identifiers a SplitMix64
/// generator would produce.
fn predict(observed: &str, n: usize) -> Vec<String> {
    let Some(output) = unhex16(observed) else { return Vec::new() };
    let mut rng = SplitMix64(unmix(output));
    (0..n).map(|_| rng.hex16()).collect()
}

#[test]
fn the_attack_predicts_splitmix64() {
    for seed in [0, 1, 42, 0xDEAD_BEEF, u64::MAX] {
        let mut rng = SplitMix64(seed);
        let out = rng.next_u64();
        assert_eq!(mix(unmix(out)), out);
        assert_eq!(unmix(out), seed.wrapping_add(GAMMA), "one output gives the state");
        // One branch seen on the wire; the next tag, Call-ID and branch follow.
        let branch = rng.hex16();
        let later: Vec<String> = (0..3).map(|_| rng.hex16()).collect();
        assert_eq!(predict(&branch, 3), later);
    }
}

/// Every identifier the core drew, without repeats: branches, tags,
/// Call-IDs (their first 16 digits: one output) and digest cnonces.
fn identifiers(sent: &[Vec<u8>]) -> Vec<String> {
    const MARKERS: [&str; 4] = ["z9hG4bK", "tag=", "Call-ID: ", "cnonce=\""];
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for data in sent {
        let text = String::from_utf8_lossy(data);
        for marker in MARKERS {
            for (at, _) in text.match_indices(marker) {
                let rest = &text[at + marker.len()..];
                let len = rest.find(|c: char| !matches!(c, '0'..='9' | 'a'..='f')).unwrap_or(rest.len());
                if len >= 16 && seen.insert(rest[..16].to_owned()) {
                    out.push(rest[..16].to_owned());
                }
            }
        }
    }
    out
}

fn config(seed: u64) -> Config {
    Config {
        proxy: Some(ServerAddr::new("primary.test", 5061)),
        accounts: vec![AccountConfig::new("1001", "pw"), AccountConfig::new("1002", "pw")],
        certificates: CertificateFiles { trusted_certificates: Some("ca.pem".into()), ..Default::default() },
        keepalive_interval: Duration::from_secs(10),
        registration_period: 60,
        seed: seed.into(),
        ..Config::default()
    }
}

/// What the core transmits in its first minutes: digest-challenged REGISTERs of two
/// lines, pings, refreshes, a call.
fn transmitted(seed: u64) -> Vec<Vec<u8>> {
    let mut sim = Sim::new(config(seed));
    sim.start();
    sim.run_for(Duration::from_secs(2));
    let account = sip_ptls::ids::AccountId(0);
    if let Some(call) = sim.place_call(account, "1002") {
        sim.run_for(Duration::from_secs(2));
        sim.hang_up(call);
    }
    sim.run_for(Duration::from_secs(150));
    sim.sent.iter().map(|(_, _, d)| d.clone()).collect()
}

#[test]
fn the_attack_fails_on_the_cores_identifiers() {
    for seed in [1, 7, 42] {
        let ids = identifiers(&transmitted(seed));
        assert!(ids.len() >= 10, "seed {seed}: only {} identifiers: {ids:?}", ids.len());
        let mut predicted = 0;
        for observed in &ids {
            let guesses: BTreeSet<String> = predict(observed, 64).into_iter().collect();
            predicted += ids.iter().filter(|other| guesses.contains(*other)).count();
        }
        assert_eq!(predicted, 0, "seed {seed}: {predicted} identifiers predicted from earlier ones");
    }
}

#[test]
fn the_same_seed_sends_the_same_bytes() {
    assert_eq!(transmitted(7), transmitted(7));
}

#[test]
fn different_seeds_give_different_identifiers() {
    let a: BTreeSet<String> = identifiers(&transmitted(7)).into_iter().collect();
    let b: BTreeSet<String> = identifiers(&transmitted(8)).into_iter().collect();
    assert!(a.len() >= 10);
    assert!(a.is_disjoint(&b), "shared: {:?}", a.intersection(&b).collect::<Vec<_>>());
}
