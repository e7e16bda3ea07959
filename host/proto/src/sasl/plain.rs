//! SASL PLAIN (RFC 4616), server side: `[authzid] NUL authcid NUL passwd`; the password is
//! checked by the vhost's auth plugin.
//!
//! Core (pure). Invariants: no NUL inside a field; an authzid is accepted only when empty or
//! equal to the authcid. Tests: `mod tests` below.

use super::{SaslFailure, SaslStep, acceptable_name};

#[derive(Debug, Default)]
pub(super) struct Plain {
    username: Option<String>,
}

impl Plain {
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
        if !authzid.is_empty() && authzid != authcid && authzid.split('@').next() != Some(authcid) {
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
    use super::super::{Mechanism, SaslServer};
    use super::*;

    fn start(data: &[u8]) -> (SaslServer, SaslStep) {
        SaslServer::start(Mechanism::Plain, Some(data.to_vec()), String::new())
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
        let (mut s, _) = start(b"alice@x\0alice\0pw");
        assert_eq!(
            s.password_checked(false),
            SaslStep::Failure(SaslFailure::NotAuthorized)
        );
        assert_eq!(
            start(b"bob\0alice\0pw").1,
            SaslStep::Failure(SaslFailure::InvalidAuthzid)
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
        let (mut s, step) = SaslServer::start(Mechanism::Plain, None, String::new());
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
    fn anonymous_trace() {
        assert!(matches!(
            SaslServer::start(Mechanism::Anonymous, None, String::new()).1,
            SaslStep::Success { .. }
        ));
        assert!(matches!(
            SaslServer::start(Mechanism::Anonymous, Some(b"trace".to_vec()), String::new()).1,
            SaslStep::Success { .. }
        ));
        assert_eq!(
            SaslServer::start(Mechanism::Anonymous, Some(vec![0xff]), String::new()).1,
            SaslStep::Failure(SaslFailure::MalformedRequest)
        );
    }
}
