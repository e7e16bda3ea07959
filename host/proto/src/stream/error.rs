//! Stream error conditions (RFC 6120 §4.9.3) as a type, so a stream core cannot send one that
//! does not exist. `see-other-host` is left out: it carries a value and nothing here redirects.
//!
//! Core (pure). Tests: `mod tests` below.

use crate::xml::XmlError;

/// A defined stream error condition; `name()` is its element name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum StreamCondition {
    BadFormat,
    BadNamespacePrefix,
    Conflict,
    ConnectionTimeout,
    HostGone,
    HostUnknown,
    ImproperAddressing,
    InternalServerError,
    InvalidFrom,
    InvalidNamespace,
    InvalidXml,
    NotAuthorized,
    NotWellFormed,
    PolicyViolation,
    RemoteConnectionFailed,
    Reset,
    ResourceConstraint,
    RestrictedXml,
    SystemShutdown,
    UndefinedCondition,
    UnsupportedEncoding,
    UnsupportedFeature,
    UnsupportedStanzaType,
    UnsupportedVersion,
}

impl StreamCondition {
    /// The condition's element name (in `urn:ietf:params:xml:ns:xmpp-streams`).
    pub fn name(self) -> &'static str {
        match self {
            StreamCondition::BadFormat => "bad-format",
            StreamCondition::BadNamespacePrefix => "bad-namespace-prefix",
            StreamCondition::Conflict => "conflict",
            StreamCondition::ConnectionTimeout => "connection-timeout",
            StreamCondition::HostGone => "host-gone",
            StreamCondition::HostUnknown => "host-unknown",
            StreamCondition::ImproperAddressing => "improper-addressing",
            StreamCondition::InternalServerError => "internal-server-error",
            StreamCondition::InvalidFrom => "invalid-from",
            StreamCondition::InvalidNamespace => "invalid-namespace",
            StreamCondition::InvalidXml => "invalid-xml",
            StreamCondition::NotAuthorized => "not-authorized",
            StreamCondition::NotWellFormed => "not-well-formed",
            StreamCondition::PolicyViolation => "policy-violation",
            StreamCondition::RemoteConnectionFailed => "remote-connection-failed",
            StreamCondition::Reset => "reset",
            StreamCondition::ResourceConstraint => "resource-constraint",
            StreamCondition::RestrictedXml => "restricted-xml",
            StreamCondition::SystemShutdown => "system-shutdown",
            StreamCondition::UndefinedCondition => "undefined-condition",
            StreamCondition::UnsupportedEncoding => "unsupported-encoding",
            StreamCondition::UnsupportedFeature => "unsupported-feature",
            StreamCondition::UnsupportedStanzaType => "unsupported-stanza-type",
            StreamCondition::UnsupportedVersion => "unsupported-version",
        }
    }
}

impl From<&XmlError> for StreamCondition {
    fn from(e: &XmlError) -> Self {
        match e {
            XmlError::NotWellFormed(_) => StreamCondition::NotWellFormed,
            XmlError::RestrictedXml(_) => StreamCondition::RestrictedXml,
            XmlError::PolicyViolation(_) => StreamCondition::PolicyViolation,
            XmlError::InvalidNamespace(_) => StreamCondition::InvalidNamespace,
            XmlError::BadFormat(_) => StreamCondition::BadFormat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_errors_map_to_the_conditions_the_parser_names() {
        for e in [
            XmlError::NotWellFormed(String::new()),
            XmlError::RestrictedXml(String::new()),
            XmlError::PolicyViolation(String::new()),
            XmlError::InvalidNamespace(String::new()),
            XmlError::BadFormat(String::new()),
        ] {
            assert_eq!(StreamCondition::from(&e).name(), e.condition());
        }
    }
}
