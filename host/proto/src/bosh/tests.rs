//! BOSH session scenarios on virtual time: creation, hold/wait, rid window and order,
//! retransmission, pause, terminate from either side, inactivity.

use std::time::{Duration, Instant};

use super::*;

fn body(attrs: &str, payload: &str) -> Body {
    let text = format!(
        "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' {attrs}>{payload}</body>"
    );
    parse_body(text.as_bytes(), &xml::Limits::default()).expect("test body parses")
}

struct Case {
    s: BoshSession,
    now: Instant,
    next_id: u64,
}

impl Case {
    fn raw() -> Case {
        let now = Instant::now();
        let b = body(
            "rid='100' to='example.com' wait='30' hold='1' ver='1.6' xmpp:version='1.0'",
            "",
        );
        let s = BoshSession::create(
            BoshConfig::default(),
            "sid1".into(),
            "example.com".into(),
            RequestId(0),
            b,
            now,
        );
        Case { s, now, next_id: 1 }
    }

    /// A session whose creation request was answered with the features.
    fn new() -> Case {
        let mut c = Case::raw();
        c.s.frame(b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>".to_vec());
        assert_eq!(c.responses().len(), 1);
        c
    }

    fn send(&mut self, attrs: &str, payload: &str) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.s
            .request(self.now, id, body(&format!("sid='sid1' {attrs}"), payload));
        id
    }

    fn outputs(&mut self) -> Vec<Output> {
        self.s.flush(self.now);
        std::iter::from_fn(|| self.s.poll_output()).collect()
    }

    fn responses(&mut self) -> Vec<(RequestId, String)> {
        self.outputs()
            .into_iter()
            .filter_map(|o| match o {
                Output::Respond(id, b) => Some((id, String::from_utf8(b).expect("utf8"))),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn creation_answers_with_session_attributes_and_features() {
    let mut c = Case::raw();
    let outs = c.outputs();
    let Some(Output::Stream(Event::StreamOpen(h))) = outs.first() else {
        panic!("creation must open the stream: {outs:?}");
    };
    assert_eq!(h.to.as_deref(), Some("example.com"));
    assert_eq!(h.version.as_deref(), Some("1.0"));
    c.s.frame(b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>".to_vec());
    let r = c.responses();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, RequestId(0));
    let el = xml::parse_element(r[0].1.as_bytes(), &xml::Limits::default()).expect("parses");
    assert_eq!(el.attr("sid"), Some("sid1"));
    assert_eq!(el.attr("wait"), Some("30"));
    assert_eq!(el.attr("hold"), Some("1"));
    assert_eq!(el.attr("requests"), Some("2"));
    assert_eq!(el.attr("xmpp:version"), Some("1.0"));
    assert!(el.has_child("features", xml::ns::STREAMS));
}

#[test]
fn requests_are_held_until_data_or_wait() {
    let mut c = Case::new();
    let a = c.send("rid='101'", "");
    assert!(c.responses().is_empty(), "held with nothing to say");
    // A second request releases the first (hold=1).
    let b = c.send("rid='102'", "");
    assert_eq!(c.responses(), vec![(a, empty_body_string())]);
    // Data goes out on the held one.
    c.s.frame(b"<message xmlns='jabber:client'/>".to_vec());
    let r = c.responses();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, b);
    assert!(r[0].1.contains("<message xmlns='jabber:client'/>"));
    // Wait expiry answers empty.
    let d = c.send("rid='103'", "");
    assert!(c.responses().is_empty());
    c.now += Duration::from_secs(31);
    c.s.timeout(c.now);
    assert_eq!(c.responses(), vec![(d, empty_body_string())]);
}

fn empty_body_string() -> String {
    String::from_utf8(empty_body()).expect("utf8")
}

#[test]
fn out_of_order_requests_wait_for_the_gap() {
    let mut c = Case::new();
    c.send("rid='102'", "<message xmlns='jabber:client' id='second'/>");
    assert!(
        !c.outputs()
            .iter()
            .any(|o| matches!(o, Output::Stream(Event::Stanza(_)))),
        "rid 102 must wait for 101"
    );
    c.send("rid='101'", "<message xmlns='jabber:client' id='first'/>");
    let ids: Vec<String> = c
        .outputs()
        .into_iter()
        .filter_map(|o| match o {
            Output::Stream(Event::Stanza(el)) => el.attr("id").map(str::to_owned),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec!["first", "second"]);
}

#[test]
fn rid_outside_the_window_terminates() {
    let mut c = Case::new();
    let id = c.send("rid='150'", "");
    let outs = c.outputs();
    assert!(outs.contains(&Output::Terminated));
    assert!(outs.iter().any(|o| matches!(o, Output::Respond(i, b)
        if *i == id && String::from_utf8_lossy(b).contains("condition='item-not-found'"))));
}

#[test]
fn retransmitted_rid_gets_the_cached_response() {
    let mut c = Case::new();
    c.send("rid='101'", "");
    c.s.frame(b"<message xmlns='jabber:client' id='m1'/>".to_vec());
    let first = c.responses();
    assert_eq!(first.len(), 1);
    let again = c.send("rid='101'", "");
    let r = c.responses();
    assert_eq!(r, vec![(again, first[0].1.clone())]);
    // An old rid nobody cached ends the session.
    c.send("rid='50'", "");
    assert!(c.outputs().contains(&Output::Terminated));
}

#[test]
fn restart_and_terminate() {
    let mut c = Case::new();
    c.send("rid='101' xmpp:restart='true'", "");
    let outs = c.outputs();
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Stream(Event::StreamOpen(h)) if h.to.as_deref() == Some("example.com")))
    );
    let t = c.send(
        "rid='102' type='terminate'",
        "<presence type='unavailable' xmlns='jabber:client'/>",
    );
    let outs = c.outputs();
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Stream(Event::Stanza(p)) if p.name() == "presence"))
    );
    assert!(outs.contains(&Output::Stream(Event::StreamClose)));
    assert!(outs.iter().any(|o| matches!(o, Output::Respond(i, b)
        if *i == t && String::from_utf8_lossy(b).contains("type='terminate'"))));
    assert!(c.s.is_finished());
}

#[test]
fn server_close_is_delivered_to_the_next_request() {
    let mut c = Case::new();
    c.s.frame(b"<stream:error xmlns:stream='http://etherx.jabber.org/streams'/>".to_vec());
    c.s.close(c.now);
    assert!(!c.s.is_finished(), "lingers to deliver the error");
    let id = c.send("rid='101'", "");
    let r = c.responses();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, id);
    assert!(r[0].1.contains("condition='remote-stream-error'"));
    assert!(r[0].1.contains("<stream:error"));
    assert!(c.s.is_finished());
}

#[test]
fn inactivity_ends_the_session() {
    let mut c = Case::new();
    c.now += Duration::from_secs(61);
    c.s.timeout(c.now);
    assert!(c.outputs().contains(&Output::Terminated));
    assert!(c.s.is_finished());
}

#[test]
fn pause_answers_held_requests_and_extends_inactivity() {
    let mut c = Case::new();
    let p = c.send("rid='101' pause='100'", "");
    assert_eq!(c.responses(), vec![(p, empty_body_string())]);
    c.now += Duration::from_secs(90);
    c.s.timeout(c.now);
    assert!(!c.outputs().contains(&Output::Terminated));
    c.now += Duration::from_secs(20);
    c.s.timeout(c.now);
    assert!(c.outputs().contains(&Output::Terminated));
}

#[test]
fn bad_bodies_are_refused() {
    let limits = xml::Limits::default();
    for b in [
        &b"<body xmlns='http://jabber.org/protocol/httpbind'/>"[..],
        b"<body xmlns='http://jabber.org/protocol/httpbind' rid='x'/>",
        b"<body rid='1'/>",
        b"<body xmlns='http://jabber.org/protocol/httpbind' rid='1'>",
        b"not xml",
    ] {
        assert!(
            parse_body(b, &limits).is_err(),
            "{}",
            String::from_utf8_lossy(b)
        );
    }
}

#[test]
fn restart_attribute_is_found_under_any_prefix() {
    let text = "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:x='urn:xmpp:xbosh' rid='5' x:restart='true'/>";
    let b = parse_body(text.as_bytes(), &xml::Limits::default()).expect("parses");
    assert!(b.restart);
}
