//! Stanzas (RFC 6120 §8): the three kinds, their addressing (`Stanza`: an element with its
//! `from` and `to` parsed once, where it enters), and the error replies the server builds
//! (§8.3 stanza errors, §4.9 stream errors).
//!
//! Core (pure). Payloads the server does not interpret stay opaque `Element`s and are
//! forwarded untouched. Invariant: an error is never answered with an error (§8.3.1), so
//! bouncing cannot loop. Tests: `mod tests` below.

pub mod addressed;
pub mod jid;
pub mod shared;

use crate::xml::{Element, ns};
pub use addressed::{BadAddress, Stanza};
pub use jid::Jid;
pub use shared::{Outbound, Shared};

/// The three stanza kinds; anything else at the top level of an established stream is not a
/// stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `<message/>`
    Message,
    /// `<presence/>`
    Presence,
    /// `<iq/>`
    Iq,
}

impl Kind {
    /// The kind of `el` if it is a stanza in the client namespace.
    pub fn of(el: &Element) -> Option<Kind> {
        if el.ns() != ns::CLIENT {
            return None;
        }
        match el.name() {
            "message" => Some(Kind::Message),
            "presence" => Some(Kind::Presence),
            "iq" => Some(Kind::Iq),
            _ => None,
        }
    }
}

/// RFC 6120 §8.3.2 error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// Retry after providing credentials.
    Auth,
    /// Do not retry.
    Cancel,
    /// Proceed (the condition was only a warning).
    Continue,
    /// Retry after changing the data sent.
    Modify,
    /// Retry after waiting.
    Wait,
}

impl ErrorType {
    fn as_str(self) -> &'static str {
        match self {
            ErrorType::Auth => "auth",
            ErrorType::Cancel => "cancel",
            ErrorType::Continue => "continue",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
        }
    }
}

/// A defined stanza error condition (RFC 6120 §8.3.3); `as_str()` is its element name (in
/// `urn:ietf:params:xml:ns:xmpp-stanzas`). `gone` and `redirect` are sent without the address
/// the RFC lets them carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Condition {
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    Gone,
    InternalServerError,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RecipientUnavailable,
    Redirect,
    RegistrationRequired,
    RemoteServerNotFound,
    RemoteServerTimeout,
    ResourceConstraint,
    ServiceUnavailable,
    SubscriptionRequired,
    UndefinedCondition,
    UnexpectedRequest,
}

impl Condition {
    /// Every defined condition, in the RFC's (alphabetical) order.
    pub const ALL: [Condition; 22] = [
        Condition::BadRequest,
        Condition::Conflict,
        Condition::FeatureNotImplemented,
        Condition::Forbidden,
        Condition::Gone,
        Condition::InternalServerError,
        Condition::ItemNotFound,
        Condition::JidMalformed,
        Condition::NotAcceptable,
        Condition::NotAllowed,
        Condition::NotAuthorized,
        Condition::PolicyViolation,
        Condition::RecipientUnavailable,
        Condition::Redirect,
        Condition::RegistrationRequired,
        Condition::RemoteServerNotFound,
        Condition::RemoteServerTimeout,
        Condition::ResourceConstraint,
        Condition::ServiceUnavailable,
        Condition::SubscriptionRequired,
        Condition::UndefinedCondition,
        Condition::UnexpectedRequest,
    ];

    /// The condition's element name, e.g. `service-unavailable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::BadRequest => "bad-request",
            Condition::Conflict => "conflict",
            Condition::FeatureNotImplemented => "feature-not-implemented",
            Condition::Forbidden => "forbidden",
            Condition::Gone => "gone",
            Condition::InternalServerError => "internal-server-error",
            Condition::ItemNotFound => "item-not-found",
            Condition::JidMalformed => "jid-malformed",
            Condition::NotAcceptable => "not-acceptable",
            Condition::NotAllowed => "not-allowed",
            Condition::NotAuthorized => "not-authorized",
            Condition::PolicyViolation => "policy-violation",
            Condition::RecipientUnavailable => "recipient-unavailable",
            Condition::Redirect => "redirect",
            Condition::RegistrationRequired => "registration-required",
            Condition::RemoteServerNotFound => "remote-server-not-found",
            Condition::RemoteServerTimeout => "remote-server-timeout",
            Condition::ResourceConstraint => "resource-constraint",
            Condition::ServiceUnavailable => "service-unavailable",
            Condition::SubscriptionRequired => "subscription-required",
            Condition::UndefinedCondition => "undefined-condition",
            Condition::UnexpectedRequest => "unexpected-request",
        }
    }

    /// The defined condition named `name`; `None` for any other name.
    pub fn parse(name: &str) -> Option<Condition> {
        Condition::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The error type RFC 6120 §8.3.3 gives this condition in its examples (`cancel` for
    /// `undefined-condition`, which has none).
    pub fn default_type(self) -> ErrorType {
        match self {
            Condition::BadRequest
            | Condition::JidMalformed
            | Condition::NotAcceptable
            | Condition::PolicyViolation
            | Condition::Redirect => ErrorType::Modify,
            Condition::Forbidden
            | Condition::NotAuthorized
            | Condition::RegistrationRequired
            | Condition::SubscriptionRequired => ErrorType::Auth,
            Condition::RecipientUnavailable
            | Condition::RemoteServerTimeout
            | Condition::ResourceConstraint
            | Condition::UnexpectedRequest => ErrorType::Wait,
            Condition::Conflict
            | Condition::FeatureNotImplemented
            | Condition::Gone
            | Condition::InternalServerError
            | Condition::ItemNotFound
            | Condition::NotAllowed
            | Condition::RemoteServerNotFound
            | Condition::ServiceUnavailable
            | Condition::UndefinedCondition => ErrorType::Cancel,
        }
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stanza error: type plus defined condition (RFC 6120 §8.3.3) and optional text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaError {
    /// The error type.
    pub kind: ErrorType,
    /// The defined condition, e.g. [`Condition::ServiceUnavailable`].
    pub condition: Condition,
    /// Human-readable text.
    pub text: Option<String>,
    /// An application-specific condition, (name, namespace), e.g. Jingle's `unknown-session`.
    pub app: Option<(&'static str, &'static str)>,
}

impl StanzaError {
    /// A new error.
    pub fn new(kind: ErrorType, condition: Condition) -> Self {
        StanzaError {
            kind,
            condition,
            text: None,
            app: None,
        }
    }

    /// With an application-specific condition element (RFC 6120 §8.3.2).
    pub fn with_app(mut self, name: &'static str, namespace: &'static str) -> Self {
        self.app = Some((name, namespace));
        self
    }

    /// With text.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// The error for a defined condition named by a peer or plugin, with the type RFC 6120
    /// §8.3.3 gives it; a name that is not a defined condition becomes `undefined-condition`.
    pub fn from_condition(condition: &str) -> Self {
        match Condition::parse(condition) {
            Some(c) => Self::new(c.default_type(), c),
            None => Self::new(ErrorType::Cancel, Condition::UndefinedCondition),
        }
    }

    /// `<service-unavailable/>`, type cancel.
    pub fn service_unavailable() -> Self {
        Self::new(ErrorType::Cancel, Condition::ServiceUnavailable)
    }

    /// The `<error/>` child.
    pub fn to_element(&self) -> Element {
        let mut err = Element::builder("error", ns::CLIENT)
            .attr("type", self.kind.as_str())
            .build();
        err.append_child(Element::new(self.condition.as_str(), ns::STANZAS));
        if let Some(text) = &self.text {
            let mut t = Element::new("text", ns::STANZAS);
            t.append_text(text);
            err.append_child(t);
        }
        if let Some((name, namespace)) = self.app {
            err.append_child(Element::new(name, namespace));
        }
        err
    }
}

/// True for `type='error'` stanzas, which must never be answered with an error.
pub fn is_error(el: &Element) -> bool {
    el.attr("type") == Some("error")
}

/// The error reply to `stanza` (addresses swapped, `type='error'`, the original payload kept for
/// iq and message as RFC 6120 §8.3.1 allows). `None` when `stanza` is itself an error.
pub fn error_reply(stanza: &Element, error: &StanzaError) -> Option<Element> {
    if is_error(stanza) {
        return None;
    }
    let mut reply = Element::new(stanza.name(), stanza.ns());
    copy_swapped_addresses(stanza, &mut reply);
    reply.set_attr("type", "error");
    if stanza.name() != "presence" {
        for child in stanza.children() {
            reply.append_child(child.clone());
        }
    }
    reply.append_child(error.to_element());
    Some(reply)
}

/// An empty `type='result'` answer to an iq.
pub fn iq_result(iq: &Element) -> Element {
    let mut reply = Element::new("iq", ns::CLIENT);
    copy_swapped_addresses(iq, &mut reply);
    reply.set_attr("type", "result");
    reply
}

fn copy_swapped_addresses(from: &Element, to: &mut Element) {
    if let Some(id) = from.attr("id") {
        to.set_attr("id", id);
    }
    if let Some(f) = from.attr("from") {
        to.set_attr("to", f);
    }
    if let Some(t) = from.attr("to") {
        to.set_attr("from", t);
    }
}

/// The `<stream:error/>` element for a stream-level condition (RFC 6120 §4.9.3).
pub fn stream_error(condition: &str, text: Option<&str>) -> Element {
    let mut err = Element::new("error", ns::STREAMS);
    err.append_child(Element::new(condition, ns::STREAM_ERRORS));
    if let Some(text) = text {
        let mut t = Element::new("text", ns::STREAM_ERRORS);
        t.append_text(text);
        err.append_child(t);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reply_swaps_and_keeps_payload() {
        let mut iq = Element::builder("iq", ns::CLIENT)
            .attr("id", "1")
            .attr("type", "get")
            .attr("from", "a@b/c")
            .attr("to", "x@y/z")
            .build();
        iq.append_child(Element::new("query", "urn:example"));
        let reply = error_reply(&iq, &StanzaError::service_unavailable()).expect("reply");
        assert_eq!(reply.attr("to"), Some("a@b/c"));
        assert_eq!(reply.attr("from"), Some("x@y/z"));
        assert_eq!(reply.attr("type"), Some("error"));
        assert!(reply.has_child("query", "urn:example"));
        let err = reply.get_child("error", ns::CLIENT).expect("error child");
        assert_eq!(err.attr("type"), Some("cancel"));
        assert!(err.has_child("service-unavailable", ns::STANZAS));
        assert!(error_reply(&reply, &StanzaError::service_unavailable()).is_none());
    }

    #[test]
    fn conditions_are_named_as_before() {
        // The names and types `from_condition` used when conditions were strings.
        const BEFORE: &[(&str, ErrorType)] = &[
            ("bad-request", ErrorType::Modify),
            ("conflict", ErrorType::Cancel),
            ("feature-not-implemented", ErrorType::Cancel),
            ("forbidden", ErrorType::Auth),
            ("gone", ErrorType::Cancel),
            ("internal-server-error", ErrorType::Cancel),
            ("item-not-found", ErrorType::Cancel),
            ("jid-malformed", ErrorType::Modify),
            ("not-acceptable", ErrorType::Modify),
            ("not-allowed", ErrorType::Cancel),
            ("not-authorized", ErrorType::Auth),
            ("policy-violation", ErrorType::Modify),
            ("recipient-unavailable", ErrorType::Wait),
            ("redirect", ErrorType::Modify),
            ("registration-required", ErrorType::Auth),
            ("remote-server-not-found", ErrorType::Cancel),
            ("remote-server-timeout", ErrorType::Wait),
            ("resource-constraint", ErrorType::Wait),
            ("service-unavailable", ErrorType::Cancel),
            ("subscription-required", ErrorType::Auth),
            ("unexpected-request", ErrorType::Wait),
        ];
        for &(name, kind) in BEFORE {
            let e = StanzaError::from_condition(name);
            assert_eq!((e.condition.as_str(), e.kind), (name, kind));
        }
        for c in Condition::ALL {
            assert_eq!(Condition::parse(c.as_str()), Some(c));
            assert_eq!(c.to_string(), c.as_str());
        }
        assert_eq!(Condition::parse("Bad-Request"), None);
        // Names that are not defined conditions (a plugin's typo, an application condition).
        for unknown in ["", "no-such-condition", "unknown-session"] {
            let e = StanzaError::from_condition(unknown).with_text("kept");
            assert_eq!(e.condition, Condition::UndefinedCondition);
            assert_eq!(e.kind, ErrorType::Cancel);
            assert_eq!(e.text.as_deref(), Some("kept"));
        }
    }

    #[test]
    fn error_element_bytes() {
        let e = StanzaError::new(ErrorType::Wait, Condition::ResourceConstraint)
            .with_text("busy")
            .with_app("unknown-session", "urn:example");
        let mut bytes = Vec::new();
        e.to_element().write_to(&mut bytes, ns::CLIENT);
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            "<error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>busy</text>\
             <unknown-session xmlns='urn:example'/></error>"
        );
    }
}
