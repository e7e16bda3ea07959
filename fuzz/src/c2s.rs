//! The c2s stream core (`lilt_proto::stream::c2s`) under arbitrary client input, driven by a fake shell
//! that answers every output the way the real one can (password checks pass, binds succeed,
//! resumptions fail, routed stanzas come back as deliveries). Checked: no panic; everything the
//! server writes is well-formed XML (bytes parse as one stream, each WebSocket message as one
//! element); every routed stanza carries the bound full JID as `from` and round-trips through
//! the serializer; nothing is routed before a bind or after the close; output stays
//! proportional to input.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lilt_proto::entropy::Seeded;
use lilt_proto::sasl::{Mechanism, SaslSecret};
use lilt_proto::stanza::{Condition, ErrorType, Jid, StanzaError};
use lilt_proto::stream::c2s::{C2sConfig, C2sStream, Input, Output, VhostPolicy};
use lilt_proto::stream::framing::Framing;
use lilt_proto::xml::{Element, Event, Limits, StreamParser, ns, parse_element};

/// The vhost the fuzzed streams address.
pub const VHOST: &str = "a.example";
/// Answers the fake shell gives per client input, at most (deliveries feed more output).
const MAX_FOLLOW_UPS: usize = 64;

/// Parser limits for the stream under test: small, so the limits themselves get exercised.
pub fn limits() -> Limits {
    Limits {
        max_stanza_bytes: 4096,
        max_depth: 16,
        max_attrs: 16,
        max_header_bytes: 1024,
        max_elements: 64,
    }
}

/// Limits for re-parsing what the server wrote: only well-formedness counts there.
pub(crate) fn unlimited() -> Limits {
    Limits {
        max_stanza_bytes: usize::MAX / 2,
        max_elements: usize::MAX / 2,
        ..limits()
    }
}

fn config() -> C2sConfig {
    let mut vhosts = HashMap::new();
    vhosts.insert(
        VHOST.to_owned(),
        VhostPolicy {
            mechanisms: vec![
                Mechanism::Plain,
                Mechanism::Anonymous,
                Mechanism::ScramSha1,
                Mechanism::ScramSha256,
            ],
            allow_unencrypted: true,
            identify: false,
        },
    );
    // Defaults from `C2sConfig::new`, so a field added there does not break this crate.
    C2sConfig {
        sm_resume_timeout: Duration::from_secs(60),
        sm_max_unacked: 16,
        sm_max_unacked_bytes: 64 * 1024,
        xml_limits: limits(),
        ..C2sConfig::new(
            vhosts,
            Arc::new(Seeded::new(7)),
            SaslSecret::new(vec![0u8; 32]),
        )
    }
}

/// The fake shell around one stream, and what it has seen.
pub(crate) struct Harness {
    pub(crate) stream: C2sStream,
    framing: Framing,
    pub(crate) now: Instant,
    /// Parses what the server wrote (`Framing::Stream`).
    server: StreamParser,
    server_closed: bool,
    bound: Option<Jid>,
    /// The stream asked for its transport to close.
    pub(crate) closed: bool,
    out_bytes: usize,
    /// Stanzas routed so far.
    pub(crate) routed: usize,
    pending: VecDeque<Input<'static>>,
    /// Frames for the BOSH layer (`Framing::Bosh`), taken by its driver.
    pub(crate) frames: Vec<Vec<u8>>,
}

impl Harness {
    pub(crate) fn new(framing: Framing, encrypted: bool, start: Instant) -> Harness {
        Harness {
            stream: C2sStream::new(config(), framing, encrypted, start),
            framing,
            now: start,
            server: StreamParser::new(crate::c2s::unlimited()),
            server_closed: false,
            bound: None,
            closed: false,
            out_bytes: 0,
            routed: 0,
            pending: VecDeque::new(),
            frames: Vec::new(),
        }
    }

    /// Give the stream one input and answer everything it asks, as the shell would.
    pub(crate) fn feed(&mut self, input: Input<'_>) {
        self.stream.handle_input(self.now, input);
        self.drain();
        let mut follow_ups = 0;
        while let Some(next) = self.pending.pop_front() {
            follow_ups += 1;
            if follow_ups > MAX_FOLLOW_UPS {
                self.pending.clear();
                break;
            }
            self.stream.handle_input(self.now, next);
            self.drain();
        }
    }

    fn drain(&mut self) {
        while let Some(out) = self.stream.poll_output() {
            self.output(out);
        }
    }

    fn output(&mut self, out: Output) {
        assert!(!self.closed, "output after Output::Close: {out:?}");
        match out {
            Output::Write(bytes) => {
                assert_eq!(
                    self.framing,
                    Framing::Stream,
                    "bytes written on a framed transport"
                );
                self.out_bytes += bytes.len();
                self.server_wrote(&bytes);
            }
            Output::Frame(frame) => {
                assert_ne!(
                    self.framing,
                    Framing::Stream,
                    "a frame written on a byte stream"
                );
                self.out_bytes += frame.len();
                if let Err(e) = parse_element(&frame, &crate::c2s::unlimited()) {
                    panic!(
                        "the server framed malformed XML ({e}): {}",
                        String::from_utf8_lossy(&frame)
                    );
                }
                if self.framing == Framing::Bosh {
                    self.frames.push(frame);
                }
            }
            Output::StartTls => self.pending.push_back(Input::TlsEstablished),
            Output::CheckPassword { password, .. } => {
                self.pending
                    .push_back(Input::PasswordChecked(Ok(!password.is_empty())));
            }
            Output::FetchCredentials { .. } => self.pending.push_back(Input::Credentials(Ok(None))),
            Output::Identify { .. } => self.pending.push_back(Input::Identified(Ok(None))),
            Output::Authenticated { jid, .. } => {
                assert_eq!(
                    jid.domain(),
                    VHOST,
                    "authenticated on a vhost the stream does not serve"
                );
                assert!(jid.is_bare(), "authenticated JID {jid} is not bare");
            }
            Output::AuthFailed { .. } | Output::Detached => {}
            Output::Bind { jid, resource, .. } => {
                let bound = jid
                    .with_resource(resource.as_deref().unwrap_or("generated"))
                    .map_err(|_| StanzaError::new(ErrorType::Modify, Condition::BadRequest));
                if let Ok(full) = &bound {
                    self.bound = Some(full.clone());
                }
                self.pending.push_back(Input::Bound(bound));
            }
            Output::Route(stanza) => {
                // The addresses the router trusts are exactly what the attributes parse to.
                let parse = |name| stanza.element().attr(name).map(Jid::parse);
                assert_eq!(
                    parse("from").and_then(Result::ok).as_ref(),
                    Some(stanza.from())
                );
                assert_eq!(parse("to").and_then(Result::ok).as_ref(), stanza.to());
                let el = stanza.into_element();
                assert!(!self.closed, "routed after the close: {el}");
                let Some(bound) = &self.bound else {
                    panic!("routed before a bind: {el}");
                };
                assert_eq!(
                    el.attr("from"),
                    Some(bound.to_string().as_str()),
                    "from not stamped: {el}"
                );
                round_trip(&el);
                self.routed += 1;
                // Back to the session, as a peer's stanza would come: exercises the SM queue.
                self.pending.push_back(Input::Deliver(el.into()));
            }
            Output::EnableResumption => self
                .pending
                .push_back(Input::ResumptionEnabled("resume-id".into())),
            Output::Resume { .. } => self.pending.push_back(Input::ResumeFailed),
            Output::Close => self.closed = true,
        }
    }

    fn server_wrote(&mut self, bytes: &[u8]) {
        assert!(
            !self.server_closed,
            "the server wrote after its </stream:stream>: {}",
            String::from_utf8_lossy(bytes)
        );
        if let Err(e) = self.server.feed(bytes) {
            panic!(
                "the server wrote malformed XML ({e}): {}",
                String::from_utf8_lossy(bytes)
            );
        }
        loop {
            match self.server.next_event() {
                Ok(Some(Event::Stanza(el))) => {
                    // Both restart the stream: the next thing the server writes is a header.
                    if el.is("success", ns::SASL) || el.is("proceed", ns::TLS) {
                        self.server.restart();
                    }
                }
                Ok(Some(Event::StreamClose)) => self.server_closed = true,
                Ok(Some(Event::StreamOpen(_))) => {}
                Ok(None) => break,
                Err(e) => panic!(
                    "the server wrote malformed XML ({e}): {}",
                    String::from_utf8_lossy(bytes)
                ),
            }
        }
    }
}

/// `el` serializes to bytes that parse back to `el`.
pub(crate) fn round_trip(el: &Element) {
    let bytes = el.to_bytes("");
    let again = parse_element(&bytes, &crate::c2s::unlimited())
        .unwrap_or_else(|e| panic!("re-parse of {el} failed: {e}"));
    assert_eq!(&again, el, "round trip changed the element");
}

/// Run one stream over `data`. Byte-stream mode cuts `data` into pieces sized by `cuts`;
/// WebSocket mode (odd `mode`) sends each line of `data` as one message. Returns how many
/// stanzas the session routed (how deep the input got).
pub fn check_c2s(mode: u8, data: &[u8], cuts: &[u8]) -> usize {
    let framing = if mode % 2 == 0 {
        Framing::Stream
    } else {
        Framing::WebSocket
    };
    let mut h = Harness::new(framing, false, Instant::now());
    let mut cut_iter = cuts.iter().cycle();
    match framing {
        Framing::WebSocket => {
            for frame in data.split(|b| *b == b'\n') {
                h.feed(Input::Frame(frame));
                h.now += Duration::from_millis(u64::from(*cut_iter.next().unwrap_or(&0)));
            }
        }
        _ => {
            let mut rest = data;
            while !rest.is_empty() {
                let n = (*cut_iter.next().unwrap_or(&255) as usize).clamp(1, rest.len());
                let (piece, tail) = rest.split_at(n);
                rest = tail;
                h.feed(Input::Bytes(piece));
                h.now += Duration::from_millis(n as u64);
            }
        }
    }
    // Time passes, the transport goes: a detached session expires and everything ends.
    h.now += Duration::from_secs(31);
    h.feed(Input::Timeout);
    h.feed(Input::TransportClosed);
    h.now += Duration::from_secs(61);
    h.feed(Input::Timeout);
    assert!(
        h.stream.is_closed(),
        "the stream outlived its transport and every deadline"
    );
    let undelivered = h.stream.take_undelivered();
    assert!(
        undelivered.len() <= 17,
        "{} unacked stanzas kept past the bound of 16",
        undelivered.len()
    );
    // Output is bounded by what came in: fixed replies (features, errors) plus echoes.
    let bound = 32 * 1024 + 8 * data.len();
    assert!(
        h.out_bytes <= bound,
        "{} bytes written for {} bytes of input",
        h.out_bytes,
        data.len()
    );
    h.routed
}
