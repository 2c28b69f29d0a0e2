//! Deterministic, unpredictable randomness: every jitter and every SIP identifier derives
//! from the seed in the configuration, never from the operating system.
//!
//! The generator is the ChaCha20 stream cipher's keystream keyed by a 32-byte [`Seed`]
//! (`rand_chacha`). Every branch, tag, Call-ID and digest `cnonce` shows 64 bits of that
//! keystream to whoever reads the message, so the generator must not give its state away
//! from its outputs: SplitMix64, used before, had an invertible output function, and one
//! identifier let an observer predict every later one. A stream cipher's keystream tells
//! nothing of the key or of the rest of the stream, yet stays a pure function of the seed,
//! so the core remains deterministic (same seed and inputs, same bytes) and
//! `Clone + Eq + Hash` for the simulator and the model checker. The runtime draws the seed
//! from the OS unless the configuration pins one.

use core::fmt;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// The 32-byte key of the generator: [`Config::seed`](crate::config::Config::seed).
///
/// It is read as one 256-bit big-endian number, so a small seed written as a number
/// (`Seed::from(7)`, `sip persistent tls seed: 7`) is the same seed as
/// `0x0000…0007`. Its `Debug` hides the bytes: a configuration's or a core's `Debug` may
/// reach a log, and the seed is what keeps the identifiers unpredictable.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seed([u8; 32]);

impl Seed {
    /// The all-zero seed: the [`Config`](crate::config::Config) default, which the Aastra
    /// reader and writer take as "not configured".
    pub const ZERO: Seed = Seed([0; 32]);

    /// The seed with these bytes (most significant first).
    pub const fn from_bytes(bytes: [u8; 32]) -> Seed {
        Seed(bytes)
    }

    /// The seed's bytes (most significant first).
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// Whether every byte is zero.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 32]
    }

    /// The seed as a number when it fits in 64 bits (its first 24 bytes are zero), so that
    /// small seeds are written back the way they were written.
    pub fn as_u64(&self) -> Option<u64> {
        let (high, low) = self.0.split_at(24);
        if high.iter().any(|b| *b != 0) {
            return None;
        }
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(low);
        Some(u64::from_be_bytes(bytes))
    }
}

/// Small seeds for tests, simulations and the model checker: `n` as the low 64 bits.
impl From<u64> for Seed {
    fn from(n: u64) -> Seed {
        let mut bytes = [0u8; 32];
        bytes[24..].copy_from_slice(&n.to_be_bytes());
        Seed(bytes)
    }
}

impl From<[u8; 32]> for Seed {
    fn from(bytes: [u8; 32]) -> Seed {
        Seed(bytes)
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(..)")
    }
}

/// A seeded generator: ChaCha20's keystream (stream 0) from the start.
///
/// It holds only the seed and its position in the keystream, not the keystream buffer
/// of a `ChaCha20Rng` (a quarter kilobyte): every core clone of the simulator and the
/// model checker copies it, and equal positions make equal, equally hashed cores. Each
/// draw computes the ChaCha block it needs, a fraction of a microsecond, and the core
/// draws a few numbers per message.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Rng {
    seed: Seed,
    /// 32-bit keystream words used so far.
    words: u64,
}

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: Seed) -> Rng {
        Rng { seed, words: 0 }
    }

    /// The next 64 pseudo-random bits: the next two keystream words, as one continuous
    /// `ChaCha20Rng` would give them.
    pub fn next_u64(&mut self) -> u64 {
        let mut stream = ChaCha20Rng::from_seed(self.seed.0);
        stream.set_word_pos(u128::from(self.words));
        // 2^63 draws never happen; wrapping keeps the core free of overflow panics.
        self.words = self.words.wrapping_add(2);
        stream.next_u64()
    }

    /// A value spread over `low..=high` (`low` when `high <= low`). The reduction by
    /// modulo leans towards low values by at most `span / 2^64`, nothing for jitter spans
    /// of milliseconds.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        match (high - low).checked_add(1) {
            Some(span) => low + self.next_u64() % span,
            // The whole u64 range.
            None => self.next_u64(),
        }
    }

    /// `len` lower-case hexadecimal characters.
    pub fn hex(&mut self, len: usize) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(len);
        let mut bits = 0u64;
        for i in 0..len {
            if i % 16 == 0 {
                bits = self.next_u64();
            }
            out.push(DIGITS[(bits & 0xF) as usize] as char);
            bits >>= 4;
        }
        out
    }

    /// How many 32-bit words of the keystream have been used: the only part of the state
    /// that `Debug` shows.
    pub fn word_pos(&self) -> u64 {
        self.words
    }
}

impl fmt::Debug for Rng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key: a core's Debug may be logged.
        f.debug_struct("Rng").field("word_pos", &self.word_pos()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::{Rng, Seed};
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};

    fn hash_of(r: &Rng) -> u64 {
        let mut h = DefaultHasher::new();
        r.hash(&mut h);
        h.finish()
    }

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(Seed::from(7));
        let mut b = Rng::new(Seed::from(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(Seed::from(7)).next_u64(), Rng::new(Seed::from(8)).next_u64());
    }

    /// The generator is ChaCha20 itself: the all-zero key and nonce give the keystream of
    /// the published test vector (76 b8 e0 ad a0 f1 3d 90 …), read as little-endian words.
    /// A dependency update that changed the stream would change every identifier of a
    /// pinned seed; this catches it.
    #[test]
    fn the_stream_is_chacha20() {
        let mut r = Rng::new(Seed::ZERO);
        assert_eq!(r.next_u64(), 0x903d_f1a0_ade0_b876);
        assert_eq!(r.next_u64(), 0x28bd_8653_e56a_5d40);
    }

    /// Computing each draw's block afresh gives the continuous stream, across block and
    /// buffer boundaries.
    #[test]
    fn draws_follow_one_continuous_stream() {
        let seed = Seed::from([0x5A; 32]);
        let mut continuous = ChaCha20Rng::from_seed(seed.to_bytes());
        let mut r = Rng::new(seed);
        for _ in 0..200 {
            assert_eq!(r.next_u64(), continuous.next_u64());
        }
        assert_eq!(u128::from(r.word_pos()), continuous.get_word_pos());
    }

    #[test]
    fn equality_and_hash_follow_the_position() {
        let mut a = Rng::new(Seed::from(1));
        let mut b = a.clone();
        assert_eq!((a == b, hash_of(&a)), (true, hash_of(&b)));
        a.next_u64();
        assert_ne!(a, b);
        b.next_u64();
        assert_eq!(a, b);
        assert_eq!(hash_of(&a), hash_of(&b));
        assert_ne!(Rng::new(Seed::from(1)), Rng::new(Seed::from(2)));
    }

    #[test]
    fn debug_hides_the_seed() {
        let seed = Seed::from([0xAB; 32]);
        let mut r = Rng::new(seed);
        r.next_u64();
        assert_eq!(format!("{seed:?}"), "Seed(..)");
        let shown = format!("{r:?}");
        assert_eq!(shown, "Rng { word_pos: 2, .. }");
    }

    #[test]
    fn small_seeds_are_the_low_bytes() {
        let s = Seed::from(0x0102_0304_0506_0708);
        let mut bytes = [0u8; 32];
        bytes[24..].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(s.to_bytes(), bytes);
        assert_eq!(s.as_u64(), Some(0x0102_0304_0506_0708));
        assert_eq!(Seed::from([1; 32]).as_u64(), None);
        assert!(Seed::from(0).is_zero() && Seed::default().is_zero());
        assert!(!Seed::from(1).is_zero());
    }

    #[test]
    fn between_stays_in_bounds_and_covers_them() {
        let mut r = Rng::new(Seed::from(1));
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let v = r.between(10, 14);
            assert!((10..=14).contains(&v));
            seen[(v - 10) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(r.between(5, 5), 5);
        assert_eq!(r.between(9, 3), 9);
        r.between(0, u64::MAX);
    }

    #[test]
    fn hex_has_requested_length() {
        let mut r = Rng::new(Seed::from(3));
        let h = r.hex(20);
        assert_eq!(h.len(), 20);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
