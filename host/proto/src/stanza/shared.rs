//! Outbound stanzas, and the fan-out form that is serialized once and shared by every
//! recipient (MUC broadcasts): the bytes lack only the `to` attribute, spliced in per
//! recipient while writing.
//!
//! Core (pure). Invariant: `Shared::write_to` produces exactly the bytes `Element::write_to`
//! would for the same stanza with `to` set as its first attribute. Tests: `mod tests` below.

use std::sync::Arc;

use crate::xml::{Element, escape_attr, ns};

/// A stanza without `to`, serialized once in `jabber:client` form.
#[derive(Debug, Clone)]
pub struct Shared {
    element: Arc<Element>,
    bytes: Arc<[u8]>,
    /// Offset just after `<name`, where ` to='…'` (and, framed, `xmlns`) goes.
    split: usize,
    /// The tree's [`Element::cost`] plus the bytes: what one holder keeps alive.
    cost: usize,
}

impl Shared {
    /// Serialize `stanza` (its `to`, if any, is dropped) for sharing.
    pub fn new(mut stanza: Element) -> Shared {
        stanza.remove_attr("to");
        let mut bytes = Vec::with_capacity(256);
        stanza.write_to(&mut bytes, ns::CLIENT);
        Shared {
            split: 1 + stanza.name().len(),
            cost: stanza.cost() + bytes.len(),
            element: Arc::new(stanza),
            bytes: bytes.into(),
        }
    }

    /// The shared stanza (without `to`).
    pub fn element(&self) -> &Element {
        &self.element
    }
}

/// One stanza on its way to one endpoint.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A stanza of its own (boxed: every session's mailbox preallocates a block of these,
    /// so the enum is kept small).
    One(Box<Element>),
    /// A shared stanza and the recipient (a JID, as written) to address it to.
    Shared(Shared, Box<str>),
}

impl From<Element> for Outbound {
    fn from(el: Element) -> Self {
        Outbound::One(Box::new(el))
    }
}

impl Outbound {
    /// The stanza as an element (copies a shared one).
    pub fn into_element(self) -> Element {
        match self {
            Outbound::One(el) => *el,
            Outbound::Shared(shared, to) => {
                let mut el = (*shared.element).clone();
                el.set_attr("to", &*to);
                el
            }
        }
    }

    /// What queuing it for one recipient costs, in bytes: its [`Element::cost`]; for a shared
    /// one also its serialized bytes and the recipient's address (the tree and the bytes are
    /// shared by every recipient, but any one queue may be the last to hold them). O(1) for a
    /// shared stanza.
    pub fn cost(&self) -> usize {
        match self {
            Outbound::One(el) => el.cost(),
            Outbound::Shared(shared, to) => shared.cost + to.len() + 64,
        }
    }

    /// The stanza's element, without the per-recipient `to` for a shared one.
    pub fn element(&self) -> &Element {
        match self {
            Outbound::One(el) => el,
            Outbound::Shared(shared, _) => &shared.element,
        }
    }

    /// Serialize. `declare_ns` writes `xmlns='jabber:client'` (a WebSocket frame is its own
    /// document); otherwise the stream's default namespace is assumed.
    pub fn write_to(&self, out: &mut Vec<u8>, declare_ns: bool) {
        match self {
            Outbound::One(el) => el.write_to(out, if declare_ns { "" } else { ns::CLIENT }),
            Outbound::Shared(shared, to) => {
                let (head, tail) = shared.bytes.split_at(shared.split);
                out.extend_from_slice(head);
                if declare_ns {
                    out.extend_from_slice(b" xmlns='jabber:client'");
                }
                out.extend_from_slice(b" to='");
                escape_attr(to, out);
                out.push(b'\'');
                out.extend_from_slice(tail);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::Jid;

    fn sample() -> Element {
        let mut body = Element::new("body", ns::CLIENT);
        body.append_text("hi & <bye>");
        Element::builder("message", ns::CLIENT)
            .attr("to", "dropped@x")
            .attr("from", "room@conference.x/alice")
            .attr("type", "groupchat")
            .append(body)
            .append(Element::new("x", "urn:example"))
            .build()
    }

    fn expected(to: &str, parent: &str) -> Vec<u8> {
        let mut el = sample();
        el.remove_attr("to");
        let mut with_to = Element::builder("message", ns::CLIENT)
            .attr("to", to)
            .build();
        for (k, v) in el.attrs() {
            with_to.set_attr(k, v);
        }
        for c in el.children() {
            with_to.append_child(c.clone());
        }
        let mut out = Vec::new();
        with_to.write_to(&mut out, parent);
        out
    }

    #[test]
    fn shared_bytes_equal_the_element_serialization() {
        let shared = Shared::new(sample());
        let to: Box<str> = Jid::parse("bob@x/r'1").expect("jid").to_string().into();
        for (declare, parent) in [(false, ns::CLIENT), (true, "")] {
            let mut out = Vec::new();
            Outbound::Shared(shared.clone(), to.clone()).write_to(&mut out, declare);
            assert_eq!(
                String::from_utf8(out).expect("utf-8"),
                String::from_utf8(expected("bob@x/r'1", parent)).expect("utf-8")
            );
        }
        let el = Outbound::Shared(shared, to).into_element();
        assert_eq!(el.attr("to"), Some("bob@x/r'1"));
        assert_eq!(el.attr("from"), Some("room@conference.x/alice"));
    }

    #[test]
    fn empty_element_keeps_its_self_closing_form() {
        let p = Element::builder("presence", ns::CLIENT)
            .attr("from", "r@c/n")
            .build();
        let mut out = Vec::new();
        Outbound::Shared(Shared::new(p), "a@b/c".into()).write_to(&mut out, false);
        assert_eq!(out, b"<presence to='a@b/c' from='r@c/n'/>");
    }
}
