//! SASL (RFC 4422) server side as used by XMPP c2s (RFC 6120 §6): mechanism names, the
//! credential shapes auth plugins hand to the host, and the failure conditions.
//!
//! Core (sans-IO). The mechanism machinery lives here; decisions (is this password right,
//! what are this user's SCRAM credentials) are made by the vhost's auth plugin, reached by the
//! stream core through request/response outputs. Tests: `mod tests` in each mechanism file.

mod plain;
mod scram;

pub use scram::{derive_scram_credentials, pbkdf2_hmac};

use base64::Engine as _;

use crate::entropy::Entropy;

/// Longest SASL message accepted from a client, in bytes.
const MAX_MESSAGE: usize = 4096;

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
    Scram(scram::Scram),
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
        server_nonce: String,
    ) -> (SaslServer, SaslStep) {
        let mut server = SaslServer { state: State::Done };
        let step = match mech {
            Mechanism::Anonymous => match initial {
                // RFC 4505 §3: the optional trace is UTF-8, at most 255 characters.
                Some(t) if std::str::from_utf8(&t).map_or(true, |s| s.chars().count() > 255) => {
                    SaslStep::Failure(SaslFailure::MalformedRequest)
                }
                _ => SaslStep::Success {
                    username: String::new(),
                    additional_data: None,
                },
            },
            Mechanism::Plain => {
                server.state = State::Plain(plain::Plain::default());
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
                server.state = State::Scram(scram::Scram::new(hash, server_nonce));
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
