//! A stanza with its addresses parsed once: the `Element` (whose `from` and `to` attributes
//! still go on the wire) beside `from` and `to` as `Jid`s. The c2s and component cores build
//! it where a peer's stanza enters; the router, the MUC services and the focus read the JIDs
//! from it instead of parsing the attributes again.
//!
//! Core (pure). Invariant: `from` and `to` are what `Jid::parse` makes of the element's
//! `from` and `to` attributes (`to` is `None` exactly when the attribute is absent); every
//! constructor and mutator keeps it. Tests: `mod tests` below.

use super::Jid;
use crate::xml::Element;

/// A stanza whose `from` (always present) and `to` are parsed.
#[derive(Debug, Clone)]
pub struct Stanza {
    element: Element,
    from: Jid,
    to: Option<Jid>,
}

/// Which address of an element did not parse (`Stanza::parse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAddress {
    /// `from` is missing or not a JID.
    From,
    /// `to` is present and not a JID.
    To,
}

impl Stanza {
    /// Parse `element`'s `from` (required) and `to` (optional), in that order; on failure the
    /// element comes back with which address failed.
    ///
    /// # Errors
    /// `BadAddress::From` for a missing or malformed `from`, `BadAddress::To` for a malformed
    /// `to`.
    pub fn parse(element: Element) -> Result<Stanza, (Element, BadAddress)> {
        let Some(from) = element.attr("from").and_then(|f| Jid::parse(f).ok()) else {
            return Err((element, BadAddress::From));
        };
        let to = match element.attr("to").map(Jid::parse) {
            None => None,
            Some(Ok(to)) => Some(to),
            Some(Err(_)) => return Err((element, BadAddress::To)),
        };
        Ok(Stanza { element, from, to })
    }

    /// A stanza whose addresses the caller already parsed: `from` and `to` must be what the
    /// element's attributes parse to. This crate's tests check it; release builds (which keep
    /// debug assertions) do not, since checking is parsing again.
    pub fn new(element: Element, from: Jid, to: Option<Jid>) -> Stanza {
        #[cfg(test)]
        {
            let parse = |name| element.attr(name).map(Jid::parse).and_then(Result::ok);
            assert_eq!(parse("from").as_ref(), Some(&from), "`from` does not match");
            assert_eq!(parse("to"), to, "`to` does not match");
        }
        Stanza { element, from, to }
    }

    /// The element, as it goes on the wire.
    pub fn element(&self) -> &Element {
        &self.element
    }

    /// The sender.
    pub fn from(&self) -> &Jid {
        &self.from
    }

    /// The recipient, when the stanza names one.
    pub fn to(&self) -> Option<&Jid> {
        self.to.as_ref()
    }

    /// Set `to` (attribute and JID).
    pub fn set_to(&mut self, to: Jid) {
        self.element.set_attr("to", to.to_string());
        self.to = Some(to);
    }

    /// The element alone.
    pub fn into_element(self) -> Element {
        self.element
    }

    /// The element, `from` and `to`.
    pub fn into_parts(self) -> (Element, Jid, Option<Jid>) {
        (self.element, self.from, self.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::ns;

    fn el(from: Option<&str>, to: Option<&str>) -> Element {
        let mut e = Element::new("message", ns::CLIENT);
        if let Some(f) = from {
            e.set_attr("from", f);
        }
        if let Some(t) = to {
            e.set_attr("to", t);
        }
        e
    }

    #[test]
    fn parse_reads_both_addresses() {
        let s = Stanza::parse(el(Some("a@x/r"), Some("Room@conference.x/n"))).expect("parses");
        assert_eq!(s.from(), &Jid::parse("a@x/r").expect("jid"));
        assert_eq!(
            s.to(),
            Some(&Jid::parse("room@conference.x/n").expect("jid"))
        );
        assert!(
            Stanza::parse(el(Some("a@x"), None))
                .expect("parses")
                .to()
                .is_none()
        );
    }

    #[test]
    fn parse_says_which_address_failed_from_first() {
        assert_eq!(
            Stanza::parse(el(None, Some("b@x"))).err().map(|e| e.1),
            Some(BadAddress::From)
        );
        assert_eq!(
            Stanza::parse(el(Some("@"), Some("@"))).err().map(|e| e.1),
            Some(BadAddress::From)
        );
        assert_eq!(
            Stanza::parse(el(Some("a@x"), Some("@"))).err().map(|e| e.1),
            Some(BadAddress::To)
        );
    }

    #[test]
    fn set_to_keeps_attribute_and_jid_together() {
        let mut s = Stanza::parse(el(Some("a@x/r"), None)).expect("parses");
        s.set_to(Jid::parse("a@x").expect("jid"));
        assert_eq!(s.element().attr("to"), Some("a@x"));
        assert_eq!(s.to().map(Jid::as_str), Some("a@x"));
    }
}
