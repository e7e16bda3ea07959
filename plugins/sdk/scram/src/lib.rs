//! SCRAM credential math shared by the host's SCRAM verifier (lilt-proto) and the plugin SDK:
//! HMAC, the digest `H()`, PBKDF2 (`Hi()`), `(StoredKey, ServerKey)` derivation (RFC 5802 §3,
//! RFC 7677) and constant-time comparison.
//!
//! Pure Rust with no I/O; builds natively and for wasm32-wasip2. Invariant: one implementation
//! for both sides, so credentials a plugin derives verify in the host byte for byte. Tests:
//! plugins/sdk (RFC vectors) and lilt-proto's sasl tests.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

/// HMAC with `hash`.
pub fn hmac(hash: Hash, key: &[u8], data: &[u8]) -> Vec<u8> {
    match hash {
        Hash::Sha1 => {
            let mut m = <Hmac<Sha1>>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Hash::Sha256 => {
            let mut m = <Hmac<Sha256>>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
    }
}

/// PBKDF2-HMAC with one output block (the hash's length): SCRAM's `Hi()`.
pub fn pbkdf2(hash: Hash, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(hash, password, &block);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac(hash, password, &u);
        out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
    }
    out
}

/// SCRAM `(StoredKey, ServerKey)` for a password.
pub fn scram_keys(hash: Hash, password: &str, salt: &[u8], iterations: u32) -> (Vec<u8>, Vec<u8>) {
    let salted = pbkdf2(hash, password.as_bytes(), salt, iterations);
    let client_key = hmac(hash, &salted, b"Client Key");
    (
        digest(hash, &client_key),
        hmac(hash, &salted, b"Server Key"),
    )
}

/// The plain digest `H()`.
pub fn digest(hash: Hash, data: &[u8]) -> Vec<u8> {
    match hash {
        Hash::Sha1 => Sha1::digest(data).to_vec(),
        Hash::Sha256 => Sha256::digest(data).to_vec(),
    }
}

/// Constant-time equality.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}
