//! Serialization of `Element` trees, and the escaping helpers other writers (stream headers,
//! WebSocket `<open/>`) share.
//!
//! Core (pure). Spec: XML 1.0 §2.4 (character data), §3.3.3 (attribute-value normalization),
//! §2.11 (line ends); Namespaces in XML 1.0 §6.2 (default namespace scoping).
//! Invariants: output is UTF-8 XML that reader.rs parses back to an equal tree; `xmlns` is
//! written only where an element's namespace differs from the default namespace in scope (an
//! element in the XML namespace, which cannot be a default, is written as `xml:name`); `& < >`
//! are escaped in
//! text and `& < > " '` in attributes, as are the whitespace characters a parser would
//! normalize (`\r` in text; tab, newline and `\r` in attributes); characters XML cannot carry
//! (C0 controls, U+FFFE, U+FFFF), which only the API and never the parser can put in a tree,
//! are written as U+FFFD. Attribute values are single-quoted.
//! Tests: `mod tests` below (including random trees); round trips of parsed fixtures in
//! splitter/tests.rs; fuzz/.

use std::fmt;

use super::element::{Element, Node};
use super::ns;

impl Element {
    /// Serialize into `out`. `parent_ns` is the default namespace in scope where the element is
    /// written (the stream's content namespace for a stanza, "" for a standalone document);
    /// `xmlns` is declared only when the element's namespace differs from it.
    pub fn write_to(&self, out: &mut Vec<u8>, parent_ns: &str) {
        // The XML namespace cannot be a default namespace; its `xml` prefix is always bound.
        let (prefix, scope_ns): (&[u8], &str) = if self.ns() == ns::XML {
            (b"xml:", parent_ns)
        } else {
            (b"", self.ns())
        };
        out.push(b'<');
        out.extend_from_slice(prefix);
        out.extend_from_slice(self.name().as_bytes());
        if self.ns() != parent_ns && prefix.is_empty() {
            out.extend_from_slice(b" xmlns='");
            escape_attr(self.ns(), out);
            out.push(b'\'');
        }
        for (k, v) in self.attrs() {
            if k == "xmlns" {
                continue;
            }
            out.push(b' ');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"='");
            escape_attr(v, out);
            out.push(b'\'');
        }
        let mut nodes = self.nodes().peekable();
        if nodes.peek().is_none() {
            out.extend_from_slice(b"/>");
            return;
        }
        out.push(b'>');
        for node in nodes {
            match node {
                Node::Element(e) => e.write_to(out, scope_ns),
                Node::Text(t) => escape_text(t, out),
            }
        }
        out.extend_from_slice(b"</");
        out.extend_from_slice(prefix);
        out.extend_from_slice(self.name().as_bytes());
        out.push(b'>');
    }

    /// Serialize into shareable bytes (one allocation, reused across a fan-out).
    pub fn to_bytes(&self, parent_ns: &str) -> bytes::Bytes {
        let mut out = Vec::new();
        self.write_to(&mut out, parent_ns);
        bytes::Bytes::from(out)
    }
}

impl fmt::Display for Element {
    /// The element as a standalone document: the root always declares its namespace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.write_to(&mut out, "");
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// Escape character data: `& < >` and `\r` (which a parser would turn into `\n`).
pub fn escape_text(s: &str, out: &mut Vec<u8>) {
    escape(s, out, false);
}

/// Escape an attribute value for either quote style: `& < > " '`, and tab, newline and `\r`
/// (which a parser would turn into spaces).
pub fn escape_attr(s: &str, out: &mut Vec<u8>) {
    escape(s, out, true);
}

const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

fn escape(s: &str, out: &mut Vec<u8>, attr: bool) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len());
    // Copy unescaped runs in one go; `run` is the start of the pending run.
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (replacement, len): (&[u8], usize) = match b {
            b'&' => (b"&amp;", 1),
            b'<' => (b"&lt;", 1),
            b'>' => (b"&gt;", 1),
            b'\r' => (b"&#13;", 1),
            b'"' if attr => (b"&quot;", 1),
            b'\'' if attr => (b"&apos;", 1),
            b'\t' if attr => (b"&#9;", 1),
            b'\n' if attr => (b"&#10;", 1),
            b'\t' | b'\n' => {
                i += 1;
                continue;
            }
            0..=0x1f => (REPLACEMENT, 1),
            // U+FFFE and U+FFFF are EF BF BE / EF BF BF in UTF-8.
            0xEF if bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) =>
            {
                (REPLACEMENT, 3)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[run..i]);
        out.extend_from_slice(replacement);
        i += len;
        run = i;
    }
    out.extend_from_slice(&bytes[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(f: fn(&str, &mut Vec<u8>), s: &str) -> String {
        let mut out = Vec::new();
        f(s, &mut out);
        String::from_utf8(out).expect("escaping keeps UTF-8")
    }

    #[test]
    fn escaping() {
        assert_eq!(
            esc(escape_text, "a<b>&c\"'\t\n\r\u{e9}"),
            "a&lt;b&gt;&amp;c\"'\t\n&#13;\u{e9}"
        );
        assert_eq!(
            esc(escape_attr, "a<b>&c\"'\t\n\r\u{e9}"),
            "a&lt;b&gt;&amp;c&quot;&apos;&#9;&#10;&#13;\u{e9}"
        );
        assert_eq!(
            esc(escape_text, "x\u{0}y\u{FFFE}\u{FFFF}\u{FFFD}\u{EFFF}z"),
            "x\u{FFFD}y\u{FFFD}\u{FFFD}\u{FFFD}\u{EFFF}z"
        );
        assert_eq!(esc(escape_attr, ""), "");
    }

    #[test]
    fn namespaces_are_declared_only_where_they_change() {
        let msg = Element::builder("message", "jabber:client")
            .attr("to", "a&b'\"<")
            .attr("xml:lang", "en")
            .append(
                Element::builder("body", "jabber:client")
                    .text("1 < 2 & 3 > 2")
                    .build(),
            )
            .append(
                Element::builder("x", "urn:example")
                    .append(Element::new("y", "urn:example"))
                    .append(Element::new("z", ""))
                    .build(),
            )
            .build();
        let mut out = Vec::new();
        msg.write_to(&mut out, "jabber:client");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "<message to='a&amp;b&apos;&quot;&lt;' xml:lang='en'><body>1 &lt; 2 &amp; 3 &gt; 2</body>\
             <x xmlns='urn:example'><y/><z xmlns=''/></x></message>"
        );
        assert!(
            msg.to_string()
                .starts_with("<message xmlns='jabber:client' to=")
        );
        assert_eq!(msg.to_bytes("jabber:client"), out);
        assert_eq!(Element::new("a", "").to_string(), "<a/>");
    }

    /// xorshift64*: a small deterministic generator, enough to vary trees.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[(self.next() % from.len() as u64) as usize]
        }
    }

    const PIECES: &[&str] = &[
        "x",
        "<",
        ">",
        "&",
        "'",
        "\"",
        "\r",
        "\n",
        "\r\n",
        "\t",
        " ",
        "\u{e9}",
        "\u{1F600}",
        "]]>",
        "&amp;",
        "\u{0}",
        "\u{FFFE}",
    ];

    fn random_text(rng: &mut Rng) -> String {
        (0..rng.next() % 6).map(|_| rng.pick(PIECES)).collect()
    }

    fn random_element(rng: &mut Rng, depth: u32) -> Element {
        let name = rng.pick(&["a", "iq", "b-c", "\u{e9}t\u{e9}", "_x.1"]);
        let ns = rng.pick(&["", "jabber:client", "urn:a", "urn:a&'<\"\t"]);
        let mut el = Element::new(name, ns);
        for _ in 0..rng.next() % 4 {
            match rng.next() % 4 {
                0 => el.set_attr("xml:lang", random_text(rng)),
                1 => {
                    el.set_attr("xmlns:p", "urn:p");
                    el.set_attr("p:x", random_text(rng));
                }
                _ => el.set_attr(rng.pick(&["a", "b", "to"]), random_text(rng)),
            }
        }
        for _ in 0..rng.next() % 4 {
            if depth < 4 && rng.next().is_multiple_of(2) {
                el.append_child(random_element(rng, depth + 1));
            } else {
                el.append_text(&random_text(rng));
            }
        }
        el
    }

    /// Replace what the writer replaces, so the parsed tree can be compared.
    fn sanitized(el: &Element) -> Element {
        let clean = |s: &str| s.replace(['\u{0}', '\u{FFFE}'], "\u{FFFD}");
        let mut out = Element::new(el.name(), el.ns());
        for (k, v) in el.attrs() {
            out.set_attr(k, clean(v));
        }
        for node in el.nodes() {
            match node {
                Node::Element(e) => {
                    out.append_child(sanitized(e));
                }
                Node::Text(t) => out.append_text(&clean(t)),
            }
        }
        out
    }

    #[test]
    fn random_trees_round_trip() {
        let limits = super::super::Limits::default();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..2000 {
            let el = random_element(&mut rng, 0);
            let bytes = el.to_bytes("");
            let again = super::super::parse_element(&bytes, &limits);
            assert_eq!(
                again,
                Ok(sanitized(&el)),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }

    #[test]
    fn elements_in_the_xml_namespace_use_the_xml_prefix() {
        let e = Element::builder("a", "urn:a")
            .append(
                Element::builder("x", ns::XML)
                    .append(Element::new("b", "urn:a"))
                    .build(),
            )
            .build();
        assert_eq!(e.to_string(), "<a xmlns='urn:a'><xml:x><b/></xml:x></a>");
        let again = super::super::parse_element(e.to_string().as_bytes(), &Default::default());
        assert_eq!(again, Ok(e));
    }

    #[test]
    fn an_xmlns_attribute_set_through_the_api_is_not_written_twice() {
        let mut e = Element::new("a", "urn:a");
        e.set_attr("xmlns", "urn:other");
        assert_eq!(e.to_string(), "<a xmlns='urn:a'/>");
    }
}
