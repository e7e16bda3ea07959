//! Randomness, injected: the cores never ask the OS for it. Stream ids, SASL nonces, generated
//! resources, resumption ids and meeting ids all come from an `Entropy` the shell hands in
//! (the OS's generator in the server, a seeded one in tests, so runs can be replayed).
//!
//! Core. Invariant: every random value a core puts on the wire is drawn from the `Entropy` it
//! was given. Tests: `mod tests` below; the cores' tests run on `Seeded`.

use std::sync::atomic::{AtomicU64, Ordering};

/// A source of random bytes. The server's must be cryptographically secure: resumption ids are
/// bearer tokens and SCRAM nonces must not be predictable.
pub trait Entropy: Send + Sync + std::fmt::Debug {
    /// Fill `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// A random (version 4) UUID from `e`.
pub fn uuid(e: &dyn Entropy) -> uuid::Uuid {
    let mut b = [0u8; 16];
    e.fill(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

/// A deterministic source for tests and replays (SplitMix64 over a counter). Not secure.
#[derive(Debug)]
pub struct Seeded(AtomicU64);

impl Seeded {
    /// A source that yields the same bytes for the same seed.
    pub fn new(seed: u64) -> Seeded {
        Seeded(AtomicU64::new(seed))
    }
}

impl Entropy for Seeded {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut z = self
                .0
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
                .wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_repeatable_and_varies() {
        let (a, b) = (Seeded::new(7), Seeded::new(7));
        assert_eq!(uuid(&a), uuid(&b));
        assert_ne!(uuid(&a), uuid(&a));
        assert_eq!(uuid(&a).get_version_num(), 4);
        let mut odd = [0u8; 13];
        a.fill(&mut odd);
        assert!(odd.iter().any(|&x| x != 0));
    }
}
