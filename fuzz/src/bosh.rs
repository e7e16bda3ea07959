//! The BOSH layer (`lilt_proto::bosh`): request bodies through `parse_body`, then a session
//! (`BoshSession`) wired to a c2s stream in `Framing::Bosh` as the shell wires them. Checked: no
//! panic; a parsed body has a `rid` below 2^53 and payload stanzas that round-trip; every
//! response is a well-formed `<body/>` in the httpbind namespace; every request the session
//! took gets exactly one response once the session has ended and its deadlines have passed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lilt_proto::bosh::{BoshConfig, BoshSession, NS_HTTPBIND, Output, RequestId, parse_body};
use lilt_proto::stream::c2s::Input;
use lilt_proto::stream::framing::Framing;
use lilt_proto::xml::parse_element;

use crate::c2s::{Harness, VHOST, limits, round_trip};

/// Move outputs between the session and the stream until both are quiet.
fn pump(
    s: &mut BoshSession,
    h: &mut Harness,
    responses: &mut BTreeMap<u64, u32>,
    closed: &mut bool,
) {
    for _ in 0..64 {
        let mut moved = false;
        while let Some(out) = s.poll_output() {
            moved = true;
            match out {
                Output::Respond(RequestId(id), body) => {
                    let el = parse_element(&body, &crate::c2s::unlimited()).unwrap_or_else(|e| {
                        panic!(
                            "response is not well-formed ({e}): {}",
                            String::from_utf8_lossy(&body)
                        )
                    });
                    assert!(
                        el.is("body", NS_HTTPBIND),
                        "response is not a <body/>: {el}"
                    );
                    *responses.entry(id).or_default() += 1;
                }
                Output::Stream(event) => h.feed(Input::Event(event)),
                Output::Terminated => h.feed(Input::TransportClosed),
            }
        }
        for frame in std::mem::take(&mut h.frames) {
            moved = true;
            s.frame(frame);
        }
        if h.closed && !*closed {
            *closed = true;
            s.close(h.now);
        }
        s.flush(h.now);
        if !moved {
            return;
        }
    }
}

/// Each line of `data` is one HTTP request body to the BOSH endpoint. Returns how many stanzas
/// the c2s stream behind the session routed (how deep the input got).
pub fn check_bosh(data: &[u8]) -> usize {
    let start = Instant::now();
    let mut h = Harness::new(Framing::Bosh, true, start);
    let mut session: Option<BoshSession> = None;
    let mut taken = Vec::new();
    let mut responses = BTreeMap::new();
    let mut closed = false;
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        let id = RequestId(i as u64);
        let Ok(body) = parse_body(line, &limits()) else {
            continue; // The shell answers 400 Bad Request; no session sees it.
        };
        assert!(body.rid < 1 << 53, "rid {} accepted", body.rid);
        body.children.iter().for_each(round_trip);
        match (&mut session, body.sid.as_deref()) {
            (None, None) => {
                session = Some(BoshSession::create(
                    BoshConfig::default(),
                    "sid-1".into(),
                    VHOST.into(),
                    id,
                    body,
                    h.now,
                ));
            }
            (Some(s), Some("sid-1")) => s.request(h.now, id, body),
            // Another session's creation, or an unknown sid: the shell handles those.
            _ => continue,
        }
        taken.push(id.0);
        if let Some(s) = session.as_mut() {
            pump(s, &mut h, &mut responses, &mut closed);
            if let Some(t) = s.poll_timeout()
                && t <= h.now + Duration::from_secs(2)
            {
                h.now = t;
                s.timeout(h.now);
                pump(s, &mut h, &mut responses, &mut closed);
            }
        }
        h.now += Duration::from_millis(250);
    }
    let Some(mut s) = session else { return 0 };
    // The stream ends; once the deadlines pass, nothing may be left unanswered.
    s.close(h.now);
    pump(&mut s, &mut h, &mut responses, &mut closed);
    h.now += Duration::from_secs(3600);
    s.timeout(h.now);
    pump(&mut s, &mut h, &mut responses, &mut closed);
    assert!(s.is_finished(), "the session did not finish");
    for id in taken {
        assert_eq!(
            responses.get(&id).copied().unwrap_or(0),
            1,
            "request {id}: responses {responses:?}"
        );
    }
    h.routed
}
