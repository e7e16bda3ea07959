//! The owned XML tree a stanza becomes at the parser boundary: `Element`, `Node` and
//! `ElementBuilder`, with the accessors and edits the stanza layer needs. Serialization lives in
//! writer.rs, parsing in reader.rs.
//!
//! Core (pure). Spec: XML 1.0 + Namespaces in XML 1.0 data model, reduced to what XMPP uses.
//! Invariants: an element's name is a local name and `ns()` its resolved namespace URI ("" = no
//! namespace); attributes keep their qualified names in document order (`xml:lang`, or `p:a`
//! with the `xmlns:p` declaration kept beside it), never `xmlns` itself; adjacent text nodes are
//! merged, empty text is never stored.
//! Tests: `mod tests` below; round trips in writer.rs and reader.rs.

/// A child node of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data, unescaped.
    Text(String),
}

/// An XML element with a resolved namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    name: String,
    ns: String,
    attrs: Vec<(String, String)>,
    nodes: Vec<Node>,
}

/// Builds an `Element` fluently: `Element::builder("iq", ns::CLIENT).attr("type", "get").build()`.
#[derive(Debug)]
pub struct ElementBuilder(Element);

impl ElementBuilder {
    /// Set an attribute (replacing one of the same name).
    pub fn attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.set_attr(name, value);
        self
    }

    /// Append a child element.
    pub fn append(mut self, child: Element) -> Self {
        self.0.append_child(child);
        self
    }

    /// Append text.
    pub fn text(mut self, text: &str) -> Self {
        self.0.append_text(text);
        self
    }

    /// The element.
    pub fn build(self) -> Element {
        self.0
    }
}

impl Element {
    /// An empty element with local name `name` in namespace `ns`.
    pub fn new(name: &str, ns: &str) -> Element {
        Element {
            name: name.to_owned(),
            ns: ns.to_owned(),
            attrs: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// The parser's constructor: attributes already checked for duplicates.
    pub(super) fn from_parts(name: String, ns: String, attrs: Vec<(String, String)>) -> Element {
        Element {
            name,
            ns,
            attrs,
            nodes: Vec::new(),
        }
    }

    /// A builder for an element with local name `name` in namespace `ns`.
    pub fn builder(name: &str, ns: &str) -> ElementBuilder {
        ElementBuilder(Element::new(name, ns))
    }

    /// The local name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace URI ("" for no namespace).
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Whether the element has this local name and namespace.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// An attribute by qualified name: `"type"`, `"xml:lang"`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Set or replace an attribute. A prefixed name other than `xml:` needs its `xmlns:p`
    /// declaration set too; `xmlns` itself is ignored when serializing (the namespace is `ns()`).
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value,
            None => self.attrs.push((name.to_owned(), value)),
        }
    }

    /// Remove an attribute, returning its value.
    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let i = self.attrs.iter().position(|(k, _)| k == name)?;
        Some(self.attrs.remove(i).1)
    }

    /// All attributes in order, as (qualified name, value).
    pub fn attrs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The child elements, in order.
    pub fn children(&self) -> impl Iterator<Item = &Element> {
        self.nodes.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The child elements, mutably.
    pub fn children_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.nodes.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// All child nodes (elements and text), in order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter()
    }

    /// The first child with this name and namespace.
    pub fn get_child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children().find(|c| c.is(name, ns))
    }

    /// The first child with this name and namespace, mutably.
    pub fn get_child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.children_mut().find(|c| c.is(name, ns))
    }

    /// Whether a child with this name and namespace exists.
    pub fn has_child(&self, name: &str, ns: &str) -> bool {
        self.get_child(name, ns).is_some()
    }

    /// Append a child element and return it.
    pub fn append_child(&mut self, child: Element) -> &mut Element {
        self.nodes.push(Node::Element(child));
        match self.nodes.last_mut() {
            Some(Node::Element(e)) => e,
            // Invariant: the last node is the element pushed on the line above.
            _ => unreachable!("the last node is the element just pushed"),
        }
    }

    /// Append text, merged into a directly preceding text node. Empty text is ignored.
    pub fn append_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(Node::Text(t)) = self.nodes.last_mut() {
            t.push_str(text);
        } else {
            self.nodes.push(Node::Text(text.to_owned()));
        }
    }

    /// Remove every child element with this name and namespace.
    pub fn remove_children(&mut self, name: &str, ns: &str) {
        self.nodes
            .retain(|n| !matches!(n, Node::Element(e) if e.is(name, ns)));
        // Removing an element may leave two text nodes side by side: merge them again.
        let mut merged: Vec<Node> = Vec::with_capacity(self.nodes.len());
        for node in self.nodes.drain(..) {
            match (merged.last_mut(), node) {
                (Some(Node::Text(prev)), Node::Text(t)) => prev.push_str(&t),
                (_, node) => merged.push(node),
            }
        }
        self.nodes = merged;
    }

    /// The direct text children, concatenated (descendants' text is not included).
    pub fn text(&self) -> String {
        self.nodes
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// Move this element and every descendant whose namespace is `from` into `to` (e.g.
    /// `jabber:client` to `jabber:component:accept` when routing to a component).
    pub fn set_ns_recursive(&mut self, from: &str, to: &str) {
        if self.ns == from {
            to.clone_into(&mut self.ns);
        }
        for child in self.children_mut() {
            child.set_ns_recursive(from, to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_accessors() {
        let e = Element::builder("message", "jabber:client")
            .attr("to", "a@b")
            .attr("xml:lang", "en")
            .append(Element::builder("body", "jabber:client").text("hi").build())
            .text("x")
            .build();
        assert!(e.is("message", "jabber:client"));
        assert!(!e.is("message", "jabber:server"));
        assert_eq!(e.name(), "message");
        assert_eq!(e.ns(), "jabber:client");
        assert_eq!(e.attr("to"), Some("a@b"));
        assert_eq!(e.attr("xml:lang"), Some("en"));
        assert_eq!(e.attr("lang"), None);
        assert_eq!(
            e.attrs().collect::<Vec<_>>(),
            [("to", "a@b"), ("xml:lang", "en")]
        );
        assert_eq!(e.nodes().count(), 2);
        assert_eq!(e.text(), "x");
        assert_eq!(
            e.get_child("body", "jabber:client").map(Element::text),
            Some("hi".to_owned())
        );
        assert!(e.get_child("body", "urn:other").is_none());
    }

    #[test]
    fn attribute_and_child_edits() {
        let mut e = Element::new("iq", "jabber:client");
        e.set_attr("id", "1");
        e.set_attr("id", "2");
        assert_eq!(e.attr("id"), Some("2"));
        assert_eq!(e.attrs().count(), 1);
        assert_eq!(e.remove_attr("id").as_deref(), Some("2"));
        assert_eq!(e.remove_attr("id"), None);
        e.append_text("x");
        e.append_child(Element::new("a", "n"));
        e.append_text("y");
        e.append_child(Element::new("a", "n")).set_attr("k", "v");
        e.append_text("");
        assert_eq!(e.text(), "xy");
        assert_eq!(e.children().count(), 2);
        if let Some(a) = e.get_child_mut("a", "n") {
            a.append_text("inner");
        }
        assert_eq!(
            e.get_child("a", "n").map(Element::text).as_deref(),
            Some("inner")
        );
        e.remove_children("a", "n");
        assert_eq!(e.children().count(), 0);
        assert_eq!(e.nodes().collect::<Vec<_>>(), [&Node::Text("xy".into())]);
        assert!(!e.has_child("a", "n"));
    }

    #[test]
    fn set_ns_recursive_only_touches_matching_namespaces() {
        let mut e = Element::builder("message", "jabber:client")
            .append(Element::builder("body", "jabber:client").build())
            .append(
                Element::builder("x", "urn:x")
                    .append(Element::new("deep", "jabber:client"))
                    .build(),
            )
            .build();
        e.set_ns_recursive("jabber:client", "jabber:component:accept");
        assert_eq!(e.ns(), "jabber:component:accept");
        assert!(e.has_child("body", "jabber:component:accept"));
        let x = e.get_child("x", "urn:x").expect("x keeps its namespace");
        assert!(x.has_child("deep", "jabber:component:accept"));
    }
}
