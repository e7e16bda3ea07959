//! A small raw-XML XMPP client for stream-level tests: it writes exactly the bytes a test
//! gives it (bad input included) and splits what the server sends into frames (the stream
//! header, each top-level element, the stream footer), parsed with minidom for assertions.
//!
//! Shell (sockets). Spec: RFC 6120 §4 (streams, stream errors); XEP-0114 and XEP-0368 streams.
//! SASL, binding and logins live in raw_session.rs.
//! Invariants: every read has a deadline (no test can hang on the server); the frame splitter
//! is independent of the server's parser (a depth counter over tags, quote-aware) and keeps
//! a transcript of everything received, which panics print.
//! Tests: used by tests/all/{login,stream_errors,sm,tls,routing,component}.rs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_xmpp::minidom::Element;

/// The stream namespace.
pub(crate) const NS_STREAM: &str = "http://etherx.jabber.org/streams";
/// Stream error conditions.
pub(crate) const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// SASL.
pub(crate) const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// STARTTLS.
pub(crate) const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// Resource binding.
pub(crate) const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// Stanza error conditions.
pub(crate) const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// XEP-0198.
pub(crate) const NS_SM: &str = "urn:xmpp:sm:3";
/// Client streams.
pub(crate) const NS_CLIENT: &str = "jabber:client";
/// XEP-0114 component streams.
pub(crate) const NS_COMPONENT: &str = "jabber:component:accept";

/// Default deadline for one expected reply.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Any byte stream the client can run over (TCP or TLS over TCP).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One element received at depth 1 of the stream.
#[derive(Clone, Debug)]
pub(crate) struct Xml {
    /// Exactly the bytes received.
    pub(crate) raw: String,
    /// Parsed, with the stream's default namespace.
    pub(crate) el: Element,
}

impl Xml {
    /// Local name and namespace match.
    pub(crate) fn is(&self, name: &str, ns: &str) -> bool {
        self.el.name() == name && self.el.ns() == ns
    }

    /// An attribute.
    pub(crate) fn attr<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.el.attr(name)
    }

    /// The first child with this name and namespace.
    pub(crate) fn child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.el.get_child(name, ns)
    }

    /// The name of the first child in `ns` (e.g. the condition of a SASL failure).
    pub(crate) fn condition(&self, ns: &str) -> Option<String> {
        self.el
            .children()
            .find(|c| c.ns() == ns && c.name() != "text")
            .map(|c| c.name().to_owned())
    }
}

/// What the server sent next.
#[derive(Debug)]
pub(crate) enum Frame {
    /// `<stream:stream ...>`, with its attributes.
    Header(BTreeMap<String, String>),
    /// A top-level element.
    Element(Xml),
    /// `</stream:stream>`.
    End,
}

/// Why no frame could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Nothing complete arrived before the deadline.
    Timeout,
    /// The connection was closed (EOF or reset).
    Closed(#[allow(dead_code, reason = "shown through Debug in panic messages")] String),
    /// The server sent something the splitter or minidom could not read.
    Malformed(#[allow(dead_code, reason = "shown through Debug in panic messages")] String),
}

/// A raw XMPP connection.
pub(crate) struct RawClient {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    in_stream: bool,
    ns: &'static str,
    /// Every frame received so far, for failure messages.
    pub(crate) transcript: Vec<String>,
    /// Elements that `wait_for` skipped over, in order.
    pub(crate) skipped: Vec<Xml>,
    /// The last stream header received.
    pub(crate) header: BTreeMap<String, String>,
}

impl RawClient {
    /// Connect over plain TCP (client namespace).
    pub(crate) async fn connect(addr: SocketAddr) -> RawClient {
        let tcp = tokio::time::timeout(REPLY_TIMEOUT, TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| panic!("connect to {addr} timed out"))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        RawClient::over(Box::new(tcp))
    }

    /// Wrap an established byte stream.
    pub(crate) fn over(io: Box<dyn Io>) -> RawClient {
        RawClient {
            io,
            buf: Vec::new(),
            in_stream: false,
            ns: NS_CLIENT,
            transcript: Vec::new(),
            skipped: Vec::new(),
            header: BTreeMap::new(),
        }
    }

    /// Use the XEP-0114 component namespace.
    pub(crate) fn component_ns(mut self) -> RawClient {
        self.ns = NS_COMPONENT;
        self
    }

    /// Give up the byte stream (e.g. to wrap it in TLS); nothing may be buffered.
    pub(crate) fn into_io(self) -> Box<dyn Io> {
        assert!(
            self.buf.is_empty(),
            "bytes left unread before the transport changed: {:?}",
            self.text_buf()
        );
        self.io
    }

    fn text_buf(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    /// The received transcript, for panic messages.
    pub(crate) fn dump(&self) -> String {
        let mut s = self.transcript.join("\n");
        if !self.buf.is_empty() {
            s.push_str("\n[unparsed] ");
            s.push_str(&self.text_buf());
        }
        s
    }

    /// Write bytes; errors are returned (bad-input tests expect the peer to hang up).
    pub(crate) async fn try_send(&mut self, data: &str) -> std::io::Result<()> {
        let write = async {
            self.io.write_all(data.as_bytes()).await?;
            self.io.flush().await
        };
        tokio::time::timeout(REPLY_TIMEOUT, write)
            .await
            .unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "write timed out",
                ))
            })
    }

    /// Write bytes, panicking on failure.
    pub(crate) async fn send(&mut self, data: &str) {
        if let Err(e) = self.try_send(data).await {
            panic!(
                "sending {data:?} failed: {e}; received so far:\n{}",
                self.dump()
            );
        }
    }

    /// Send a stream header to `to` (in this client's namespace), without XML declaration.
    pub(crate) async fn send_header(&mut self, to: &str) {
        self.in_stream = false;
        let header = format!(
            "<stream:stream to='{to}' version='1.0' xml:lang='en' xmlns='{}' xmlns:stream='{NS_STREAM}'>",
            self.ns
        );
        self.send(&header).await;
    }

    /// Read the next frame within `timeout`.
    pub(crate) async fn read_frame(&mut self, timeout: Duration) -> Result<Frame, ReadError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match split_frame(&self.buf, self.in_stream).map_err(ReadError::Malformed)? {
                Some((kind, end)) => {
                    let raw: Vec<u8> = self.buf.drain(..end).collect();
                    let raw =
                        String::from_utf8(raw).map_err(|e| ReadError::Malformed(e.to_string()))?;
                    let raw = raw.trim_start().to_owned();
                    self.transcript.push(raw.clone());
                    return self.make_frame(kind, raw);
                }
                None => {
                    let mut chunk = [0u8; 16 * 1024];
                    let read = tokio::time::timeout_at(deadline, self.io.read(&mut chunk)).await;
                    match read {
                        Err(_) => return Err(ReadError::Timeout),
                        Ok(Ok(0)) => return Err(ReadError::Closed("EOF".into())),
                        Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                        Ok(Err(e)) => return Err(ReadError::Closed(e.to_string())),
                    }
                }
            }
        }
    }

    fn make_frame(&mut self, kind: Kind, raw: String) -> Result<Frame, ReadError> {
        match kind {
            Kind::Header => {
                let el: Element = format!("{raw}</stream:stream>")
                    .parse()
                    .map_err(|e| ReadError::Malformed(format!("stream header {raw:?}: {e}")))?;
                let attrs: BTreeMap<String, String> = ["id", "from", "to", "version"]
                    .into_iter()
                    .filter_map(|k| el.attr(k).map(|v| (k.to_owned(), v.to_owned())))
                    .collect();
                self.in_stream = true;
                self.header = attrs.clone();
                Ok(Frame::Header(attrs))
            }
            Kind::End => {
                self.in_stream = false;
                Ok(Frame::End)
            }
            Kind::Element => {
                let wrapped = format!(
                    "<w xmlns='{}' xmlns:stream='{NS_STREAM}'>{raw}</w>",
                    self.ns
                );
                let w: Element = wrapped
                    .parse()
                    .map_err(|e| ReadError::Malformed(format!("element {raw:?}: {e}")))?;
                let el = w
                    .children()
                    .next()
                    .cloned()
                    .ok_or_else(|| ReadError::Malformed(raw.clone()))?;
                Ok(Frame::Element(Xml { raw, el }))
            }
        }
    }

    /// The next top-level element; panics on a header, footer, timeout or close.
    pub(crate) async fn next_element(&mut self, timeout: Duration) -> Xml {
        match self.read_frame(timeout).await {
            Ok(Frame::Element(x)) => x,
            other => panic!(
                "expected an element, got {other:?}; received so far:\n{}",
                self.dump()
            ),
        }
    }

    /// Read elements until one satisfies `pred` (others go to `skipped`); panics when the
    /// deadline passes or the stream ends first. `what` names the expectation in panics.
    pub(crate) async fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Xml) -> bool,
    ) -> Xml {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_frame(left).await {
                Ok(Frame::Element(x)) if pred(&x) => return x,
                Ok(Frame::Element(x)) => self.skipped.push(x),
                other => panic!(
                    "waiting for {what}, got {other:?}; received so far:\n{}",
                    self.dump()
                ),
            }
        }
    }

    /// Assert that no element satisfying `pred` arrives within `quiet` (others are skipped).
    pub(crate) async fn expect_none(
        &mut self,
        what: &str,
        quiet: Duration,
        pred: impl Fn(&Xml) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + quiet;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_frame(left).await {
                Ok(Frame::Element(x)) if pred(&x) => {
                    panic!(
                        "unexpected {what}: {}; received so far:\n{}",
                        x.raw,
                        self.dump()
                    )
                }
                Ok(Frame::Element(x)) => self.skipped.push(x),
                Err(ReadError::Timeout) => return,
                other => panic!(
                    "while checking that no {what} arrives: {other:?}; received:\n{}",
                    self.dump()
                ),
            }
        }
    }

    /// Read until a `<stream:error/>` and return its condition; then check that the server
    /// closes the stream (footer or EOF) shortly after.
    pub(crate) async fn expect_stream_error(&mut self, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        let condition = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_frame(left).await {
                Ok(Frame::Element(x)) if x.is("error", NS_STREAM) => {
                    match x.condition(NS_STREAM_ERRORS) {
                        Some(c) => break c,
                        None => panic!("stream error without a condition: {}", x.raw),
                    }
                }
                Ok(Frame::Element(x)) => self.skipped.push(x),
                Ok(Frame::Header(_)) => {}
                other => panic!(
                    "waiting for a stream error, got {other:?}; received so far:\n{}",
                    self.dump()
                ),
            }
        };
        self.expect_closed(Duration::from_secs(5)).await;
        condition
    }

    /// Expect the footer and/or EOF within `timeout`, with no further elements.
    pub(crate) async fn expect_closed(&mut self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_frame(left).await {
                Ok(Frame::End) => {}
                Err(ReadError::Closed(_)) => return,
                other => panic!(
                    "expected the server to close the stream, got {other:?}; received:\n{}",
                    self.dump()
                ),
            }
        }
    }

    /// Send a header to `to`, read the server's header and its `<stream:features/>`.
    pub(crate) async fn open(&mut self, to: &str) -> Xml {
        self.send_header(to).await;
        match self.read_frame(REPLY_TIMEOUT).await {
            Ok(Frame::Header(_)) => {}
            other => panic!(
                "expected a stream header, got {other:?}; received:\n{}",
                self.dump()
            ),
        }
        self.wait_for("stream features", REPLY_TIMEOUT, |x| {
            x.is("features", NS_STREAM)
        })
        .await
    }

    /// Close the stream politely.
    pub(crate) async fn close(mut self) {
        let _ = self.try_send("</stream:stream>").await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.io.shutdown()).await;
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Header,
    Element,
    End,
}

/// Find the end (exclusive) of the tag starting at `start` (a `<`), skipping quoted values.
fn tag_end(buf: &[u8], start: usize) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (i, &b) in buf.iter().enumerate().skip(start + 1) {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

fn find(buf: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    buf.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Split off the next frame: `Ok(Some((kind, end)))` when `buf[..end]` holds one complete
/// frame (leading whitespace and XML declarations included), `Ok(None)` when more bytes are
/// needed.
fn split_frame(buf: &[u8], in_stream: bool) -> Result<Option<(Kind, usize)>, String> {
    let mut i = 0;
    loop {
        while i < buf.len() && buf[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= buf.len() {
            return Ok(None);
        }
        if buf[i] != b'<' {
            return Err(format!(
                "text at stream level: {:?}",
                String::from_utf8_lossy(&buf[i..])
            ));
        }
        if buf[i..].starts_with(b"<?") {
            match find(buf, i, b"?>") {
                Some(e) => {
                    i = e + 2;
                    continue;
                }
                None => return Ok(None),
            }
        }
        break;
    }
    if !in_stream {
        return Ok(tag_end(buf, i).map(|e| (Kind::Header, e)));
    }
    if buf[i..].starts_with(b"</") {
        return Ok(tag_end(buf, i).map(|e| (Kind::End, e)));
    }
    let mut depth = 0usize;
    let mut pos = i;
    loop {
        let Some(lt) = find(buf, pos, b"<") else {
            return Ok(None);
        };
        let rest = &buf[lt..];
        if rest.starts_with(b"<!--") {
            let Some(e) = find(buf, lt, b"-->") else {
                return Ok(None);
            };
            pos = e + 3;
            continue;
        }
        if rest.starts_with(b"<![CDATA[") {
            let Some(e) = find(buf, lt, b"]]>") else {
                return Ok(None);
            };
            pos = e + 3;
            continue;
        }
        let Some(end) = tag_end(buf, lt) else {
            return Ok(None);
        };
        if rest.starts_with(b"</") {
            depth = depth.checked_sub(1).ok_or("unbalanced end tag")?;
        } else if rest.starts_with(b"<?") {
            // A processing instruction inside an element; not ours to judge.
        } else if buf[end - 2] != b'/' {
            depth += 1;
        }
        pos = end;
        if depth == 0 {
            return Ok(Some((Kind::Element, end)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames() {
        let s = b"<?xml version='1.0'?><stream:stream id='a' xmlns:stream='x'>";
        assert!(matches!(split_frame(s, false), Ok(Some((Kind::Header, n))) if n == s.len()));
        let s = b" <a x='>'><b/><c>t</c></a><d/>";
        assert!(matches!(
            split_frame(s, true),
            Ok(Some((Kind::Element, 26)))
        ));
        assert!(matches!(split_frame(b"<a><b/>", true), Ok(None)));
        assert!(matches!(
            split_frame(b"</stream:stream>", true),
            Ok(Some((Kind::End, 16)))
        ));
    }
}
