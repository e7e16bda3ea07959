//! Namespace URIs the server acts on, each with the specification that defines it.
//!
//! Pure constants. Namespaces the server only forwards are never listed here.

/// RFC 6120 §4.8.3: the client content namespace.
pub const CLIENT: &str = "jabber:client";
/// RFC 6120 §4.8.3: the server content namespace.
pub const SERVER: &str = "jabber:server";
/// XEP-0114: the accept-side component namespace.
pub const COMPONENT: &str = "jabber:component:accept";
/// RFC 6120 §4.8.1: the stream namespace.
pub const STREAMS: &str = "http://etherx.jabber.org/streams";
/// RFC 6120 §4.9.3: stream error conditions.
pub const STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// RFC 6120 §8.3.3: stanza error conditions.
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// RFC 6120 §5: STARTTLS.
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// RFC 6120 §6: SASL.
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// RFC 6120 §7: resource binding.
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// RFC 3921 §3 (legacy session establishment).
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// XEP-0198: stream management.
pub const SM: &str = "urn:xmpp:sm:3";
/// XEP-0199: ping.
pub const PING: &str = "urn:xmpp:ping";
/// XEP-0030: disco#info.
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0030: disco#items.
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// XEP-0092: software version.
pub const VERSION: &str = "jabber:iq:version";
/// XML 1.0 Namespaces §3: the reserved `xml` prefix.
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
/// XEP-0045 MUC join.
pub const MUC: &str = "http://jabber.org/protocol/muc";
/// XEP-0045 MUC user extensions.
pub const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// XEP-0045 MUC owner (configuration, destroy).
pub const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
/// XEP-0045 MUC admin (roles, affiliations).
pub const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
/// XEP-0004 data forms.
pub const DATA: &str = "jabber:x:data";
