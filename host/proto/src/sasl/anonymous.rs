//! SASL ANONYMOUS (RFC 4505), server side: one optional client message, the trace token.
//!
//! Core (pure). The trace is only validated (UTF-8, at most 255 characters, RFC 4505 §3) and
//! then ignored: it is neither logged nor returned, since clients may put anything in it.
//! Invariants: success carries an empty username; the host assigns the identity. An absent
//! initial response succeeds at once (Prosody behaves so, and Strophe.js, which Jitsi Meet uses,
//! has no challenge handler for ANONYMOUS), so ANONYMOUS never needs a second round.
//! Tests: `mod tests` below.

use super::{SaslFailure, SaslStep};

/// Longest trace token, in characters (RFC 4505 §3).
const MAX_TRACE_CHARS: usize = 255;

/// Run ANONYMOUS on the initial response (`None` when absent).
pub(super) fn start(initial: Option<&[u8]>) -> SaslStep {
    let trace_ok = match initial {
        None => true,
        Some(t) => std::str::from_utf8(t).is_ok_and(|s| s.chars().count() <= MAX_TRACE_CHARS),
    };
    if trace_ok {
        SaslStep::Success {
            username: String::new(),
            additional_data: None,
        }
    } else {
        SaslStep::Failure(SaslFailure::MalformedRequest)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::cx;
    use super::super::{Mechanism, SaslServer};
    use super::*;

    fn run(initial: Option<&[u8]>) -> SaslStep {
        let (s, step) =
            SaslServer::start(Mechanism::Anonymous, initial.map(<[u8]>::to_vec), cx(""));
        assert!(s.is_done());
        step
    }

    fn success() -> SaslStep {
        SaslStep::Success {
            username: String::new(),
            additional_data: None,
        }
    }

    #[test]
    fn without_trace() {
        assert_eq!(run(None), success());
        assert_eq!(run(Some(b"")), success());
    }

    #[test]
    fn with_trace() {
        assert_eq!(run(Some(b"sirhc")), success());
        assert_eq!(run(Some("jürgen@example.org".as_bytes())), success());
        assert_eq!(run(Some("é".repeat(255).as_bytes())), success());
    }

    #[test]
    fn bad_trace() {
        assert_eq!(
            run(Some(&[0xff, 0xfe])),
            SaslStep::Failure(SaslFailure::MalformedRequest)
        );
        assert_eq!(
            run(Some("a".repeat(256).as_bytes())),
            SaslStep::Failure(SaslFailure::MalformedRequest)
        );
    }
}
