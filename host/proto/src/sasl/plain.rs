//! SASL PLAIN (RFC 4616), server side: `[authzid] NUL authcid NUL passwd`; the password is
//! checked by the vhost's auth plugin.
//!
//! Core (pure). Invariants: no NUL inside a field; an authzid is accepted only when empty or
//! naming the authcid's own account (`authcid`, `authcid@vhost`), else `invalid-authzid`
//! (RFC 6120 §6.4.6) before any password check. Tests: `mod tests` below.

use super::{SaslFailure, SaslStep, acceptable_name, authzid_allowed};

#[derive(Debug)]
pub(super) struct Plain {
    vhost: String,
    username: Option<String>,
}

impl Plain {
    pub(super) fn new(vhost: String) -> Self {
        Plain {
            vhost,
            username: None,
        }
    }

    pub(super) fn response(&mut self, data: &[u8]) -> SaslStep {
        let Ok(text) = std::str::from_utf8(data) else {
            return SaslStep::Failure(SaslFailure::MalformedRequest);
        };
        let parts: Vec<&str> = text.split('\0').collect();
        let [authzid, authcid, password] = parts.as_slice() else {
            return SaslStep::Failure(SaslFailure::MalformedRequest);
        };
        if !acceptable_name(authcid) || password.is_empty() || password.len() > 1023 {
            return SaslStep::Failure(SaslFailure::MalformedRequest);
        }
        if !authzid_allowed(authzid, authcid, &self.vhost) {
            return SaslStep::Failure(SaslFailure::InvalidAuthzid);
        }
        if self.username.is_some() {
            return SaslStep::Failure(SaslFailure::MalformedRequest);
        }
        self.username = Some((*authcid).to_owned());
        SaslStep::CheckPassword {
            username: (*authcid).to_owned(),
            password: (*password).to_owned(),
        }
    }

    pub(super) fn checked(&mut self, ok: bool) -> SaslStep {
        match self.username.take() {
            Some(username) if ok => SaslStep::Success {
                username,
                additional_data: None,
            },
            Some(_) => SaslStep::Failure(SaslFailure::NotAuthorized),
            None => SaslStep::Failure(SaslFailure::MalformedRequest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::cx;
    use super::super::{Mechanism, SaslServer};
    use super::*;

    fn start(data: &[u8]) -> (SaslServer, SaslStep) {
        SaslServer::start(Mechanism::Plain, Some(data.to_vec()), cx(""))
    }

    #[test]
    fn plain_shapes() {
        let (mut s, step) = start(b"\0alice\0pw");
        assert_eq!(
            step,
            SaslStep::CheckPassword {
                username: "alice".into(),
                password: "pw".into()
            }
        );
        assert_eq!(
            s.password_checked(true),
            SaslStep::Success {
                username: "alice".into(),
                additional_data: None
            }
        );
        assert!(s.is_done());
        let (mut s, _) = start(b"alice@x\0alice\0pw");
        assert_eq!(
            s.password_checked(false),
            SaslStep::Failure(SaslFailure::NotAuthorized)
        );
        for bad in [
            &b"alice\0pw"[..],
            b"\0alice\0",
            b"\0\0pw",
            b"\0a\0b\0c",
            b"\0\xff\0pw",
        ] {
            assert_eq!(
                start(bad).1,
                SaslStep::Failure(SaslFailure::MalformedRequest),
                "{bad:?}"
            );
        }
        let (mut s, step) = SaslServer::start(Mechanism::Plain, None, cx(""));
        assert_eq!(step, SaslStep::Challenge(Vec::new()));
        assert!(matches!(
            s.response(b"\0a\0b".to_vec()),
            SaslStep::CheckPassword { .. }
        ));
        assert_eq!(
            s.response(b"\0a\0b".to_vec()),
            SaslStep::Failure(SaslFailure::MalformedRequest)
        );
    }

    #[test]
    fn authzid_of_the_user_itself_is_accepted() {
        for authzid in ["alice", "alice@x", "Alice@X"] {
            let msg = format!("{authzid}\0alice\0pw");
            assert!(
                matches!(start(msg.as_bytes()).1, SaslStep::CheckPassword { .. }),
                "{authzid}"
            );
        }
        assert!(matches!(
            start(b"alice@x\0alice@x\0pw").1,
            SaslStep::CheckPassword { .. }
        ));
    }

    #[test]
    fn authzid_of_someone_else_is_invalid_authzid() {
        // The old check let any `alice@<domain>` through; someone else's account never.
        for authzid in ["bob", "bob@x", "alice@y", "alice@x/desk", "alice@y@x"] {
            let msg = format!("{authzid}\0alice\0pw");
            let (s, step) = start(msg.as_bytes());
            assert_eq!(
                step,
                SaslStep::Failure(SaslFailure::InvalidAuthzid),
                "{authzid}"
            );
            assert!(s.is_done());
        }
    }
}
