//! SASL (RFC 4422) server side as used by XMPP c2s (RFC 6120 §6): mechanism names, the
//! credential shapes auth plugins hand to the host, and the failure conditions.
//!
//! Core (sans-IO). The mechanism machinery lives here; decisions (is this password right,
//! what are this user's SCRAM credentials) are made by the vhost's auth plugin, reached by the
//! stream core through request/response outputs. Tests: `mod tests` in each mechanism file.

// Mechanism state machines are added by the SASL work (scram.rs, plain.rs, anonymous.rs).

/// A SASL mechanism the host implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// RFC 4505.
    Anonymous,
    /// RFC 4616.
    Plain,
    /// RFC 5802.
    ScramSha1,
    /// RFC 7677.
    ScramSha256,
}

/// Hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScramHash {
    /// SHA-1 (SCRAM-SHA-1).
    Sha1,
    /// SHA-256 (SCRAM-SHA-256).
    Sha256,
}

/// Stored SCRAM credentials of one user for one hash (RFC 5802 §3): never the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// The salt used with PBKDF2 (raw bytes, not base64).
    pub salt: Vec<u8>,
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// H(ClientKey).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}
