//! In-memory scenarios: a scripted client against the stream cores, on virtual time, with the
//! shell's answers (plugin, router) given by hand.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::c2s::{C2sConfig, C2sStream, Input, Output, PendingInput, VhostPolicy};
use super::component::{self, ComponentStream};
use super::framing::{self, Framing};
use crate::sasl::Mechanism;
use crate::stanza::{Condition, ErrorType, Jid, StanzaError};
use crate::xml::{self, Element, Event, StreamParser, ns};

const OPEN: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='a.example' version='1.0'>";

fn config(allow_unencrypted: bool) -> C2sConfig {
    config_identifying(allow_unencrypted, false)
}

fn config_identifying(allow_unencrypted: bool, identify: bool) -> C2sConfig {
    config_for(&["a.example"], allow_unencrypted, identify)
}

fn config_for(domains: &[&str], allow_unencrypted: bool, identify: bool) -> C2sConfig {
    let vhosts: HashMap<String, VhostPolicy> = domains
        .iter()
        .map(|d| {
            let policy = VhostPolicy {
                identify,
                mechanisms: vec![Mechanism::Plain, Mechanism::Anonymous],
                allow_unencrypted,
            };
            ((*d).to_owned(), policy)
        })
        .collect();
    C2sConfig {
        sm_resume_timeout: Duration::from_secs(60),
        sm_max_unacked: 100,
        sm_max_unacked_bytes: usize::MAX,
        ..C2sConfig::new(
            vhosts,
            Arc::new(crate::entropy::Seeded::new(1)),
            crate::sasl::SaslSecret::new(vec![0u8; 32]),
        )
    }
}

/// A test client: feeds bytes, collects what the server wrote, parses it back.
struct Client {
    stream: C2sStream,
    now: Instant,
    server_parser: StreamParser,
    seen: Vec<Element>,
    outputs: Vec<Output>,
    /// Every byte the server wrote, in order.
    raw: Vec<u8>,
    closed: bool,
}

impl Client {
    fn new(allow_unencrypted: bool) -> Self {
        Self::with_config(config(allow_unencrypted))
    }

    fn with_config(config: C2sConfig) -> Self {
        let now = Instant::now();
        Client {
            stream: C2sStream::new(config, Framing::Stream, false, now),
            now,
            server_parser: StreamParser::new(xml::Limits::default()),
            seen: Vec::new(),
            outputs: Vec::new(),
            raw: Vec::new(),
            closed: false,
        }
    }

    fn input(&mut self, input: Input<'_>) {
        self.stream.handle_input(self.now, input);
        while let Some(out) = self.stream.poll_output() {
            match out {
                Output::Write(bytes) => {
                    self.raw.extend_from_slice(&bytes);
                    self.server_parser
                        .feed(&bytes)
                        .expect("server output is well-formed");
                    while let Some(ev) = self
                        .server_parser
                        .next_event()
                        .expect("server output parses")
                    {
                        match ev {
                            Event::Stanza(el) => {
                                // The server restarts its stream after SASL success.
                                let restart = el.is("success", ns::SASL);
                                self.seen.push(el);
                                if restart {
                                    self.server_parser.restart();
                                }
                            }
                            Event::StreamClose => self.closed = true,
                            Event::StreamOpen(_) => {}
                        }
                    }
                }
                Output::Close => self.closed = true,
                other => self.outputs.push(other),
            }
        }
    }

    fn send(&mut self, text: &str) {
        self.input(Input::Bytes(text.as_bytes()));
    }

    fn last(&self) -> &Element {
        self.seen.last().expect("server wrote something")
    }

    fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    fn stream_error(&self) -> Option<String> {
        self.seen
            .iter()
            .find(|e| e.is("error", ns::STREAMS))
            .and_then(|e| e.children().next())
            .map(|c| c.name().to_owned())
    }

    /// Open, authenticate with ANONYMOUS and stop right after `<success/>`.
    fn authenticate(&mut self) {
        self.send(OPEN);
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>");
        assert!(self.last().is("success", ns::SASL));
        self.take_outputs();
    }

    /// How many stream headers the server wrote.
    fn headers_written(&self) -> usize {
        String::from_utf8_lossy(&self.raw)
            .matches("<stream:stream ")
            .count()
    }

    /// Authenticate with PLAIN (plugin says yes) and bind `resource`.
    fn login(&mut self, resource: &str) -> Jid {
        self.send(OPEN);
        let plain = B64.encode(b"\0alice\0secret");
        self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>"
        ));
        let outs = self.take_outputs();
        assert!(
            matches!(&outs[0], Output::CheckPassword { username, password, .. } if username == "alice" && password == "secret")
        );
        self.input(Input::PasswordChecked(Ok(true)));
        assert!(self.last().is("success", ns::SASL));
        self.send(OPEN);
        assert!(self.last().has_child("bind", ns::BIND));
        self.send(&format!(
            "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
        ));
        let outs = self.take_outputs();
        let Some(Output::Bind {
            jid,
            resource: Some(r),
            ..
        }) = outs.into_iter().find(|o| matches!(o, Output::Bind { .. }))
        else {
            panic!("expected a bind request");
        };
        let full = jid.with_resource(&r).expect("resource");
        self.input(Input::Bound(Ok(full.clone())));
        let reply = self.last();
        assert_eq!(reply.attr("id"), Some("b1"));
        assert_eq!(reply.attr("type"), Some("result"));
        full
    }
}

#[test]
fn unencrypted_stream_offers_only_required_starttls() {
    let mut c = Client::new(false);
    c.send(OPEN);
    let features = c.last();
    let tls = features
        .get_child("starttls", ns::TLS)
        .expect("starttls offered");
    assert!(tls.has_child("required", ns::TLS));
    assert!(!features.has_child("mechanisms", ns::SASL));
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>");
    assert!(c.last().is("failure", ns::SASL));
    assert!(c.last().has_child("encryption-required", ns::SASL));
    c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert!(c.last().is("proceed", ns::TLS));
    assert!(
        c.take_outputs()
            .iter()
            .any(|o| matches!(o, Output::StartTls))
    );
    c.input(Input::TlsEstablished);
    c.server_parser.reset();
    c.send(OPEN);
    let mechs = c
        .last()
        .get_child("mechanisms", ns::SASL)
        .expect("mechanisms after TLS");
    let names: Vec<String> = mechs.children().map(Element::text).collect();
    assert_eq!(names, ["PLAIN", "ANONYMOUS"]);
}

#[test]
fn plain_login_bind_and_stamping() {
    let mut c = Client::new(true);
    let full = c.login("desk");
    assert_eq!(full.to_string(), "alice@a.example/desk");
    c.send("<message to='Bob@A.example' type='chat'><body>hi</body></message>");
    let outs = c.take_outputs();
    let Some(Output::Route(msg)) = outs.first() else {
        panic!("expected a routed stanza: {outs:?}")
    };
    assert_eq!(msg.element().attr("from"), Some("alice@a.example/desk"));
    assert_eq!(msg.element().attr("to"), Some("bob@a.example"));
    // A forged from is a stream error.
    c.send("<message from='mallory@a.example/x' to='bob@a.example'/>");
    assert_eq!(c.stream_error().as_deref(), Some("invalid-from"));
    assert!(c.closed);
}

#[test]
fn wrong_password_then_retry_limit() {
    let mut c = Client::new(true);
    c.send(OPEN);
    for _ in 0..5 {
        c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHdyb25n</auth>");
        c.take_outputs();
        c.input(Input::PasswordChecked(Ok(false)));
        assert!(
            c.seen
                .iter()
                .any(|e| e.is("failure", ns::SASL) && e.has_child("not-authorized", ns::SASL))
        );
    }
    assert_eq!(c.stream_error().as_deref(), Some("policy-violation"));
}

#[test]
fn plugin_failure_is_temporary_auth_failure() {
    let mut c = Client::new(true);
    c.send(OPEN);
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHg=</auth>");
    c.input(Input::PasswordChecked(Err(())));
    assert!(c.last().has_child("temporary-auth-failure", ns::SASL));
    assert!(!c.closed);
}

#[test]
fn anonymous_gets_uuid_localpart() {
    let mut c = Client::new(true);
    c.send(OPEN);
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>");
    let outs = c.take_outputs();
    let Some(Output::Authenticated {
        jid,
        mechanism: Mechanism::Anonymous,
    }) = outs.first()
    else {
        panic!("expected success: {outs:?}");
    };
    let node = jid.node().expect("node");
    assert!(
        uuid::Uuid::parse_str(node).is_ok_and(|u| u.get_version_num() == 4),
        "{node}"
    );
}

#[test]
fn identifying_plugins_decide_before_success_and_their_identity_reaches_bind() {
    use crate::identity::{Identity, RoomAccess};
    use crate::sasl::SaslFailure;
    let mut c = Client::with_config(config_identifying(true, true));
    c.send(OPEN);
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>");
    let outs = c.take_outputs();
    assert!(
        matches!(&outs[..], [Output::Identify { vhost, mechanism: Mechanism::Anonymous, username }] if vhost == "a.example" && username.is_empty()),
        "{outs:?}"
    );
    assert!(!c.seen.iter().any(|e| e.is("success", ns::SASL)));
    // Refused: the plugin's reason goes into the failure's text.
    c.input(Input::Identified(Err((
        SaslFailure::NotAuthorized,
        "token expired".into(),
    ))));
    let failure = c.last().clone();
    assert!(failure.is("failure", ns::SASL), "{failure:?}");
    assert!(failure.has_child("not-authorized", ns::SASL));
    assert_eq!(
        failure.get_child("text", ns::SASL).map(Element::text),
        Some("token expired".into())
    );
    assert!(matches!(
        c.take_outputs().as_slice(),
        [Output::AuthFailed {
            condition: "not-authorized",
            ..
        }]
    ));
    // An answer nobody asked for is ignored.
    c.input(Input::Identified(Ok(None)));
    assert!(c.last().is("failure", ns::SASL));
    // Accepted: success, and the identity travels with the bind request.
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>");
    c.take_outputs();
    let identity = Identity {
        rooms: RoomAccess::Only(vec!["r".into()]),
        moderator: true,
        ..Identity::default()
    };
    c.input(Input::Identified(Ok(Some(identity.clone()))));
    assert!(c.last().is("success", ns::SASL));
    c.send(OPEN);
    c.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    let outs = c.take_outputs();
    let bind = outs
        .iter()
        .find_map(|o| match o {
            Output::Bind { identity, .. } => Some(identity.clone()),
            _ => None,
        })
        .expect("a bind request");
    assert_eq!(bind.as_deref(), Some(&identity));
}

#[test]
fn unknown_mechanism_and_bad_base64() {
    let mut c = Client::new(true);
    c.send(OPEN);
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-FOO'/>");
    assert!(c.last().has_child("invalid-mechanism", ns::SASL));
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>***</auth>");
    assert!(c.last().has_child("incorrect-encoding", ns::SASL));
}

#[test]
fn stream_errors_before_and_after_header() {
    let mut c = Client::new(true);
    c.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='nope.example' version='1.0'>");
    assert_eq!(c.stream_error().as_deref(), Some("host-unknown"));
    let mut c = Client::new(true);
    c.send("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='a.example' version='1.0'>");
    assert_eq!(c.stream_error().as_deref(), Some("invalid-namespace"));
    let mut c = Client::new(true);
    c.send(OPEN);
    c.send("<message><!-- hi --></message>");
    assert_eq!(c.stream_error().as_deref(), Some("restricted-xml"));
    let mut c = Client::new(true);
    c.send(OPEN);
    c.send("<message></iq>");
    assert_eq!(c.stream_error().as_deref(), Some("not-well-formed"));
    let mut c = Client::new(true);
    c.send(OPEN);
    c.send("<message to='x@a.example'/>");
    assert_eq!(c.stream_error().as_deref(), Some("not-authorized"));
}

#[test]
fn unauthenticated_deadline() {
    let mut c = Client::new(true);
    c.send(OPEN);
    let deadline = c.stream.poll_timeout().expect("deadline set");
    c.now = deadline - Duration::from_millis(1);
    c.input(Input::Timeout);
    assert!(!c.closed);
    c.now = deadline;
    c.input(Input::Timeout);
    assert_eq!(c.stream_error().as_deref(), Some("connection-timeout"));
}

#[test]
fn bind_errors_and_pipelining() {
    let mut c = Client::new(true);
    c.login("one");
    // The next stanza was pipelined right behind bind in login(); now make sure a stanza sent
    // while a bind is outstanding waits: covered by sending bind + message in one write.
    let mut c2 = Client::new(true);
    c2.send(OPEN);
    c2.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>");
    c2.take_outputs();
    c2.send(OPEN);
    c2.send(
        "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>\
         <message to='x@a.example'><body>early</body></message>",
    );
    let outs = c2.take_outputs();
    assert!(
        matches!(outs.as_slice(), [Output::Bind { resource: None, .. }]),
        "{outs:?}"
    );
    let Some(jid) = c2.stream.vhost().map(|v| Jid::bare_from("anon", v)) else {
        panic!()
    };
    c2.input(Input::Bound(Ok(jid.with_resource("r").expect("res"))));
    let outs = c2.take_outputs();
    assert!(
        matches!(outs.as_slice(), [Output::Route(m)] if m.element().attr("from") == Some("anon@a.example/r")),
        "{outs:?}"
    );
}

#[test]
fn legacy_session_is_acknowledged_locally() {
    let mut c = Client::new(true);
    c.login("one");
    c.send("<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    assert!(c.take_outputs().is_empty());
    assert_eq!(c.last().attr("id"), Some("s"));
    assert_eq!(c.last().attr("type"), Some("result"));
}

#[test]
fn stream_management_ack_detach_resume() {
    let mut c = Client::new(true);
    let full = c.login("one");
    c.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    assert!(
        c.take_outputs()
            .iter()
            .any(|o| matches!(o, Output::EnableResumption))
    );
    c.input(Input::ResumptionEnabled("tok".into()));
    let enabled = c.last();
    assert!(enabled.is("enabled", ns::SM));
    assert_eq!(enabled.attr("id"), Some("tok"));
    // Two inbound stanzas, then <r/>.
    c.send("<message to='b@a.example'/><presence/><r xmlns='urn:xmpp:sm:3'/>");
    assert_eq!(c.last().attr("h"), Some("2"));
    // Three deliveries; peer acks one.
    for i in 0..3 {
        c.input(Input::Deliver(
            Element::builder("message", ns::CLIENT)
                .attr("id", i.to_string())
                .build()
                .into(),
        ));
    }
    c.send("<a xmlns='urn:xmpp:sm:3' h='1'/>");
    // Transport drops: the session waits.
    c.input(Input::TransportClosed);
    assert!(c.stream.is_detached());
    assert!(!c.closed);
    c.input(Input::Deliver(
        Element::builder("message", ns::CLIENT)
            .attr("id", "3")
            .build()
            .into(),
    ));
    // A new connection resumes with h=1: stanzas 1, 2 and 3 are replayed.
    let mut parser = StreamParser::new(xml::Limits::default());
    parser.feed(OPEN.as_bytes()).expect("feed");
    assert!(matches!(
        parser.next_event(),
        Ok(Some(Event::StreamOpen(_)))
    ));
    c.seen.clear();
    c.stream
        .resume(c.now, PendingInput::from_parser(parser), 1, false, true);
    c.input(Input::Bytes(b""));
    let ids: Vec<&str> = c
        .seen
        .iter()
        .filter_map(|e| e.attr("id").or(e.attr("previd")))
        .collect();
    assert_eq!(ids, ["tok", "1", "2", "3"]);
    assert_eq!(c.seen[0].attr("h"), Some("2"));
    assert_eq!(c.stream.full_jid(), Some(&full));
    // Overclaiming acks is a stream error.
    c.send("<a xmlns='urn:xmpp:sm:3' h='99'/>");
    assert_eq!(c.stream_error().as_deref(), Some("undefined-condition"));
}

#[test]
fn a_session_resumed_with_a_single_use_id_ends_with_its_transport() {
    let mut c = Client::new(true);
    c.login("one");
    c.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    c.input(Input::ResumptionEnabled("tok".into()));
    c.input(Input::TransportClosed);
    assert!(c.stream.is_detached());
    let mut parser = StreamParser::new(xml::Limits::default());
    parser.feed(OPEN.as_bytes()).expect("feed");
    assert!(matches!(
        parser.next_event(),
        Ok(Some(Event::StreamOpen(_)))
    ));
    c.seen.clear();
    c.stream
        .resume(c.now, PendingInput::from_parser(parser), 0, false, false);
    c.input(Input::Bytes(b""));
    // The client still learns which session it resumed (XEP-0198 §5).
    assert!(c.seen[0].is("resumed", ns::SM));
    assert_eq!(c.seen[0].attr("previd"), Some("tok"));
    // Its id is spent: a second transport loss ends the session instead of detaching it.
    c.input(Input::TransportClosed);
    assert!(!c.stream.is_detached());
    assert!(c.stream.is_closed());
}

#[test]
fn detached_session_expires() {
    let mut c = Client::new(true);
    c.login("one");
    c.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    c.input(Input::ResumptionEnabled("tok".into()));
    c.input(Input::TransportClosed);
    let until = c.stream.poll_timeout().expect("resume deadline");
    c.now = until;
    c.input(Input::Timeout);
    assert!(c.stream.is_closed());
}

#[test]
fn close_without_sm_ends_session() {
    let mut c = Client::new(true);
    c.login("one");
    c.send("</stream:stream>");
    assert!(c.closed);
    assert!(c.stream.is_closed());
}

#[test]
fn a_stanza_before_bind_is_refused() {
    // An IQ that is not a bind gets an error reply and the stream stays.
    let mut c = Client::new(true);
    c.authenticate();
    c.send(OPEN);
    c.send("<iq type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>");
    let reply = c.last();
    assert_eq!(reply.attr("id"), Some("q"));
    assert_eq!(reply.attr("type"), Some("error"));
    let error = reply.get_child("error", ns::CLIENT).expect("error child");
    assert!(error.has_child("not-authorized", ns::STANZAS), "{reply:?}");
    assert!(!c.closed);
    // A message is a stream error; nothing was routed or bound.
    c.send("<message to='b@a.example'><body>early</body></message>");
    assert_eq!(c.stream_error().as_deref(), Some("not-authorized"));
    assert!(c.closed && c.stream.is_closed());
    let outs = c.take_outputs();
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, Output::Route(_) | Output::Bind { .. })),
        "{outs:?}"
    );
    assert_eq!(c.stream.full_jid(), None);
}

#[test]
fn stream_management_before_bind_fails_without_ending_the_stream() {
    let mut c = Client::new(true);
    c.authenticate();
    c.send(OPEN);
    for el in [
        "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
        "<r xmlns='urn:xmpp:sm:3'/>",
        "<a xmlns='urn:xmpp:sm:3' h='0'/>",
    ] {
        c.send(el);
        let failed = c.last();
        assert!(failed.is("failed", ns::SM), "{failed:?}");
        assert!(failed.has_child("unexpected-request", ns::STANZAS));
    }
    assert!(c.take_outputs().is_empty());
    assert!(!c.closed);
    // Binding still works, and SM may be enabled then.
    c.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    let Some(Output::Bind { jid, .. }) = c.take_outputs().into_iter().next() else {
        panic!("expected a bind request");
    };
    c.input(Input::Bound(Ok(jid.with_resource("r").expect("resource"))));
    c.send("<enable xmlns='urn:xmpp:sm:3'/>");
    assert!(c.last().is("enabled", ns::SM));
}

const WS_OPEN: &[u8] =
    br#"<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="a.example" version="1.0"/>"#;
const WS_ANONYMOUS: &[u8] =
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>";

/// A WebSocket stream and one frame: what it wrote, the other outputs.
fn ws(s: &mut C2sStream, frame: &[u8]) -> (Vec<Element>, Vec<Output>) {
    s.handle_input(Instant::now(), Input::Frame(frame));
    frames(s)
}

/// The condition of the stream error among `els`, if any.
fn ws_error(els: &[Element]) -> Option<String> {
    els.iter()
        .find(|e| e.is("error", ns::STREAMS))
        .and_then(|e| e.children().next())
        .map(|c| c.name().to_owned())
}

#[test]
fn a_second_auth_after_success_is_refused() {
    // Before the restart only a stream header may come. (On a byte stream the parser already
    // refuses anything else; framed transports rely on the core.)
    let mut s = C2sStream::new(config(true), Framing::WebSocket, false, Instant::now());
    ws(&mut s, WS_OPEN);
    let (els, outs) = ws(&mut s, WS_ANONYMOUS);
    assert!(els[0].is("success", ns::SASL));
    assert!(matches!(outs.as_slice(), [Output::Authenticated { .. }]));
    let (els, outs) = ws(&mut s, WS_ANONYMOUS);
    // The error opens the new stream first.
    assert!(els[0].is("open", framing::NS_FRAMING), "{els:?}");
    assert_eq!(ws_error(&els).as_deref(), Some("not-well-formed"));
    assert!(
        matches!(outs.as_slice(), [Output::Close]),
        "no second authentication: {outs:?}"
    );
    let mut c = Client::new(true);
    c.authenticate();
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>");
    assert!(c.stream_error().is_some() && c.stream.is_closed());
    assert!(c.take_outputs().is_empty(), "no second authentication");
    assert_eq!(
        c.headers_written(),
        2,
        "the error came on the restarted stream"
    );
    // After the restart SASL is over: it is not a stanza that may come before bind.
    let mut c = Client::new(true);
    c.authenticate();
    c.send(OPEN);
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>");
    assert_eq!(c.stream_error().as_deref(), Some("not-authorized"));
    assert!(c.take_outputs().is_empty(), "no second authentication");
}

#[test]
fn a_stream_header_in_the_wrong_phase_is_refused() {
    // While authenticating, and once established (framed: the core decides).
    let mut s = C2sStream::new(config(true), Framing::WebSocket, false, Instant::now());
    let (els, _) = ws(&mut s, WS_OPEN);
    assert!(els[0].is("open", framing::NS_FRAMING));
    let (els, outs) = ws(&mut s, WS_OPEN);
    assert!(
        !els[0].is("open", framing::NS_FRAMING),
        "one open only: {els:?}"
    );
    assert_eq!(ws_error(&els).as_deref(), Some("not-well-formed"));
    assert!(outs.iter().any(|o| matches!(o, Output::Close)));
    let mut s = C2sStream::new(config(true), Framing::WebSocket, false, Instant::now());
    ws(&mut s, WS_OPEN);
    ws(&mut s, WS_ANONYMOUS);
    ws(&mut s, WS_OPEN);
    let (_, outs) = ws(
        &mut s,
        b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    );
    let Some(Output::Bind { jid, .. }) = outs.into_iter().next() else {
        panic!("expected a bind request");
    };
    s.handle_input(
        Instant::now(),
        Input::Bound(Ok(jid.with_resource("r").expect("resource"))),
    );
    frames(&mut s);
    let (els, _) = ws(&mut s, WS_OPEN);
    assert!(!els[0].is("open", framing::NS_FRAMING), "{els:?}");
    assert_eq!(ws_error(&els).as_deref(), Some("not-well-formed"));
    assert!(s.is_closed());
    // A byte stream: the parser refuses it; our header is not repeated either.
    let mut c = Client::new(true);
    c.login("r");
    let headers = c.headers_written();
    c.send(OPEN);
    assert!(c.stream_error().is_some());
    assert_eq!(c.headers_written(), headers);
    assert!(c.stream.is_closed());
}

#[test]
fn a_restarted_stream_must_name_the_same_host() {
    let open_b = OPEN.replace("a.example", "b.example");
    // After SASL.
    let mut c = Client::with_config(config_for(&["a.example", "b.example"], true, false));
    c.authenticate();
    c.send(&open_b);
    assert_eq!(c.stream_error().as_deref(), Some("host-unknown"));
    assert_eq!(
        c.headers_written(),
        2,
        "one header per stream, error included"
    );
    assert!(c.raw.ends_with(b"</stream:stream>"));
    // After STARTTLS.
    let mut c = Client::with_config(config_for(&["a.example", "b.example"], false, false));
    c.send(OPEN);
    c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    c.input(Input::TlsEstablished);
    c.server_parser.reset();
    c.send(&open_b);
    assert_eq!(c.stream_error().as_deref(), Some("host-unknown"));
    // The same host is fine.
    let mut c = Client::with_config(config_for(&["a.example", "b.example"], true, false));
    c.authenticate();
    c.send(OPEN);
    assert!(c.last().has_child("bind", ns::BIND));
    assert_eq!(c.stream.vhost(), Some("a.example"));
}

#[test]
fn a_timeout_while_awaiting_the_restart_writes_the_new_header_first() {
    let mut c = Client::new(true);
    c.authenticate();
    let deadline = c.stream.poll_timeout().expect("bind deadline");
    c.now = deadline;
    c.input(Input::Timeout);
    assert_eq!(c.stream_error().as_deref(), Some("connection-timeout"));
    let raw = String::from_utf8_lossy(&c.raw).into_owned();
    let success = raw.find("<success").expect("success written");
    let header = raw[success..]
        .find("<stream:stream ")
        .expect("restarted header");
    let error = raw[success..].find("<stream:error>").expect("error");
    assert!(header < error, "{raw}");
}

#[test]
fn starttls_refused_when_already_encrypted_and_failures_survive_it() {
    // An encrypted stream is offered no STARTTLS, and asking anyway ends it.
    let now = Instant::now();
    let mut s = C2sStream::new(config(false), Framing::Stream, true, now);
    let mut c = Client {
        stream: s,
        ..Client::new(false)
    };
    c.send(OPEN);
    assert!(!c.last().has_child("starttls", ns::TLS));
    assert!(c.last().has_child("mechanisms", ns::SASL));
    c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_eq!(c.stream_error().as_deref(), Some("policy-violation"));
    // Failed attempts before STARTTLS count after it.
    s = C2sStream::new(config(false), Framing::Stream, false, now);
    let mut c = Client {
        stream: s,
        ..Client::new(false)
    };
    c.send(OPEN);
    for _ in 0..4 {
        c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>");
        assert!(c.last().has_child("encryption-required", ns::SASL));
    }
    c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    c.input(Input::TlsEstablished);
    c.server_parser.reset();
    c.send(OPEN);
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>");
    c.input(Input::PasswordChecked(Ok(false)));
    assert_eq!(c.stream_error().as_deref(), Some("policy-violation"));
}

#[test]
fn answers_out_of_phase_are_ignored() {
    let mut c = Client::new(true);
    c.send(OPEN);
    let before = c.seen.len();
    c.input(Input::PasswordChecked(Ok(true)));
    c.input(Input::Credentials(Ok(None)));
    c.input(Input::Identified(Ok(None)));
    c.input(Input::Bound(Ok(Jid::parse("x@a.example/r").expect("jid"))));
    c.input(Input::ResumeFailed);
    c.input(Input::ResumptionEnabled("tok".into()));
    c.input(Input::TlsEstablished);
    c.input(Input::Deliver(Element::new("message", ns::CLIENT).into()));
    assert_eq!(c.seen.len(), before, "{:?}", &c.seen[before..]);
    assert!(c.take_outputs().is_empty());
    assert!(!c.closed);
    assert_eq!(c.stream.full_jid(), None);
    // An identity answer while a password check is pending does not authenticate.
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3</auth>");
    c.take_outputs();
    c.input(Input::Identified(Ok(None)));
    assert!(!c.seen.iter().any(|e| e.is("success", ns::SASL)));
    c.input(Input::PasswordChecked(Ok(true)));
    assert!(c.last().is("success", ns::SASL));
}

#[test]
fn resume_requests_before_bind() {
    let mut c = Client::new(true);
    c.authenticate();
    c.send(OPEN);
    c.send("<resume xmlns='urn:xmpp:sm:3' previd='tok'/>");
    assert!(c.last().is("failed", ns::SM));
    assert!(c.last().has_child("bad-request", ns::STANZAS));
    c.send("<resume xmlns='urn:xmpp:sm:3' previd='tok' h='3'/><iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    let outs = c.take_outputs();
    assert!(
        matches!(outs.as_slice(), [Output::Resume { previd, h: 3, jid }] if previd == "tok" && jid.is_bare()),
        "the bind waits for the answer: {outs:?}"
    );
    c.input(Input::ResumeFailed);
    assert!(
        c.seen
            .iter()
            .any(|e| e.is("failed", ns::SM) && e.has_child("item-not-found", ns::STANZAS))
    );
    let outs = c.take_outputs();
    assert!(
        matches!(outs.as_slice(), [Output::Bind { .. }]),
        "then the pipelined bind runs: {outs:?}"
    );
}

#[test]
fn a_failed_bind_can_be_retried() {
    let mut c = Client::new(true);
    c.authenticate();
    c.send(OPEN);
    c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>");
    c.take_outputs();
    c.input(Input::Bound(Err(StanzaError::new(
        ErrorType::Cancel,
        Condition::Conflict,
    ))));
    assert_eq!(c.last().attr("id"), Some("b1"));
    assert_eq!(c.last().attr("type"), Some("error"));
    assert!(!c.closed);
    c.send("<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    let Some(Output::Bind { jid, resource, .. }) = c.take_outputs().into_iter().next() else {
        panic!("expected a second bind request");
    };
    assert_eq!(resource, None);
    let full = jid.with_resource("gen").expect("resource");
    c.input(Input::Bound(Ok(full.clone())));
    assert_eq!(c.last().attr("id"), Some("b2"));
    assert_eq!(c.stream.full_jid(), Some(&full));
}

#[test]
fn a_closed_session_keeps_its_vhost_jid_and_unacknowledged_stanzas() {
    let mut c = Client::new(true);
    let full = c.login("r");
    c.send("<enable xmlns='urn:xmpp:sm:3'/>");
    for i in 0..3 {
        c.input(Input::Deliver(
            Element::builder("message", ns::CLIENT)
                .attr("id", i.to_string())
                .build()
                .into(),
        ));
    }
    c.send("<a xmlns='urn:xmpp:sm:3' h='1'/></stream:stream>");
    assert!(c.stream.is_closed());
    assert_eq!(c.stream.vhost(), Some("a.example"));
    assert_eq!(c.stream.full_jid(), Some(&full));
    assert_eq!(c.stream.poll_timeout(), None);
    let ids: Vec<String> = c
        .stream
        .take_undelivered()
        .iter()
        .map(|e| e.attr("id").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids, ["1", "2"]);
    assert!(c.stream.take_undelivered().is_empty(), "taken once");
    // Input after the close changes nothing.
    c.input(Input::Deliver(Element::new("message", ns::CLIENT).into()));
    c.input(Input::Timeout);
    assert!(c.stream.poll_output().is_none());
}

#[test]
fn a_failed_login_still_names_its_vhost_once_closed() {
    // The shell logs the vhost of the last AuthFailed after the stream closed.
    let mut c = Client::new(true);
    c.send(OPEN);
    for _ in 0..5 {
        c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHdyb25n</auth>");
        c.take_outputs();
        c.input(Input::PasswordChecked(Ok(false)));
    }
    assert!(c.stream.is_closed());
    assert_eq!(c.stream.vhost(), Some("a.example"));
    assert_eq!(c.stream.full_jid(), None);
}

#[test]
fn resuming_a_session_without_stream_management_ends_it() {
    let mut c = Client::new(true);
    c.login("r");
    let mut parser = StreamParser::new(xml::Limits::default());
    parser.feed(OPEN.as_bytes()).expect("feed");
    assert!(matches!(
        parser.next_event(),
        Ok(Some(Event::StreamOpen(_)))
    ));
    c.stream
        .resume(c.now, PendingInput::from_parser(parser), 0, true, true);
    assert!(c.stream.is_closed());
    assert!(c.stream.poll_output().is_none(), "nothing to say to anyone");
}

fn component() -> (ComponentStream, Instant) {
    let mut secrets = HashMap::new();
    secrets.insert("comp.a.example".to_owned(), "s3cret-s3cret".to_owned());
    let now = Instant::now();
    (
        ComponentStream::new(
            Arc::new(secrets),
            xml::Limits::default(),
            Duration::from_secs(5),
            now,
            &crate::entropy::Seeded::new(1),
        ),
        now,
    )
}

fn component_io(
    c: &mut ComponentStream,
    now: Instant,
    bytes: &str,
) -> (String, Vec<component::Output>) {
    c.handle_input(now, component::Input::Bytes(bytes.as_bytes()));
    let mut written = String::new();
    let mut others = Vec::new();
    while let Some(o) = c.poll_output() {
        match o {
            component::Output::Write(b) => written.push_str(&String::from_utf8_lossy(&b)),
            other => others.push(other),
        }
    }
    (written, others)
}

#[test]
fn component_handshake_and_from_check() {
    use sha1::{Digest, Sha1};
    let (mut c, now) = component();
    let (out, _) = component_io(
        &mut c,
        now,
        "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='comp.a.example'>",
    );
    let id_start = out.find("id='").expect("stream id") + 4;
    let id = &out[id_start..id_start + out[id_start..].find('\'').expect("quote")];
    let digest: String = Sha1::digest(format!("{id}s3cret-s3cret").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (out, outs) = component_io(&mut c, now, &format!("<handshake>{digest}</handshake>"));
    assert!(out.contains("<handshake/>"));
    assert!(
        matches!(outs.as_slice(), [component::Output::Authenticated { domain }] if domain == "comp.a.example")
    );
    let (_, outs) = component_io(
        &mut c,
        now,
        "<message from='bot@comp.a.example' to='u@a.example'><body>x</body></message>",
    );
    let [component::Output::Route(m)] = outs.as_slice() else {
        panic!("{outs:?}")
    };
    assert_eq!(m.element().ns(), ns::CLIENT);
    assert!(m.element().get_child("body", ns::CLIENT).is_some());
    let (out, _) = component_io(
        &mut c,
        now,
        "<message from='u@a.example' to='v@a.example'/>",
    );
    assert!(out.contains("invalid-from"), "{out}");
}

#[test]
fn component_wrong_secret() {
    let (mut c, now) = component();
    component_io(
        &mut c,
        now,
        "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='comp.a.example'>",
    );
    let (out, outs) = component_io(&mut c, now, "<handshake>0000</handshake>");
    assert!(out.contains("not-authorized"), "{out}");
    assert!(matches!(outs.as_slice(), [component::Output::Close]));
}

/// Every frame a framed stream wrote, each parsed on its own (RFC 7395 §3.3.3).
fn frames(stream: &mut C2sStream) -> (Vec<Element>, Vec<Output>) {
    let mut els = Vec::new();
    let mut others = Vec::new();
    while let Some(out) = stream.poll_output() {
        match out {
            Output::Frame(f) => els.push(
                xml::parse_element(&f, &xml::Limits::default())
                    .unwrap_or_else(|e| panic!("frame {} alone: {e}", String::from_utf8_lossy(&f))),
            ),
            Output::Write(w) => panic!("framed stream wrote raw bytes {w:?}"),
            other => others.push(other),
        }
    }
    (els, others)
}

#[test]
fn websocket_login_uses_rfc7395_frames() {
    let now = Instant::now();
    let mut s = C2sStream::new(config(true), Framing::WebSocket, false, now);
    let open =
        br#"<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="a.example" version="1.0"/>"#;
    s.handle_input(now, Input::Frame(open));
    let (els, _) = frames(&mut s);
    assert!(els[0].is("open", framing::NS_FRAMING));
    assert_eq!(els[0].attr("from"), Some("a.example"));
    assert!(els[1].is("features", ns::STREAMS));
    assert!(!els[1].has_child("starttls", ns::TLS));
    s.handle_input(
        now,
        Input::Frame(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>"),
    );
    let (els, _) = frames(&mut s);
    assert!(els[0].is("success", ns::SASL));
    // No implicit restart: the client opens again.
    s.handle_input(now, Input::Frame(open));
    let (els, _) = frames(&mut s);
    assert!(els[0].is("open", framing::NS_FRAMING));
    assert!(els[1].get_child("bind", ns::BIND).is_some());
    assert!(els[1].has_child("sm", ns::SM));
    // Strophe sends stanzas with or without xmlns; both are jabber:client.
    s.handle_input(
        now,
        Input::Frame(
            b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
        ),
    );
    let (_, outs) = frames(&mut s);
    let Some(Output::Bind { jid, .. }) =
        outs.into_iter().find(|o| matches!(o, Output::Bind { .. }))
    else {
        panic!("expected a bind request");
    };
    s.handle_input(
        now,
        Input::Bound(Ok(jid.with_resource("r").expect("resource"))),
    );
    let (els, _) = frames(&mut s);
    assert!(els[0].is("iq", ns::CLIENT));
    s.handle_input(
        now,
        Input::Deliver(Element::new("message", ns::CLIENT).into()),
    );
    let (els, _) = frames(&mut s);
    assert!(els[0].is("message", ns::CLIENT));
    s.handle_input(now, Input::Frame(framing::WS_CLOSE));
    let mut closed = false;
    while let Some(out) = s.poll_output() {
        match out {
            Output::Frame(f) => assert_eq!(f, framing::WS_CLOSE),
            Output::Close => closed = true,
            _ => {}
        }
    }
    assert!(closed && s.is_closed());
}

#[test]
fn websocket_errors_are_framed_and_closed() {
    let now = Instant::now();
    let mut s = C2sStream::new(config(true), Framing::WebSocket, false, now);
    s.handle_input(now, Input::Frame(b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='nowhere.example' version='1.0'/>"));
    let (els, outs) = frames(&mut s);
    assert!(els[0].is("open", framing::NS_FRAMING));
    assert!(els[1].is("error", ns::STREAMS));
    assert!(els[1].has_child("host-unknown", ns::STREAM_ERRORS));
    assert!(els[2].is("close", framing::NS_FRAMING));
    assert!(outs.iter().any(|o| matches!(o, Output::Close)));
    // A frame that is not one element is a stream error too.
    let mut s = C2sStream::new(config(true), Framing::WebSocket, false, now);
    s.handle_input(now, Input::Frame(b"<a/><b/>"));
    let (els, _) = frames(&mut s);
    assert!(els.iter().any(|e| e.is("error", ns::STREAMS)));
    assert!(s.is_closed());
}

#[test]
fn bosh_framing_writes_no_header_and_offers_no_sm() {
    let now = Instant::now();
    let mut s = C2sStream::new(config(true), Framing::Bosh, false, now);
    let header = xml::StreamHeader {
        to: Some("a.example".into()),
        version: Some("1.0".into()),
        default_ns: ns::CLIENT.into(),
        ..Default::default()
    };
    s.handle_input(now, Input::Event(Event::StreamOpen(header.clone())));
    let (els, _) = frames(&mut s);
    assert_eq!(els.len(), 1, "only the features: {els:?}");
    assert!(els[0].is("features", ns::STREAMS));
    let auth = xml::parse_element(
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>",
        &xml::Limits::default(),
    )
    .expect("parses");
    s.handle_input(now, Input::Event(Event::Stanza(auth)));
    let (els, _) = frames(&mut s);
    assert!(els[0].is("success", ns::SASL));
    s.handle_input(now, Input::Event(Event::StreamOpen(header)));
    let (els, _) = frames(&mut s);
    assert!(els[0].has_child("bind", ns::BIND));
    assert!(!els[0].has_child("sm", ns::SM));
    s.handle_input(now, Input::Event(Event::StreamClose));
    let (els, outs) = frames(&mut s);
    assert!(
        els.is_empty(),
        "BOSH ends with the terminate body, not a close frame"
    );
    assert!(outs.iter().any(|o| matches!(o, Output::Close)));
}
