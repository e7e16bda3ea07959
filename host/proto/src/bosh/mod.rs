//! One BOSH session (XEP-0124, with the XMPP rules of XEP-0206): request ids and their window,
//! held requests (`hold`/`wait`), the response cache for retransmitted ids, `ack`, `pause`,
//! restarts, terminate, and the inactivity deadline. The XMPP stream itself is the c2s core
//! with `Framing::Bosh`; this module only unwraps `<body/>` into its events and wraps the
//! core's frames into responses.
//!
//! Core (sans-IO): requests and frames come in with the time, responses leave as outputs keyed
//! by an opaque `RequestId`; the shell owns the HTTP exchanges behind those ids.
//! Invariants: requests are processed strictly in `rid` order, each exactly once; every request
//! gets exactly one response (a retransmission gets the cached copy); at most `hold` requests
//! are held; frames leave in the order the stream produced them and none is dropped while the
//! session lives.
//! Spec: XEP-0124 §7–§12, §14, §17; XEP-0206 §5–§6. Tests: `mod tests` below; tests/all/bosh.rs.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::stream::framing;
use crate::xml::{self, Element, Event};

/// XEP-0124: the `<body/>` namespace.
pub const NS_HTTPBIND: &str = "http://jabber.org/protocol/httpbind";
/// XEP-0206: the namespace of `xmpp:version`, `xmpp:restart`.
pub const NS_XBOSH: &str = "urn:xmpp:xbosh";
/// Responses kept for retransmitted request ids.
const CACHED_RESPONSES: usize = 8;

/// Server-side bounds on what a client may ask for.
#[derive(Debug, Clone)]
pub struct BoshConfig {
    /// Longest a request is held (the client's `wait` is capped to this).
    pub max_wait: Duration,
    /// Most requests held at once (the client's `hold` is capped to this).
    pub max_hold: u32,
    /// How long the session lives with no request held.
    pub inactivity: Duration,
    /// Longest `pause` honoured.
    pub max_pause: Duration,
    /// Shortest interval between polls when `hold` is 0 (advertised as `polling`).
    pub polling: Duration,
    /// Bytes of frames waiting for a request (while the client is paused or between its
    /// requests) past which the session takes no more from its queue (`accepts_more`), so
    /// that further stanzas bounce there instead of piling up here.
    pub max_buffered_bytes: usize,
}

impl Default for BoshConfig {
    fn default() -> Self {
        BoshConfig {
            max_wait: Duration::from_secs(60),
            max_hold: 1,
            inactivity: Duration::from_secs(60),
            max_pause: Duration::from_secs(120),
            polling: Duration::from_secs(2),
            max_buffered_bytes: 1024 * 1024,
        }
    }
}

/// A parsed `<body/>`.
#[derive(Debug, Clone)]
pub struct Body {
    /// `rid`.
    pub rid: u64,
    /// `sid` (absent on the session creation request).
    pub sid: Option<String>,
    /// `to`.
    pub to: Option<String>,
    /// `wait`.
    pub wait: Option<u64>,
    /// `hold`.
    pub hold: Option<u32>,
    /// `ack`.
    pub ack: Option<u64>,
    /// `pause`.
    pub pause: Option<u64>,
    /// `type='terminate'`.
    pub terminate: bool,
    /// `xmpp:restart='true'`.
    pub restart: bool,
    /// The header the session request stands for (`to`, `xmpp:version`, `xml:lang`).
    pub header: Element,
    /// The payload stanzas, in `jabber:client` unless they say otherwise.
    pub children: Vec<Element>,
}

/// Why a request could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// Parse one request body.
///
/// # Errors
/// When it is not a well-formed `<body/>` in the httpbind namespace with a numeric `rid`.
pub fn parse_body(bytes: &[u8], limits: &xml::Limits) -> Result<Body, BadRequest> {
    let mut el = xml::parse_element(bytes, limits).map_err(|e| BadRequest(e.to_string()))?;
    if !el.is("body", NS_HTTPBIND) {
        return Err(BadRequest(
            "expected <body/> in the httpbind namespace".into(),
        ));
    }
    let rid = el
        .attr("rid")
        .and_then(|r| r.parse::<u64>().ok())
        .filter(|r| *r < (1 << 53))
        .ok_or_else(|| BadRequest("missing or malformed rid".into()))?;
    let num = |k: &str| el.attr(k).and_then(|v| v.parse::<u64>().ok());
    let xbosh = xbosh_attr(&el, "restart");
    let mut children = Vec::new();
    for child in el.children() {
        let mut c = child.clone();
        c.set_ns_recursive(NS_HTTPBIND, xml::ns::CLIENT);
        c.set_ns_recursive("", xml::ns::CLIENT);
        children.push(c);
    }
    let body = Body {
        rid,
        sid: el.attr("sid").map(str::to_owned),
        to: el.attr("to").map(|t| t.to_ascii_lowercase()),
        wait: num("wait"),
        hold: num("hold").and_then(|h| u32::try_from(h).ok()),
        ack: num("ack"),
        pause: num("pause"),
        terminate: el.attr("type") == Some("terminate"),
        restart: matches!(xbosh.as_deref(), Some("true" | "1")),
        header: Element::new("body", NS_HTTPBIND),
        children,
    };
    let version = xbosh_attr(&el, "version");
    el.clear_children();
    let mut header = el;
    if let Some(v) = version {
        header.set_attr("version", v);
    }
    Ok(Body { header, ..body })
}

/// An attribute in the `urn:xmpp:xbosh` namespace, whatever prefix the client bound it to.
fn xbosh_attr(el: &Element, local: &str) -> Option<String> {
    let prefix = el.attrs().find_map(|(k, v)| {
        k.strip_prefix("xmlns:")
            .filter(|_| v == NS_XBOSH)
            .map(str::to_owned)
    })?;
    el.attr(&format!("{prefix}:{local}")).map(str::to_owned)
}

/// Opaque handle for one HTTP exchange the shell keeps open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Effect requested by the session.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// Answer this exchange with this body.
    Respond(RequestId, Vec<u8>),
    /// Feed this event to the c2s stream.
    Stream(Event),
    /// The session is over: tell the stream its transport closed, then stop.
    Terminated,
}

#[derive(Debug)]
struct Held {
    rid: u64,
    id: RequestId,
    deadline: Instant,
    creation: bool,
}

/// One BOSH session.
#[derive(Debug)]
pub struct BoshSession {
    config: BoshConfig,
    sid: String,
    domain: String,
    wait: Duration,
    hold: usize,
    /// The next rid to process.
    next_rid: u64,
    /// Requests that arrived ahead of a gap, waiting for it to fill.
    early: BTreeMap<u64, (RequestId, Body)>,
    held: VecDeque<Held>,
    cache: VecDeque<(u64, Vec<u8>)>,
    frames: Vec<Vec<u8>>,
    /// Their bytes.
    buffered: usize,
    idle_deadline: Instant,
    /// Set once the session ended; requests still get this terminate body.
    terminated: Option<Vec<u8>>,
    linger_until: Option<Instant>,
    ack_requested: bool,
    out: VecDeque<Output>,
}

impl BoshSession {
    /// Start a session from its creation request (XEP-0124 §7); the response waits for the
    /// stream's features.
    pub fn create(
        config: BoshConfig,
        sid: String,
        domain: String,
        id: RequestId,
        body: Body,
        now: Instant,
    ) -> BoshSession {
        let wait = body
            .wait
            .map_or(config.max_wait, Duration::from_secs)
            .min(config.max_wait);
        let hold = body.hold.unwrap_or(1).min(config.max_hold) as usize;
        let mut s = BoshSession {
            idle_deadline: now + config.inactivity,
            config,
            sid,
            domain,
            wait,
            hold,
            next_rid: body.rid.wrapping_add(1),
            early: BTreeMap::new(),
            held: VecDeque::new(),
            cache: VecDeque::new(),
            frames: Vec::new(),
            buffered: 0,
            terminated: None,
            linger_until: None,
            ack_requested: body.ack == Some(1),
            out: VecDeque::new(),
        };
        s.held.push_back(Held {
            rid: body.rid,
            id,
            deadline: now + wait,
            creation: true,
        });
        s.out.push_back(Output::Stream(Event::StreamOpen(
            framing::header_from_open(&body.header),
        )));
        for child in body.children {
            s.out.push_back(Output::Stream(Event::Stanza(child)));
        }
        s
    }

    /// The session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The `wait` in force.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Next effect.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// True when the session is over and nothing is left to answer.
    pub fn is_finished(&self) -> bool {
        self.terminated.is_some() && self.linger_until.is_none()
    }

    /// When `timeout` is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.terminated.is_some() {
            return self.linger_until;
        }
        Some(
            self.held
                .iter()
                .map(|h| h.deadline)
                .min()
                .unwrap_or(self.idle_deadline),
        )
    }

    /// One request for this session.
    pub fn request(&mut self, now: Instant, id: RequestId, body: Body) {
        if let Some(t) = &self.terminated {
            let t = t.clone();
            self.out.push_back(Output::Respond(id, t));
            self.linger_until = None;
            return;
        }
        let rid = body.rid;
        if rid < self.next_rid {
            return self.retransmission(now, id, rid);
        }
        if rid - self.next_rid >= self.window() as u64 {
            self.out
                .push_back(Output::Respond(id, terminate_body("item-not-found", &[])));
            return self.terminate_all(Some("item-not-found"));
        }
        if rid > self.next_rid {
            if let Some((old, _)) = self.early.insert(rid, (id, body)) {
                self.out.push_back(Output::Respond(old, empty_body()));
            }
            return;
        }
        self.process(now, id, body);
        while let Some((id, body)) = self.early.remove(&self.next_rid) {
            self.process(now, id, body);
        }
    }

    fn window(&self) -> usize {
        self.hold + 1
    }

    fn retransmission(&mut self, now: Instant, id: RequestId, rid: u64) {
        if let Some((_, body)) = self.cache.iter().find(|(r, _)| *r == rid) {
            let body = body.clone();
            return self.out.push_back(Output::Respond(id, body));
        }
        if let Some(h) = self.held.iter_mut().find(|h| h.rid == rid) {
            // The client lost the connection that carried it: answer on the new one.
            let old = std::mem::replace(&mut h.id, id);
            h.deadline = now + self.wait;
            self.out.push_back(Output::Respond(old, empty_body()));
            return;
        }
        self.out
            .push_back(Output::Respond(id, terminate_body("item-not-found", &[])));
        self.terminate_all(Some("item-not-found"));
    }

    fn process(&mut self, now: Instant, id: RequestId, body: Body) {
        self.next_rid = body.rid + 1;
        if let Some(ack) = body.ack {
            self.cache.retain(|(r, _)| *r > ack);
        }
        if body.restart {
            let mut header = framing::header_from_open(&body.header);
            header.to = header.to.or_else(|| Some(self.domain.clone()));
            // XEP-0206 §5: a restart request carries no version; the session's is 1.0.
            header.version = header.version.or_else(|| Some("1.0".to_owned()));
            self.out
                .push_back(Output::Stream(Event::StreamOpen(header)));
        }
        for child in body.children {
            self.out.push_back(Output::Stream(Event::Stanza(child)));
        }
        if body.terminate {
            self.out.push_back(Output::Stream(Event::StreamClose));
            self.held.push_back(Held {
                rid: body.rid,
                id,
                deadline: now,
                creation: false,
            });
            return self.terminate_all(None);
        }
        self.held.push_back(Held {
            rid: body.rid,
            id,
            deadline: now + self.wait,
            creation: false,
        });
        if let Some(pause) = body.pause {
            let pause = Duration::from_secs(pause).min(self.config.max_pause);
            while let Some(h) = self.held.pop_front() {
                self.answer(h, now);
            }
            self.idle_deadline = now + pause;
        }
    }

    /// A frame from the stream, answered at the next `flush`.
    pub fn frame(&mut self, frame: Vec<u8>) {
        if self.terminated.is_none() {
            self.buffered += frame.len();
            self.frames.push(frame);
        }
    }

    /// Whether more frames may be buffered (`BoshConfig::max_buffered_bytes` not reached).
    pub fn accepts_more(&self) -> bool {
        self.buffered < self.config.max_buffered_bytes
    }

    /// After the stream's outputs are drained: answer what can be answered.
    pub fn flush(&mut self, now: Instant) {
        if self.terminated.is_some() {
            return;
        }
        while self.held.len() > self.hold || (!self.frames.is_empty() && !self.held.is_empty()) {
            let Some(h) = self.held.pop_front() else {
                break;
            };
            self.answer(h, now);
        }
    }

    fn answer(&mut self, h: Held, now: Instant) {
        let frames = std::mem::take(&mut self.frames);
        self.buffered = 0;
        let body = if h.creation {
            self.creation_body(h.rid, &frames)
        } else {
            wrap(&[], &frames)
        };
        self.cache.push_back((h.rid, body.clone()));
        while self.cache.len() > CACHED_RESPONSES {
            self.cache.pop_front();
        }
        if self.held.is_empty() {
            self.idle_deadline = now + self.config.inactivity;
        }
        self.out.push_back(Output::Respond(h.id, body));
    }

    fn creation_body(&self, rid: u64, frames: &[Vec<u8>]) -> Vec<u8> {
        let secs = |d: Duration| d.as_secs().to_string();
        let mut attrs = vec![
            ("sid", self.sid.clone()),
            ("wait", secs(self.wait)),
            ("requests", self.window().to_string()),
            ("hold", self.hold.to_string()),
            ("inactivity", secs(self.config.inactivity)),
            ("maxpause", secs(self.config.max_pause)),
            ("polling", secs(self.config.polling)),
            ("ver", "1.11".to_owned()),
            ("from", self.domain.clone()),
            ("xmpp:version", "1.0".to_owned()),
            ("xmpp:restartlogic", "true".to_owned()),
        ];
        if self.ack_requested {
            attrs.push(("ack", rid.to_string()));
        }
        wrap(&attrs, frames)
    }

    /// The deadline from `poll_timeout` passed.
    pub fn timeout(&mut self, now: Instant) {
        if self.terminated.is_some() {
            if self.linger_until.is_some_and(|t| now >= t) {
                self.linger_until = None;
            }
            return;
        }
        while let Some(pos) = self.held.iter().position(|h| h.deadline <= now) {
            if let Some(h) = self.held.remove(pos) {
                self.answer(h, now);
            }
        }
        if self.held.is_empty() && now >= self.idle_deadline {
            tracing::debug!(message = "BOSH session inactive; closing.", sid = %self.sid);
            self.terminate_all(None);
            self.linger_until = None;
        }
    }

    /// The stream ended (its frames, a stream error among them, were given to `frame`).
    /// Held requests get the terminate body; with none held it waits up to `wait` for the
    /// client's next request to deliver it.
    pub fn close(&mut self, now: Instant) {
        if self.terminated.is_some() {
            return;
        }
        let frames = std::mem::take(&mut self.frames);
        self.buffered = 0;
        let condition = frames
            .iter()
            .any(|f| f.starts_with(b"<stream:error"))
            .then_some("remote-stream-error");
        let body = terminate_body_with(condition, &frames);
        let held = !self.held.is_empty();
        self.finish(body);
        if !held {
            self.linger_until = Some(now + self.wait);
        }
    }

    fn terminate_all(&mut self, condition: Option<&str>) {
        if self.terminated.is_none() {
            self.finish(terminate_body_with(condition, &[]));
        }
    }

    fn finish(&mut self, body: Vec<u8>) {
        for (id, _) in std::mem::take(&mut self.early).into_values() {
            self.out.push_back(Output::Respond(id, body.clone()));
        }
        while let Some(h) = self.held.pop_front() {
            self.out.push_back(Output::Respond(h.id, body.clone()));
        }
        self.terminated = Some(body);
        self.out.push_back(Output::Terminated);
    }
}

/// `<body/>` with these attributes around these frames.
fn wrap(attrs: &[(&str, String)], frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + frames.iter().map(Vec::len).sum::<usize>());
    out.extend_from_slice(b"<body xmlns='");
    out.extend_from_slice(NS_HTTPBIND.as_bytes());
    out.push(b'\'');
    if attrs.iter().any(|(k, _)| k.starts_with("xmpp:")) {
        out.extend_from_slice(b" xmlns:xmpp='");
        out.extend_from_slice(NS_XBOSH.as_bytes());
        out.push(b'\'');
    }
    for (k, v) in attrs {
        out.push(b' ');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"='");
        xml::escape_attr(v, &mut out);
        out.push(b'\'');
    }
    if frames.is_empty() {
        out.extend_from_slice(b"/>");
        return out;
    }
    out.push(b'>');
    for f in frames {
        out.extend_from_slice(f);
    }
    out.extend_from_slice(b"</body>");
    out
}

/// An empty response.
pub fn empty_body() -> Vec<u8> {
    wrap(&[], &[])
}

/// `<body type='terminate' condition='…'/>` (XEP-0124 §17.2).
pub fn terminate_body(condition: &str, frames: &[Vec<u8>]) -> Vec<u8> {
    terminate_body_with(Some(condition), frames)
}

fn terminate_body_with(condition: Option<&str>, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut attrs = vec![("type", "terminate".to_owned())];
    if let Some(c) = condition {
        attrs.push(("condition", c.to_owned()));
    }
    wrap(&attrs, frames)
}

#[cfg(test)]
mod tests;
