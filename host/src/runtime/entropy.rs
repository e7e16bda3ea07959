//! The server's randomness for the protocol cores: the operating system's generator, through
//! rand's thread-local CSPRNG (ChaCha, seeded and reseeded from the OS).
//!
//! Shell. Invariant: the only `Entropy` the running server hands the cores. Tests: the cores
//! run on `lilt_proto::entropy::Seeded`; this one is exercised by every end-to-end test.

use rand::RngCore as _;

use lilt_proto::entropy::Entropy;

/// The OS-seeded generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        rand::rng().fill_bytes(buf);
    }
}
