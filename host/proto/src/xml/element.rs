//! The owned XML tree stanzas become at the parser boundary, and its serializer.
//!
//! Core (pure). Invariants: element names are local names with a resolved namespace URI;
//! attributes keep their qualified names (`xml:lang`, or a prefix whose `xmlns:p` declaration is
//! kept beside it); serialization declares `xmlns` only where an element's namespace differs
//! from its parent's, escapes every special character, and re-parses to an equal tree.
//! Tests: `mod tests` below and the round trips in splitter.rs.

use std::fmt;

/// A child node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data (unescaped).
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

/// Builds an `Element` fluently.
#[derive(Debug)]
pub struct ElementBuilder(Element);

impl ElementBuilder {
    /// Set an attribute.
    pub fn attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.set_attr(name, value);
        self
    }

    /// Append a child.
    pub fn append(mut self, child: Element) -> Self {
        self.0.append_child(child);
        self
    }

    /// Append text.
    pub fn text(mut self, text: &str) -> Self {
        self.0.append_text(text);
        self
    }

    /// Finish.
    pub fn build(self) -> Element {
        self.0
    }
}

impl Element {
    /// What the element holds in memory, approximately: its strings' lengths plus a fixed
    /// cost per element, attribute and node (the allocations and headers around them). What
    /// byte budgets for queued stanzas charge; it tracks a parsed stanza's real footprint far
    /// better than its wire size does.
    pub fn cost(&self) -> usize {
        const ELEMENT: usize = 96;
        const ATTR: usize = 48;
        const NODE: usize = 32;
        let own = ELEMENT
            + self.name.len()
            + self.ns.len()
            + self
                .attrs
                .iter()
                .map(|(k, v)| ATTR + k.len() + v.len())
                .sum::<usize>();
        own + self
            .nodes
            .iter()
            .map(|n| {
                NODE + match n {
                    Node::Element(e) => e.cost(),
                    Node::Text(t) => t.len(),
                }
            })
            .sum::<usize>()
    }

    /// An empty element.
    pub fn new(name: &str, ns: &str) -> Element {
        Element {
            name: name.to_owned(),
            ns: ns.to_owned(),
            attrs: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// A builder.
    pub fn builder(name: &str, ns: &str) -> ElementBuilder {
        ElementBuilder(Element::new(name, ns))
    }

    /// Local name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Namespace URI.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Name and namespace match.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// An attribute by qualified name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Set (or replace) an attribute.
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value,
            None => self.attrs.push((name.to_owned(), value)),
        }
    }

    /// Remove an attribute.
    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let i = self.attrs.iter().position(|(k, _)| k == name)?;
        Some(self.attrs.remove(i).1)
    }

    /// All attributes.
    pub fn attrs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Child elements.
    pub fn children(&self) -> impl Iterator<Item = &Element> {
        self.nodes.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// All child nodes.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter()
    }

    /// First child with this name and namespace.
    pub fn get_child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children().find(|c| c.is(name, ns))
    }

    /// First child with this name and namespace, mutably.
    pub fn get_child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.nodes.iter_mut().find_map(|n| match n {
            Node::Element(e) if e.is(name, ns) => Some(e),
            _ => None,
        })
    }

    /// Whether such a child exists.
    pub fn has_child(&self, name: &str, ns: &str) -> bool {
        self.get_child(name, ns).is_some()
    }

    /// Append a child element; returns it.
    pub fn append_child(&mut self, child: Element) -> &mut Element {
        self.nodes.push(Node::Element(child));
        match self.nodes.last_mut() {
            Some(Node::Element(e)) => e,
            // Invariant: we just pushed an element.
            _ => unreachable!("last node is the element just pushed"),
        }
    }

    /// Append text (merged with a preceding text node).
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

    /// Remove every child with this name and namespace.
    pub fn remove_children(&mut self, name: &str, ns: &str) {
        self.nodes
            .retain(|n| !matches!(n, Node::Element(e) if e.is(name, ns)));
    }

    /// Remove every child node.
    pub fn clear_children(&mut self) {
        self.nodes.clear();
    }

    /// The direct text children, concatenated.
    pub fn text(&self) -> String {
        self.nodes
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// Rewrite namespace `from` to `to` on this element and every descendant.
    pub fn set_ns_recursive(&mut self, from: &str, to: &str) {
        if self.ns == from {
            self.ns = to.to_owned();
        }
        for n in &mut self.nodes {
            if let Node::Element(e) = n {
                e.set_ns_recursive(from, to);
            }
        }
    }

    /// Serialize, declaring `xmlns` only where the namespace differs from `parent_ns`.
    pub fn write_to(&self, out: &mut Vec<u8>, parent_ns: &str) {
        out.push(b'<');
        out.extend_from_slice(self.name.as_bytes());
        if self.ns != parent_ns {
            out.extend_from_slice(b" xmlns='");
            escape_attr(&self.ns, out);
            out.push(b'\'');
        }
        for (k, v) in &self.attrs {
            out.push(b' ');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"='");
            escape_attr(v, out);
            out.push(b'\'');
        }
        if self.nodes.is_empty() {
            out.extend_from_slice(b"/>");
            return;
        }
        out.push(b'>');
        for n in &self.nodes {
            match n {
                Node::Element(e) => e.write_to(out, &self.ns),
                Node::Text(t) => escape_text(t, out),
            }
        }
        out.extend_from_slice(b"</");
        out.extend_from_slice(self.name.as_bytes());
        out.push(b'>');
    }

    /// Serialize into shareable bytes.
    pub fn to_bytes(&self, parent_ns: &str) -> bytes::Bytes {
        let mut out = Vec::new();
        self.write_to(&mut out, parent_ns);
        bytes::Bytes::from(out)
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.write_to(&mut out, "");
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// Escape character data.
pub fn escape_text(s: &str, out: &mut Vec<u8>) {
    for b in s.bytes() {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            _ => out.push(b),
        }
    }
}

/// Escape an attribute value (for either quote style).
pub fn escape_attr(s: &str, out: &mut Vec<u8>) {
    for b in s.bytes() {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'\'' => out.extend_from_slice(b"&apos;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\t' => out.extend_from_slice(b"&#9;"),
            b'\n' => out.extend_from_slice(b"&#10;"),
            b'\r' => out.extend_from_slice(b"&#13;"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_minimal_namespaces_and_escaping() {
        let mut msg = Element::builder("message", "jabber:client")
            .attr("to", "a&b'\"<")
            .build();
        msg.append_child(
            Element::builder("body", "jabber:client")
                .text("1 < 2 & 3 > 2")
                .build(),
        );
        msg.append_child(Element::new("x", "urn:example"));
        let mut out = Vec::new();
        msg.write_to(&mut out, "jabber:client");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "<message to='a&amp;b&apos;&quot;&lt;'><body>1 &lt; 2 &amp; 3 &gt; 2</body><x xmlns='urn:example'/></message>"
        );
        assert!(
            msg.to_string()
                .starts_with("<message xmlns='jabber:client'")
        );
    }

    #[test]
    fn attribute_and_child_helpers() {
        let mut e = Element::new("iq", "jabber:client");
        e.set_attr("id", "1");
        e.set_attr("id", "2");
        assert_eq!(e.attr("id"), Some("2"));
        assert_eq!(e.remove_attr("id").as_deref(), Some("2"));
        e.append_child(Element::new("a", "n"));
        e.append_text("x");
        e.append_text("y");
        e.append_child(Element::new("a", "n"));
        assert_eq!(e.text(), "xy");
        assert_eq!(e.children().count(), 2);
        e.remove_children("a", "n");
        assert_eq!(e.children().count(), 0);
        e.append_child(Element::new("a", "jabber:client"));
        e.set_ns_recursive("jabber:client", "jabber:component:accept");
        assert!(e.has_child("a", "jabber:component:accept"));
        assert_eq!(e.ns(), "jabber:component:accept");
    }
}
