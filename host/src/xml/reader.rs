//! Turns the bytes of one complete element (that the splitter has delimited) into an owned
//! `Element` with quick-xml, and reads stream headers and the XML declaration.
//!
//! Core (pure). Spec: XML 1.0 (5th ed.) §2.2 characters, §2.3 names, §2.11 line ends, §3.3.3
//! attribute-value normalization, §4.1 references; Namespaces in XML 1.0 §3–§6; RFC 6120 §11.1
//! restricted XML.
//! Invariants: quick-xml borrows the slice only inside this module and everything returned is
//! owned; every element and attribute name is a QName whose prefix is bound (`xml` is always
//! bound, `xmlns` never names an element or is declared); no two attributes share an expanded
//! name; text and attribute values contain only XML `Char`s; a prefixed attribute's declaration
//! is copied onto its element when it was inherited, so a stanza serializes on its own; more
//! than `max_attrs` attributes (prefix declarations and copied ones included, the default
//! `xmlns` not) is a policy violation. Every byte of the slice must belong to the one element.
//! Tests: `mod tests` below; stream-level cases in splitter.rs.

use std::borrow::Cow;
use std::collections::HashMap;

use quick_xml::escape::EscapeError;
use quick_xml::events::{BytesStart, Event as QEvent};

use super::element::Element;
use super::error::{XmlError, nwf};
use super::limits::Limits;
use super::ns;
use super::splitter::StreamHeader;

/// The namespace bindings declared on the stream header: (prefix, URI), "" = default namespace.
pub(super) type Decls = Vec<(String, String)>;

/// Parse the bytes of exactly one complete element, `base` being the bindings in scope around
/// it (the stream header's).
pub(super) fn parse_fragment(
    bytes: &[u8],
    base: &[(String, String)],
    limits: &Limits,
) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| nwf("invalid UTF-8"))?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut scope = Scope::new(base);
    let mut stack: Vec<Element> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| nwf(e.to_string()))?;
        let closed = match event {
            QEvent::Start(s) => {
                stack.push(open_element(&s, &mut scope, limits)?);
                None
            }
            QEvent::Empty(s) => {
                let el = open_element(&s, &mut scope, limits)?;
                scope.pop();
                Some(el)
            }
            QEvent::End(_) => {
                scope.pop();
                Some(
                    stack
                        .pop()
                        .ok_or_else(|| nwf("end tag without a start tag"))?,
                )
            }
            QEvent::Text(t) => {
                let s = t.xml10_content().map_err(|e| nwf(e.to_string()))?;
                if s.contains("]]>") {
                    return Err(nwf("']]>' in character data"));
                }
                append_text(&mut stack, &s)?;
                None
            }
            QEvent::CData(c) => {
                let s = c.xml10_content().map_err(|e| nwf(e.to_string()))?;
                append_text(&mut stack, &s)?;
                None
            }
            QEvent::GeneralRef(r) => {
                let name = r.decode().map_err(|e| nwf(e.to_string()))?;
                let c = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => c,
                        _ => return Err(nwf(format!("bad character reference &{name};"))),
                    }
                } else {
                    predefined_entity(&name)?
                };
                append_text(&mut stack, c.encode_utf8(&mut [0; 4]))?;
                None
            }
            QEvent::Comment(_) => return Err(XmlError::RestrictedXml("comment".into())),
            QEvent::PI(_) | QEvent::Decl(_) => {
                return Err(XmlError::RestrictedXml("processing instruction".into()));
            }
            QEvent::DocType(_) => return Err(XmlError::RestrictedXml("DTD".into())),
            QEvent::Eof => return Err(nwf("incomplete element")),
        };
        if let Some(el) = closed {
            match stack.last_mut() {
                Some(parent) => {
                    parent.append_child(el);
                }
                None if reader.buffer_position() == text.len() as u64 => return Ok(el),
                None => return Err(nwf("bytes after the element")),
            }
        }
    }
}

fn append_text(stack: &mut [Element], s: &str) -> Result<(), XmlError> {
    check_chars(s)?;
    match stack.last_mut() {
        Some(top) => {
            top.append_text(s);
            Ok(())
        }
        None => Err(nwf("character data outside the element")),
    }
}

/// One of the five predefined entities (XML 1.0 §4.6); anything else is restricted.
fn predefined_entity(name: &str) -> Result<char, XmlError> {
    match name {
        "amp" => Ok('&'),
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        _ if is_name(name) => Err(XmlError::RestrictedXml(format!(
            "reference to the undeclared entity &{name};"
        ))),
        _ => Err(nwf("malformed reference")),
    }
}

/// Namespace bindings in scope while reading one fragment: prefix → stack of URIs.
struct Scope {
    bound: HashMap<String, Vec<String>>,
    /// Prefixes bound by the open elements, innermost last; `frames` holds how many per element.
    pushed: Vec<String>,
    frames: Vec<usize>,
}

impl Scope {
    fn new(base: &[(String, String)]) -> Scope {
        let mut scope = Scope {
            bound: HashMap::new(),
            pushed: Vec::new(),
            frames: Vec::new(),
        };
        scope.push(base);
        scope
    }

    fn push(&mut self, decls: &[(String, String)]) {
        for (prefix, uri) in decls {
            self.bound
                .entry(prefix.clone())
                .or_default()
                .push(uri.clone());
            self.pushed.push(prefix.clone());
        }
        self.frames.push(decls.len());
    }

    fn pop(&mut self) {
        for _ in 0..self.frames.pop().unwrap_or(0) {
            if let Some(prefix) = self.pushed.pop()
                && let Some(uris) = self.bound.get_mut(&prefix)
            {
                uris.pop();
            }
        }
    }

    /// The URI bound to `prefix` ("" = the default namespace; unbound default = no namespace).
    fn resolve(&self, prefix: &str) -> Option<&str> {
        if prefix == "xml" {
            return Some(ns::XML);
        }
        match self.bound.get(prefix).and_then(|uris| uris.last()) {
            Some(uri) => Some(uri),
            None if prefix.is_empty() => Some(""),
            None => None,
        }
    }
}

/// A start tag, read: its qualified name, its namespace declarations, and every attribute in
/// document order (declarations included).
struct StartTag {
    qname: String,
    decls: Decls,
    attrs: Vec<(String, String)>,
}

fn read_start(s: &BytesStart<'_>, limits: &Limits) -> Result<StartTag, XmlError> {
    let name = s.name();
    let qname = std::str::from_utf8(name.as_ref()).map_err(|_| nwf("invalid UTF-8"))?;
    if !is_qname(qname) {
        return Err(nwf(format!("bad element name {qname:?}")));
    }
    let mut tag = StartTag {
        qname: qname.to_owned(),
        decls: Vec::new(),
        attrs: Vec::new(),
    };
    let mut counted = 0;
    for attr in s.attributes().with_checks(true) {
        let attr = attr.map_err(|e| nwf(e.to_string()))?;
        let key = std::str::from_utf8(attr.key.as_ref()).map_err(|_| nwf("invalid UTF-8"))?;
        // The default namespace declaration is not counted: the serializer adds or drops it
        // depending on the context an element is written in.
        if key != "xmlns" {
            counted += 1;
            if counted > limits.max_attrs {
                return Err(too_many_attrs(limits));
            }
        }
        if !is_qname(key) {
            return Err(nwf(format!("bad attribute name {key:?}")));
        }
        let value = attr_value(&attr.value)?;
        if key == "xmlns" {
            if value == ns::XML || value == ns::XMLNS {
                return Err(nwf("reserved namespace as the default"));
            }
            tag.decls.push((String::new(), value.clone()));
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            let ok = match prefix {
                "xml" => value == ns::XML,
                "xmlns" => false,
                _ => !value.is_empty() && value != ns::XML && value != ns::XMLNS,
            };
            if !ok {
                return Err(nwf(format!("bad declaration {key}='{value}'")));
            }
            tag.decls.push((prefix.to_owned(), value.clone()));
        }
        tag.attrs.push((key.to_owned(), value));
    }
    Ok(tag)
}

fn too_many_attrs(limits: &Limits) -> XmlError {
    XmlError::PolicyViolation(format!(
        "more than {} attributes on one element",
        limits.max_attrs
    ))
}

/// Normalize (XML 1.0 §3.3.3: literal tab, newline, CR and CRLF become one space each), then
/// resolve references with quick-xml.
fn attr_value(raw: &[u8]) -> Result<String, XmlError> {
    let raw = std::str::from_utf8(raw).map_err(|_| nwf("invalid UTF-8"))?;
    let normalized: Cow<'_, str> = if raw.contains(['\t', '\n', '\r']) {
        Cow::Owned(raw.replace("\r\n", " ").replace(['\t', '\n', '\r'], " "))
    } else {
        Cow::Borrowed(raw)
    };
    let value = quick_xml::escape::unescape(&normalized).map_err(|e| match e {
        EscapeError::UnrecognizedEntity(_, name) => predefined_entity(&name)
            .err()
            .unwrap_or_else(|| nwf("malformed reference")),
        other => nwf(other.to_string()),
    })?;
    check_chars(&value)?;
    Ok(value.into_owned())
}

/// Resolve a start tag into an element (pushing its bindings onto `scope`).
fn open_element(
    s: &BytesStart<'_>,
    scope: &mut Scope,
    limits: &Limits,
) -> Result<Element, XmlError> {
    let tag = read_start(s, limits)?;
    scope.push(&tag.decls);
    let (prefix, local) = split_qname(&tag.qname);
    if prefix == "xmlns" {
        return Err(nwf(format!("<{}> uses the xmlns prefix", tag.qname)));
    }
    let Some(uri) = scope.resolve(prefix) else {
        return Err(nwf(format!("unbound prefix on <{}>", tag.qname)));
    };
    let el_ns = uri.to_owned();
    let inherited = resolve_attrs(&tag, scope)?;
    let mut attrs: Vec<(String, String)> = tag
        .attrs
        .into_iter()
        .filter(|(k, _)| k != "xmlns" && k != "xmlns:xml")
        .collect();
    attrs.extend(inherited);
    if attrs.len() > limits.max_attrs {
        return Err(too_many_attrs(limits));
    }
    Ok(Element::from_parts(local.to_owned(), el_ns, attrs))
}

/// Check the prefixed attributes of `tag` (bound prefixes, distinct expanded names) and return
/// the declarations to copy onto the element: those of prefixes it uses but does not declare.
fn resolve_attrs(tag: &StartTag, scope: &Scope) -> Result<Vec<(String, String)>, XmlError> {
    let mut inherited: Vec<(String, String)> = Vec::new();
    let mut expanded: Vec<(&str, &str)> = Vec::new();
    for (key, _) in &tag.attrs {
        let Some((p, l)) = key.split_once(':') else {
            continue;
        };
        if p == "xmlns" {
            continue;
        }
        let Some(uri) = scope.resolve(p) else {
            return Err(nwf(format!("unbound prefix on attribute {key}")));
        };
        if expanded.contains(&(uri, l)) {
            return Err(nwf(format!("attribute {key} repeats an expanded name")));
        }
        expanded.push((uri, l));
        let decl = format!("xmlns:{p}");
        if p != "xml"
            && !tag.decls.iter().any(|(d, _)| d == p)
            && !inherited.iter().any(|(d, _)| *d == decl)
        {
            inherited.push((decl, uri.to_owned()));
        }
    }
    Ok(inherited)
}

fn split_qname(qname: &str) -> (&str, &str) {
    qname.split_once(':').unwrap_or(("", qname))
}

/// A stream header start tag, read.
#[derive(Debug)]
pub(super) struct HeaderTag {
    /// The header's attributes.
    pub(super) header: StreamHeader,
    /// The namespace bindings it declares, in scope for every stanza.
    pub(super) decls: Decls,
    /// Its qualified name (`stream:stream`), which the closing tag must repeat.
    pub(super) qname: String,
}

/// Read the stream header start tag `bytes` (`<stream:stream …>`).
pub(super) fn read_header(bytes: &[u8], limits: &Limits) -> Result<HeaderTag, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| nwf("invalid UTF-8"))?;
    let mut reader = quick_xml::Reader::from_str(text);
    let start = match reader.read_event() {
        Ok(QEvent::Start(s) | QEvent::Empty(s)) => s,
        Ok(_) => return Err(nwf("expected a stream header")),
        Err(e) => return Err(nwf(e.to_string())),
    };
    let tag = read_start(&start, limits)?;
    let scope = Scope::new(&tag.decls);
    let (prefix, local) = split_qname(&tag.qname);
    match scope.resolve(prefix) {
        None => return Err(nwf(format!("unbound prefix on <{}>", tag.qname))),
        Some(uri) if uri != ns::STREAMS => {
            return Err(XmlError::InvalidNamespace(format!(
                "<{}> is not in {}",
                tag.qname,
                ns::STREAMS
            )));
        }
        Some(_) if local != "stream" => {
            return Err(XmlError::BadFormat(format!(
                "<{}> is not a stream header",
                tag.qname
            )));
        }
        Some(_) => {}
    }
    let mut header = StreamHeader {
        default_ns: scope.resolve("").unwrap_or_default().to_owned(),
        ..StreamHeader::default()
    };
    resolve_attrs(&tag, &scope)?;
    for (key, value) in &tag.attrs {
        let field = match key.as_str() {
            "to" => &mut header.to,
            "from" => &mut header.from,
            "version" => &mut header.version,
            "xml:lang" => &mut header.lang,
            "id" => &mut header.id,
            _ => continue,
        };
        *field = Some(value.clone());
    }
    header.attrs = tag.attrs;
    Ok(HeaderTag {
        header,
        decls: tag.decls,
        qname: tag.qname,
    })
}

/// Check the XML declaration `bytes` (`<?xml version='1.0' …?>`): version 1.x, UTF-8 if an
/// encoding is named (RFC 6120 §11.6).
pub(super) fn check_declaration(bytes: &[u8]) -> Result<(), XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| nwf("invalid UTF-8"))?;
    let mut reader = quick_xml::Reader::from_str(text);
    let decl = match reader.read_event() {
        Ok(QEvent::Decl(d)) if reader.buffer_position() == text.len() as u64 => d,
        Ok(QEvent::PI(_)) => {
            return Err(XmlError::RestrictedXml("processing instruction".into()));
        }
        _ => return Err(nwf("malformed XML declaration")),
    };
    let version = decl.version().map_err(|e| nwf(e.to_string()))?;
    if !version.starts_with(b"1.") {
        return Err(XmlError::BadFormat("XML version other than 1.x".into()));
    }
    if let Some(encoding) = decl.encoding() {
        let encoding = encoding.map_err(|e| nwf(e.to_string()))?;
        if !encoding.eq_ignore_ascii_case(b"utf-8") {
            return Err(XmlError::BadFormat("encoding other than UTF-8".into()));
        }
    }
    Ok(())
}

/// XML 1.0 §2.2 `Char`.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn check_chars(s: &str) -> Result<(), XmlError> {
    if s.chars().all(is_xml_char) {
        Ok(())
    } else {
        Err(nwf("a character XML does not allow"))
    }
}

/// XML 1.0 §2.3 `NameStartChar`, without ':'.
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0 §2.3 `NameChar`, without ':'.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Namespaces in XML §3 `NCName`.
fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// Namespaces in XML §3 `QName`: `NCName` or `NCName:NCName`.
fn is_qname(s: &str) -> bool {
    match s.split_once(':') {
        Some((prefix, local)) => is_ncname(prefix) && is_ncname(local),
        None => is_ncname(s),
    }
}

/// XML 1.0 §2.3 `Name` (colons allowed anywhere): the syntax of an entity reference's name.
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == ':' || is_name_start(c))
        && chars.all(|c| c == ':' || is_name_char(c))
}

/// Whether `b` may start an element name (ASCII exactly; any non-ASCII byte is left to the
/// full check when the element is read).
pub(super) fn may_start_name(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Element, XmlError> {
        parse_fragment(s.as_bytes(), &[], &Limits::default())
    }

    fn condition(s: &str) -> &'static str {
        match parse(s) {
            Ok(el) => panic!("{s:?} should fail, got {el}"),
            Err(e) => e.condition(),
        }
    }

    #[test]
    fn names() {
        for ok in ["a", "_a", "a-b.c1", "p:a", "\u{e9}l\u{e9}ment", "a\u{B7}"] {
            assert!(is_qname(ok), "{ok}");
        }
        for bad in [
            "", "1a", "-a", ":a", "a:", "a:b:c", "a b", "a/", "a'", "\u{D7}",
        ] {
            assert!(!is_qname(bad), "{bad}");
        }
        assert!(is_name("a:b:c") && !is_name("#a"));
    }

    #[test]
    fn namespaces_resolve_through_prefixes_and_defaults() {
        let el = parse(
            "<p:a xmlns:p='urn:p' xmlns='urn:d'><b/><c xmlns='urn:c'><d/></c>\
             <p:e/><f xmlns=''/></p:a>",
        )
        .expect("valid");
        assert!(el.is("a", "urn:p"));
        let kids: Vec<_> = el.children().map(|c| (c.name(), c.ns())).collect();
        assert_eq!(
            kids,
            [("b", "urn:d"), ("c", "urn:c"), ("e", "urn:p"), ("f", "")]
        );
        assert!(
            el.get_child("c", "urn:c")
                .expect("c")
                .has_child("d", "urn:c")
        );
        // A declaration made on an element stays in its attributes (it may be in use).
        assert_eq!(el.attr("xmlns:p"), Some("urn:p"));
        assert_eq!(el.attr("xmlns"), None);
        assert_eq!(parse("<a/>").expect("no namespace").ns(), "");
    }

    #[test]
    fn inherited_declarations_are_copied_onto_prefixed_attributes() {
        let base = [("q".to_owned(), "urn:q".to_owned())];
        let el = parse_fragment(
            b"<a q:x='1' xml:lang='en'><b xmlns:r='urn:r' r:y='2' q:z='3'/></a>",
            &base,
            &Limits::default(),
        )
        .expect("valid");
        assert_eq!(
            el.attrs().collect::<Vec<_>>(),
            [("q:x", "1"), ("xml:lang", "en"), ("xmlns:q", "urn:q")]
        );
        let b = el.children().next().expect("b");
        assert_eq!(
            b.attrs().collect::<Vec<_>>(),
            [
                ("xmlns:r", "urn:r"),
                ("r:y", "2"),
                ("q:z", "3"),
                ("xmlns:q", "urn:q")
            ]
        );
    }

    #[test]
    fn text_references_cdata_and_line_ends() {
        let el = parse("<a>x &amp;&lt;&gt;&quot;&apos; &#65;&#x42; <![CDATA[<&>]]>\r\n\r</a>")
            .expect("valid");
        assert_eq!(el.text(), "x &<>\"' AB <&>\n\n");
        let el = parse("<a b='1\r\n2\t3&#10;4 &#x9;'/>").expect("valid");
        assert_eq!(el.attr("b"), Some("1 2 3\n4 \t"));
        let el = parse("<a>&#13;</a>").expect("valid");
        assert_eq!(el.text(), "\r");
    }

    #[test]
    fn restricted_and_malformed() {
        for (input, expected) in [
            ("<a>&foo;</a>", "restricted-xml"),
            ("<a b='&foo;'/>", "restricted-xml"),
            ("<a><!-- x --></a>", "restricted-xml"),
            ("<a><?pi?></a>", "restricted-xml"),
            ("<a>x & y</a>", "not-well-formed"),
            ("<a b='x & y'/>", "not-well-formed"),
            ("<a>&#0;</a>", "not-well-formed"),
            ("<a>&#1;</a>", "not-well-formed"),
            ("<a b='&#xFFFE;'/>", "not-well-formed"),
            ("<a>\u{FFFF}</a>", "not-well-formed"),
            ("<a>]]></a>", "not-well-formed"),
            ("<a></b>", "not-well-formed"),
            ("<a><b></a>", "not-well-formed"),
            ("<a b='1' b='2'/>", "not-well-formed"),
            (
                "<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>",
                "not-well-formed",
            ),
            ("<a xmlns:xml='urn:x'/>", "not-well-formed"),
            ("<a xmlns:xmlns='urn:x'/>", "not-well-formed"),
            (
                "<a xmlns:p='http://www.w3.org/XML/1998/namespace'/>",
                "not-well-formed",
            ),
            ("<a xmlns:p=''/>", "not-well-formed"),
            ("<xmlns:a/>", "not-well-formed"),
            ("<p:a/>", "not-well-formed"),
            ("<a p:b='1'/>", "not-well-formed"),
            ("<1a/>", "not-well-formed"),
            ("<a b=1/>", "not-well-formed"),
            ("<a/><b/>", "not-well-formed"),
            ("<a>", "not-well-formed"),
        ] {
            assert_eq!(condition(input), expected, "{input}");
        }
        assert!(
            parse("<a xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:lang='en'/>").is_ok()
        );
    }

    #[test]
    fn attribute_limit_counts_declarations_and_copied_ones() {
        let limits = Limits {
            max_attrs: 2,
            ..Limits::default()
        };
        let base = [("q".to_owned(), "urn:q".to_owned())];
        let ok = parse_fragment(b"<a x='1' y='2' xmlns='urn:a'/>", &base, &limits);
        assert!(
            ok.is_ok(),
            "the default namespace declaration is not counted"
        );
        for input in [
            &b"<a x='1' y='2' z='3'/>"[..],
            b"<a q:x='1' y='2'/>",
            b"<a x='1' xmlns:p='u' p:y='2'/>",
        ] {
            let e = parse_fragment(input, &base, &limits).expect_err("too many");
            assert_eq!(e.condition(), "policy-violation");
        }
    }

    #[test]
    fn headers_and_declarations() {
        let HeaderTag {
            header: h,
            decls,
            qname,
        } = read_header(
            b"<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:server' \
              to='a' from='b' version='1.0' id='i' xml:lang='de' x='y'>",
            &Limits::default(),
        )
        .expect("valid");
        assert_eq!(h.default_ns, ns::SERVER);
        assert_eq!(
            (
                h.to.as_deref(),
                h.from.as_deref(),
                h.version.as_deref(),
                h.id.as_deref(),
                h.lang.as_deref()
            ),
            (Some("a"), Some("b"), Some("1.0"), Some("i"), Some("de"))
        );
        assert_eq!(h.attrs.len(), 8);
        assert_eq!(decls.len(), 2);
        assert_eq!(qname, "s:stream");
        for (input, expected) in [
            (
                &b"<stream:stream xmlns:stream='urn:wrong'>"[..],
                "invalid-namespace",
            ),
            (b"<stream xmlns='jabber:client'>", "invalid-namespace"),
            (
                b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'>",
                "bad-format",
            ),
            (b"<stream:stream>", "not-well-formed"),
            (
                b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' p:x='1'>",
                "not-well-formed",
            ),
            (
                b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='&x;'>",
                "restricted-xml",
            ),
        ] {
            let e = read_header(input, &Limits::default()).expect_err("bad header");
            assert_eq!(
                e.condition(),
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        assert!(check_declaration(b"<?xml version='1.0'?>").is_ok());
        assert!(check_declaration(b"<?xml version=\"1.0\" encoding=\"utf-8\"?>").is_ok());
        let cases = [
            (
                &b"<?xml version='1.0' encoding='ISO-8859-1'?>"[..],
                "bad-format",
            ),
            (b"<?xml version='2.0'?>", "bad-format"),
            (b"<?xml encoding='UTF-8'?>", "not-well-formed"),
        ];
        for (input, expected) in cases {
            let e = check_declaration(input).expect_err("bad declaration");
            assert_eq!(
                e.condition(),
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
