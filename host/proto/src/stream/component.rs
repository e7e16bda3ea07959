//! One external component stream (XEP-0114 "Jabber Component Protocol"): header, the
//! `<handshake/>` proof, then stanzas in `jabber:component:accept` translated to and from the
//! server's internal `jabber:client` form.
//!
//! Core (sans-IO), driven like `c2s::C2sStream`: `handle_input`, then drain `poll_output`.
//! Invariants: nothing is routed before the handshake; every routed stanza has a `from` in the
//! component's own domain (or a subdomain of it) and a valid `to`; the secret comparison is
//! constant time. Spec: https://xmpp.org/extensions/xep-0114.html. Tests: `mod tests` in
//! stream/tests.rs; end to end in tests/all/component.rs.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use crate::entropy::{self, Entropy};
use crate::stanza::{self, Condition, ErrorType, Jid, Kind, Stanza, StanzaError};
use crate::stream::error::StreamCondition;
use crate::xml::{self, Element, Event, StreamParser, ns};

/// Input to a component stream.
#[derive(Debug)]
pub enum Input<'a> {
    /// Bytes read.
    Bytes(&'a [u8]),
    /// A stanza (internal `jabber:client` form) routed to this component.
    Deliver(Element),
    /// The deadline from `poll_timeout` passed.
    Timeout,
    /// Another connection authenticated for the same domain.
    Conflict,
    /// The server is shutting down.
    Shutdown,
}

/// Effect requested by a component stream.
#[derive(Debug)]
pub enum Output {
    /// Write bytes.
    Write(Vec<u8>),
    /// The handshake succeeded: register `domain` with the router.
    Authenticated {
        /// The component's domain.
        domain: String,
    },
    /// Route a stanza (converted to `jabber:client`; `from` and `to` parsed here, once).
    Route(Stanza),
    /// Close the transport.
    Close,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    ExpectHeader,
    ExpectHandshake,
    Established,
    Closed,
}

/// One component connection.
#[derive(Debug)]
pub struct ComponentStream {
    secrets: Arc<HashMap<String, String>>,
    parser: StreamParser,
    phase: Phase,
    domain: Option<String>,
    stream_id: String,
    header_sent: bool,
    deadline: Option<Instant>,
    out: VecDeque<Output>,
    buf: Vec<u8>,
}

impl ComponentStream {
    /// A new stream; `secrets` maps component domain → shared secret.
    pub fn new(
        secrets: Arc<HashMap<String, String>>,
        limits: xml::Limits,
        handshake_timeout: Duration,
        now: Instant,
        entropy: &dyn Entropy,
    ) -> Self {
        ComponentStream {
            secrets,
            parser: StreamParser::new(limits),
            phase: Phase::ExpectHeader,
            domain: None,
            stream_id: entropy::uuid(entropy).simple().to_string(),
            header_sent: false,
            deadline: Some(now + handshake_timeout),
            out: VecDeque::new(),
            buf: Vec::new(),
        }
    }

    /// The authenticated domain.
    pub fn domain(&self) -> Option<&str> {
        self.domain
            .as_deref()
            .filter(|_| self.phase == Phase::Established)
    }

    /// When `Input::Timeout` is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Next effect.
    pub fn poll_output(&mut self) -> Option<Output> {
        if !self.buf.is_empty() {
            let bytes = std::mem::take(&mut self.buf);
            self.out.push_back(Output::Write(bytes));
        }
        self.out.pop_front()
    }

    /// Feed one input.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        if self.phase == Phase::Closed {
            return;
        }
        match input {
            Input::Bytes(bytes) => {
                if let Err(e) = self.parser.feed(bytes) {
                    return self.stream_error(StreamCondition::from(&e), Some(&e.to_string()));
                }
                while self.phase != Phase::Closed {
                    match self.parser.next_event() {
                        Ok(Some(Event::StreamOpen(h))) => self.header(h),
                        Ok(Some(Event::Stanza(el))) => self.element(el),
                        Ok(Some(Event::StreamClose)) => {
                            self.buf.extend_from_slice(b"</stream:stream>");
                            self.close();
                        }
                        Ok(None) => break,
                        Err(e) => {
                            self.stream_error(StreamCondition::from(&e), Some(&e.to_string()))
                        }
                    }
                }
            }
            Input::Deliver(mut stanza) => {
                if self.phase == Phase::Established {
                    stanza.set_ns_recursive(ns::CLIENT, ns::COMPONENT);
                    stanza.write_to(&mut self.buf, ns::COMPONENT);
                }
            }
            Input::Timeout => {
                if self.deadline.is_some_and(|d| now >= d) {
                    self.stream_error(
                        StreamCondition::ConnectionTimeout,
                        Some("No handshake in time."),
                    );
                }
            }
            Input::Conflict => self.stream_error(
                StreamCondition::Conflict,
                Some("Another connection took this domain."),
            ),
            Input::Shutdown => self.stream_error(StreamCondition::SystemShutdown, None),
        }
    }

    fn header(&mut self, h: xml::StreamHeader) {
        if self.phase != Phase::ExpectHeader {
            return self.stream_error(
                StreamCondition::NotWellFormed,
                Some("Unexpected stream header."),
            );
        }
        let to = h.to.as_deref().map(str::to_ascii_lowercase);
        self.send_header(to.as_deref());
        if h.default_ns != ns::COMPONENT {
            return self.stream_error(
                StreamCondition::InvalidNamespace,
                Some("Expected jabber:component:accept."),
            );
        }
        match to.filter(|d| self.secrets.contains_key(d)) {
            Some(domain) => {
                self.domain = Some(domain);
                self.phase = Phase::ExpectHandshake;
            }
            None => self.stream_error(StreamCondition::HostUnknown, None),
        }
    }

    fn element(&mut self, el: Element) {
        match self.phase {
            Phase::ExpectHandshake => self.handshake(&el),
            Phase::Established => self.stanza(el),
            _ => self.stream_error(
                StreamCondition::NotWellFormed,
                Some("Expected a stream header."),
            ),
        }
    }

    fn handshake(&mut self, el: &Element) {
        if !el.is("handshake", ns::COMPONENT) {
            return self.stream_error(
                StreamCondition::NotAuthorized,
                Some("Expected <handshake/>."),
            );
        }
        let Some(domain) = self.domain.clone() else {
            return;
        };
        let Some(secret) = self.secrets.get(&domain) else {
            return;
        };
        let mut hasher = Sha1::new();
        hasher.update(self.stream_id.as_bytes());
        hasher.update(secret.as_bytes());
        let expected = hex(&hasher.finalize());
        let given = el.text().trim().to_ascii_lowercase();
        if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            self.buf.extend_from_slice(b"<handshake/>");
            self.phase = Phase::Established;
            self.deadline = None;
            self.out.push_back(Output::Authenticated { domain });
        } else {
            self.stream_error(
                StreamCondition::NotAuthorized,
                Some("Handshake does not match the secret."),
            );
        }
    }

    fn stanza(&mut self, mut el: Element) {
        el.set_ns_recursive(ns::COMPONENT, ns::CLIENT);
        if Kind::of(&el).is_none() {
            return self.stream_error(StreamCondition::UnsupportedStanzaType, None);
        }
        let Some(domain) = self.domain.clone() else {
            return;
        };
        let from = el
            .attr("from")
            .and_then(|f| Jid::parse(f).ok())
            .filter(|f| f.domain() == domain || f.domain().ends_with(&format!(".{domain}")));
        let Some(from) = from else {
            return self.stream_error(
                StreamCondition::InvalidFrom,
                Some("Components send from their own domain only."),
            );
        };
        let to = match el.attr("to").map(Jid::parse) {
            Some(Ok(to)) => {
                el.set_attr("to", to.to_string());
                to
            }
            _ => {
                if let Some(mut reply) = stanza::error_reply(
                    &el,
                    &StanzaError::new(ErrorType::Modify, Condition::JidMalformed),
                ) {
                    reply.set_ns_recursive(ns::CLIENT, ns::COMPONENT);
                    reply.write_to(&mut self.buf, ns::COMPONENT);
                }
                return;
            }
        };
        // The addresses travel parsed: nothing after this parses them again.
        self.out
            .push_back(Output::Route(Stanza::new(el, from, Some(to))));
    }

    fn stream_error(&mut self, condition: StreamCondition, text: Option<&str>) {
        if self.phase == Phase::Closed {
            return;
        }
        self.send_header(None);
        self.buf.extend_from_slice(b"<stream:error>");
        for child in stanza::stream_error(condition.name(), text).children() {
            child.write_to(&mut self.buf, ns::STREAMS);
        }
        self.buf
            .extend_from_slice(b"</stream:error></stream:stream>");
        self.close();
    }

    fn close(&mut self) {
        self.phase = Phase::Closed;
        self.deadline = None;
        if !self.buf.is_empty() {
            let bytes = std::mem::take(&mut self.buf);
            self.out.push_back(Output::Write(bytes));
        }
        self.out.push_back(Output::Close);
    }

    fn send_header(&mut self, to: Option<&str>) {
        if self.header_sent {
            return;
        }
        self.header_sent = true;
        let mut h = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' id='{}'",
            ns::COMPONENT,
            ns::STREAMS,
            self.stream_id
        );
        if let Some(to) = to.filter(|d| self.secrets.contains_key(*d)) {
            h.push_str(" from='");
            let mut esc = Vec::new();
            xml::escape_attr(to, &mut esc);
            h.push_str(&String::from_utf8_lossy(&esc));
            h.push('\'');
        }
        h.push('>');
        self.buf.extend_from_slice(h.as_bytes());
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
