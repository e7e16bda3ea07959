//! SASL (RFC 4422) server side as used by XMPP c2s (RFC 6120 §6): mechanism names, the
//! credential shapes auth plugins hand to the host, and the failure conditions.
//!
//! Core (sans-IO). The mechanism machinery lives here; decisions (is this password right,
//! what are this user's SCRAM credentials) are made by the vhost's auth plugin, reached by the
//! stream core through request/response outputs. Each negotiation is started with a
//! `SaslContext`: the vhost (an authzid must name the user on it) and the server's
//! `SaslSecret` (an unknown user's SCRAM salt is derived from it, so it cannot be told from a
//! real one). Tests: `mod tests` in each mechanism file.

mod anonymous;
mod plain;
mod scram;

pub use scram::{derive_scram_credentials, pbkdf2_hmac};

use std::sync::Arc;

use base64::Engine as _;

use crate::entropy::Entropy;

/// Longest SASL message accepted from a client, in bytes.
const MAX_MESSAGE: usize = 4096;

/// The server-wide secret an unknown user's stand-in SCRAM salt is derived from (the shell
/// keeps it in `data_dir/sasl.secret`). Cheap to clone; never printed.
#[derive(Clone)]
pub struct SaslSecret(Arc<[u8]>);

impl SaslSecret {
    /// A secret from its bytes (at least 32 random bytes in production).
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> SaslSecret {
        SaslSecret(bytes.into())
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SaslSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SaslSecret(..)")
    }
}

/// What one negotiation needs besides the client's messages.
#[derive(Debug, Clone)]
pub struct SaslContext {
    /// The vhost the stream is for (an authzid may name `authcid@vhost`).
    pub vhost: String,
    /// The server's secret (unknown users' SCRAM salts).
    pub secret: SaslSecret,
    /// A fresh server nonce (`new_nonce`), used by SCRAM.
    pub server_nonce: String,
}

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
#[allow(missing_docs)]
pub enum SaslFailure {
    #[error("aborted")]
    Aborted,
    #[error("account disabled")]
    AccountDisabled,
    #[error("credentials expired")]
    CredentialsExpired,
    #[error("encryption required")]
    EncryptionRequired,
    #[error("incorrect encoding")]
    IncorrectEncoding,
    #[error("invalid authzid")]
    InvalidAuthzid,
    #[error("invalid mechanism")]
    InvalidMechanism,
    #[error("malformed request")]
    MalformedRequest,
    #[error("mechanism too weak")]
    MechanismTooWeak,
    #[error("not authorized")]
    NotAuthorized,
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

/// What the host must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send a `<challenge/>` with these bytes.
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
    /// Authenticated (`username` is empty for ANONYMOUS).
    Success {
        /// The authentication identity.
        username: String,
        /// Data for `<success/>`.
        additional_data: Option<Vec<u8>>,
    },
    /// Failed.
    Failure(SaslFailure),
}

#[derive(Debug)]
enum State {
    Plain(plain::Plain),
    Scram(Box<scram::Scram>),
    Done,
}

/// One SASL negotiation, server side.
#[derive(Debug)]
pub struct SaslServer {
    state: State,
}

impl SaslServer {
    /// Start `mech` with the client's initial response (`None` when absent).
    pub fn start(
        mech: Mechanism,
        initial: Option<Vec<u8>>,
        cx: SaslContext,
    ) -> (SaslServer, SaslStep) {
        let mut server = SaslServer { state: State::Done };
        let step = match mech {
            Mechanism::Anonymous => anonymous::start(initial.as_deref()),
            Mechanism::Plain => {
                server.state = State::Plain(plain::Plain::new(cx.vhost));
                match initial {
                    Some(data) => server.response(data),
                    None => SaslStep::Challenge(Vec::new()),
                }
            }
            Mechanism::ScramSha1 | Mechanism::ScramSha256 => {
                let hash = if mech == Mechanism::ScramSha1 {
                    ScramHash::Sha1
                } else {
                    ScramHash::Sha256
                };
                server.state = State::Scram(Box::new(scram::Scram::new(hash, cx)));
                match initial {
                    Some(data) => server.response(data),
                    None => SaslStep::Challenge(Vec::new()),
                }
            }
        };
        server.settle(&step);
        (server, step)
    }

    /// The client's `<response/>`.
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

    /// The plugin's answer to `CheckPassword`.
    pub fn password_checked(&mut self, ok: bool) -> SaslStep {
        let step = match &mut self.state {
            State::Plain(p) => p.checked(ok),
            _ => SaslStep::Failure(SaslFailure::MalformedRequest),
        };
        self.settle(&step);
        step
    }

    /// The plugin's answer to `FetchCredentials` (`None`: no such user).
    pub fn credentials(&mut self, creds: Option<ScramCredentials>) -> SaslStep {
        let step = match &mut self.state {
            State::Scram(s) => s.credentials(creds),
            _ => SaslStep::Failure(SaslFailure::MalformedRequest),
        };
        self.settle(&step);
        step
    }

    /// Whether the negotiation is over (succeeded, failed or aborted).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The client's `<abort/>`.
    pub fn abort(&mut self) -> SaslStep {
        self.state = State::Done;
        SaslStep::Failure(SaslFailure::Aborted)
    }

    fn settle(&mut self, step: &SaslStep) {
        if matches!(step, SaslStep::Success { .. } | SaslStep::Failure(_)) {
            self.state = State::Done;
        }
    }
}

/// A fresh server nonce: 24 random bytes from `entropy`, base64.
pub fn new_nonce(entropy: &dyn Entropy) -> String {
    let mut bytes = [0u8; 24];
    entropy.fill(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Minimal SASLprep stand-in: refuse control characters (full SASLprep/PRECIS is not done).
fn acceptable_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 1023 && !s.chars().any(char::is_control)
}

/// The account a SASL name stands for on `vhost`, as the stream core maps it: `user` or
/// `user@vhost` (domain compared case-insensitively), lowercased; `None` for another domain.
fn account_of(name: &str, vhost: &str) -> Option<String> {
    let node = match name.split_once('@') {
        Some((node, domain)) if domain.eq_ignore_ascii_case(vhost) => node,
        Some(_) => return None,
        None => name,
    };
    Some(node.to_lowercase())
}

/// Whether an authzid is acceptable for `authcid` on `vhost` (RFC 6120 §6.3.8, §6.4.6):
/// absent (empty), or naming the authenticating user's own account (`authcid` or
/// `authcid@vhost`). Nobody may act as someone else.
fn authzid_allowed(authzid: &str, authcid: &str, vhost: &str) -> bool {
    authzid.is_empty()
        || account_of(authcid, vhost).is_some_and(|own| account_of(authzid, vhost) == Some(own))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context for tests: vhost `x`, a fixed secret, nonce `nonce`.
    pub(super) fn cx(nonce: &str) -> SaslContext {
        SaslContext {
            vhost: "x".into(),
            secret: SaslSecret::new(vec![7u8; 32]),
            server_nonce: nonce.into(),
        }
    }

    #[test]
    fn authzid_must_be_the_user_itself() {
        for ok in ["", "alice", "alice@x", "Alice@X", "ALICE"] {
            assert!(authzid_allowed(ok, "alice", "x"), "{ok:?}");
        }
        assert!(authzid_allowed("alice", "alice@x", "x"));
        for bad in [
            "bob",
            "bob@x",
            "alice@y",
            "alice@x/res",
            "@x",
            "alice@x@x",
            "x",
        ] {
            assert!(!authzid_allowed(bad, "alice", "x"), "{bad:?}");
        }
        assert!(!authzid_allowed("alice@y", "alice@y", "x"));
    }

    #[test]
    fn secret_is_not_printed() {
        let s = SaslSecret::new(b"very-secret".to_vec());
        assert!(!format!("{s:?}").contains("very"));
        assert!(!format!("{:?}", cx("n")).contains("[7"));
    }
}
