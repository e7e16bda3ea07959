//! SASL (RFC 4422) server side as used by XMPP c2s (RFC 6120 §6): mechanism names, the
//! credential shapes auth plugins hand to the host, the failure conditions, and the
//! `SaslServer` driver that runs one negotiation over the mechanisms in this folder.
//!
//! Core (sans-IO): bytes in, `SaslStep` out. Decisions (is this password right, what are this
//! user's SCRAM credentials) belong to the vhost's auth plugin; the stream core asks it when a
//! step says `CheckPassword`/`FetchCredentials` and feeds the answer back. The caller supplies
//! the server nonce (`new_nonce` makes one); nothing here reads the clock or does IO.
//! Invariants: no input panics; every message is capped at `MAX_MESSAGE` bytes; once a step is
//! `Success` or `Failure` the negotiation is over and any further call fails with
//! `MalformedRequest`; usernames get only a minimal SASLprep stand-in (no control characters,
//! at most 1023 bytes), not full SASLprep (RFC 4013) or PRECIS: the stream core normalises the
//! localpart afterwards.
//! Specs: RFC 4422, RFC 6120 §6; mechanisms in anonymous.rs, plain.rs, scram.rs.
//! Tests: `mod tests` below (driver) and in each mechanism file.

mod anonymous;
mod plain;
mod scram;

pub use scram::{derive_scram_credentials, pbkdf2_hmac};

use base64::Engine as _;
use rand::RngCore as _;

/// Longest SASL message accepted from a client, in bytes (after base64 decoding).
pub const MAX_MESSAGE: usize = 4096;

/// Longest username, authzid or password accepted, in bytes.
const MAX_FIELD: usize = 1023;

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

impl Mechanism {
    /// The IANA name.
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::Anonymous => "ANONYMOUS",
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// Look a mechanism up by its IANA name.
    pub fn from_name(s: &str) -> Option<Mechanism> {
        [
            Mechanism::Anonymous,
            Mechanism::Plain,
            Mechanism::ScramSha1,
            Mechanism::ScramSha256,
        ]
        .into_iter()
        .find(|m| m.name() == s)
    }

    /// The hash of a SCRAM mechanism.
    pub fn scram_hash(&self) -> Option<ScramHash> {
        match self {
            Mechanism::ScramSha1 => Some(ScramHash::Sha1),
            Mechanism::ScramSha256 => Some(ScramHash::Sha256),
            _ => None,
        }
    }
}

/// RFC 6120 §6.5 failure conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaslFailure {
    /// §6.5.1: the client sent `<abort/>`.
    #[error("aborted")]
    Aborted,
    /// §6.5.2: the account is disabled.
    #[error("account disabled")]
    AccountDisabled,
    /// §6.5.3: the credentials have expired.
    #[error("credentials expired")]
    CredentialsExpired,
    /// §6.5.4: the mechanism needs an encrypted stream.
    #[error("encryption required")]
    EncryptionRequired,
    /// §6.5.5: the base64 of the element text was wrong.
    #[error("incorrect encoding")]
    IncorrectEncoding,
    /// §6.5.6: the authzid is not one this identity may act as.
    #[error("invalid authzid")]
    InvalidAuthzid,
    /// §6.5.7: unknown or unoffered mechanism.
    #[error("invalid mechanism")]
    InvalidMechanism,
    /// §6.5.8: the message does not parse, or came in the wrong state.
    #[error("malformed request")]
    MalformedRequest,
    /// §6.5.9: the mechanism is weaker than policy allows.
    #[error("mechanism too weak")]
    MechanismTooWeak,
    /// §6.5.10: wrong credentials (also used for unknown users).
    #[error("not authorized")]
    NotAuthorized,
    /// §6.5.11: the auth backend failed; the client may retry.
    #[error("temporary auth failure")]
    TemporaryAuthFailure,
}

impl SaslFailure {
    /// The element name of the condition.
    pub fn condition(&self) -> &'static str {
        match self {
            SaslFailure::Aborted => "aborted",
            SaslFailure::AccountDisabled => "account-disabled",
            SaslFailure::CredentialsExpired => "credentials-expired",
            SaslFailure::EncryptionRequired => "encryption-required",
            SaslFailure::IncorrectEncoding => "incorrect-encoding",
            SaslFailure::InvalidAuthzid => "invalid-authzid",
            SaslFailure::InvalidMechanism => "invalid-mechanism",
            SaslFailure::MalformedRequest => "malformed-request",
            SaslFailure::MechanismTooWeak => "mechanism-too-weak",
            SaslFailure::NotAuthorized => "not-authorized",
            SaslFailure::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }
}

/// What the host must do next. The stream core turns these into wire elements or plugin calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send a `<challenge/>` with these raw bytes (the caller base64-encodes them).
    Challenge(Vec<u8>),
    /// Ask the auth plugin whether the password is right; answer with `password_checked`.
    CheckPassword {
        /// The authentication identity.
        username: String,
        /// The password.
        password: String,
    },
    /// Ask the auth plugin for SCRAM credentials; answer with `credentials`.
    FetchCredentials {
        /// The authentication identity.
        username: String,
        /// Which hash.
        hash: ScramHash,
    },
    /// Authenticated (`username` is empty for ANONYMOUS: the host assigns one).
    Success {
        /// The authentication identity.
        username: String,
        /// Data for `<success/>` (SCRAM's `v=` server signature), raw bytes.
        additional_data: Option<Vec<u8>>,
    },
    /// Failed.
    Failure(SaslFailure),
}

/// Where a negotiation stands; each mechanism keeps its own sub-state.
#[derive(Debug)]
enum State {
    Plain(plain::Plain),
    Scram(Box<scram::Scram>),
    /// Succeeded, failed or aborted: nothing more is accepted.
    Done,
}

/// One SASL negotiation, server side.
#[derive(Debug)]
pub struct SaslServer {
    state: State,
}

impl SaslServer {
    /// Start `mech`. `initial` is the decoded initial response (`None` if absent, `Some(empty)`
    /// for `=`); `server_nonce` is a fresh printable nonce (see `new_nonce`), used by SCRAM only.
    ///
    /// Without an initial response, PLAIN and SCRAM answer with an empty challenge (RFC 6120
    /// §6.4.2); ANONYMOUS succeeds at once, as Prosody does and Strophe.js expects.
    pub fn start(
        mech: Mechanism,
        initial: Option<Vec<u8>>,
        server_nonce: String,
    ) -> (SaslServer, SaslStep) {
        let mut server = SaslServer { state: State::Done };
        if initial.as_ref().is_some_and(|i| i.len() > MAX_MESSAGE) {
            return (server, SaslStep::Failure(SaslFailure::MalformedRequest));
        }
        let step = match mech {
            Mechanism::Anonymous => anonymous::start(initial.as_deref()),
            Mechanism::Plain => {
                server.state = State::Plain(plain::Plain::new());
                server.first(initial)
            }
            Mechanism::ScramSha1 | Mechanism::ScramSha256 => {
                let hash = match mech {
                    Mechanism::ScramSha1 => ScramHash::Sha1,
                    _ => ScramHash::Sha256,
                };
                server.state = State::Scram(Box::new(scram::Scram::new(hash, server_nonce)));
                server.first(initial)
            }
        };
        server.settle(&step);
        (server, step)
    }

    fn first(&mut self, initial: Option<Vec<u8>>) -> SaslStep {
        match initial {
            Some(data) => self.response(data),
            None => SaslStep::Challenge(Vec::new()),
        }
    }

    /// The client's decoded `<response/>`.
    pub fn response(&mut self, data: Vec<u8>) -> SaslStep {
        let step = if data.len() > MAX_MESSAGE {
            SaslStep::Failure(SaslFailure::MalformedRequest)
        } else {
            match &mut self.state {
                State::Plain(p) => p.response(&data),
                State::Scram(s) => s.response(&data),
                State::Done => SaslStep::Failure(SaslFailure::MalformedRequest),
            }
        };
        self.settle(&step);
        step
    }

    /// The auth plugin's answer to `CheckPassword`.
    pub fn password_checked(&mut self, ok: bool) -> SaslStep {
        let step = match &mut self.state {
            State::Plain(p) => p.checked(ok),
            _ => SaslStep::Failure(SaslFailure::MalformedRequest),
        };
        self.settle(&step);
        step
    }

    /// The auth plugin's answer to `FetchCredentials` (`None`: no such user). An unknown user
    /// gets a normal-looking challenge and fails with `NotAuthorized` only after the client
    /// proof, so the exchange does not reveal which accounts exist (see scram.rs).
    pub fn credentials(&mut self, creds: Option<ScramCredentials>) -> SaslStep {
        let step = match &mut self.state {
            State::Scram(s) => s.credentials(creds),
            _ => SaslStep::Failure(SaslFailure::MalformedRequest),
        };
        self.settle(&step);
        step
    }

    /// The client's `<abort/>`: always `Failure(Aborted)`, and the negotiation is over.
    pub fn abort(&mut self) -> SaslStep {
        self.state = State::Done;
        SaslStep::Failure(SaslFailure::Aborted)
    }

    /// Whether the negotiation has ended (success, failure or abort).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn settle(&mut self, step: &SaslStep) {
        if matches!(step, SaslStep::Success { .. } | SaslStep::Failure(_)) {
            self.state = State::Done;
        }
    }
}

/// A fresh server nonce: 24 random bytes, base64 (printable, no `,`).
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Minimal SASLprep stand-in for an authentication identity: non-empty, at most `MAX_FIELD`
/// bytes, no control characters (which covers NUL). Full SASLprep/PRECIS is not done.
fn acceptable_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_FIELD && !s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names_round_trip() {
        for m in [
            Mechanism::Anonymous,
            Mechanism::Plain,
            Mechanism::ScramSha1,
            Mechanism::ScramSha256,
        ] {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
        }
        assert_eq!(Mechanism::from_name("scram-sha-1"), None);
        assert_eq!(Mechanism::from_name("SCRAM-SHA-1-PLUS"), None);
        assert_eq!(Mechanism::from_name("DIGEST-MD5"), None);
        assert_eq!(Mechanism::ScramSha1.scram_hash(), Some(ScramHash::Sha1));
        assert_eq!(Mechanism::ScramSha256.scram_hash(), Some(ScramHash::Sha256));
        assert_eq!(Mechanism::Plain.scram_hash(), None);
    }

    #[test]
    fn failure_conditions() {
        assert_eq!(SaslFailure::NotAuthorized.condition(), "not-authorized");
        assert_eq!(
            SaslFailure::MalformedRequest.condition(),
            "malformed-request"
        );
        assert_eq!(
            SaslFailure::TemporaryAuthFailure.condition(),
            "temporary-auth-failure"
        );
        assert_eq!(SaslFailure::InvalidAuthzid.to_string(), "invalid authzid");
    }

    #[test]
    fn nonce_is_fresh_and_printable() {
        let (a, b) = (new_nonce(), new_nonce());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| (0x21..0x7f).contains(&c) && c != b','));
    }

    #[test]
    fn oversized_messages_fail() {
        let big = vec![b'a'; MAX_MESSAGE + 1];
        for mech in [
            Mechanism::Anonymous,
            Mechanism::Plain,
            Mechanism::ScramSha256,
        ] {
            let (s, step) = SaslServer::start(mech, Some(big.clone()), "n".into());
            assert_eq!(step, SaslStep::Failure(SaslFailure::MalformedRequest));
            assert!(s.is_done());
        }
        let (mut s, _) = SaslServer::start(Mechanism::Plain, None, String::new());
        assert_eq!(
            s.response(big),
            SaslStep::Failure(SaslFailure::MalformedRequest)
        );
    }

    #[test]
    fn abort_and_wrong_state_calls() {
        let (mut s, step) = SaslServer::start(Mechanism::ScramSha1, None, "n".into());
        assert_eq!(step, SaslStep::Challenge(Vec::new()));
        assert!(!s.is_done());
        assert_eq!(s.abort(), SaslStep::Failure(SaslFailure::Aborted));
        assert!(s.is_done());
        assert_eq!(
            s.response(b"n,,n=user,r=x".to_vec()),
            SaslStep::Failure(SaslFailure::MalformedRequest)
        );
        // Plugin answers for the wrong mechanism or at the wrong time.
        let (mut s, _) = SaslServer::start(Mechanism::Plain, None, String::new());
        assert_eq!(
            s.credentials(None),
            SaslStep::Failure(SaslFailure::MalformedRequest)
        );
        let (mut s, _) = SaslServer::start(Mechanism::ScramSha1, None, "n".into());
        assert_eq!(
            s.password_checked(true),
            SaslStep::Failure(SaslFailure::MalformedRequest)
        );
        let (mut s, _) = SaslServer::start(Mechanism::Anonymous, None, String::new());
        assert_eq!(
            s.response(Vec::new()),
            SaslStep::Failure(SaslFailure::MalformedRequest)
        );
        assert_eq!(s.abort(), SaslStep::Failure(SaslFailure::Aborted));
    }

    #[test]
    fn name_stand_in() {
        assert!(acceptable_name("alice"));
        assert!(acceptable_name("Ålice@example.org"));
        assert!(!acceptable_name(""));
        assert!(!acceptable_name("al\u{7}ice"));
        assert!(!acceptable_name("al\u{85}ice"));
        assert!(!acceptable_name(&"a".repeat(MAX_FIELD + 1)));
    }
}
