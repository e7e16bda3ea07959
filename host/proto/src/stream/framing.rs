//! How one c2s stream is framed on its transport: a continuous XML stream (TCP, RFC 6120 §4),
//! one element per WebSocket message (RFC 7395), or stanzas carried in BOSH `<body/>` wrappers
//! (XEP-0124/0206). The c2s core is the same for all three; this module turns frames into the
//! core's `Event`s and owns the framing-specific serializations (open, close, features, errors).
//!
//! Core (pure). Invariants: every frame written in a framed mode is one complete element with
//! every namespace it uses declared inside it; stanzas that arrive without a namespace are
//! taken as `jabber:client` (RFC 7395 §3.3.3 leaves the content namespace implicit).
//! Spec: RFC 7395 §3.3–§3.6, XEP-0206 §5–§6. Tests: `mod tests` below and stream/tests.rs.

use crate::xml::{self, Element, Event, StreamHeader, XmlError, ns};

/// RFC 7395 §3.3.1: the framing namespace of `<open/>` and `<close/>`.
pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

/// The exact close frame. Strophe recognises a server close only in this spelling.
pub const WS_CLOSE: &[u8] = b"<close xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\" />";

/// How a stream is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One XML document over a byte stream (TCP, TLS).
    Stream,
    /// RFC 7395: every WebSocket text message is one element.
    WebSocket,
    /// XEP-0206: the BOSH layer unwraps `<body/>` and restarts; the stream never writes a
    /// header or a close of its own.
    Bosh,
}

impl Framing {
    /// True when output leaves as separate self-contained elements.
    pub fn is_framed(self) -> bool {
        self != Framing::Stream
    }
}

/// Turn one RFC 7395 message into a stream event.
///
/// # Errors
/// When the frame is not exactly one well-formed element within the limits.
pub fn ws_event(frame: &[u8], limits: &xml::Limits) -> Result<Event, XmlError> {
    let mut el = xml::parse_element(frame, limits)?;
    if el.ns() == NS_FRAMING {
        return match el.name() {
            "open" => Ok(Event::StreamOpen(header_from_open(&el))),
            "close" => Ok(Event::StreamClose),
            other => Err(XmlError::NotWellFormed(format!(
                "unknown framing element <{other}/>"
            ))),
        };
    }
    if el.ns() == ns::STREAMS && el.name() == "stream" {
        return Err(XmlError::NotWellFormed(
            "RFC 7395 frames open with <open/>, not <stream:stream>".to_owned(),
        ));
    }
    el.set_ns_recursive("", ns::CLIENT);
    Ok(Event::Stanza(el))
}

/// The stream header an RFC 7395 `<open/>` (or a BOSH session request) stands for.
pub fn header_from_open(el: &Element) -> StreamHeader {
    let get = |k: &str| el.attr(k).map(str::to_owned);
    StreamHeader {
        to: get("to"),
        from: get("from"),
        version: get("version").or_else(|| get("xmpp:version")),
        lang: get("xml:lang"),
        id: get("id"),
        default_ns: ns::CLIENT.to_owned(),
        attrs: el
            .attrs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    }
}

/// `<open/>` as the server's side of the RFC 7395 §3.4 exchange.
pub fn ws_open(from: Option<&str>, id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"<open xmlns=\"");
    out.extend_from_slice(NS_FRAMING.as_bytes());
    out.extend_from_slice(b"\" id=\"");
    xml::escape_attr(id, &mut out);
    out.push(b'"');
    if let Some(from) = from {
        out.extend_from_slice(b" from=\"");
        xml::escape_attr(from, &mut out);
        out.push(b'"');
    }
    out.extend_from_slice(b" version=\"1.0\" xml:lang=\"en\"/>");
    out
}

/// `<stream:features/>` with its own `xmlns:stream` declaration, children fully qualified.
pub fn features_frame(features: &[Element]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"<stream:features xmlns:stream='");
    out.extend_from_slice(ns::STREAMS.as_bytes());
    out.extend_from_slice(b"'>");
    for f in features {
        f.write_to(&mut out, "");
    }
    out.extend_from_slice(b"</stream:features>");
    out
}

/// `<stream:error/>` with its own `xmlns:stream` declaration.
pub fn error_frame(error: &Element) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"<stream:error xmlns:stream='");
    out.extend_from_slice(ns::STREAMS.as_bytes());
    out.extend_from_slice(b"'>");
    for child in error.children() {
        child.write_to(&mut out, "");
    }
    out.extend_from_slice(b"</stream:error>");
    out
}

/// One element as a frame: every namespace declared, `jabber:client` included.
pub fn element_frame(el: &Element) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    el.write_to(&mut out, "");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> xml::Limits {
        xml::Limits::default()
    }

    #[test]
    fn open_and_close_frames_become_stream_events() {
        let open = br#"<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.com" version="1.0"/>"#;
        let Ok(Event::StreamOpen(h)) = ws_event(open, &limits()) else {
            panic!("open frame not recognised");
        };
        assert_eq!(h.to.as_deref(), Some("example.com"));
        assert_eq!(h.version.as_deref(), Some("1.0"));
        assert_eq!(h.default_ns, ns::CLIENT);
        assert_eq!(ws_event(WS_CLOSE, &limits()), Ok(Event::StreamClose));
    }

    #[test]
    fn stanza_without_namespace_is_jabber_client() {
        let Ok(Event::Stanza(el)) = ws_event(
            b"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/><x/></iq>",
            &limits(),
        ) else {
            panic!("stanza not parsed");
        };
        assert!(el.is("iq", ns::CLIENT));
        assert!(el.has_child("ping", ns::PING));
        assert!(el.has_child("x", ns::CLIENT));
    }

    #[test]
    fn bad_frames_are_refused() {
        for frame in [
            &b"<iq"[..],
            b"<a/><b/>",
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>",
            b"<restart xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
            b"",
        ] {
            assert!(
                ws_event(frame, &limits()).is_err(),
                "{}",
                String::from_utf8_lossy(frame)
            );
        }
    }

    #[test]
    fn frames_declare_their_namespaces() {
        let f = features_frame(&[Element::new("bind", ns::BIND)]);
        let el = xml::parse_element(&f, &limits()).expect("features frame parses alone");
        assert!(el.is("features", ns::STREAMS));
        assert!(el.has_child("bind", ns::BIND));
        let msg = element_frame(&Element::new("message", ns::CLIENT));
        assert_eq!(msg, b"<message xmlns='jabber:client'/>");
        let open = ws_open(Some("example.com"), "abc");
        let el = xml::parse_element(&open, &limits()).expect("open parses");
        assert!(el.is("open", NS_FRAMING));
        assert_eq!(el.attr("version"), Some("1.0"));
    }
}
