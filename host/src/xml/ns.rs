//! Namespace URIs the server acts on, each with the specification that defines it.
//!
//! Core (pure constants). Spec: as named on each constant.
//! Invariants: one constant per URI, no duplicates; namespaces the server only forwards are not
//! listed.
//! Tests: `mod tests` below.

/// RFC 6120 §4.8.3: the content namespace of client-to-server streams.
pub const CLIENT: &str = "jabber:client";
/// RFC 6120 §4.8.3: the content namespace of server-to-server streams.
pub const SERVER: &str = "jabber:server";
/// XEP-0114 §3: the content namespace of accepting component streams.
pub const COMPONENT: &str = "jabber:component:accept";
/// RFC 6120 §4.8.1: the stream namespace (`stream:stream`, `stream:features`, `stream:error`).
pub const STREAMS: &str = "http://etherx.jabber.org/streams";
/// RFC 6120 §4.9.3: stream error conditions.
pub const STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// RFC 6120 §8.3.3: stanza error conditions.
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// RFC 6120 §5: STARTTLS negotiation.
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// RFC 6120 §6: SASL negotiation.
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// RFC 6120 §7: resource binding.
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// RFC 3921 §3 (kept as an optional feature by RFC 6121 Appendix E): session establishment.
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// RFC 7395 §3.3: WebSocket framing (`<open/>`, `<close/>`).
pub const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
/// RFC 6121 §2: roster management.
pub const ROSTER: &str = "jabber:iq:roster";
/// XEP-0198: stream management.
pub const SM: &str = "urn:xmpp:sm:3";
/// XEP-0199: XMPP ping.
pub const PING: &str = "urn:xmpp:ping";
/// XEP-0030: service discovery, info.
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0030: service discovery, items.
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// XEP-0092: software version.
pub const VERSION: &str = "jabber:iq:version";
/// XEP-0202: entity time.
pub const TIME: &str = "urn:xmpp:time";
/// XEP-0203: delayed delivery.
pub const DELAY: &str = "urn:xmpp:delay";
/// XEP-0115: entity capabilities.
pub const CAPS: &str = "http://jabber.org/protocol/caps";
/// XEP-0045: multi-user chat, join presence.
pub const MUC: &str = "http://jabber.org/protocol/muc";
/// XEP-0045: multi-user chat, occupant information.
pub const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// XEP-0045: multi-user chat, moderator and admin use cases.
pub const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
/// XEP-0045: multi-user chat, owner use cases.
pub const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
/// XEP-0004: data forms.
pub const DATA_FORMS: &str = "jabber:x:data";
/// XEP-0124 / XEP-0206: BOSH.
pub const HTTPBIND: &str = "http://jabber.org/protocol/httpbind";
/// Namespaces in XML 1.0 §3: the `xml` prefix, always bound to this URI (`xml:lang`).
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
/// Namespaces in XML 1.0 §3: the `xmlns` prefix's URI, which no prefix may be bound to.
pub const XMLNS: &str = "http://www.w3.org/2000/xmlns/";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_distinct() {
        let all = [
            CLIENT,
            SERVER,
            COMPONENT,
            STREAMS,
            STREAM_ERRORS,
            STANZAS,
            TLS,
            SASL,
            BIND,
            SESSION,
            FRAMING,
            ROSTER,
            SM,
            PING,
            DISCO_INFO,
            DISCO_ITEMS,
            VERSION,
            TIME,
            DELAY,
            CAPS,
            MUC,
            MUC_USER,
            MUC_ADMIN,
            MUC_OWNER,
            DATA_FORMS,
            HTTPBIND,
            XML,
            XMLNS,
        ];
        let mut sorted = all.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
    }
}
