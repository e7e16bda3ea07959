//! Owns the SFU's randomness: the seedable RNG the core draws ICE credentials and SSRCs from, and
//! the adapter that hands the same RNG to the protocol crates as their crypto provider's random
//! source (ICE tie-breakers, DTLS randoms).
//!
//! The core never asks the OS for randomness: the caller passes an RNG in ([`SfuRng`]), a fixed
//! seed in tests and an OS-seeded one in the shell. Two things the protocol crates do on their
//! own are outside this: STUN transaction ids (rtc-stun draws them from its thread RNG) and the
//! ephemeral ECDHE keys of the DTLS handshake (drawn by the crypto library).

use std::sync::{Arc, Mutex};

use rand::RngCore;
use rtc_dtls::crypto_provider::{CryptoError, RTCCrypto, RTCCryptoProvider, RTCRandom};

/// The random source the core takes: any `rand` RNG (e.g. `StdRng::seed_from_u64(7)`).
pub type SfuRng = Box<dyn RngCore + Send>;

/// Shared handle on the core's RNG, usable from the core and from the crypto provider.
#[derive(Clone)]
pub(crate) struct SharedRng(Arc<Mutex<SfuRng>>);

impl SharedRng {
    pub(crate) fn new(rng: SfuRng) -> Self {
        Self(Arc::new(Mutex::new(rng)))
    }

    pub(crate) fn fill(&self, out: &mut [u8]) {
        // A poisoned lock only means another thread panicked mid-draw; the RNG state is still
        // usable, so keep going with it.
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.fill_bytes(out);
    }

    pub(crate) fn next_u32(&self) -> u32 {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        u32::from_be_bytes(b)
    }

    /// A string of `len` characters from the ICE character set (RFC 8445 `ice-char`, without
    /// `+` and `/` so it survives any signalling encoding).
    pub(crate) fn ice_string(&self, len: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut bytes = vec![0u8; len];
        self.fill(&mut bytes);
        bytes
            .iter()
            .map(|b| CHARS[usize::from(*b) % CHARS.len()] as char)
            .collect()
    }
}

/// Crypto provider that delegates every primitive to the built-in (ring) provider but draws
/// random bytes from the core's [`SharedRng`].
pub(crate) struct SeededProvider {
    inner: Arc<dyn RTCCryptoProvider>,
    random: SharedRandom,
}

struct SharedRandom(SharedRng);

impl RTCRandom for SharedRandom {
    fn fill(&self, output: &mut [u8]) -> Result<(), CryptoError> {
        self.0.fill(output);
        Ok(())
    }
}

impl SeededProvider {
    pub(crate) fn shared(rng: SharedRng) -> Result<Arc<dyn RTCCryptoProvider>, CryptoError> {
        let inner = rtc_dtls::crypto_provider::default_provider()?;
        Ok(Arc::new(Self {
            inner,
            random: SharedRandom(rng),
        }))
    }
}

impl RTCCryptoProvider for SeededProvider {
    fn name(&self) -> &'static str {
        "lilt-sfu-seeded"
    }

    fn crypto(&self) -> &dyn RTCCrypto {
        self.inner.crypto()
    }

    fn random(&self) -> &dyn RTCRandom {
        &self.random
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn same_seed_same_credentials() {
        let a = SharedRng::new(Box::new(StdRng::seed_from_u64(1)));
        let b = SharedRng::new(Box::new(StdRng::seed_from_u64(1)));
        assert_eq!(a.ice_string(24), b.ice_string(24));
        assert!(a.ice_string(8).chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
