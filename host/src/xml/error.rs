//! The one error type of the XML layer, `XmlError`, and its RFC 6120 §4.9.3 stream error
//! condition.
//!
//! Core (pure data). Invariants: every variant maps to exactly one stream error condition;
//! errors that a peer causes carry a short human-readable reason, never the peer's bytes in bulk.
//! Spec: https://www.rfc-editor.org/rfc/rfc6120#section-4.9.3
//! Tests: `mod tests` below; each variant is produced by a concrete input in splitter.rs and
//! reader.rs tests.

/// A stream-level XML error. Any of them ends the stream with `<stream:error>`; use
/// `condition()` for the element name inside it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Malformed XML: bad syntax, mismatched tags, unbound prefixes, invalid UTF-8 or characters.
    #[error("not well-formed: {0}")]
    NotWellFormed(String),
    /// XML that XMPP forbids (RFC 6120 §11.1): comments, processing instructions, DTDs,
    /// references to entities other than the five predefined ones.
    #[error("restricted XML: {0}")]
    RestrictedXml(String),
    /// A configured limit (`Limits`) was exceeded.
    #[error("policy violation: {0}")]
    PolicyViolation(String),
    /// The stream element is not `stream` in `http://etherx.jabber.org/streams`.
    #[error("invalid namespace: {0}")]
    InvalidNamespace(String),
    /// Well-formed XML that is not acceptable as an XMPP stream (e.g. an unsupported XML
    /// declaration).
    #[error("bad format: {0}")]
    BadFormat(String),
}

impl XmlError {
    /// The RFC 6120 §4.9.3 stream error condition for this error.
    pub fn condition(&self) -> &'static str {
        match self {
            XmlError::NotWellFormed(_) => "not-well-formed",
            XmlError::RestrictedXml(_) => "restricted-xml",
            XmlError::PolicyViolation(_) => "policy-violation",
            XmlError::InvalidNamespace(_) => "invalid-namespace",
            XmlError::BadFormat(_) => "bad-format",
        }
    }
}

/// Shorthand for `XmlError::NotWellFormed`.
pub(super) fn nwf(reason: impl Into<String>) -> XmlError {
    XmlError::NotWellFormed(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_rfc_6120_names() {
        let cases = [
            (XmlError::NotWellFormed(String::new()), "not-well-formed"),
            (XmlError::RestrictedXml(String::new()), "restricted-xml"),
            (XmlError::PolicyViolation(String::new()), "policy-violation"),
            (
                XmlError::InvalidNamespace(String::new()),
                "invalid-namespace",
            ),
            (XmlError::BadFormat(String::new()), "bad-format"),
        ];
        for (err, name) in cases {
            assert_eq!(err.condition(), name);
        }
        assert_eq!(nwf("x").to_string(), "not well-formed: x");
    }
}
