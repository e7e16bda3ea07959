//! The XMPP stream splitter: finds the stream header, each top-level element (stanza) and the
//! stream close in bytes that arrive in arbitrary pieces, and hands each complete stanza to
//! reader.rs to become an owned `Element`. Also `parse_element` for one standalone element
//! (RFC 7395 WebSocket frames).
//!
//! Core (sans-IO). Spec: RFC 6120 §4.2–§4.4 (stream open, restart, close), §11.1 (restricted
//! XML), §13.12 (resource exhaustion); XML 1.0 §2.2, §2.7, §2.8.
//! Invariants:
//! - O(n): a resumable lexical scanner keeps its state (tag, quote, CDATA, depth) across `feed`
//!   calls, so every byte is scanned once whatever the chunking, even one byte at a time; a
//!   complete stanza is parsed once. Consumed bytes are dropped once they are at least as many
//!   as the bytes still held (or 16 KiB), so moving the tail is amortized O(1) per byte.
//! - Bounded: an unfinished stanza longer than `max_stanza_bytes`, or header longer than
//!   `max_header_bytes`, fails as soon as the scanner reaches the excess byte; `feed` refuses
//!   bytes that would hold more than the limit plus the bytes being fed. Whitespace between
//!   stanzas (keepalives) is consumed at once.
//! - The XML declaration is allowed only as the very first bytes of a stream; comments, other
//!   processing instructions, DTDs and undeclared entities are `restricted-xml`; anything else
//!   malformed is `not-well-formed`. The first error is sticky and frees the buffer.
//! - Every prefix of a valid stream yields exactly the events complete within it.
//!
//! Tests: `mod tests` below (every fixture cut at every byte, one byte at a time, each error
//! class); fuzz/ (`check_splitter`: any chunking gives the same events as one piece).

use super::element::Element;
use super::error::{XmlError, nwf};
use super::limits::Limits;
use super::reader::{self, Decls};

/// What the splitter found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The peer's `<stream:stream>` header.
    StreamOpen(StreamHeader),
    /// A complete element at depth 1: a stanza, or `<stream:features>`, `<stream:error>`, SASL,
    /// STARTTLS, stream management… Namespaces are resolved.
    Stanza(Element),
    /// `</stream:stream>` (also reported right after a self-closing header).
    StreamClose,
}

/// The attributes of a stream header (RFC 6120 §4.7).
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
    /// The default (content) namespace: `jabber:client`, `jabber:component:accept`, … ("" if
    /// none was declared).
    pub default_ns: String,
    /// Every attribute as written, namespace declarations included, in order.
    pub attrs: Vec<(String, String)>,
}

/// Consumed bytes are dropped from the buffer once there are at least this many, or at least
/// as many as the bytes still held.
const COMPACT_AFTER: usize = 16 * 1024;

/// Lexical state between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Character data (only whitespace outside stanzas).
    Text,
    /// Just read `<`.
    Lt,
    /// Inside a start tag; `quote` is the open attribute quote, or 0.
    StartTag { quote: u8 },
    /// Inside an end tag.
    EndTag,
    /// After `<!`: CDATA (allowed inside stanzas) or a comment or declaration (restricted).
    Bang,
    /// Inside `<![CDATA[`; `brackets` counts the `]` just read (at most 2).
    CData { brackets: u8 },
    /// Inside the leading `<?xml …?>`; `question` is whether the last byte was `?`.
    Decl { question: bool },
}

/// Splits an XMPP stream into `Event`s. Feed bytes as they arrive with `feed`, then call
/// `next_event` until it returns `Ok(None)`; bytes fed without draining count against the
/// limits.
#[derive(Debug)]
pub struct StreamParser {
    limits: Limits,
    buf: Vec<u8>,
    /// `buf[..consumed]` is done with and may be dropped.
    consumed: usize,
    /// The next byte to scan.
    pos: usize,
    lex: Lex,
    /// Where the markup being scanned starts (its `<`); stale in `Lex::Text`.
    tag_start: usize,
    /// Where the unfinished stanza starts.
    stanza_start: Option<usize>,
    /// 0 before the header, 1 inside the stream, n ≥ 2 inside a stanza's (n-1)th level.
    depth: usize,
    /// Nothing has been scanned yet: an XML declaration may start here.
    decl_allowed: bool,
    /// `parse_element` mode: no header, no stream close.
    standalone: bool,
    /// Namespace bindings of the stream header.
    decls: Decls,
    /// The header's qualified name, which the close tag must repeat.
    header_qname: String,
    /// The header was self-closing: report `StreamClose` next.
    close_pending: bool,
    /// The stream is closed: further bytes are ignored.
    closed: bool,
    /// The first error; every later call returns it.
    failed: Option<XmlError>,
}

impl StreamParser {
    /// A parser expecting an (optional XML declaration and) stream header.
    pub fn new(limits: Limits) -> Self {
        StreamParser {
            limits,
            buf: Vec::new(),
            consumed: 0,
            pos: 0,
            lex: Lex::Text,
            tag_start: 0,
            stanza_start: None,
            depth: 0,
            decl_allowed: true,
            standalone: false,
            decls: Vec::new(),
            header_qname: String::new(),
            close_pending: false,
            closed: false,
            failed: None,
        }
    }

    /// Stream restart after STARTTLS (RFC 6120 §5.4.3.3): expect a new header and drop
    /// everything buffered, since bytes received in the clear before the TLS handshake must not
    /// be read as part of the encrypted stream.
    pub fn reset(&mut self) {
        *self = StreamParser::new(self.limits.clone());
    }

    /// Stream restart after SASL success (RFC 6120 §6.4.6): expect a new header, keeping the
    /// bytes not yet scanned (a client may pipeline the new header). Call it between events.
    pub fn restart(&mut self) {
        let rest = self.buf.split_off(self.pos.min(self.buf.len()));
        self.reset();
        self.buf = rest;
    }

    /// Bytes held: received and not yet consumed by an event or as inter-stanza whitespace.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.consumed
    }

    /// Append received bytes.
    ///
    /// # Errors
    /// `PolicyViolation` when the held bytes would exceed the stanza limit (the header limit
    /// before the header) plus `bytes.len()`; the error is sticky. After the stream has closed,
    /// bytes are ignored.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), XmlError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.closed || self.close_pending {
            return Ok(());
        }
        self.compact();
        self.buf.extend_from_slice(bytes);
        let limit = if self.depth == 0 {
            self.limits.max_header_bytes
        } else {
            self.limits.max_stanza_bytes
        };
        if self.buffered_len() > limit.saturating_add(bytes.len()) {
            return Err(self.fail(XmlError::PolicyViolation(format!(
                "more than {limit} bytes held without a complete element"
            ))));
        }
        Ok(())
    }

    /// The next complete event, or `None` when more bytes are needed.
    ///
    /// # Errors
    /// The first XML or limit error; the parser stays failed afterwards.
    pub fn next_event(&mut self) -> Result<Option<Event>, XmlError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.close_pending {
            self.close_pending = false;
            self.finish();
            return Ok(Some(Event::StreamClose));
        }
        if self.closed {
            return Ok(None);
        }
        self.scan().map_err(|e| self.fail(e))
    }

    fn fail(&mut self, e: XmlError) -> XmlError {
        self.failed = Some(e.clone());
        self.buf = Vec::new();
        self.consumed = 0;
        self.pos = 0;
        e
    }

    fn finish(&mut self) {
        self.closed = true;
        self.buf = Vec::new();
        self.consumed = 0;
        self.pos = 0;
    }

    /// Drop consumed bytes from the front when that is cheap relative to what was consumed.
    fn compact(&mut self) {
        let held = self.buffered_len();
        if self.consumed == 0 || self.consumed < held.min(COMPACT_AFTER) {
            return;
        }
        let n = self.consumed;
        self.buf.drain(..n);
        self.pos -= n;
        self.tag_start = self.tag_start.saturating_sub(n);
        if let Some(start) = &mut self.stanza_start {
            *start -= n;
        }
        self.consumed = 0;
    }

    /// Everything scanned so far is done with.
    fn consume(&mut self) {
        self.consumed = self.pos;
        if self.consumed == self.buf.len() {
            self.buf.clear();
            self.consumed = 0;
            self.pos = 0;
        }
    }

    fn scan(&mut self) -> Result<Option<Event>, XmlError> {
        while self.pos < self.buf.len() {
            let i = self.pos;
            let b = self.buf[i];
            self.pos += 1;
            if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') {
                return Err(nwf("control character"));
            }
            match self.lex {
                Lex::Text => {
                    if b == b'<' {
                        self.tag_start = i;
                        self.lex = Lex::Lt;
                    } else {
                        self.decl_allowed = false;
                        if self.depth <= 1 {
                            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                                return Err(nwf("character data outside any stanza"));
                            }
                            self.consume();
                        }
                    }
                }
                Lex::Lt => {
                    let decl_allowed = std::mem::take(&mut self.decl_allowed);
                    self.lex = match b {
                        b'/' => Lex::EndTag,
                        b'?' if decl_allowed => Lex::Decl { question: false },
                        b'?' => {
                            return Err(XmlError::RestrictedXml("processing instruction".into()));
                        }
                        b'!' => Lex::Bang,
                        _ if reader::may_start_name(b) => {
                            if self.depth == 1 {
                                self.stanza_start = Some(self.tag_start);
                            }
                            Lex::StartTag { quote: 0 }
                        }
                        _ => return Err(nwf("'<' not followed by a name")),
                    };
                }
                Lex::StartTag { quote: 0 } => match b {
                    b'"' | b'\'' => self.lex = Lex::StartTag { quote: b },
                    b'<' => return Err(nwf("'<' inside a tag")),
                    b'>' => {
                        self.lex = Lex::Text;
                        let self_closing = self.buf[i - 1] == b'/';
                        if let Some(event) = self.start_tag_done(self_closing)? {
                            return Ok(Some(event));
                        }
                    }
                    _ => {}
                },
                Lex::StartTag { quote } => {
                    if b == quote {
                        self.lex = Lex::StartTag { quote: 0 };
                    } else if b == b'<' {
                        return Err(nwf("'<' in an attribute value"));
                    }
                }
                Lex::EndTag => match b {
                    b'>' => {
                        self.lex = Lex::Text;
                        if let Some(event) = self.end_tag_done()? {
                            return Ok(Some(event));
                        }
                    }
                    b'<' | b'"' | b'\'' | b'=' => return Err(nwf("malformed end tag")),
                    _ => {}
                },
                Lex::Bang => self.bang()?,
                Lex::CData { brackets } => {
                    self.lex = match b {
                        b']' => Lex::CData {
                            brackets: (brackets + 1).min(2),
                        },
                        b'>' if brackets == 2 => Lex::Text,
                        _ => Lex::CData { brackets: 0 },
                    };
                }
                Lex::Decl { question } => {
                    if question && b == b'>' {
                        reader::check_declaration(&self.buf[self.tag_start..self.pos])?;
                        self.lex = Lex::Text;
                        self.consume();
                    } else {
                        self.lex = Lex::Decl {
                            question: b == b'?',
                        };
                    }
                }
            }
            self.check_size()?;
        }
        Ok(None)
    }

    /// After `<!`: follow `<![CDATA[` byte by byte; anything else is restricted.
    fn bang(&mut self) -> Result<(), XmlError> {
        const CDATA: &[u8] = b"<![CDATA[";
        let seen = &self.buf[self.tag_start..self.pos];
        if CDATA.starts_with(seen) {
            if seen.len() == CDATA.len() {
                if self.depth < 2 {
                    return Err(nwf("CDATA section outside any stanza"));
                }
                self.lex = Lex::CData { brackets: 0 };
            }
            Ok(())
        } else if seen.starts_with(b"<!-") {
            Err(XmlError::RestrictedXml("comment".into()))
        } else {
            Err(XmlError::RestrictedXml("DTD or markup declaration".into()))
        }
    }

    /// The unfinished element (or header) must stay within its limit.
    fn check_size(&self) -> Result<(), XmlError> {
        let start = match (self.stanza_start, self.lex) {
            (Some(start), _) => start,
            (None, Lex::Text) => return Ok(()),
            (None, _) => self.tag_start,
        };
        let (limit, what) = if self.depth == 0 {
            (self.limits.max_header_bytes, "stream header")
        } else {
            (self.limits.max_stanza_bytes, "element")
        };
        if self.pos - start > limit {
            return Err(XmlError::PolicyViolation(format!(
                "{what} larger than {limit} bytes"
            )));
        }
        Ok(())
    }

    /// A start tag ended at `self.pos`.
    fn start_tag_done(&mut self, self_closing: bool) -> Result<Option<Event>, XmlError> {
        if self.depth == 0 {
            return self.header_done(self_closing).map(Some);
        }
        // The element's nesting level within its stanza: the stanza itself is level 1.
        let level = self.depth;
        if level > self.limits.max_depth {
            return Err(XmlError::PolicyViolation(format!(
                "elements nested deeper than {}",
                self.limits.max_depth
            )));
        }
        if !self_closing {
            self.depth += 1;
            return Ok(None);
        }
        if self.depth == 1 {
            return self.stanza_done().map(Some);
        }
        Ok(None)
    }

    /// An end tag ended at `self.pos`.
    fn end_tag_done(&mut self) -> Result<Option<Event>, XmlError> {
        match self.depth {
            0 => Err(nwf("end tag before the stream header")),
            1 => {
                let name = self.buf[self.tag_start + 2..self.pos - 1].trim_ascii_end();
                if self.standalone || name != self.header_qname.as_bytes() {
                    return Err(nwf(format!(
                        "</{}> closes no open element",
                        String::from_utf8_lossy(name)
                    )));
                }
                self.finish();
                Ok(Some(Event::StreamClose))
            }
            _ => {
                self.depth -= 1;
                if self.depth == 1 {
                    return self.stanza_done().map(Some);
                }
                Ok(None)
            }
        }
    }

    fn header_done(&mut self, self_closing: bool) -> Result<Event, XmlError> {
        let tag = reader::read_header(&self.buf[self.tag_start..self.pos], &self.limits)?;
        self.decls = tag.decls;
        self.header_qname = tag.qname;
        self.depth = 1;
        self.close_pending = self_closing;
        self.consume();
        Ok(Event::StreamOpen(tag.header))
    }

    fn stanza_done(&mut self) -> Result<Event, XmlError> {
        let start = self.stanza_start.take().unwrap_or(self.consumed);
        let el = reader::parse_fragment(&self.buf[start..self.pos], &self.decls, &self.limits)?;
        self.consume();
        Ok(Event::Stanza(el))
    }
}

/// Parse one standalone element, e.g. an RFC 7395 WebSocket frame. Surrounding whitespace is
/// allowed; an XML declaration is not. No namespace is in scope, so an unprefixed element
/// without `xmlns` is in no namespace.
///
/// # Errors
/// When `bytes` is not exactly one well-formed, unrestricted element within `limits`.
pub fn parse_element(bytes: &[u8], limits: &Limits) -> Result<Element, XmlError> {
    let mut p = StreamParser::new(limits.clone());
    p.standalone = true;
    p.depth = 1;
    p.decl_allowed = false;
    p.feed(bytes)?;
    let Some(Event::Stanza(el)) = p.next_event()? else {
        return Err(nwf("incomplete element"));
    };
    match p.next_event()? {
        None if p.buffered_len() == 0 => Ok(el),
        _ => Err(nwf("bytes after the element")),
    }
}

/// Fixture, error-class and limit tests, in splitter/tests.rs.
#[cfg(test)]
mod tests;
