//! SASL PLAIN (RFC 4616), server side: `[authzid] NUL authcid NUL passwd`, UTF-8; the password
//! is checked by the vhost's auth plugin (`SaslStep::CheckPassword`).
//!
//! Core (pure). Invariants: exactly two NUL separators, so no field contains NUL; authcid and
//! password are non-empty; every field is at most `MAX_FIELD` bytes; the authcid passes the
//! minimal SASLprep stand-in (`acceptable_name`). An authzid is accepted only when empty or
//! byte-equal to the authcid: we do not know the vhost here, so `authcid@domain` is refused
//! with `InvalidAuthzid` rather than silently ignored (RFC 6120 §6.3.8 says clients should
//! omit an authzid equal to their own identity). The password is passed on as sent: no
//! SASLprep, the plugin compares it.
//! Tests: `mod tests` below.

use super::{MAX_FIELD, SaslFailure, SaslStep, acceptable_name};

#[derive(Debug)]
enum Phase {
    /// Waiting for the client's message.
    ExpectMessage,
    /// `CheckPassword` was sent for this authcid.
    WaitCheck { username: String },
    /// Finished.
    Done,
}

#[derive(Debug)]
pub(super) struct Plain {
    phase: Phase,
}

/// Split a PLAIN message into `(authzid, authcid, password)`.
fn parse(data: &[u8]) -> Result<(&str, &str, &str), SaslFailure> {
    let text = std::str::from_utf8(data).map_err(|_| SaslFailure::MalformedRequest)?;
    let mut fields = text.split('\0');
    let (Some(authzid), Some(authcid), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(SaslFailure::MalformedRequest);
    };
    if !acceptable_name(authcid)
        || password.is_empty()
        || password.len() > MAX_FIELD
        || authzid.len() > MAX_FIELD
    {
        return Err(SaslFailure::MalformedRequest);
    }
    if !authzid.is_empty() && authzid != authcid {
        return Err(SaslFailure::InvalidAuthzid);
    }
    Ok((authzid, authcid, password))
}

impl Plain {
    pub(super) fn new() -> Self {
        Plain {
            phase: Phase::ExpectMessage,
        }
    }

    pub(super) fn response(&mut self, data: &[u8]) -> SaslStep {
        if !matches!(self.phase, Phase::ExpectMessage) {
            self.phase = Phase::Done;
            return SaslStep::Failure(SaslFailure::MalformedRequest);
        }
        match parse(data) {
            Ok((_, authcid, password)) => {
                self.phase = Phase::WaitCheck {
                    username: authcid.to_owned(),
                };
                SaslStep::CheckPassword {
                    username: authcid.to_owned(),
                    password: password.to_owned(),
                }
            }
            Err(f) => {
                self.phase = Phase::Done;
                SaslStep::Failure(f)
            }
        }
    }

    pub(super) fn checked(&mut self, ok: bool) -> SaslStep {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::WaitCheck { username } if ok => SaslStep::Success {
                username,
                additional_data: None,
            },
            Phase::WaitCheck { .. } => SaslStep::Failure(SaslFailure::NotAuthorized),
            _ => SaslStep::Failure(SaslFailure::MalformedRequest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Mechanism, SaslServer};
    use super::*;

    fn start(data: &[u8]) -> (SaslServer, SaslStep) {
        SaslServer::start(Mechanism::Plain, Some(data.to_vec()), String::new())
    }

    fn check(username: &str, password: &str) -> SaslStep {
        SaslStep::CheckPassword {
            username: username.into(),
            password: password.into(),
        }
    }

    #[test]
    fn no_authzid() {
        let (mut s, step) = start(b"\0alice\0pencil");
        assert_eq!(step, check("alice", "pencil"));
        assert_eq!(
            s.password_checked(true),
            SaslStep::Success {
                username: "alice".into(),
                additional_data: None
            }
        );
        assert!(s.is_done());
        assert_eq!(
            s.password_checked(true),
            SaslStep::Failure(SaslFailure::MalformedRequest)
        );
    }

    #[test]
    fn wrong_password() {
        let (mut s, step) = start("\0jürgen\0pass word ü".as_bytes());
        assert_eq!(step, check("jürgen", "pass word ü"));
        assert_eq!(
            s.password_checked(false),
            SaslStep::Failure(SaslFailure::NotAuthorized)
        );
        assert_eq!(
            s.response("\0jürgen\0x".as_bytes().to_vec()),
            SaslStep::Failure(SaslFailure::MalformedRequest)
        );
    }

    #[test]
    fn authzid_equal_accepted_different_refused() {
        assert_eq!(start(b"alice\0alice\0pw").1, check("alice", "pw"));
        for authzid in ["bob", "alice@example.org", "Alice", "alice "] {
            let msg = format!("{authzid}\0alice\0pw");
            assert_eq!(
                start(msg.as_bytes()).1,
                SaslStep::Failure(SaslFailure::InvalidAuthzid),
                "{authzid}"
            );
        }
    }

    #[test]
    fn malformed() {
        let long = "a".repeat(MAX_FIELD + 1);
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"alice".to_vec(),
            b"alice\0pw".to_vec(),
            b"\0alice\0".to_vec(),
            b"\0\0pw".to_vec(),
            b"\0a\0b\0c".to_vec(),
            b"\0\xff\0pw".to_vec(),
            b"\0alice\0\xc3".to_vec(),
            b"\0al\x07ice\0pw".to_vec(),
            format!("\0{long}\0pw").into_bytes(),
            format!("\0alice\0{long}").into_bytes(),
            format!("{long}\0alice\0pw").into_bytes(),
        ];
        for bad in cases {
            let (s, step) = start(&bad);
            assert_eq!(
                step,
                SaslStep::Failure(SaslFailure::MalformedRequest),
                "{bad:?}"
            );
            assert!(s.is_done());
        }
    }

    #[test]
    fn empty_challenge_when_no_initial_response() {
        let (mut s, step) = SaslServer::start(Mechanism::Plain, None, String::new());
        assert_eq!(step, SaslStep::Challenge(Vec::new()));
        assert_eq!(s.response(b"\0a\0b".to_vec()), check("a", "b"));
        // A second message while the plugin is asked is a protocol error.
        assert_eq!(
            s.response(b"\0a\0b".to_vec()),
            SaslStep::Failure(SaslFailure::MalformedRequest)
        );
        assert_eq!(
            s.password_checked(true),
            SaslStep::Failure(SaslFailure::MalformedRequest)
        );
    }

    #[test]
    fn empty_initial_response_is_malformed() {
        let (_, step) = SaslServer::start(Mechanism::Plain, Some(Vec::new()), String::new());
        assert_eq!(step, SaslStep::Failure(SaslFailure::MalformedRequest));
    }
}
