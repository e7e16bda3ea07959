//! The XMPP stream splitter: finds the stream header, each top-level element (stanza) and the
//! stream close in a byte stream that arrives in arbitrary pieces, and turns each complete
//! stanza into an owned `Element`.
//!
//! Core (sans-IO). A resumable lexical scanner keeps its position and state across `feed`
//! calls, so every byte is scanned once whatever the chunking (O(n), even one byte at a time);
//! only a complete stanza is handed to quick-xml, once. Invariants: buffered bytes of an
//! unfinished stanza never exceed `max_stanza_bytes` (plus one read); once everything received
//! is scanned and no stanza or tag is open, the buffer is given back (an idle stream holds none); comments, processing
//! instructions (other than the leading XML declaration), DTDs and unknown entities are
//! `restricted-xml` (RFC 6120 §11.1); anything else malformed is `not-well-formed`.
//! Tests: `mod tests` below (every fixture cut at every byte); fuzz/ smoke run.

use quick_xml::events::{BytesStart, Event as QEvent};

use super::element::Element;
use super::limits::Limits;
use super::ns;

/// What the splitter found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The peer's `<stream:stream>` header.
    StreamOpen(StreamHeader),
    /// A complete top-level element.
    Stanza(Element),
    /// `</stream:stream>`.
    StreamClose,
}

/// The attributes of a stream header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamHeader {
    /// `to`.
    pub to: Option<String>,
    /// `from`.
    pub from: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `xml:lang`.
    pub lang: Option<String>,
    /// `id`.
    pub id: Option<String>,
    /// The default namespace (`jabber:client`, `jabber:component:accept`, …).
    pub default_ns: String,
    /// Every attribute as written.
    pub attrs: Vec<(String, String)>,
}

/// A stream-level XML error; `condition()` is its RFC 6120 §4.9.3 name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Malformed XML.
    #[error("not well-formed: {0}")]
    NotWellFormed(String),
    /// XML features XMPP forbids.
    #[error("restricted XML: {0}")]
    RestrictedXml(String),
    /// A limit was exceeded.
    #[error("limit exceeded: {0}")]
    PolicyViolation(String),
    /// Wrong stream namespace.
    #[error("invalid namespace: {0}")]
    InvalidNamespace(String),
    /// Well-formed but not an XMPP stream.
    #[error("bad format: {0}")]
    BadFormat(String),
}

impl XmlError {
    /// The stream error condition.
    pub fn condition(&self) -> &'static str {
        match self {
            XmlError::NotWellFormed(_) => "not-well-formed",
            XmlError::RestrictedXml(_) => "restricted-xml",
            XmlError::PolicyViolation(_) => "policy-violation",
            XmlError::InvalidNamespace(_) => "invalid-namespace",
            XmlError::BadFormat(_) => "bad-format",
        }
    }
}

fn nwf(msg: impl Into<String>) -> XmlError {
    XmlError::NotWellFormed(msg.into())
}

/// Lexical state between bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Character data.
    Text,
    /// Just read `<`.
    Lt,
    /// Inside a start or end tag; `quote` is the open quote, if any.
    Tag { end: bool, quote: u8, last: u8 },
    /// `<!`: deciding between CDATA (allowed) and everything else (restricted).
    Bang,
    /// Inside `<![CDATA[`; counts trailing `]`.
    CData { brackets: u8 },
    /// Inside the leading `<?xml …?>`.
    Decl { question: bool },
}

/// Splits an XMPP stream into events.
#[derive(Debug)]
pub struct StreamParser {
    limits: Limits,
    buf: Vec<u8>,
    /// Next byte to scan.
    pos: usize,
    /// Bytes at the front of `buf` already turned into events; dropped at the next `feed`, so
    /// that many stanzas in one read cost one move of the rest, not one per stanza.
    consumed: usize,
    lex: Lex,
    /// Start of the tag being scanned.
    tag_start: usize,
    /// Start of the stanza being scanned (depth 1 element).
    stanza_start: Option<usize>,
    /// Element depth: 0 before the header, 1 inside the stream.
    depth: usize,
    /// Hashes of the qualified names of the elements open inside the current stanza, so that
    /// an end tag that does not match its start tag is caught here (`<a><b></a>`), not left
    /// waiting for more input.
    open: Vec<u64>,
    /// Header seen.
    opened: bool,
    /// Nothing but whitespace seen yet (a declaration is allowed).
    at_start: bool,
    /// Stream closed: further bytes are ignored.
    closed: bool,
    /// Namespace declarations of the stream header: (prefix, uri), "" = default.
    scope: Vec<(String, String)>,
    /// The header's qualified name, which the close tag must repeat.
    header_qname: String,
    /// An error, once found, is sticky.
    failed: Option<XmlError>,
}

impl StreamParser {
    /// A parser expecting a stream header.
    pub fn new(limits: Limits) -> Self {
        StreamParser {
            limits,
            buf: Vec::new(),
            pos: 0,
            consumed: 0,
            lex: Lex::Text,
            tag_start: 0,
            stanza_start: None,
            depth: 0,
            open: Vec::new(),
            opened: false,
            at_start: true,
            closed: false,
            scope: Vec::new(),
            header_qname: String::new(),
            failed: None,
        }
    }

    /// Stream restart after STARTTLS: expect a new header and drop anything buffered (bytes sent
    /// in the clear before the handshake must not be read as encrypted-stream data).
    pub fn reset(&mut self) {
        let limits = self.limits.clone();
        *self = StreamParser::new(limits);
    }

    /// Stream restart after SASL success: expect a new header, keep bytes already received.
    pub fn restart(&mut self) {
        let limits = self.limits.clone();
        let rest = self.buf.split_off(self.pos.min(self.buf.len()));
        *self = StreamParser::new(limits);
        self.buf = rest;
    }

    /// Bytes held and not yet turned into events.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.consumed
    }

    /// Append received bytes.
    ///
    /// # Errors
    /// When the unfinished stanza or header grows past its limit.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), XmlError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.closed {
            return Ok(());
        }
        if self.consumed > 0 {
            let n = self.consumed;
            self.buf.drain(..n);
            self.pos -= n;
            self.tag_start = self.tag_start.saturating_sub(n);
            if let Some(s) = &mut self.stanza_start {
                *s -= n;
            }
            self.consumed = 0;
        }
        self.buf.extend_from_slice(bytes);
        let start = self.stanza_start.unwrap_or(self.tag_start.min(self.pos));
        let held = self.buf.len().saturating_sub(start);
        let limit = if self.opened {
            self.limits.max_stanza_bytes
        } else {
            self.limits.max_header_bytes
        };
        if held > limit + bytes.len() {
            return Err(self.fail(XmlError::PolicyViolation(format!(
                "more than {limit} bytes in one element"
            ))));
        }
        Ok(())
    }

    fn fail(&mut self, e: XmlError) -> XmlError {
        self.failed = Some(e.clone());
        self.buf = Vec::new();
        e
    }

    /// The next complete event, or `None` when more bytes are needed.
    ///
    /// # Errors
    /// The first protocol or XML error; the parser stays failed afterwards.
    pub fn next_event(&mut self) -> Result<Option<Event>, XmlError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.closed {
            return Ok(None);
        }
        match self.scan() {
            Ok(None) => {
                self.release_if_idle();
                Ok(None)
            }
            Ok(ev) => Ok(ev),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Everything received has been scanned and nothing of it is still needed (no stanza or
    /// tag is open): give the buffer back, so an idle stream holds no bytes between reads.
    fn release_if_idle(&mut self) {
        if self.pos == self.buf.len()
            && self.stanza_start.is_none()
            && self.lex == Lex::Text
            && self.buf.capacity() > 0
        {
            self.buf = Vec::new();
            self.pos = 0;
            self.consumed = 0;
            self.tag_start = 0;
        }
    }

    /// Bytes of memory the parser holds for buffered input (its capacity), for accounting.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    fn scan(&mut self) -> Result<Option<Event>, XmlError> {
        while self.pos < self.buf.len() {
            let b = self.buf[self.pos];
            if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') {
                return Err(nwf("control character"));
            }
            let i = self.pos;
            self.pos += 1;
            match self.lex {
                Lex::Text => {
                    if b == b'<' {
                        self.tag_start = i;
                        self.lex = Lex::Lt;
                    } else if self.depth <= 1 && !b.is_ascii_whitespace() {
                        return Err(nwf("character data outside any stanza"));
                    } else if self.depth == 0 && !b.is_ascii_whitespace() {
                        self.at_start = false;
                    }
                }
                Lex::Lt => match b {
                    b'/' => {
                        self.lex = Lex::Tag {
                            end: true,
                            quote: 0,
                            last: b'/',
                        }
                    }
                    b'?' => {
                        if !(self.at_start && self.depth == 0 && !self.opened) {
                            return Err(XmlError::RestrictedXml("processing instruction".into()));
                        }
                        self.lex = Lex::Decl { question: false };
                    }
                    b'!' => self.lex = Lex::Bang,
                    _ => {
                        if self.depth == 1 && self.stanza_start.is_none() {
                            self.stanza_start = Some(self.tag_start);
                        }
                        self.lex = Lex::Tag {
                            end: false,
                            quote: 0,
                            last: b,
                        };
                    }
                },
                Lex::Decl { question } => {
                    if question && b == b'>' {
                        let decl = &self.buf[self.tag_start..self.pos];
                        if !decl.starts_with(b"<?xml ") && !decl.starts_with(b"<?xml?") {
                            return Err(XmlError::RestrictedXml("processing instruction".into()));
                        }
                        self.at_start = false;
                        self.lex = Lex::Text;
                    } else {
                        self.lex = Lex::Decl {
                            question: b == b'?',
                        };
                    }
                    if self.pos - self.tag_start > self.limits.max_header_bytes {
                        return Err(XmlError::PolicyViolation("XML declaration too long".into()));
                    }
                }
                Lex::Bang => {
                    const CDATA: &[u8] = b"<![CDATA[";
                    let seen = &self.buf[self.tag_start..self.pos];
                    if seen.len() <= CDATA.len() && CDATA.starts_with(seen) {
                        if seen.len() == CDATA.len() {
                            if self.depth < 2 {
                                return Err(nwf("CDATA outside any stanza"));
                            }
                            self.lex = Lex::CData { brackets: 0 };
                        }
                    } else if seen.starts_with(b"<!-") {
                        return Err(XmlError::RestrictedXml("comment".into()));
                    } else {
                        return Err(XmlError::RestrictedXml("DTD or declaration".into()));
                    }
                }
                Lex::CData { brackets } => {
                    self.lex = match b {
                        b']' => Lex::CData {
                            brackets: (brackets + 1).min(2),
                        },
                        b'>' if brackets == 2 => Lex::Text,
                        _ => Lex::CData { brackets: 0 },
                    };
                }
                Lex::Tag { end, quote, last } => {
                    if quote != 0 {
                        if b == quote {
                            self.lex = Lex::Tag {
                                end,
                                quote: 0,
                                last: b,
                            };
                        } else if b == b'<' {
                            return Err(nwf("'<' in an attribute value"));
                        }
                        continue;
                    }
                    match b {
                        b'"' | b'\'' if !end => {
                            self.lex = Lex::Tag {
                                end,
                                quote: b,
                                last: b,
                            }
                        }
                        b'<' => return Err(nwf("'<' inside a tag")),
                        b'>' => {
                            self.lex = Lex::Text;
                            if let Some(ev) = self.tag_done(end, last == b'/')? {
                                return Ok(Some(ev));
                            }
                        }
                        _ => {
                            let last = if b.is_ascii_whitespace() { last } else { b };
                            self.lex = Lex::Tag { end, quote, last };
                        }
                    }
                }
            }
            self.check_size()?;
        }
        self.check_size()?;
        Ok(None)
    }

    fn check_size(&self) -> Result<(), XmlError> {
        if let Some(start) = self.stanza_start
            && self.pos - start > self.limits.max_stanza_bytes
        {
            return Err(XmlError::PolicyViolation(format!(
                "stanza larger than {} bytes",
                self.limits.max_stanza_bytes
            )));
        }
        if !self.opened && self.pos.saturating_sub(self.tag_start) > self.limits.max_header_bytes {
            return Err(XmlError::PolicyViolation("stream header too large".into()));
        }
        Ok(())
    }

    /// A tag ended at `self.pos`.
    fn tag_done(&mut self, end: bool, self_closing: bool) -> Result<Option<Event>, XmlError> {
        if end {
            match self.depth {
                0 => return Err(nwf("end tag before the stream header")),
                1 => {
                    let tag = &self.buf[self.tag_start + 2..self.pos - 1];
                    let name = std::str::from_utf8(tag)
                        .map_err(|_| nwf("invalid UTF-8"))?
                        .trim();
                    if name != self.header_qname {
                        return Err(nwf(format!("</{name}> does not close the stream")));
                    }
                    self.closed = true;
                    self.buf.clear();
                    self.pos = 0;
                    self.consumed = 0;
                    self.tag_start = 0;
                    return Ok(Some(Event::StreamClose));
                }
                _ => {
                    let tag = &self.buf[self.tag_start + 2..self.pos - 1];
                    if self.open.pop() != Some(name_hash(tag.trim_ascii())) {
                        let name = String::from_utf8_lossy(tag.trim_ascii()).into_owned();
                        return Err(nwf(format!("</{name}> does not match its start tag")));
                    }
                    self.depth -= 1;
                    if self.depth == 1 {
                        return self.stanza_done().map(Some);
                    }
                    return Ok(None);
                }
            }
        }
        if self.depth == 0 {
            return self.header_done(self_closing).map(Some);
        }
        if self_closing {
            if self.depth == 1 {
                return self.stanza_done().map(Some);
            }
            return Ok(None);
        }
        let tag = &self.buf[self.tag_start + 1..self.pos - 1];
        let name_end = tag
            .iter()
            .position(|b| b.is_ascii_whitespace() || *b == b'/')
            .unwrap_or(tag.len());
        self.open.push(name_hash(&tag[..name_end]));
        self.depth += 1;
        if self.depth - 1 > self.limits.max_depth {
            return Err(XmlError::PolicyViolation(format!(
                "elements nested deeper than {}",
                self.limits.max_depth
            )));
        }
        Ok(None)
    }

    fn header_done(&mut self, self_closing: bool) -> Result<Event, XmlError> {
        let tag = self.buf[self.tag_start..self.pos].to_vec();
        let text = std::str::from_utf8(&tag).map_err(|_| nwf("invalid UTF-8"))?;
        let mut reader = quick_xml::Reader::from_str(text);
        let start = match reader.read_event() {
            Ok(QEvent::Start(s) | QEvent::Empty(s)) => s,
            Ok(_) => return Err(nwf("expected a stream header")),
            Err(e) => return Err(nwf(e.to_string())),
        };
        let qname = std::str::from_utf8(start.name().as_ref())
            .map_err(|_| nwf("invalid UTF-8"))?
            .to_owned();
        let mut header = StreamHeader::default();
        let mut scope = Vec::new();
        for (key, value) in read_attrs(&start)? {
            if key == "xmlns" {
                scope.push((String::new(), value.clone()));
            } else if let Some(p) = key.strip_prefix("xmlns:") {
                scope.push((p.to_owned(), value.clone()));
            }
            match key.as_str() {
                "to" => header.to = Some(value.clone()),
                "from" => header.from = Some(value.clone()),
                "version" => header.version = Some(value.clone()),
                "xml:lang" => header.lang = Some(value.clone()),
                "id" => header.id = Some(value.clone()),
                _ => {}
            }
            header.attrs.push((key, value));
        }
        let (prefix, local) = match qname.split_once(':') {
            Some((p, l)) => (p, l),
            None => ("", qname.as_str()),
        };
        let stream_ns = scope
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_str());
        if local != "stream" {
            return Err(XmlError::BadFormat(format!(
                "<{qname}> is not a stream header"
            )));
        }
        if stream_ns != Some(ns::STREAMS) {
            return Err(XmlError::InvalidNamespace(
                "the stream element is not in the streams namespace".into(),
            ));
        }
        header.default_ns = scope
            .iter()
            .rev()
            .find(|(p, _)| p.is_empty())
            .map(|(_, u)| u.clone())
            .unwrap_or_default();
        self.scope = scope;
        self.header_qname = qname;
        self.opened = true;
        self.at_start = false;
        self.consumed = self.pos;
        self.tag_start = self.pos;
        if self_closing {
            self.closed = true;
        } else {
            self.depth = 1;
        }
        Ok(Event::StreamOpen(header))
    }

    fn stanza_done(&mut self) -> Result<Event, XmlError> {
        let start = self.stanza_start.take().unwrap_or(0);
        let el = parse_fragment(&self.buf[start..self.pos], &self.scope, &self.limits)?;
        self.consumed = self.pos;
        self.tag_start = self.pos;
        Ok(Event::Stanza(el))
    }
}

fn entity_error(msg: &str) -> XmlError {
    if msg.contains("nrecognized") || msg.contains("entity") {
        XmlError::RestrictedXml(msg.to_owned())
    } else {
        nwf(msg)
    }
}

/// Parse one standalone element (e.g. an RFC 7395 WebSocket frame).
///
/// # Errors
/// When the bytes are not exactly one well-formed, allowed element within the limits.
pub fn parse_element(bytes: &[u8], limits: &Limits) -> Result<Element, XmlError> {
    if bytes.len() > limits.max_stanza_bytes {
        return Err(XmlError::PolicyViolation(format!(
            "element larger than {} bytes",
            limits.max_stanza_bytes
        )));
    }
    let mut p = StreamParser::new(limits.clone());
    p.opened = true;
    p.depth = 1;
    p.header_qname = "\u{0}".into();
    let trimmed = bytes.trim_ascii();
    p.feed(trimmed)?;
    match p.next_event()? {
        Some(Event::Stanza(el)) if p.consumed == p.buf.len() => Ok(el),
        Some(Event::Stanza(_)) => Err(nwf("more than one element")),
        _ => Err(nwf("incomplete element")),
    }
}

/// FNV-1a of an element's qualified name (start and end tags must agree byte for byte).
fn name_hash(name: &[u8]) -> u64 {
    name.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Parse the bytes of one complete element with the stream's namespace scope.
fn parse_fragment(
    bytes: &[u8],
    outer: &[(String, String)],
    limits: &Limits,
) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| nwf("invalid UTF-8"))?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    // Namespace scopes: one frame per open element.
    let mut scopes: Vec<Vec<(String, String)>> = vec![outer.to_vec()];
    let mut stack: Vec<Element> = Vec::new();
    let mut elements = 0usize;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| entity_error(&e.to_string()))?;
        if matches!(ev, QEvent::Start(_) | QEvent::Empty(_)) {
            elements += 1;
            if elements > limits.max_elements {
                return Err(XmlError::PolicyViolation(format!(
                    "more than {} elements in one stanza",
                    limits.max_elements
                )));
            }
        }
        match ev {
            QEvent::Start(s) => {
                let el = open_element(&s, &mut scopes, limits)?;
                stack.push(el);
            }
            QEvent::Empty(s) => {
                let el = open_element(&s, &mut scopes, limits)?;
                scopes.pop();
                if let Some(done) = close(&mut stack, el) {
                    return Ok(done);
                }
            }
            QEvent::End(_) => {
                scopes.pop();
                let Some(el) = stack.pop() else {
                    return Err(nwf("unbalanced end tag"));
                };
                if let Some(done) = close(&mut stack, el) {
                    return Ok(done);
                }
            }
            QEvent::Text(t) => {
                let s = t.decode().map_err(|e| nwf(e.to_string()))?;
                if let Some(top) = stack.last_mut() {
                    top.append_text(&s);
                }
            }
            QEvent::CData(c) => {
                let s = c.decode().map_err(|e| nwf(e.to_string()))?;
                if let Some(top) = stack.last_mut() {
                    top.append_text(&s);
                }
            }
            QEvent::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) if is_xml_char(c) => c,
                        _ => return Err(nwf("invalid character reference")),
                    }
                } else {
                    match &*r {
                        b"amp" => '&',
                        b"lt" => '<',
                        b"gt" => '>',
                        b"quot" => '"',
                        b"apos" => '\'',
                        _ => return Err(XmlError::RestrictedXml("entity reference".into())),
                    }
                };
                if let Some(top) = stack.last_mut() {
                    top.append_text(c.encode_utf8(&mut [0; 4]));
                }
            }
            QEvent::Comment(_) => return Err(XmlError::RestrictedXml("comment".into())),
            QEvent::PI(_) | QEvent::Decl(_) => {
                return Err(XmlError::RestrictedXml("processing instruction".into()));
            }
            QEvent::DocType(_) => return Err(XmlError::RestrictedXml("DTD".into())),
            QEvent::Eof => return Err(nwf("incomplete element")),
        }
    }
}

/// Namespaces in XML §4: `prefix:local` or `local`, each part an NCName (XML §2.3 `Name`
/// without colons). quick-xml takes anything up to whitespace or `>` as a name, so without
/// this `<'x'/>` or `<a"b/>` would parse and be echoed back as malformed XML.
fn valid_qname(name: &str) -> bool {
    let mut parts = name.split(':');
    let ok = |p: Option<&str>| p.is_some_and(is_ncname);
    match (parts.next(), parts.next(), parts.next()) {
        (first, None, _) => ok(first),
        (first, second, None) => ok(first) && ok(second),
        _ => false,
    }
}

/// XML §2.3 `NameStartChar`, without the colon.
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// A non-empty XML name with no colon (Namespaces in XML §3 `NCName`).
fn is_ncname(part: &str) -> bool {
    let mut chars = part.chars();
    chars.next().is_some_and(is_name_start)
        && chars.all(|c| {
            is_name_start(c)
                || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
        })
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Attach a finished element to its parent, or return it when it is the root.
fn close(stack: &mut [Element], el: Element) -> Option<Element> {
    match stack.last_mut() {
        Some(parent) => {
            parent.append_child(el);
            None
        }
        None => Some(el),
    }
}

/// A tag's attributes, decoded and unescaped; duplicate names, bad names and characters XML
/// cannot carry are refused.
fn read_attrs(s: &BytesStart<'_>) -> Result<Vec<(String, String)>, XmlError> {
    let mut out = Vec::new();
    for attr in s.attributes().with_checks(true) {
        let attr = attr.map_err(|e| nwf(e.to_string()))?;
        let key = std::str::from_utf8(attr.key.as_ref())
            .map_err(|_| nwf("invalid UTF-8"))?
            .to_owned();
        let value = attr
            .unescape_value()
            .map_err(|e| entity_error(&e.to_string()))?
            .into_owned();
        if !valid_qname(&key) {
            return Err(nwf(format!("bad attribute name {key:?}")));
        }
        if value.chars().any(|c| !is_xml_char(c)) {
            return Err(nwf("invalid character in an attribute"));
        }
        out.push((key, value));
    }
    Ok(out)
}

fn open_element(
    s: &BytesStart<'_>,
    scopes: &mut Vec<Vec<(String, String)>>,
    limits: &Limits,
) -> Result<Element, XmlError> {
    let qname = std::str::from_utf8(s.name().as_ref())
        .map_err(|_| nwf("invalid UTF-8"))?
        .to_owned();
    let mut decls = Vec::new();
    let mut attrs = Vec::new();
    for (key, value) in read_attrs(s)? {
        if key == "xmlns" {
            decls.push((String::new(), value));
        } else if let Some(p) = key.strip_prefix("xmlns:") {
            if p.is_empty() || value.is_empty() {
                return Err(nwf("bad namespace declaration"));
            }
            decls.push((p.to_owned(), value.clone()));
            attrs.push((key, value));
        } else {
            attrs.push((key, value));
        }
    }
    if attrs.len() + decls.len() > limits.max_attrs {
        return Err(XmlError::PolicyViolation(format!(
            "more than {} attributes",
            limits.max_attrs
        )));
    }
    let resolve = |prefix: &str,
                   decls: &[(String, String)],
                   scopes: &[Vec<(String, String)>]|
     -> Option<String> {
        if prefix == "xml" {
            return Some(ns::XML.to_owned());
        }
        decls
            .iter()
            .rev()
            .chain(scopes.iter().rev().flat_map(|f| f.iter().rev()))
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.clone())
    };
    if !valid_qname(&qname) {
        return Err(nwf(format!("bad element name {qname:?}")));
    }
    let (prefix, local) = match qname.split_once(':') {
        Some((p, l)) => (p, l),
        None => ("", qname.as_str()),
    };
    // An unprefixed name with no default namespace in scope is in no namespace.
    let Some(uri) = resolve(prefix, &decls, scopes).or_else(|| prefix.is_empty().then(String::new))
    else {
        return Err(nwf(format!("unbound prefix on <{qname}>")));
    };
    // A prefixed attribute keeps its meaning when the stanza is serialized on its own: a
    // declaration inherited from an ancestor (or the stream header) is copied onto it.
    let mut inherited = Vec::new();
    for (k, _) in &attrs {
        if let Some((p, _)) = k.split_once(':')
            && p != "xmlns"
        {
            let Some(uri) = resolve(p, &decls, scopes) else {
                return Err(nwf(format!("unbound prefix on attribute {k}")));
            };
            let decl = format!("xmlns:{p}");
            if p != "xml"
                && !decls.iter().any(|(d, _)| d == p)
                && !inherited.iter().any(|(d, _)| *d == decl)
            {
                inherited.push((decl, uri));
            }
        }
    }
    attrs.extend(inherited);
    let mut el = Element::new(local, &uri);
    for (k, v) in attrs {
        el.set_attr(&k, v);
    }
    scopes.push(decls);
    Ok(el)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>";

    fn all_events(p: &mut StreamParser) -> Result<Vec<Event>, XmlError> {
        let mut out = Vec::new();
        while let Some(ev) = p.next_event()? {
            out.push(ev);
        }
        Ok(out)
    }

    fn parse_whole(input: &str) -> Result<Vec<Event>, XmlError> {
        let mut p = StreamParser::new(Limits::default());
        p.feed(input.as_bytes())?;
        all_events(&mut p)
    }

    const FIXTURE: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>\n \
        <message to='a@b' type=\"chat\"><body>h\u{e9}llo &amp; &#x263A; \u{1F600}</body>\
        <x xmlns='urn:x' a='&lt;&quot;'><y/></x><![CDATA[<raw>]]></message> \
        <iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq><presence/>\
        <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>\
        </stream:stream>";

    #[test]
    fn whole_fixture() {
        let events = parse_whole(FIXTURE).expect("valid");
        assert_eq!(events.len(), 6);
        let Event::StreamOpen(h) = &events[0] else {
            panic!()
        };
        assert_eq!(h.to.as_deref(), Some("example.com"));
        assert_eq!(h.default_ns, ns::CLIENT);
        let Event::Stanza(m) = &events[1] else {
            panic!()
        };
        assert!(m.is("message", ns::CLIENT));
        assert_eq!(m.attr("type"), Some("chat"));
        assert_eq!(
            m.get_child("body", ns::CLIENT)
                .map(Element::text)
                .as_deref(),
            Some("h\u{e9}llo & \u{263A} \u{1F600}")
        );
        let x = m.get_child("x", "urn:x").expect("x");
        assert_eq!(x.attr("a"), Some("<\""));
        assert!(x.has_child("y", "urn:x"));
        assert_eq!(m.text(), "<raw>");
        let Event::Stanza(f) = &events[4] else {
            panic!()
        };
        assert!(f.is("features", ns::STREAMS));
        assert!(f.has_child("bind", ns::BIND));
        assert_eq!(events[5], Event::StreamClose);
    }

    #[test]
    fn every_cut_point_gives_the_same_events() {
        let expected = parse_whole(FIXTURE).expect("valid");
        let bytes = FIXTURE.as_bytes();
        for cut in 0..=bytes.len() {
            let mut p = StreamParser::new(Limits::default());
            p.feed(&bytes[..cut]).expect("feed");
            let mut got = all_events(&mut p).expect("prefix is fine");
            assert!(got.len() <= expected.len());
            assert_eq!(got[..], expected[..got.len()], "cut at {cut}");
            p.feed(&bytes[cut..]).expect("feed");
            got.extend(all_events(&mut p).expect("rest"));
            assert_eq!(got, expected, "cut at {cut}");
        }
    }

    #[test]
    fn an_idle_stream_holds_no_buffer() {
        let mut p = StreamParser::new(Limits::default());
        p.feed(HEADER.as_bytes()).expect("feed");
        assert_eq!(all_events(&mut p).expect("header").len(), 1);
        assert_eq!(p.buffer_capacity(), 0);
        // Half a stanza stays buffered; once complete (and whitespace after it) nothing does.
        p.feed(b"<message><body>hi</bo").expect("feed");
        assert!(all_events(&mut p).expect("partial").is_empty());
        assert!(p.buffer_capacity() > 0);
        p.feed(b"dy></message>\n <presence/>").expect("feed");
        assert_eq!(all_events(&mut p).expect("two").len(), 2);
        assert_eq!(p.buffer_capacity(), 0);
        assert_eq!(p.buffered_len(), 0);
        p.feed(b"<iq type='get' id='1'/>").expect("feed");
        assert_eq!(all_events(&mut p).expect("iq").len(), 1);
    }

    #[test]
    fn one_byte_at_a_time() {
        let expected = parse_whole(FIXTURE).expect("valid");
        let mut p = StreamParser::new(Limits::default());
        let mut got = Vec::new();
        for b in FIXTURE.as_bytes() {
            p.feed(std::slice::from_ref(b)).expect("feed");
            got.extend(all_events(&mut p).expect("events"));
        }
        assert_eq!(got, expected);
    }

    fn first_error(body: &str) -> XmlError {
        match parse_whole(&format!("{HEADER}{body}")) {
            Err(e) => e,
            Ok(evs) => panic!("{body:?} should fail, got {evs:?}"),
        }
    }

    #[test]
    fn restricted_xml() {
        for body in [
            "<message><!-- c --></message>",
            "<!-- c -->",
            "<?pi x?>",
            "<message><?pi x?></message>",
            "<!DOCTYPE x>",
            "<message><!ENTITY x 'y'></message>",
            "<message>&foo;</message>",
            "<message a='&foo;'/>",
        ] {
            assert_eq!(first_error(body).condition(), "restricted-xml", "{body}");
        }
        assert_eq!(
            parse_whole("<!DOCTYPE x><stream:stream>")
                .expect_err("dtd")
                .condition(),
            "restricted-xml"
        );
    }

    #[test]
    fn not_well_formed() {
        for body in [
            "<message></iq>",
            "<message a='1' a='2'/>",
            "<message a='<'/>",
            "<message a=1/>",
            "<p:message/>",
            "<message p:a='1'/>",
            "<message>\u{0}</message>",
            "text at stream level",
            "<message><<</message>",
            "</nope>",
            "<message>&#0;</message>",
            "<message :x='1'/>",
            "<a:b:c/>",
            // An end tag that does not match its start tag, below the stanza's own level.
            "<message><body>x</message>",
            "<message><a><b></a></b></message>",
            "<message><a></b><c/></message>",
            // Names must be XML names (quick-xml reads any run up to whitespace as one).
            "<message><'x'/></message>",
            "<message><a\"b/></message>",
            "<1a/>",
            "<message><x-/><-x/></message>",
        ] {
            assert_eq!(first_error(body).condition(), "not-well-formed", "{body}");
        }
        // A matching end tag may carry whitespace before its `>`.
        let mut p = StreamParser::new(Limits::default());
        p.feed(HEADER.as_bytes()).expect("feed");
        p.feed(b"<message><body >x</body ><x:y xmlns:x='u'><z/></x:y></message>")
            .expect("feed");
        let events = all_events(&mut p).expect("well-formed");
        assert!(
            events.iter().any(|e| matches!(e, Event::Stanza(_))),
            "{events:?}"
        );
        let mut p = StreamParser::new(Limits::default());
        p.feed(HEADER.as_bytes()).expect("feed");
        p.feed(b"<message>\xff\xfe</message>").expect("feed");
        assert_eq!(
            all_events(&mut p).expect_err("utf8").condition(),
            "not-well-formed"
        );
    }

    #[test]
    fn many_stanzas_in_one_read() {
        // 20,000 stanzas arrive in one read: each comes out once, in order, and the parser
        // holds nothing afterwards (the consumed front is dropped once, at the next feed).
        let mut p = StreamParser::new(Limits::default());
        p.feed(HEADER.as_bytes()).expect("feed");
        let mut bytes = Vec::new();
        for i in 0..20_000 {
            bytes.extend_from_slice(
                format!("<message id='m{i}'><body>x</body></message>").as_bytes(),
            );
        }
        p.feed(&bytes).expect("feed");
        let events = all_events(&mut p).expect("events");
        let ids: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::Stanza(el) => el.attr("id").map(str::to_owned),
                _ => None,
            })
            .collect();
        assert_eq!(ids.len(), 20_000);
        assert_eq!(ids[19_999], "m19999");
        assert_eq!(p.buffered_len(), 0);
        p.feed(b"<presence/>").expect("feed");
        assert_eq!(p.buffered_len(), "<presence/>".len());
    }

    #[test]
    fn header_errors() {
        let e = parse_whole("<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client'>")
            .expect_err("ns");
        assert_eq!(e.condition(), "invalid-namespace");
        let e = parse_whole("<foo xmlns='jabber:client'>").expect_err("not a stream");
        assert_eq!(e.condition(), "bad-format");
        let e = parse_whole("<?xml version='1.0'?><?xml version='1.0'?>").expect_err("two decls");
        assert_eq!(e.condition(), "restricted-xml");
    }

    #[test]
    fn limits() {
        let limits = Limits {
            max_stanza_bytes: 1024,
            max_depth: 4,
            max_attrs: 3,
            max_elements: 8,
            max_header_bytes: 512,
        };
        let run = |body: String| {
            let mut p = StreamParser::new(limits.clone());
            p.feed(HEADER.as_bytes())?;
            all_events(&mut p)?;
            for chunk in body.as_bytes().chunks(100) {
                p.feed(chunk)?;
                all_events(&mut p)?;
            }
            Ok::<_, XmlError>(p)
        };
        let big = format!("<message><body>{}</body></message>", "x".repeat(2000));
        assert_eq!(run(big).expect_err("size").condition(), "policy-violation");
        let unfinished = format!("<message><body>{}", "x".repeat(5000));
        let e = run(unfinished).expect_err("unfinished stanza is bounded");
        assert_eq!(e.condition(), "policy-violation");
        let deep = "<a><a><a><a><a><a>".to_owned();
        assert_eq!(
            run(deep).expect_err("depth").condition(),
            "policy-violation"
        );
        let attrs = "<a b='1' c='2' d='3' e='4'/>".to_owned();
        assert_eq!(
            run(attrs).expect_err("attrs").condition(),
            "policy-violation"
        );
        assert!(run("<a><a><a/></a></a>".to_owned()).is_ok());
        // Wide rather than deep: eight elements pass, nine do not.
        let wide = |n: usize| format!("<message>{}</message>", "<x/>".repeat(n - 1));
        assert!(run(wide(8)).is_ok());
        assert_eq!(
            run(wide(9)).expect_err("elements").condition(),
            "policy-violation"
        );
        let mut p = StreamParser::new(limits.clone());
        let header = format!("<stream:stream {}", "a".repeat(600));
        assert_eq!(
            p.feed(header.as_bytes())
                .and_then(|()| all_events(&mut p).map(|_| ()))
                .expect_err("header")
                .condition(),
            "policy-violation"
        );
    }

    #[test]
    fn restart_keeps_bytes_and_reset_drops_them() {
        let mut p = StreamParser::new(Limits::default());
        p.feed(
            format!(
                "{HEADER}<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>{HEADER}<presence/>"
            )
            .as_bytes(),
        )
        .expect("feed");
        assert!(matches!(p.next_event(), Ok(Some(Event::StreamOpen(_)))));
        assert!(matches!(p.next_event(), Ok(Some(Event::Stanza(_)))));
        p.restart();
        assert!(matches!(p.next_event(), Ok(Some(Event::StreamOpen(_)))));
        assert!(matches!(p.next_event(), Ok(Some(Event::Stanza(ref e))) if e.name() == "presence"));
        p.feed(b"<iq").expect("feed");
        p.reset();
        assert_eq!(p.buffered_len(), 0);
        p.feed(HEADER.as_bytes()).expect("feed");
        assert!(matches!(p.next_event(), Ok(Some(Event::StreamOpen(_)))));
    }

    #[test]
    fn round_trip_and_standalone_elements() {
        let events = parse_whole(FIXTURE).expect("valid");
        for ev in events {
            if let Event::Stanza(el) = ev {
                let bytes = el.to_bytes("");
                let again = parse_element(&bytes, &Limits::default()).expect("reparse");
                assert_eq!(again, el);
            }
        }
        let el = parse_element(
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='x'/>",
            &Limits::default(),
        )
        .expect("frame");
        assert_eq!(el.attr("to"), Some("x"));
        assert!(parse_element(b"<a/><b/>", &Limits::default()).is_err());
        assert!(parse_element(b"<a>", &Limits::default()).is_err());
    }

    #[test]
    fn inherited_prefix_declarations_travel_with_the_stanza() {
        let input = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
            xmlns:p='urn:p'><message p:x='1'><body p:y='2'/></message>";
        let events = parse_whole(input).expect("valid");
        let Event::Stanza(m) = &events[1] else {
            panic!()
        };
        let again = parse_element(&m.to_bytes(""), &Limits::default()).expect("standalone");
        assert_eq!(again.attr("p:x"), Some("1"));
        assert_eq!(
            again
                .get_child("body", ns::CLIENT)
                .and_then(|b| b.attr("p:y")),
            Some("2")
        );
    }

    #[test]
    fn whitespace_keepalives_and_lang() {
        let events =
            parse_whole(&format!("{HEADER}  \n <message xml:lang='fr'/>\n\n")).expect("valid");
        let Event::Stanza(m) = &events[1] else {
            panic!()
        };
        assert_eq!(m.attr("xml:lang"), Some("fr"));
    }

    /// Found by the `muc_owner_form` fuzz target: an element named `'/jabber…',` parsed, and the
    /// MUC's error reply (which carries the request's payload) then serialized it as malformed
    /// XML. Names are now checked against the XML `Name` production.
    #[test]
    fn fuzz_regression_names_that_are_not_xml_names_are_refused() {
        let input = "<query xmlns='http://jabber.org/ol/muc#owner'><x xmlnsalue='jabber:x:data' \
            ztype='submit'><field var='muc#roomconfig_p#rsistentroom'><'/jabber.org/pru/com#wnercom#wnr',/>\
            or]'/>maxusers'><value>ie</value></field></x></query>";
        let err = parse_element(input.as_bytes(), &Limits::default()).expect_err("bad name");
        assert_eq!(err.condition(), "not-well-formed", "{err}");
        for bad in [
            "<m a'b='1'/>",
            "<m a\"b='1'/>",
            "<m 1a='1'/>",
            "<m a<b='1'/>",
        ] {
            let err = parse_element(bad.as_bytes(), &Limits::default()).expect_err(bad);
            assert_eq!(err.condition(), "not-well-formed", "{bad}: {err}");
        }
        // Names outside ASCII, and every NameChar, are still names.
        for ok in [
            "<caf\u{e9}:x xmlns:caf\u{e9}='u'/>",
            "<a-b.c_d\u{b7}9 \u{e9}t\u{e9}='1'/>",
            "<_x/>",
            "<\u{4e2d}\u{6587}/>",
        ] {
            let el = parse_element(ok.as_bytes(), &Limits::default())
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
            let again = parse_element(&el.to_bytes(""), &Limits::default()).expect("re-parse");
            assert_eq!(again, el, "{ok}");
        }
    }
}
