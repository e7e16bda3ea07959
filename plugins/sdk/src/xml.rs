//! A small XML element type for plugins: parse the stanza XML the host hands over, read
//! names, namespaces, attributes, children and text, and write stanzas back.
//!
//! Pure Rust (quick-xml), builds natively and for wasm32-wasip2. Namespaces are resolved on
//! parse (default and prefixed declarations); serialization declares `xmlns` wherever an
//! element's namespace differs from its parent's, so output is always namespace-correct.
//! Invariant: `parse(x.to_xml())` equals `x`. Tests: `mod tests` below.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// A node: an element or text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data (unescaped).
    Text(String),
}

/// An XML element with resolved namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Local name.
    pub name: String,
    /// Namespace URI (empty when none).
    pub ns: String,
    /// Attributes other than namespace declarations, in document order.
    pub attrs: Vec<(String, String)>,
    /// Children in document order.
    pub nodes: Vec<Node>,
}

impl Element {
    /// A new empty element.
    pub fn new(name: &str, ns: &str) -> Element {
        Element {
            name: name.to_owned(),
            ns: ns.to_owned(),
            attrs: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// With an attribute set (replacing any previous value).
    pub fn with_attr(mut self, name: &str, value: impl Into<String>) -> Element {
        self.set_attr(name, value);
        self
    }

    /// With a child appended.
    pub fn with_child(mut self, child: Element) -> Element {
        self.nodes.push(Node::Element(child));
        self
    }

    /// With text appended.
    pub fn with_text(mut self, text: impl Into<String>) -> Element {
        self.nodes.push(Node::Text(text.into()));
        self
    }

    /// Set an attribute.
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value,
            None => self.attrs.push((name.to_owned(), value)),
        }
    }

    /// An attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Child elements.
    pub fn children(&self) -> impl Iterator<Item = &Element> {
        self.nodes.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child with this name and namespace.
    pub fn child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children().find(|c| c.name == name && c.ns == ns)
    }

    /// Mutable first child with this name and namespace.
    pub fn child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.nodes.iter_mut().find_map(|n| match n {
            Node::Element(e) if e.name == name && e.ns == ns => Some(e),
            _ => None,
        })
    }

    /// Remove every child with this name and namespace.
    pub fn remove_children(&mut self, name: &str, ns: &str) {
        self.nodes
            .retain(|n| !matches!(n, Node::Element(e) if e.name == name && e.ns == ns));
    }

    /// Concatenated direct text.
    pub fn text(&self) -> String {
        self.nodes
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// Parse one element.
    ///
    /// # Errors
    /// When the text is not one well-formed element, or uses an undeclared prefix.
    pub fn parse(xml: &str) -> Result<Element, String> {
        let mut reader = Reader::from_str(xml);
        // (prefix, uri) declarations in scope; "" is the default namespace.
        let mut scopes: Vec<Vec<(String, String)>> = Vec::new();
        let mut stack: Vec<Element> = Vec::new();
        loop {
            let event = reader.read_event().map_err(|e| e.to_string())?;
            match event {
                Event::Start(start) => {
                    let el = open(&start, &mut scopes)?;
                    stack.push(el);
                }
                Event::Empty(start) => {
                    let el = open(&start, &mut scopes)?;
                    scopes.pop();
                    if let Some(done) = close(&mut stack, el) {
                        return finish(&mut reader, done);
                    }
                }
                Event::End(_) => {
                    scopes.pop();
                    let el = stack.pop().ok_or("unbalanced end tag")?;
                    if let Some(done) = close(&mut stack, el) {
                        return finish(&mut reader, done);
                    }
                }
                Event::Text(t) => push_text(&mut stack, &t.decode().map_err(|e| e.to_string())?),
                Event::CData(t) => push_text(&mut stack, &t.decode().map_err(|e| e.to_string())?),
                Event::GeneralRef(r) => {
                    let c = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                        Some(c) => c.to_string(),
                        None => match r.decode().map_err(|e| e.to_string())?.as_ref() {
                            "amp" => "&".into(),
                            "lt" => "<".into(),
                            "gt" => ">".into(),
                            "quot" => "\"".into(),
                            "apos" => "'".into(),
                            other => return Err(format!("unknown entity &{other};")),
                        },
                    };
                    push_text(&mut stack, &c);
                }
                Event::Eof => return Err("no complete element".into()),
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
    }

    /// Serialize, declaring every namespace needed.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, None);
        out
    }

    fn write(&self, out: &mut String, parent_ns: Option<&str>) {
        out.push('<');
        out.push_str(&self.name);
        if parent_ns != Some(self.ns.as_str()) {
            out.push_str(" xmlns='");
            escape_into(&self.ns, out);
            out.push('\'');
        }
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("='");
            escape_into(v, out);
            out.push('\'');
        }
        if self.nodes.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for n in &self.nodes {
            match n {
                Node::Element(e) => e.write(out, Some(&self.ns)),
                Node::Text(t) => escape_into(t, out),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

fn push_text(stack: &mut [Element], text: &str) {
    if let Some(top) = stack.last_mut() {
        match top.nodes.last_mut() {
            Some(Node::Text(t)) => t.push_str(text),
            _ => top.nodes.push(Node::Text(text.to_owned())),
        }
    }
}

fn close(stack: &mut [Element], el: Element) -> Option<Element> {
    match stack.last_mut() {
        Some(parent) => {
            parent.nodes.push(Node::Element(el));
            None
        }
        None => Some(el),
    }
}

fn finish(reader: &mut Reader<&[u8]>, el: Element) -> Result<Element, String> {
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Eof => return Ok(el),
            Event::Text(t) if t.decode().map_err(|e| e.to_string())?.trim().is_empty() => {}
            Event::Comment(_) | Event::PI(_) => {}
            _ => return Err("content after the element".into()),
        }
    }
}

fn resolve(scopes: &[Vec<(String, String)>], prefix: &str) -> Option<String> {
    if prefix == "xml" {
        return Some("http://www.w3.org/XML/1998/namespace".into());
    }
    scopes
        .iter()
        .rev()
        .flat_map(|s| s.iter().rev())
        .find(|(p, _)| p == prefix)
        .map(|(_, u)| u.clone())
        .or_else(|| prefix.is_empty().then(String::new))
}

fn open(
    start: &BytesStart<'_>,
    scopes: &mut Vec<Vec<(String, String)>>,
) -> Result<Element, String> {
    let mut decls = Vec::new();
    let mut attrs = Vec::new();
    for a in start.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a.unescape_value().map_err(|e| e.to_string())?.into_owned();
        if key == "xmlns" {
            decls.push((String::new(), value));
        } else if let Some(p) = key.strip_prefix("xmlns:") {
            decls.push((p.to_owned(), value));
        } else {
            attrs.push((key, value));
        }
    }
    scopes.push(decls);
    let qname = String::from_utf8_lossy(start.name().as_ref()).into_owned();
    let (prefix, local) = qname.split_once(':').unwrap_or(("", &qname));
    let ns = resolve(scopes, prefix).ok_or_else(|| format!("undeclared prefix {prefix:?}"))?;
    Ok(Element {
        name: local.to_owned(),
        ns,
        attrs,
        nodes: Vec::new(),
    })
}

/// Escape text or an attribute value (either quote style).
pub fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaces_text_and_entities() {
        let el = Element::parse(
            "<presence xmlns='jabber:client' from='r@c/n'><nick xmlns='http://jabber.org/protocol/nick'>A &amp; B &#x41;</nick><x:y xmlns:x='urn:x' a=\"&lt;\"/></presence>",
        )
        .expect("parse");
        assert_eq!(el.ns, "jabber:client");
        assert_eq!(el.attr("from"), Some("r@c/n"));
        let nick = el
            .child("nick", "http://jabber.org/protocol/nick")
            .expect("nick");
        assert_eq!(nick.text(), "A & B A");
        let y = el.child("y", "urn:x").expect("y");
        assert_eq!(y.attr("a"), Some("<"));
        assert_eq!(Element::parse(&el.to_xml()).expect("reparse"), el);
    }

    #[test]
    fn refuses_broken_input() {
        for bad in ["<a>", "<a></b>", "<p:a/>", "<a/><b/>", "text", ""] {
            assert!(Element::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn builds_stanzas() {
        let m = Element::new("message", "jabber:client")
            .with_attr("to", "a@b")
            .with_child(Element::new("body", "jabber:client").with_text("1 < 2"));
        assert_eq!(
            m.to_xml(),
            "<message xmlns='jabber:client' to='a@b'><body>1 &lt; 2</body></message>"
        );
    }
}
