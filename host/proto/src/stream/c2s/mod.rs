//! One client-to-server stream (RFC 6120): header exchange, STARTTLS, SASL, resource binding,
//! the legacy session element, XEP-0198 stream management, and the established phase where
//! stanzas are stamped, their addresses parsed once (`stanza::Stanza`), and handed to the
//! router.
//!
//! Core (sans-IO): bytes and answers come in through `handle_input`, effects leave through
//! `poll_output` (drain it after every input), time is passed in. Plugin calls, binding and
//! resumption leave as outputs and come back as inputs; nothing here awaits.
//!
//! This file owns the public types, the `Phase` enum and the dispatch: every datum that only
//! means something in some phases lives in those phases' values, so an impossible combination
//! (SM state before a bind, a SASL server after success, an identity without authentication)
//! cannot be represented. `C2sStream` keeps only what every phase shares: the configuration
//! and the `Io` (framing, parser, queued frames, outputs; io.rs). The phases' handlers live in
//! negotiate.rs (header, STARTTLS, SASL), bind.rs (bind, resume request) and established.rs
//! (stanzas, XEP-0198, detach and resumption).
//!
//! Invariants: no stanza is routed before a resource is bound, and a bound JID exists only via
//! the `Authenticated` value that SASL success creates; every stanza routed carries the
//! session's full JID as `from`; a stream error is always preceded by our stream header (whose
//! absence is a phase: `ExpectHeader` and `ExpectRestart` are exactly the phases where it has
//! not been written yet).
//! Spec: RFC 6120 §4–§8, RFC 6121 §8, XEP-0198, XEP-0206 (restart semantics).
//! Tests: `mod tests` in stream/tests.rs; end to end in tests/all/.

mod bind;
mod established;
mod io;
mod negotiate;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::io::Io;
use super::error::StreamCondition;
use super::framing::{self, Framing};
use super::sm::SmState;
use crate::entropy::Entropy;
use crate::identity::Identity;
use crate::sasl::{self, Mechanism, SaslFailure, SaslServer, ScramCredentials, ScramHash};
use crate::stanza::{Jid, Outbound, Stanza, StanzaError};
use crate::xml::{self, Element, Event, StreamParser, XmlError};

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
    pub vhosts: Arc<HashMap<String, VhostPolicy>>,
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

impl C2sConfig {
    /// A configuration serving `vhosts`, with the server's defaults for everything else:
    /// STARTTLS offered, XEP-0198 on with a 300 s resumption window and 10,000 stanzas or
    /// 8 MiB unacknowledged, 30 s to authenticate, default parser limits. Override fields with
    /// struct update syntax, so callers (tests, the fuzz crate) keep building when one is added.
    pub fn new(
        vhosts: impl Into<Arc<HashMap<String, VhostPolicy>>>,
        entropy: Arc<dyn Entropy>,
        sasl_secret: sasl::SaslSecret,
    ) -> Self {
        C2sConfig {
            vhosts: vhosts.into(),
            starttls_available: true,
            sm_enabled: true,
            sm_resume_timeout: Duration::from_secs(300),
            sm_max_unacked: 10_000,
            sm_max_unacked_bytes: 8 * 1024 * 1024,
            unauthenticated_timeout: Duration::from_secs(30),
            xml_limits: xml::Limits::default(),
            entropy,
            sasl_secret,
        }
    }
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
    /// Route a stanza sent by the session (`from` stamped; `from` and `to` parsed here, once).
    Route(Stanza),
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

/// Where the stream is, and what it knows there.
#[derive(Debug)]
enum Phase {
    /// Waiting for the peer's stream header: the first (`vhost` unknown yet) or the one after
    /// TLS (which must name `vhost` again). Our header is not written yet.
    ExpectHeader { vhost: Option<String>, pre: PreAuth },
    /// Features sent; waiting for STARTTLS or SASL `<auth/>`.
    ExpectAuth { vhost: String, pre: PreAuth },
    /// A SASL exchange in progress.
    Sasl {
        vhost: String,
        pre: PreAuth,
        sasl: Box<SaslExchange>,
    },
    /// `<proceed/>` sent; waiting for the transport's TLS handshake.
    StartingTls { vhost: String, pre: PreAuth },
    /// Authenticated; waiting for the restarted stream header. Our header is not written yet.
    ExpectRestart(Login),
    /// Waiting for `<bind/>` (or `<resume/>`).
    ExpectBind(Login),
    /// Bind request sent to the router; `iq_id` is the request to answer.
    Binding { login: Login, iq_id: String },
    /// Resumption request sent to the router.
    Resuming(Login),
    /// Resource bound: stanzas flow.
    Established(Session),
    /// Transport lost; waiting for resumption until `until`.
    Detached { session: Session, until: Instant },
    /// Done; what the shell may still ask about.
    Closed(Ended),
}

/// What a stream knows before SASL succeeds (carried across the STARTTLS restart).
#[derive(Debug)]
struct PreAuth {
    /// The transport is encrypted (direct TLS, HTTPS, or STARTTLS done).
    encrypted: bool,
    /// Failed authentication attempts so far (`MAX_AUTH_FAILURES` closes the stream).
    failures: u32,
    /// Authenticate by then.
    deadline: Instant,
}

/// One SASL exchange: the mechanism's server and what it waits for.
#[derive(Debug)]
struct SaslExchange {
    mech: Mechanism,
    server: SaslServer,
    awaiting: Awaiting,
}

/// What a SASL exchange waits for before reading more input.
#[derive(Debug)]
enum Awaiting {
    /// The peer's next `<response/>` or `<abort/>`.
    Peer,
    /// `Input::PasswordChecked` or `Input::Credentials`.
    Plugin,
    /// `Input::Identified`; then `<success/>` for `node`, with `additional_data`.
    Identity {
        node: String,
        additional_data: Option<Vec<u8>>,
    },
}

/// An authenticated, not yet bound stream.
#[derive(Debug)]
struct Login {
    auth: Authenticated,
    /// What the auth plugin said about the session, if it was asked.
    identity: Option<Arc<Identity>>,
    /// Bind (or resume) by then.
    deadline: Instant,
}

/// A bound session.
#[derive(Debug)]
struct Session {
    full: Jid,
    /// XEP-0198 state, once the peer enabled it.
    sm: Option<SmState>,
}

/// What a closed stream still answers: its vhost and JID (for the shell's audit and
/// accounting), and the stanzas the peer never acknowledged (`take_undelivered`).
#[derive(Debug, Default)]
struct Ended {
    vhost: Option<String>,
    full: Option<Jid>,
    unacked: Vec<Outbound>,
}

impl Phase {
    /// Our stream header is still to be written: `Some(vhost known so far)`.
    fn pending_header(&self) -> Option<Option<&str>> {
        match self {
            Phase::ExpectHeader { vhost, .. } => Some(vhost.as_deref()),
            Phase::ExpectRestart(login) => Some(Some(login.auth.vhost())),
            _ => None,
        }
    }

    /// Input may be processed now (no answer is awaited, the stream is attached and open).
    fn reads_input(&self) -> bool {
        match self {
            Phase::Sasl { sasl, .. } => matches!(sasl.awaiting, Awaiting::Peer),
            Phase::Closed(_)
            | Phase::Binding { .. }
            | Phase::Resuming(_)
            | Phase::Detached { .. }
            | Phase::StartingTls { .. } => false,
            _ => true,
        }
    }

    fn vhost(&self) -> Option<&str> {
        match self {
            Phase::ExpectHeader { vhost, .. } => vhost.as_deref(),
            Phase::ExpectAuth { vhost, .. }
            | Phase::Sasl { vhost, .. }
            | Phase::StartingTls { vhost, .. } => Some(vhost),
            Phase::ExpectRestart(login)
            | Phase::ExpectBind(login)
            | Phase::Binding { login, .. }
            | Phase::Resuming(login) => Some(login.auth.vhost()),
            Phase::Established(session) | Phase::Detached { session, .. } => {
                Some(session.full.domain())
            }
            Phase::Closed(ended) => ended.vhost.as_deref(),
        }
    }

    fn session_mut(&mut self) -> Option<&mut Session> {
        match self {
            Phase::Established(session) | Phase::Detached { session, .. } => Some(session),
            _ => None,
        }
    }
}

/// One c2s stream.
#[derive(Debug)]
pub struct C2sStream {
    config: C2sConfig,
    io: Io,
    phase: Phase,
}

impl C2sStream {
    /// A new stream; `encrypted` is true when the transport already is (direct TLS, HTTPS).
    pub fn new(config: C2sConfig, framing: Framing, encrypted: bool, now: Instant) -> Self {
        let io = Io::new(framing, StreamParser::new(config.xml_limits.clone()));
        let pre = PreAuth {
            encrypted,
            failures: 0,
            deadline: now + config.unauthenticated_timeout,
        };
        C2sStream {
            config,
            io,
            phase: Phase::ExpectHeader { vhost: None, pre },
        }
    }

    /// The bound full JID, once established.
    pub fn full_jid(&self) -> Option<&Jid> {
        match &self.phase {
            Phase::Established(session) | Phase::Detached { session, .. } => Some(&session.full),
            Phase::Closed(ended) => ended.full.as_ref(),
            _ => None,
        }
    }

    /// The vhost this stream is for, once the header arrived.
    pub fn vhost(&self) -> Option<&str> {
        self.phase.vhost()
    }

    /// True once the stream is closed for good.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed(_))
    }

    /// True while detached and waiting for resumption.
    pub fn is_detached(&self) -> bool {
        matches!(self.phase, Phase::Detached { .. })
    }

    /// When `Input::Timeout` is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::ExpectHeader { pre, .. }
            | Phase::ExpectAuth { pre, .. }
            | Phase::Sasl { pre, .. }
            | Phase::StartingTls { pre, .. } => Some(pre.deadline),
            Phase::ExpectRestart(login)
            | Phase::ExpectBind(login)
            | Phase::Binding { login, .. }
            | Phase::Resuming(login) => Some(login.deadline),
            Phase::Detached { until, .. } => Some(*until),
            Phase::Established(_) | Phase::Closed(_) => None,
        }
    }

    /// Next effect, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.io.poll_output()
    }

    /// Unacknowledged stanzas left when the session ends for good, so the caller can bounce
    /// them (RFC 6121 §8.5.3.2.1 style) instead of losing them silently.
    pub fn take_undelivered(&mut self) -> Vec<Element> {
        let unacked = match &mut self.phase {
            Phase::Closed(ended) => std::mem::take(&mut ended.unacked),
            phase => phase
                .session_mut()
                .and_then(|s| s.sm.as_mut())
                .map(SmState::take_unacked)
                .unwrap_or_default(),
        };
        unacked.into_iter().map(Outbound::into_element).collect()
    }

    /// Move this stream's unprocessed input out, for handing a freshly opened transport to a
    /// detached session (XEP-0198 resumption). Put it back with `restore_input` if the
    /// handoff fails.
    pub fn take_input(&mut self) -> PendingInput {
        self.io.take_input(&self.config.xml_limits)
    }

    /// Undo `take_input` after a failed handoff.
    pub fn restore_input(&mut self, input: PendingInput) {
        self.io.restore_input(input);
    }

    /// Feed one input.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        if self.is_closed() {
            return;
        }
        match input {
            Input::Bytes(bytes) => {
                if self.io.framing.is_framed() {
                    return self
                        .stream_error(StreamCondition::NotWellFormed, Some("Unframed bytes."));
                }
                if let Err(e) = self.io.parser.feed(bytes) {
                    return self.xml_error(&e);
                }
                self.drain_parser(now);
            }
            Input::Frame(frame) => match framing::ws_event(frame, &self.config.xml_limits) {
                Ok(event) => self.queue_frame(now, event),
                Err(e) => self.xml_error(&e),
            },
            Input::Event(event) => self.queue_frame(now, event),
            Input::TlsEstablished => self.tls_established(),
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
            Input::ResumptionEnabled(id) => self.resumption_enabled(id),
            Input::ResumeFailed => self.resume_failed(now),
            Input::Deliver(stanza) => self.deliver(stanza),
            Input::Timeout => self.timeout(now),
            Input::TransportClosed => self.transport_closed(now),
            Input::Shutdown => self.stream_error(StreamCondition::SystemShutdown, None),
            Input::Conflict => self.stream_error(
                StreamCondition::Conflict,
                Some("Replaced by a new session with the same resource."),
            ),
            Input::HostGone => self.stream_error(
                StreamCondition::HostGone,
                Some("This domain is no longer served here."),
            ),
        }
    }

    /// Process buffered input until it runs out or the phase waits for an answer (later
    /// elements then stay in the parser buffer or the frame queue).
    fn drain_parser(&mut self, now: Instant) {
        while self.phase.reads_input() {
            match self.io.next_event() {
                Ok(Some(Event::StreamOpen(header))) => self.stream_open(header),
                Ok(Some(Event::Stanza(el))) => self.element(now, el),
                Ok(Some(Event::StreamClose)) => {
                    self.io.write_close();
                    self.close();
                }
                Ok(None) => break,
                Err(e) => self.xml_error(&e),
            }
        }
    }

    /// Queue one framed event and process what can be processed now.
    fn queue_frame(&mut self, now: Instant, event: Event) {
        if !self.io.framing.is_framed() {
            return self.stream_error(
                StreamCondition::NotWellFormed,
                Some("Framed input on a byte stream."),
            );
        }
        if self.io.frames.len() >= MAX_QUEUED_FRAMES {
            return self.stream_error(
                StreamCondition::PolicyViolation,
                Some("Too many queued frames."),
            );
        }
        self.io.frames.push_back(event);
        self.drain_parser(now);
    }

    /// One top-level element, to the handler of the current phase.
    fn element(&mut self, now: Instant, el: Element) {
        match &self.phase {
            Phase::ExpectAuth { .. } => self.auth_element(now, el),
            Phase::Sasl { .. } => self.sasl_element(now, el),
            Phase::ExpectBind(_) => self.bind_element(el),
            Phase::Established(_) => self.established(el),
            Phase::ExpectHeader { .. } | Phase::ExpectRestart(_) => self.stream_error(
                StreamCondition::NotWellFormed,
                Some("Expected a stream header."),
            ),
            // Not reading input in the others.
            _ => {}
        }
    }

    /// Move the phase out to transition from it; put one back before anything that looks at
    /// it (a stream error on `Closed` is a no-op).
    fn take_phase(&mut self) -> Phase {
        std::mem::replace(&mut self.phase, Phase::Closed(Ended::default()))
    }

    fn timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_none_or(|d| now < d) {
            return;
        }
        if self.is_detached() {
            self.close();
        } else {
            self.stream_error(
                StreamCondition::ConnectionTimeout,
                Some("Not authenticated in time."),
            );
        }
    }

    fn reply_error(&mut self, el: &Element, err: &StanzaError) {
        if let Some(reply) = crate::stanza::error_reply(el, err) {
            if matches!(self.phase, Phase::Established(_)) {
                self.deliver(reply.into());
            } else {
                self.io.write(&reply);
            }
        }
    }

    fn xml_error(&mut self, e: &XmlError) {
        self.stream_error(StreamCondition::from(e), Some(&e.to_string()));
    }

    /// Send a stream error and close (RFC 6120 §4.9.1.1: header first if not yet sent).
    fn stream_error(&mut self, condition: StreamCondition, text: Option<&str>) {
        if self.is_closed() {
            return;
        }
        if let Some(from) = self.phase.pending_header() {
            self.io.header(from, self.config.entropy.as_ref());
        }
        self.fail(condition, text);
    }

    /// A stream error once our header is written.
    fn fail(&mut self, condition: StreamCondition, text: Option<&str>) {
        self.io.stream_error(condition, text);
        self.close();
    }

    /// End the stream: flush, move to `Closed`, say `Output::Close`.
    fn close(&mut self) {
        self.io.flush_writes();
        self.end();
        self.io.out.push_back(Output::Close);
    }

    /// Move to `Closed`, keeping what the shell may still ask for.
    fn end(&mut self) {
        let vhost = self.phase.vhost().map(str::to_owned);
        let ended = match self.take_phase() {
            Phase::Established(session) | Phase::Detached { session, .. } => Ended {
                vhost,
                unacked: session
                    .sm
                    .map(|mut sm| sm.take_unacked())
                    .unwrap_or_default(),
                full: Some(session.full),
            },
            Phase::Closed(ended) => ended,
            _ => Ended {
                vhost,
                ..Ended::default()
            },
        };
        self.phase = Phase::Closed(ended);
    }
}

impl Authenticated {
    /// The vhost authenticated on (the bare JID's domain).
    fn vhost(&self) -> &str {
        self.0.domain()
    }
}
