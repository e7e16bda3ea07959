//! One client-to-server stream (RFC 6120): header exchange, STARTTLS, SASL, resource binding,
//! the legacy session element, XEP-0198 stream management, and the established phase where
//! stanzas are stamped and handed to the router.
//!
//! Core (sans-IO): bytes and answers come in through `handle_input`, effects leave through
//! `poll_output` (drain it after every input), time is passed in. Plugin calls, binding and
//! resumption leave as outputs and come back as inputs; nothing here awaits.
//! Invariants: no stanza is routed before a resource is bound, and a bound JID exists only via
//! the `Authenticated` value that SASL success creates; every stanza routed carries the
//! session's full JID as `from`; a stream error is always preceded by our stream header.
//! Spec: RFC 6120 §4–§8, RFC 6121 §8, XEP-0198, XEP-0206 (restart semantics).
//! Tests: `mod tests` in stream/tests.rs; end to end in tests/all/.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::framing::{self, Framing};
use super::sm::SmState;
use crate::entropy::{self, Entropy};
use crate::identity::Identity;
use crate::sasl::{
    self, Mechanism, SaslFailure, SaslServer, SaslStep, ScramCredentials, ScramHash,
};
use crate::stanza::{self, ErrorType, Jid, Kind, Outbound, StanzaError};
use crate::xml::{self, Element, Event, StreamParser, XmlError, ns};

/// Failed SASL attempts allowed on one stream before it is closed.
const MAX_AUTH_FAILURES: u32 = 5;
/// Ask the peer for an ack after this many unacknowledged outbound stanzas.
const SM_REQUEST_EVERY: usize = 5;
/// Frames (WebSocket messages, BOSH payloads) queued while an answer is awaited.
const MAX_QUEUED_FRAMES: usize = 256;

/// What the stream needs to know about the vhosts it may serve.
#[derive(Debug, Clone)]
pub struct VhostPolicy {
    /// SASL mechanisms offered (the auth plugin's list, filtered to what the host implements).
    pub mechanisms: Vec<Mechanism>,
    /// Allow authentication without TLS.
    pub allow_unencrypted: bool,
    /// Ask the auth plugin who a session is once SASL succeeds (`Output::Identify`): it
    /// exports `identity-provider`.
    pub identify: bool,
}

/// Settings shared by every c2s stream of a listener.
#[derive(Debug, Clone)]
pub struct C2sConfig {
    /// Domain → policy for every vhost served.
    pub vhosts: Arc<std::collections::HashMap<String, VhostPolicy>>,
    /// Whether STARTTLS can be offered (false for direct-TLS listeners, already encrypted).
    pub starttls_available: bool,
    /// Offer XEP-0198.
    pub sm_enabled: bool,
    /// Resumption window advertised as `max`.
    pub sm_resume_timeout: Duration,
    /// Bound of the unacked queue, in stanzas.
    pub sm_max_unacked: usize,
    /// Bound of the unacked queue, in bytes (`Outbound::cost`).
    pub sm_max_unacked_bytes: usize,
    /// Deadline for authenticating.
    pub unauthenticated_timeout: Duration,
    /// Parser limits.
    pub xml_limits: xml::Limits,
    /// Where stream ids, SASL nonces and anonymous JIDs come from.
    pub entropy: Arc<dyn Entropy>,
    /// The server secret unknown users' SCRAM salts are derived from (`data_dir/sasl.secret`).
    pub sasl_secret: sasl::SaslSecret,
}

/// Input a stream has received but not processed, moved with its transport on resumption.
#[derive(Debug)]
pub struct PendingInput {
    framing: Framing,
    parser: StreamParser,
    frames: VecDeque<Event>,
}

impl PendingInput {
    /// Input of a byte stream whose parser has read up to here.
    pub fn from_parser(parser: StreamParser) -> PendingInput {
        PendingInput {
            framing: Framing::Stream,
            parser,
            frames: VecDeque::new(),
        }
    }
}

/// Proof that SASL succeeded for this bare JID; only this module creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated(Jid);

impl Authenticated {
    /// The authenticated bare JID.
    pub fn jid(&self) -> &Jid {
        &self.0
    }
}

/// Input to the stream.
#[derive(Debug)]
pub enum Input<'a> {
    /// Bytes read from the transport (`Framing::Stream`).
    Bytes(&'a [u8]),
    /// One RFC 7395 message (`Framing::WebSocket`).
    Frame(&'a [u8]),
    /// An event the BOSH layer unwrapped from a `<body/>` (`Framing::Bosh`).
    Event(Event),
    /// The transport finished the TLS handshake requested by `Output::StartTls`.
    TlsEstablished,
    /// Answer to `Output::CheckPassword`; `Err` means the plugin failed.
    PasswordChecked(Result<bool, ()>),
    /// Answer to `Output::FetchCredentials`; `Err` means the plugin failed.
    Credentials(Result<Option<ScramCredentials>, ()>),
    /// Answer to `Output::Identify`: the identity, if the plugin gave one, or why the login
    /// fails (with the text for the `<failure/>`).
    Identified(Result<Option<Identity>, (SaslFailure, String)>),
    /// Answer to `Output::Bind`.
    Bound(Result<Jid, StanzaError>),
    /// Answer to `Output::EnableResumption`: the resumption id.
    ResumptionEnabled(String),
    /// Answer to `Output::Resume` when it could not be done (unknown or expired id).
    ResumeFailed,
    /// A stanza routed to this session.
    Deliver(Outbound),
    /// The deadline from `poll_timeout` passed.
    Timeout,
    /// The transport closed.
    TransportClosed,
    /// The server is shutting down.
    Shutdown,
    /// Another session took over this resource (RFC 6120 §7.7.2.2).
    Conflict,
    /// The session's vhost is no longer served (removed by a configuration reload).
    HostGone,
}

/// Effect requested by the stream.
#[derive(Debug)]
pub enum Output {
    /// Write these bytes (`Framing::Stream`; consecutive writes are batched).
    Write(Vec<u8>),
    /// Send this self-contained element as one frame (`Framing::WebSocket`/`Bosh`).
    Frame(Vec<u8>),
    /// Upgrade the transport to TLS now (the `<proceed/>` was written before), then send
    /// `Input::TlsEstablished`.
    StartTls,
    /// Ask the vhost's auth plugin whether this password is right.
    CheckPassword {
        /// Vhost.
        vhost: String,
        /// Normalized username.
        username: String,
        /// Password.
        password: String,
    },
    /// Ask the vhost's auth plugin for SCRAM credentials.
    FetchCredentials {
        /// Vhost.
        vhost: String,
        /// Normalized username.
        username: String,
        /// Which hash.
        hash: ScramHash,
    },
    /// Ask the vhost's auth plugin who this session is (its mechanism succeeded); answer with
    /// `Input::Identified`. The shell adds the `token` of the connection URL.
    Identify {
        /// Vhost.
        vhost: String,
        /// Mechanism.
        mechanism: Mechanism,
        /// Normalized username (empty for ANONYMOUS).
        username: String,
    },
    /// The user authenticated (for audit and metrics).
    Authenticated {
        /// Bare JID.
        jid: Jid,
        /// Mechanism.
        mechanism: Mechanism,
    },
    /// SASL failed (for audit and metrics).
    AuthFailed {
        /// Mechanism.
        mechanism: Mechanism,
        /// Condition.
        condition: &'static str,
    },
    /// Register `jid` (bare) with `resource` (or a generated one) in the router.
    Bind {
        /// Authenticated bare JID.
        jid: Jid,
        /// Requested resource, if any.
        resource: Option<String>,
        /// What the auth plugin said about the session, if anything.
        identity: Option<Arc<Identity>>,
    },
    /// Route a stanza sent by the session (`from` stamped).
    Route(Element),
    /// Register a resumption id for this session in the router.
    EnableResumption,
    /// Hand this transport to the detached session `previd` (XEP-0198 §5).
    Resume {
        /// The id the client presents.
        previd: String,
        /// The client's count of stanzas it received.
        h: u32,
        /// Who is asking.
        jid: Jid,
    },
    /// The transport is gone but the session waits for resumption until the deadline.
    Detached,
    /// Close the transport (after writing what precedes). The session is over.
    Close,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the peer's stream header.
    ExpectHeader,
    /// Features sent; waiting for STARTTLS or SASL `<auth/>`.
    ExpectAuth,
    /// A SASL exchange in progress; `waiting` while the auth plugin is asked.
    Sasl {
        mech: Mechanism,
        server: SaslServer,
        waiting: bool,
    },
    /// `<proceed/>` sent; waiting for the transport's TLS handshake.
    StartingTls,
    /// Authenticated; waiting for the restarted stream header.
    ExpectRestart,
    /// Waiting for `<bind/>` (or `<resume/>`).
    ExpectBind,
    /// Bind request sent to the router.
    Binding { iq_id: String },
    /// Resumption request sent to the router.
    Resuming,
    /// Resource bound: stanzas flow.
    Established,
    /// Transport lost; waiting for resumption.
    Detached { until: Instant },
    /// Done.
    Closed,
}

/// One c2s stream.
#[derive(Debug)]
pub struct C2sStream {
    config: C2sConfig,
    framing: Framing,
    parser: StreamParser,
    /// Framed input waiting to be processed (framed modes only).
    frames: VecDeque<Event>,
    phase: Phase,
    vhost: Option<String>,
    encrypted: bool,
    header_sent: bool,
    auth: Option<Authenticated>,
    /// A SASL success waiting for `Input::Identified`: the node and `<success/>` data.
    identifying: Option<(String, Option<Vec<u8>>)>,
    /// What the auth plugin said about this session.
    identity: Option<Arc<Identity>>,
    full_jid: Option<Jid>,
    auth_failures: u32,
    deadline: Option<Instant>,
    sm: Option<SmState>,
    out: VecDeque<Output>,
    write_buf: Vec<u8>,
}

impl C2sStream {
    /// A new stream; `encrypted` is true when the transport already is (direct TLS, HTTPS).
    pub fn new(config: C2sConfig, framing: Framing, encrypted: bool, now: Instant) -> Self {
        let parser = StreamParser::new(config.xml_limits.clone());
        let deadline = Some(now + config.unauthenticated_timeout);
        C2sStream {
            config,
            framing,
            parser,
            frames: VecDeque::new(),
            phase: Phase::ExpectHeader,
            vhost: None,
            encrypted,
            header_sent: false,
            auth: None,
            identifying: None,
            identity: None,
            full_jid: None,
            auth_failures: 0,
            deadline,
            sm: None,
            out: VecDeque::new(),
            write_buf: Vec::new(),
        }
    }

    /// The bound full JID, once established.
    pub fn full_jid(&self) -> Option<&Jid> {
        self.full_jid.as_ref()
    }

    /// The vhost this stream is for, once the header arrived.
    pub fn vhost(&self) -> Option<&str> {
        self.vhost.as_deref()
    }

    /// True once the stream is closed for good.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// True while detached and waiting for resumption.
    pub fn is_detached(&self) -> bool {
        matches!(self.phase, Phase::Detached { .. })
    }

    /// When `Input::Timeout` is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Detached { until } => Some(until),
            Phase::Closed => None,
            _ => self.deadline,
        }
    }

    /// Next effect, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.flush_writes();
        self.out.pop_front()
    }

    /// Unacknowledged stanzas left when the session ends for good, so the caller can bounce
    /// them (RFC 6121 §8.5.3.2.1 style) instead of losing them silently.
    pub fn take_undelivered(&mut self) -> Vec<Element> {
        self.sm
            .as_mut()
            .map(SmState::take_unacked)
            .unwrap_or_default()
            .into_iter()
            .map(Outbound::into_element)
            .collect()
    }

    /// Move this stream's unprocessed input out, for handing a freshly opened transport to a
    /// detached session (XEP-0198 resumption). Put it back with `restore_input` if the
    /// handoff fails.
    pub fn take_input(&mut self) -> PendingInput {
        PendingInput {
            framing: self.framing,
            parser: std::mem::replace(
                &mut self.parser,
                StreamParser::new(self.config.xml_limits.clone()),
            ),
            frames: std::mem::take(&mut self.frames),
        }
    }

    /// Undo `take_input` after a failed handoff.
    pub fn restore_input(&mut self, input: PendingInput) {
        self.parser = input.parser;
        self.frames = input.frames;
    }

    /// Resume this (detached or still attached) session on a new transport whose stream is
    /// already open and authenticated: `input` continues that stream, `h` is the client's count.
    /// Without `keep_resumable` (the id was single-use), the session ends with its new
    /// transport instead of waiting to be resumed again.
    pub fn resume(
        &mut self,
        now: Instant,
        input: PendingInput,
        h: u32,
        encrypted: bool,
        keep_resumable: bool,
    ) {
        self.framing = input.framing;
        self.parser = input.parser;
        self.frames = input.frames;
        self.encrypted = encrypted;
        self.header_sent = true;
        self.write_buf.clear();
        self.out.clear();
        let Some(sm) = self.sm.as_mut() else {
            self.phase = Phase::Closed;
            return;
        };
        sm.resumable &= keep_resumable;
        if let Err(e) = sm.ack(h) {
            self.stream_error("undefined-condition", Some(&e.to_string()));
            return;
        }
        let id = sm.id.clone().unwrap_or_default();
        let resumed = Element::builder("resumed", ns::SM)
            .attr("previd", id)
            .attr("h", sm.inbound.to_string())
            .build();
        let replay: Vec<Outbound> = sm.unacked().cloned().collect();
        self.write(&resumed);
        for stanza in &replay {
            self.write_outbound(stanza);
        }
        self.phase = Phase::Established;
        self.deadline = None;
        self.drain_parser(now);
    }

    /// Feed one input.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        match input {
            Input::Bytes(bytes) => {
                if self.framing.is_framed() {
                    return self.stream_error("not-well-formed", Some("Unframed bytes."));
                }
                if let Err(e) = self.parser.feed(bytes) {
                    self.xml_error(&e);
                    return;
                }
                self.drain_parser(now);
            }
            Input::Frame(frame) => match framing::ws_event(frame, &self.config.xml_limits) {
                Ok(event) => self.queue_frame(now, event),
                Err(e) => self.xml_error(&e),
            },
            Input::Event(event) => self.queue_frame(now, event),
            Input::TlsEstablished => {
                if !matches!(self.phase, Phase::StartingTls) {
                    return;
                }
                self.encrypted = true;
                self.parser.reset();
                self.header_sent = false;
                self.phase = Phase::ExpectHeader;
            }
            Input::PasswordChecked(result) => {
                self.plugin_answered(
                    now,
                    result.map(|ok| move |s: &mut SaslServer| s.password_checked(ok)),
                );
            }
            Input::Credentials(result) => {
                self.plugin_answered(
                    now,
                    result.map(|c| move |s: &mut SaslServer| s.credentials(c)),
                );
            }
            Input::Identified(result) => self.identified(now, result),
            Input::Bound(result) => {
                self.bound(result);
                self.drain_parser(now);
            }
            Input::ResumptionEnabled(id) => {
                let Some(sm) = self.sm.as_mut() else { return };
                sm.resumable = true;
                sm.id = Some(id.clone());
                let enabled = Element::builder("enabled", ns::SM)
                    .attr("id", id)
                    .attr("resume", "true")
                    .attr("max", self.config.sm_resume_timeout.as_secs().to_string())
                    .build();
                self.write(&enabled);
            }
            Input::ResumeFailed => {
                if matches!(self.phase, Phase::Resuming) {
                    self.phase = Phase::ExpectBind;
                    let mut failed = Element::new("failed", ns::SM);
                    failed.append_child(Element::new("item-not-found", ns::STANZAS));
                    self.write(&failed);
                    self.drain_parser(now);
                }
            }
            Input::Deliver(stanza) => self.deliver(stanza),
            Input::Timeout => self.timeout(now),
            Input::TransportClosed => self.transport_closed(now),
            Input::Shutdown => self.stream_error("system-shutdown", None),
            Input::Conflict => self.stream_error(
                "conflict",
                Some("Replaced by a new session with the same resource."),
            ),
            Input::HostGone => {
                self.stream_error("host-gone", Some("This domain is no longer served here."))
            }
        }
    }

    fn drain_parser(&mut self, now: Instant) {
        // While waiting on an async answer, leave later elements in the parser buffer.
        while !matches!(
            self.phase,
            Phase::Closed
                | Phase::Binding { .. }
                | Phase::Resuming
                | Phase::Detached { .. }
                | Phase::StartingTls
                | Phase::Sasl { waiting: true, .. }
        ) {
            let next = if self.framing.is_framed() {
                Ok(self.frames.pop_front())
            } else {
                self.parser.next_event()
            };
            match next {
                Ok(Some(Event::StreamOpen(header))) => self.stream_open(header),
                Ok(Some(Event::Stanza(el))) => self.element(now, el),
                Ok(Some(Event::StreamClose)) => {
                    self.write_close();
                    self.close();
                }
                Ok(None) => break,
                Err(e) => self.xml_error(&e),
            }
        }
    }

    /// Queue one framed event and process what can be processed now.
    fn queue_frame(&mut self, now: Instant, event: Event) {
        if !self.framing.is_framed() {
            return self.stream_error("not-well-formed", Some("Framed input on a byte stream."));
        }
        if self.frames.len() >= MAX_QUEUED_FRAMES {
            return self.stream_error("policy-violation", Some("Too many queued frames."));
        }
        self.frames.push_back(event);
        self.drain_parser(now);
    }

    fn stream_open(&mut self, header: xml::StreamHeader) {
        let expect = matches!(self.phase, Phase::ExpectHeader | Phase::ExpectRestart);
        let to = header.to.as_deref().map(str::to_ascii_lowercase);
        self.send_header(to.as_deref());
        if !expect {
            return self.stream_error("not-well-formed", Some("Unexpected stream header."));
        }
        if header.default_ns != ns::CLIENT {
            return self.stream_error("invalid-namespace", Some("Expected jabber:client."));
        }
        if header.version.as_deref() != Some("1.0") {
            return self.stream_error(
                "unsupported-version",
                Some("Only XMPP 1.0 streams are served."),
            );
        }
        let Some(to) = to.filter(|d| self.config.vhosts.contains_key(d)) else {
            return self.stream_error("host-unknown", None);
        };
        if let Some(v) = &self.vhost
            && *v != to
        {
            return self.stream_error(
                "host-unknown",
                Some("The restarted stream names another host."),
            );
        }
        self.vhost = Some(to);
        let features = self.features();
        if self.framing.is_framed() {
            self.out
                .push_back(Output::Frame(framing::features_frame(&features)));
        } else {
            self.write_raw(b"<stream:features>");
            for f in &features {
                f.write_to(&mut self.write_buf, "");
            }
            self.write_raw(b"</stream:features>");
        }
        self.phase = if self.auth.is_some() {
            Phase::ExpectBind
        } else {
            Phase::ExpectAuth
        };
    }

    /// STARTTLS exists only on a plain byte stream (WebSocket and BOSH get TLS from HTTPS).
    fn starttls_offered(&self) -> bool {
        !self.encrypted && self.config.starttls_available && !self.framing.is_framed()
    }

    fn policy(&self) -> Option<&VhostPolicy> {
        self.vhost.as_ref().and_then(|v| self.config.vhosts.get(v))
    }

    fn features(&self) -> Vec<Element> {
        let mut features = Vec::new();
        let Some(policy) = self.policy() else {
            return features;
        };
        if self.auth.is_some() {
            features.push(Element::new("bind", ns::BIND));
            let mut session = Element::new("session", ns::SESSION);
            session.append_child(Element::new("optional", ns::SESSION));
            features.push(session);
            if self.config.sm_enabled && self.framing != Framing::Bosh {
                features.push(Element::new("sm", ns::SM));
            }
            return features;
        }
        if self.starttls_offered() {
            let mut tls = Element::new("starttls", ns::TLS);
            if !policy.allow_unencrypted {
                tls.append_child(Element::new("required", ns::TLS));
            }
            features.push(tls);
        }
        if self.encrypted || policy.allow_unencrypted {
            let mut mechs = Element::new("mechanisms", ns::SASL);
            for m in &policy.mechanisms {
                let mut el = Element::new("mechanism", ns::SASL);
                el.append_text(m.name());
                mechs.append_child(el);
            }
            features.push(mechs);
        }
        features
    }

    fn element(&mut self, now: Instant, el: Element) {
        match &self.phase {
            Phase::ExpectAuth => self.pre_auth(now, el),
            Phase::Sasl { .. } => self.sasl_element(now, el),
            Phase::ExpectBind => self.pre_bind(el),
            Phase::Established => self.established(el),
            Phase::ExpectHeader | Phase::ExpectRestart => {
                self.stream_error("not-well-formed", Some("Expected a stream header."))
            }
            _ => {}
        }
    }

    fn pre_auth(&mut self, now: Instant, el: Element) {
        if el.is("starttls", ns::TLS) {
            if !self.starttls_offered() {
                return self.stream_error("policy-violation", Some("TLS is not available here."));
            }
            self.write(&Element::new("proceed", ns::TLS));
            self.flush_writes();
            self.phase = Phase::StartingTls;
            self.out.push_back(Output::StartTls);
            return;
        }
        if !el.is("auth", ns::SASL) {
            return self.stream_error("not-authorized", Some("Authenticate first."));
        }
        let Some(policy) = self.policy() else { return };
        if !self.encrypted && !policy.allow_unencrypted {
            return self.sasl_failure_element("encryption-required", None);
        }
        let mech = el.attr("mechanism").and_then(Mechanism::from_name);
        let Some(mech) = mech.filter(|m| policy.mechanisms.contains(m)) else {
            return self.sasl_failure_element("invalid-mechanism", None);
        };
        let initial = match decode_sasl_payload(&el.text()) {
            Ok(v) => v,
            Err(()) => return self.sasl_failure_element("incorrect-encoding", None),
        };
        let cx = sasl::SaslContext {
            vhost: self.vhost.clone().unwrap_or_default(),
            secret: self.config.sasl_secret.clone(),
            server_nonce: sasl::new_nonce(self.config.entropy.as_ref()),
        };
        let (server, step) = SaslServer::start(mech, initial, cx);
        self.phase = Phase::Sasl {
            mech,
            server,
            waiting: false,
        };
        self.sasl_step(now, step);
    }

    fn sasl_element(&mut self, now: Instant, el: Element) {
        let Phase::Sasl { server, .. } = &mut self.phase else {
            return;
        };
        let step = if el.is("response", ns::SASL) {
            match decode_sasl_payload(&el.text()) {
                Ok(data) => server.response(data.unwrap_or_default()),
                Err(()) => SaslStep::Failure(SaslFailure::IncorrectEncoding),
            }
        } else if el.is("abort", ns::SASL) {
            server.abort()
        } else {
            return self.stream_error("not-authorized", Some("SASL exchange in progress."));
        };
        self.sasl_step(now, step);
    }

    /// The auth plugin answered (`Err`: it failed, which is a temporary failure to the peer).
    fn plugin_answered(
        &mut self,
        now: Instant,
        answer: Result<impl FnOnce(&mut SaslServer) -> SaslStep, ()>,
    ) {
        let Phase::Sasl {
            server,
            waiting: true,
            ..
        } = &mut self.phase
        else {
            return;
        };
        let step = match answer {
            Ok(apply) => apply(server),
            Err(()) => SaslStep::Failure(SaslFailure::TemporaryAuthFailure),
        };
        self.sasl_answered(now, step);
    }

    fn sasl_answered(&mut self, now: Instant, step: SaslStep) {
        if let Phase::Sasl { waiting, .. } = &mut self.phase {
            *waiting = false;
        }
        self.sasl_step(now, step);
        self.drain_parser(now);
    }

    fn set_sasl_waiting(&mut self) {
        if let Phase::Sasl { waiting, .. } = &mut self.phase {
            *waiting = true;
        }
    }

    fn sasl_step(&mut self, now: Instant, step: SaslStep) {
        let Phase::Sasl { mech, .. } = &self.phase else {
            return;
        };
        let mech = *mech;
        let vhost = self.vhost.clone().unwrap_or_default();
        match step {
            SaslStep::Challenge(data) => {
                let mut ch = Element::new("challenge", ns::SASL);
                ch.append_text(&encode_sasl_payload(&data));
                self.write(&ch);
            }
            SaslStep::CheckPassword { username, password } => {
                match normalize_username(&username, &vhost) {
                    Some(username) => {
                        self.set_sasl_waiting();
                        self.out.push_back(Output::CheckPassword {
                            vhost,
                            username,
                            password,
                        });
                    }
                    None => self.sasl_step(now, SaslStep::Failure(SaslFailure::NotAuthorized)),
                }
            }
            SaslStep::FetchCredentials { username, hash } => {
                match normalize_username(&username, &vhost) {
                    Some(username) => {
                        self.set_sasl_waiting();
                        self.out.push_back(Output::FetchCredentials {
                            vhost,
                            username,
                            hash,
                        });
                    }
                    // Unknown-user path: the mechanism finishes with dummy credentials.
                    None => self.sasl_step(now, SaslStep::Failure(SaslFailure::NotAuthorized)),
                }
            }
            SaslStep::Success {
                username,
                additional_data,
            } => {
                let node = if mech == Mechanism::Anonymous {
                    entropy::uuid(self.config.entropy.as_ref()).to_string()
                } else {
                    match normalize_username(&username, &vhost) {
                        Some(n) => n,
                        None => {
                            return self
                                .sasl_step(now, SaslStep::Failure(SaslFailure::NotAuthorized));
                        }
                    }
                };
                let identify = self.config.vhosts.get(&vhost).is_some_and(|p| p.identify);
                if identify {
                    let username = if mech == Mechanism::Anonymous {
                        String::new()
                    } else {
                        node.clone()
                    };
                    self.identifying = Some((node, additional_data));
                    self.set_sasl_waiting();
                    self.out.push_back(Output::Identify {
                        vhost,
                        mechanism: mech,
                        username,
                    });
                    return;
                }
                self.sasl_succeeded(now, mech, &node, additional_data);
            }
            SaslStep::Failure(failure) => self.sasl_failed(mech, failure, None),
        }
    }

    /// The plugin said who the session is, or refused it.
    fn identified(
        &mut self,
        now: Instant,
        result: Result<Option<Identity>, (SaslFailure, String)>,
    ) {
        let Phase::Sasl {
            mech,
            waiting: true,
            ..
        } = &mut self.phase
        else {
            return;
        };
        let mech = *mech;
        let Some((node, additional_data)) = self.identifying.take() else {
            return;
        };
        match result {
            Ok(identity) => {
                self.identity = identity.map(Arc::new);
                self.sasl_succeeded(now, mech, &node, additional_data);
            }
            Err((failure, text)) => self.sasl_failed(mech, failure, Some(&text)),
        }
        self.drain_parser(now);
    }

    fn sasl_succeeded(
        &mut self,
        now: Instant,
        mech: Mechanism,
        node: &str,
        additional_data: Option<Vec<u8>>,
    ) {
        let vhost = self.vhost.clone().unwrap_or_default();
        let jid = Jid::bare_from(node, &vhost);
        let mut success = Element::new("success", ns::SASL);
        if let Some(data) = additional_data {
            success.append_text(&B64.encode(data));
        }
        self.write(&success);
        self.out.push_back(Output::Authenticated {
            jid: jid.clone(),
            mechanism: mech,
        });
        self.auth = Some(Authenticated(jid));
        self.deadline = Some(now + self.config.unauthenticated_timeout);
        if !self.framing.is_framed() {
            self.parser.restart();
        }
        self.header_sent = false;
        self.phase = Phase::ExpectRestart;
    }

    fn sasl_failed(&mut self, mech: Mechanism, failure: SaslFailure, text: Option<&str>) {
        self.out.push_back(Output::AuthFailed {
            mechanism: mech,
            condition: failure.condition(),
        });
        self.phase = Phase::ExpectAuth;
        self.sasl_failure_element(failure.condition(), text);
    }

    fn sasl_failure_element(&mut self, condition: &'static str, text: Option<&str>) {
        let mut failure = Element::new("failure", ns::SASL);
        failure.append_child(Element::new(condition, ns::SASL));
        if let Some(text) = text {
            let mut t = Element::new("text", ns::SASL);
            t.append_text(text);
            failure.append_child(t);
        }
        self.write(&failure);
        self.phase = Phase::ExpectAuth;
        self.auth_failures += 1;
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.stream_error(
                "policy-violation",
                Some("Too many failed authentication attempts."),
            );
        }
    }

    fn pre_bind(&mut self, el: Element) {
        if el.is("enable", ns::SM) || el.is("r", ns::SM) || el.is("a", ns::SM) {
            // XEP-0198 §3: enabling before binding is only meaningful for resumption.
            let mut failed = Element::new("failed", ns::SM);
            failed.append_child(Element::new("unexpected-request", ns::STANZAS));
            return self.write(&failed);
        }
        if el.is("resume", ns::SM) {
            return self.resume_request(&el);
        }
        if Kind::of(&el) != Some(Kind::Iq) {
            return self.stream_error("not-authorized", Some("Bind a resource first."));
        }
        let Some(bind) = el
            .get_child("bind", ns::BIND)
            .filter(|_| el.attr("type") == Some("set"))
        else {
            let err = StanzaError::new(ErrorType::Auth, "not-authorized")
                .with_text("Bind a resource first.");
            return self.reply_error(&el, &err);
        };
        let resource = bind
            .get_child("resource", ns::BIND)
            .map(Element::text)
            .filter(|r| !r.trim().is_empty());
        let Some(auth) = self.auth.clone() else {
            return;
        };
        if let Some(r) = &resource
            && auth.jid().with_resource(r).is_err()
        {
            return self.reply_error(&el, &StanzaError::new(ErrorType::Modify, "bad-request"));
        }
        self.phase = Phase::Binding {
            iq_id: el.attr("id").unwrap_or_default().to_owned(),
        };
        self.out.push_back(Output::Bind {
            jid: auth.jid().clone(),
            resource,
            identity: self.identity.clone(),
        });
    }

    fn resume_request(&mut self, el: &Element) {
        let previd = el.attr("previd").map(str::to_owned);
        let h = el.attr("h").and_then(|h| h.parse::<u32>().ok());
        let (Some(previd), Some(h)) = (previd, h) else {
            let mut failed = Element::new("failed", ns::SM);
            failed.append_child(Element::new("bad-request", ns::STANZAS));
            return self.write(&failed);
        };
        let Some(auth) = &self.auth else { return };
        self.out.push_back(Output::Resume {
            previd,
            h,
            jid: auth.jid().clone(),
        });
        self.phase = Phase::Resuming;
    }

    fn bound(&mut self, result: Result<Jid, StanzaError>) {
        let Phase::Binding { iq_id } = &self.phase else {
            return;
        };
        let iq_id = iq_id.clone();
        match result {
            Ok(full) => {
                let mut jid = Element::new("jid", ns::BIND);
                jid.append_text(&full.to_string());
                let mut bind = Element::new("bind", ns::BIND);
                bind.append_child(jid);
                let mut iq = Element::builder("iq", ns::CLIENT)
                    .attr("type", "result")
                    .attr("id", iq_id)
                    .build();
                iq.append_child(bind);
                self.write(&iq);
                self.full_jid = Some(full);
                self.deadline = None;
                self.phase = Phase::Established;
            }
            Err(err) => {
                let iq = Element::builder("iq", ns::CLIENT)
                    .attr("type", "set")
                    .attr("id", iq_id)
                    .build();
                self.phase = Phase::ExpectBind;
                self.reply_error(&iq, &err);
            }
        }
    }

    fn established(&mut self, mut el: Element) {
        if el.ns() == ns::SM {
            return self.sm_element(&el);
        }
        let Some(kind) = Kind::of(&el) else {
            return self.stream_error("unsupported-stanza-type", None);
        };
        if let Some(sm) = self.sm.as_mut() {
            sm.count_inbound();
        }
        let Some(full) = self.full_jid.clone() else {
            return;
        };
        if let Some(from) = el.attr("from") {
            match Jid::parse(from) {
                Ok(f) if f == full || f == full.bare() => {}
                _ => return self.stream_error("invalid-from", None),
            }
        }
        if let Some(to) = el.attr("to") {
            match Jid::parse(to) {
                Ok(jid) => el.set_attr("to", jid.to_string()),
                Err(_) => {
                    return self
                        .reply_error(&el, &StanzaError::new(ErrorType::Modify, "jid-malformed"));
                }
            }
        }
        el.set_attr("from", full.to_string());
        if kind == Kind::Iq
            && el.get_child("session", ns::SESSION).is_some()
            && el.attr("to").is_none()
        {
            // RFC 3921 legacy session establishment: a no-op today.
            let reply = stanza::iq_result(&el);
            return self.deliver(reply.into());
        }
        self.out.push_back(Output::Route(el));
    }

    fn sm_element(&mut self, el: &Element) {
        match el.name() {
            "enable" => {
                if self.sm.is_some() || !self.config.sm_enabled || self.framing == Framing::Bosh {
                    let mut failed = Element::new("failed", ns::SM);
                    failed.append_child(Element::new("unexpected-request", ns::STANZAS));
                    return self.write(&failed);
                }
                self.sm = Some(SmState::new(
                    self.config.sm_max_unacked,
                    self.config.sm_max_unacked_bytes,
                ));
                if matches!(el.attr("resume"), Some("true" | "1")) {
                    self.out.push_back(Output::EnableResumption);
                } else {
                    self.write(&Element::new("enabled", ns::SM));
                }
            }
            "r" => {
                let Some(sm) = &self.sm else { return };
                let a = Element::builder("a", ns::SM)
                    .attr("h", sm.inbound.to_string())
                    .build();
                self.write(&a);
            }
            "a" => {
                let Some(sm) = self.sm.as_mut() else { return };
                let Some(h) = el.attr("h").and_then(|h| h.parse::<u32>().ok()) else {
                    return self.stream_error("undefined-condition", Some("Missing or bad h."));
                };
                if let Err(e) = sm.ack(h) {
                    self.stream_error("undefined-condition", Some(&e.to_string()));
                }
            }
            _ => self.stream_error("unsupported-stanza-type", None),
        }
    }

    fn deliver(&mut self, stanza: Outbound) {
        match self.phase {
            Phase::Established => {
                self.write_outbound(&stanza);
                self.track_outbound(stanza, true);
            }
            Phase::Detached { .. } => self.track_outbound(stanza, false),
            _ => {}
        }
    }

    fn track_outbound(&mut self, stanza: Outbound, attached: bool) {
        let Some(sm) = self.sm.as_mut() else { return };
        if !sm.push_outbound(stanza) {
            return self.stream_error("policy-violation", Some("Too many unacknowledged stanzas."));
        }
        if attached && sm.unacked_len() % SM_REQUEST_EVERY == 0 {
            self.write(&Element::new("r", ns::SM));
        }
    }

    fn timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Detached { until } if now >= until => self.close(),
            Phase::Detached { .. } | Phase::Closed => {}
            _ => {
                if self.deadline.is_some_and(|d| now >= d) {
                    self.stream_error("connection-timeout", Some("Not authenticated in time."));
                }
            }
        }
    }

    fn transport_closed(&mut self, now: Instant) {
        let resumable = matches!(self.phase, Phase::Established)
            && self.sm.as_ref().is_some_and(|sm| sm.resumable);
        if resumable {
            self.write_buf.clear();
            self.phase = Phase::Detached {
                until: now + self.config.sm_resume_timeout,
            };
            self.out.push_back(Output::Detached);
        } else {
            self.close();
        }
    }

    fn reply_error(&mut self, el: &Element, err: &StanzaError) {
        if let Some(reply) = stanza::error_reply(el, err) {
            self.deliver_or_write(reply);
        }
    }

    fn deliver_or_write(&mut self, el: Element) {
        if matches!(self.phase, Phase::Established) {
            self.deliver(el.into());
        } else {
            self.write(&el);
        }
    }

    fn xml_error(&mut self, e: &XmlError) {
        self.stream_error(e.condition(), Some(&e.to_string()));
    }

    /// Send a stream error and close (RFC 6120 §4.9.1.1: header first if not yet sent).
    fn stream_error(&mut self, condition: &str, text: Option<&str>) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        self.send_header(None);
        let err = stanza::stream_error(condition, text);
        if self.framing.is_framed() {
            self.out
                .push_back(Output::Frame(framing::error_frame(&err)));
        } else {
            self.write_raw(b"<stream:error>");
            for child in err.children() {
                child.write_to(&mut self.write_buf, ns::STREAMS);
            }
            self.write_raw(b"</stream:error>");
        }
        self.write_close();
        self.close();
    }

    fn close(&mut self) {
        self.flush_writes();
        self.phase = Phase::Closed;
        self.out.push_back(Output::Close);
    }

    fn send_header(&mut self, to: Option<&str>) {
        if self.header_sent {
            return;
        }
        self.header_sent = true;
        let from = self
            .vhost
            .as_deref()
            .or(to.filter(|d| self.config.vhosts.contains_key(*d)));
        match self.framing {
            Framing::Stream => {}
            Framing::WebSocket => {
                let open = framing::ws_open(
                    from,
                    &entropy::uuid(self.config.entropy.as_ref()).to_string(),
                );
                self.out.push_back(Output::Frame(open));
                return;
            }
            Framing::Bosh => return,
        }
        let mut header = String::from("<?xml version='1.0'?><stream:stream xmlns='jabber:client' ");
        header.push_str(
            "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en' id='",
        );
        header.push_str(&entropy::uuid(self.config.entropy.as_ref()).to_string());
        header.push('\'');
        if let Some(from) = from {
            header.push_str(" from='");
            let mut esc = Vec::new();
            xml::escape_attr(from, &mut esc);
            header.push_str(&String::from_utf8_lossy(&esc));
            header.push('\'');
        }
        header.push('>');
        self.write_raw(header.as_bytes());
    }

    /// Send one top-level element.
    fn write(&mut self, el: &Element) {
        if self.framing.is_framed() {
            self.out
                .push_back(Output::Frame(framing::element_frame(el)));
        } else {
            el.write_to(&mut self.write_buf, ns::CLIENT);
        }
    }

    fn write_outbound(&mut self, stanza: &Outbound) {
        if self.framing.is_framed() {
            let mut frame = Vec::with_capacity(256);
            stanza.write_to(&mut frame, true);
            self.out.push_back(Output::Frame(frame));
        } else {
            stanza.write_to(&mut self.write_buf, false);
        }
    }

    /// Our side of the stream's end.
    fn write_close(&mut self) {
        match self.framing {
            Framing::Stream => self.write_raw(b"</stream:stream>"),
            Framing::WebSocket => self
                .out
                .push_back(Output::Frame(framing::WS_CLOSE.to_vec())),
            Framing::Bosh => {}
        }
    }

    fn write_raw(&mut self, bytes: &[u8]) {
        self.write_buf.extend_from_slice(bytes);
    }

    fn flush_writes(&mut self) {
        if !self.write_buf.is_empty() {
            let bytes = std::mem::take(&mut self.write_buf);
            self.out.push_back(Output::Write(bytes));
        }
    }
}

/// Decode a SASL element's base64 text: absent/empty → `None`, `=` → empty (RFC 6120 §6.4.2).
fn decode_sasl_payload(text: &str) -> Result<Option<Vec<u8>>, ()> {
    let text = text.trim();
    match text {
        "" => Ok(None),
        "=" => Ok(Some(Vec::new())),
        _ => B64.decode(text).map(Some).map_err(|_| ()),
    }
}

fn encode_sasl_payload(data: &[u8]) -> String {
    if data.is_empty() {
        "=".to_owned()
    } else {
        B64.encode(data)
    }
}

/// The localpart a SASL username stands for on `vhost`: lowercased, `user@vhost` accepted,
/// anything that is not a valid localpart refused.
fn normalize_username(username: &str, vhost: &str) -> Option<String> {
    let node = match username.split_once('@') {
        Some((node, domain)) if domain.eq_ignore_ascii_case(vhost) => node,
        Some(_) => return None,
        None => username,
    };
    let node = node.to_lowercase();
    stanza::jid::valid_node(&node).then_some(node)
}
