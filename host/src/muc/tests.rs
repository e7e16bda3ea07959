//! Unit tests of the MUC core: join order and status codes, shared fan-out, the secure-domain
//! rule, hook verdicts, and leaving on session end. End-to-end conversations are in
//! tests/all/muc.rs.

use super::*;
use crate::hooks::NoExtensions;

fn service(creators: &[&str]) -> MucService {
    MucService::new(MucConfig {
        domain: "conference.x".into(),
        vhost: "x".into(),
        lock_new_rooms: false,
        destroy_when_empty: true,
        room_creators: creators.iter().map(|s| (*s).to_owned()).collect(),
        admins: vec![Jid::parse("focus@auth.x").expect("jid")],
        max_occupants: 0,
    })
}

fn presence(from: &str, to: &str, payload: &str) -> Element {
    let mut p = Element::builder("presence", ns::CLIENT)
        .attr("from", from)
        .attr("to", to)
        .build();
    p.append_child(Element::new("x", ns::MUC));
    if !payload.is_empty() {
        let mut n = Element::new("nick", "http://jabber.org/protocol/nick");
        n.append_text(payload);
        p.append_child(n);
    }
    p
}

/// (to, from, statuses) of each outgoing presence, fan-outs expanded.
fn presences(out: &[Routed]) -> Vec<(String, String, Vec<String>)> {
    let mut v = Vec::new();
    let codes = |el: &Element| {
        el.get_child("x", ns::MUC_USER)
            .map(|x| {
                x.children()
                    .filter(|c| c.name() == "status")
                    .filter_map(|c| c.attr("code").map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    for r in out {
        match r {
            Routed::Stanza(el) if el.name() == "presence" => v.push((
                el.attr("to").unwrap_or("").to_owned(),
                el.attr("from").unwrap_or("").to_owned(),
                codes(el),
            )),
            Routed::Fanout(shared, to) if shared.element().name() == "presence" => {
                for t in to {
                    v.push((
                        t.to_string(),
                        shared.element().attr("from").unwrap_or("").to_owned(),
                        codes(shared.element()),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

#[test]
fn join_order_codes_and_items() {
    let mut m = service(&[]);
    let out = m.handle(
        presence("a@x/1", "r@conference.x/alice", "Alice"),
        1000,
        &mut NoExtensions,
    );
    assert_eq!(
        presences(&out),
        [(
            "a@x/1".into(),
            "r@conference.x/alice".into(),
            vec!["100".into(), "110".into(), "201".into()]
        )]
    );
    let out = m.handle(
        presence("b@x/1", "r@conference.x/bob", ""),
        2000,
        &mut NoExtensions,
    );
    assert_eq!(
        presences(&out),
        [
            ("b@x/1".into(), "r@conference.x/alice".into(), vec![]),
            ("a@x/1".into(), "r@conference.x/bob".into(), vec![]),
            (
                "b@x/1".into(),
                "r@conference.x/bob".into(),
                vec!["100".into(), "110".into()]
            ),
        ]
    );
    // Every item names the real JID; the nick payload is kept, the MUC <x/> is not.
    let Routed::Stanza(alice_to_bob) = &out[0] else {
        panic!("{out:?}")
    };
    let item = alice_to_bob
        .get_child("x", ns::MUC_USER)
        .and_then(|x| x.get_child("item", ns::MUC_USER))
        .expect("item");
    assert_eq!(item.attr("jid"), Some("a@x/1"));
    assert_eq!(item.attr("affiliation"), Some("owner"));
    assert!(alice_to_bob.has_child("nick", "http://jabber.org/protocol/nick"));
    assert!(!alice_to_bob.has_child("x", ns::MUC));
    assert_eq!(m.counts(), (1, 2));
}

#[test]
fn groupchat_is_one_shared_fanout_to_everyone() {
    let mut m = service(&[]);
    for (jid, nick) in [("a@x/1", "a"), ("b@x/1", "b"), ("c@x/1", "c")] {
        m.handle(
            presence(jid, &format!("r@conference.x/{nick}"), ""),
            0,
            &mut NoExtensions,
        );
    }
    let mut msg = Element::builder("message", ns::CLIENT)
        .attr("from", "b@x/1")
        .attr("to", "r@conference.x")
        .attr("type", "groupchat")
        .build();
    msg.append_child(Element::new("body", ns::CLIENT));
    let out = m.handle(msg, 0, &mut NoExtensions);
    assert_eq!(out.len(), 1);
    let Routed::Fanout(shared, to) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(shared.element().attr("from"), Some("r@conference.x/b"));
    assert_eq!(to.len(), 3);
}

#[test]
fn secure_domain_and_destroy_when_empty() {
    let mut m = service(&["x"]);
    let out = m.handle(
        presence("g@guest.x/1", "r@conference.x/g", ""),
        0,
        &mut NoExtensions,
    );
    let Routed::Stanza(err) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(err.attr("type"), Some("error"));
    assert!(
        err.get_child("error", ns::CLIENT)
            .is_some_and(|e| e.has_child("not-allowed", ns::STANZAS))
    );
    assert_eq!(m.counts(), (0, 0), "a refused creation leaves no room");
    m.handle(
        presence("a@x/1", "r@conference.x/a", ""),
        0,
        &mut NoExtensions,
    );
    m.handle(
        presence("g@guest.x/1", "r@conference.x/g", ""),
        0,
        &mut NoExtensions,
    );
    assert_eq!(m.counts(), (1, 2));
    let mut out = Vec::new();
    m.session_gone(
        &Jid::parse("a@x/1").expect("jid"),
        &mut NoExtensions,
        &mut out,
    );
    assert_eq!(
        presences(&out).len(),
        2,
        "the guest and the leaver are told"
    );
    m.session_gone(
        &Jid::parse("g@guest.x/1").expect("jid"),
        &mut NoExtensions,
        &mut out,
    );
    assert_eq!(m.counts(), (0, 0));
}

/// Records events; refuses joins by nick `bad` and renames `old`.
#[derive(Default)]
struct Recorder(Vec<String>);

impl Extensions for Recorder {
    fn stanza(&mut self, _: &str, _: crate::stanza::Kind, _: &Element) -> Verdict {
        Verdict::Pass
    }
    fn muc(&mut self, vhost: &str, event: &MucEvent<'_>) -> Verdict {
        let (name, verdict) = match event {
            MucEvent::RoomPreCreate { .. } => ("pre-create", Verdict::Pass),
            MucEvent::RoomCreated(_) => ("created", Verdict::Pass),
            MucEvent::RoomDestroyed(_) => ("destroyed", Verdict::Pass),
            MucEvent::OccupantPreJoin {
                occupant, presence, ..
            } => match occupant.nick.as_str() {
                "bad" => (
                    "pre-join",
                    Verdict::Reject(StanzaError::from_condition("not-acceptable").with_text("no")),
                ),
                "old" => {
                    let mut p = (*presence).clone();
                    p.append_child(Element::new("replaced", "urn:test"));
                    ("pre-join", Verdict::Replace(p))
                }
                _ => ("pre-join", Verdict::Pass),
            },
            MucEvent::OccupantJoined { .. } => ("joined", Verdict::Pass),
            MucEvent::OccupantLeft { .. } => ("left", Verdict::Pass),
        };
        self.0.push(format!("{vhost}:{name}"));
        verdict
    }
    fn owns_component(&self, _: &str) -> bool {
        false
    }
    fn component(&mut self, _: &str, _: &Element) {}
    fn identities(&self, _: &str) -> Vec<crate::hooks::ComponentIdentity> {
        Vec::new()
    }
    fn take_sent(&mut self) -> Vec<Element> {
        Vec::new()
    }
    fn next_timer(&self) -> Option<std::time::Instant> {
        None
    }
    fn fire_timers(&mut self, _: std::time::Instant) {}
}

#[test]
fn hooks_see_events_and_decide_joins() {
    let mut m = service(&[]);
    let mut rec = Recorder::default();
    let out = m.handle(presence("a@x/1", "r@conference.x/bad", ""), 0, &mut rec);
    let Routed::Stanza(err) = &out[0] else {
        panic!("{out:?}")
    };
    assert!(
        err.get_child("error", ns::CLIENT)
            .is_some_and(|e| e.has_child("not-acceptable", ns::STANZAS))
    );
    assert_eq!(rec.0, ["x:pre-create", "x:pre-join"]);
    assert_eq!(m.counts(), (0, 0));
    rec.0.clear();
    let out = m.handle(presence("a@x/1", "r@conference.x/old", ""), 0, &mut rec);
    let Routed::Stanza(own) = &out[0] else {
        panic!("{out:?}")
    };
    assert!(
        own.has_child("replaced", "urn:test"),
        "the replaced presence is what the room keeps"
    );
    m.handle(
        Element::builder("presence", ns::CLIENT)
            .attr("from", "a@x/1")
            .attr("to", "r@conference.x/old")
            .attr("type", "unavailable")
            .build(),
        0,
        &mut rec,
    );
    assert_eq!(
        rec.0,
        [
            "x:pre-create",
            "x:pre-join",
            "x:created",
            "x:joined",
            "x:left",
            "x:destroyed"
        ]
    );
}
