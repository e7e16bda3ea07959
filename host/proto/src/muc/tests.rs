//! Unit tests of the MUC core: join order and status codes, shared fan-out, the secure-domain
//! rule, hook verdicts, and leaving on session end. End-to-end conversations are in
//! tests/all/muc.rs.

use super::*;
use crate::hooks::{HookKind, NoExtensions, PluginCall};

fn service(creators: &[&str]) -> MucService {
    MucService::new(
        MucConfig {
            domain: "conference.x".into(),
            vhost: "x".into(),
            lock_new_rooms: false,
            destroy_when_empty: true,
            room_creators: creators.iter().map(|s| (*s).to_owned()).collect(),
            admins: vec![Jid::parse("focus@auth.x").expect("jid")],
            max_occupants: 0,
            focus: None,
        },
        std::sync::Arc::new(crate::entropy::Seeded::new(1)),
    )
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
        &NoExtensions,
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
        &NoExtensions,
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
            &NoExtensions,
        );
    }
    let mut msg = Element::builder("message", ns::CLIENT)
        .attr("from", "b@x/1")
        .attr("to", "r@conference.x")
        .attr("type", "groupchat")
        .build();
    msg.append_child(Element::new("body", ns::CLIENT));
    let out = m.handle(msg, 0, &NoExtensions);
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
        &NoExtensions,
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
    m.handle(presence("a@x/1", "r@conference.x/a", ""), 0, &NoExtensions);
    m.handle(
        presence("g@guest.x/1", "r@conference.x/g", ""),
        0,
        &NoExtensions,
    );
    assert_eq!(m.counts(), (1, 2));
    let mut out = Vec::new();
    m.session_gone(&Jid::parse("a@x/1").expect("jid"), &NoExtensions, &mut out);
    assert_eq!(
        presences(&out).len(),
        2,
        "the guest and the leaver are told"
    );
    m.session_gone(
        &Jid::parse("g@guest.x/1").expect("jid"),
        &NoExtensions,
        &mut out,
    );
    assert_eq!(m.counts(), (0, 0));
}

/// Every hook kind is subscribed.
#[derive(Debug)]
struct AllHooks;

impl Extensions for AllHooks {
    fn any_stanza_hooks(&self) -> bool {
        true
    }
    fn hooks_stanzas(&self, _: &str) -> bool {
        true
    }
    fn wants(&self, _: &str, _: HookKind) -> bool {
        true
    }
    fn owns_component(&self, _: &str) -> bool {
        false
    }
    fn identities(&self, _: &str) -> Vec<crate::hooks::ComponentIdentity> {
        Vec::new()
    }
}

/// Splits a service's output into the plugin calls (as `vhost:kind` names, with the ask of a
/// pre-event) and the rest.
fn calls(out: Vec<Routed>) -> (Vec<String>, Option<(u64, MucEvent)>, Vec<Routed>) {
    let mut names = Vec::new();
    let mut ask = None;
    let mut rest = Vec::new();
    for r in out {
        match r {
            Routed::Call(PluginCall::Muc {
                vhost,
                event,
                ask: a,
            }) => {
                names.push(format!("{vhost}:{:?}", event.kind()));
                if let Some(a) = a {
                    assert_eq!(a.service, "conference.x");
                    ask = Some((a.token, *event));
                }
            }
            other => rest.push(other),
        }
    }
    (names, ask, rest)
}

#[test]
fn pre_events_park_the_join_until_the_verdict() {
    let mut m = service(&[]);
    let ext = AllHooks;
    // Creation waits for room-pre-create, then the join for occupant-pre-join.
    let out = m.handle(presence("a@x/1", "r@conference.x/bad", ""), 0, &ext);
    let (names, ask, rest) = calls(out);
    assert_eq!(names, ["x:RoomPreCreate"]);
    assert!(
        rest.is_empty(),
        "nothing is sent while the join waits: {rest:?}"
    );
    let (token, event) = ask.expect("pre-create asks");
    let MucEvent::RoomPreCreate { room, creator } = event else {
        panic!("{event:?}")
    };
    assert_eq!(creator.to_string(), "a@x/1");
    let meeting_id = room.meeting_id.clone();
    // A presence update the client sends meanwhile waits behind the join.
    let out = m.handle(
        presence("a@x/1", "r@conference.x/bad", "<show>away</show>"),
        0,
        &ext,
    );
    assert!(out.is_empty(), "{out:?}");
    let out = m.resume(token, Verdict::Pass, 0, &ext);
    let (names, ask, rest) = calls(out);
    assert_eq!(names, ["x:OccupantPreJoin"]);
    assert!(rest.is_empty(), "{rest:?}");
    let (token, event) = ask.expect("pre-join asks");
    let MucEvent::OccupantPreJoin { room, occupant, .. } = event else {
        panic!("{event:?}")
    };
    assert_eq!(
        room.meeting_id, meeting_id,
        "the room keeps the id it was announced with"
    );
    assert_eq!(occupant.nick, "bad");
    assert_eq!(
        m.counts(),
        (0, 0),
        "no room exists before the join is decided"
    );
    // Refused: the error goes to the joiner; the queued update is replayed as a new join,
    // which asks again.
    let out = m.resume(
        token,
        Verdict::Reject(StanzaError::from_condition("not-acceptable").with_text("no")),
        0,
        &ext,
    );
    let (names, _, rest) = calls(out);
    let Routed::Stanza(err) = &rest[0] else {
        panic!("{rest:?}")
    };
    assert!(
        err.get_child("error", ns::CLIENT)
            .is_some_and(|e| e.has_child("not-acceptable", ns::STANZAS))
    );
    assert_eq!(
        names,
        ["x:RoomPreCreate"],
        "the queued presence is replayed"
    );
    assert_eq!(m.counts(), (0, 0));
    // An unknown token (already answered) changes nothing.
    assert!(m.resume(token, Verdict::Pass, 0, &ext).is_empty());
}

#[test]
fn replaced_join_presence_is_what_the_room_keeps_and_events_follow() {
    let mut m = service(&[]);
    let ext = AllHooks;
    let out = m.handle(presence("a@x/1", "r@conference.x/old", ""), 0, &ext);
    let (_, ask, _) = calls(out);
    let out = m.resume(ask.expect("ask").0, Verdict::Pass, 0, &ext);
    let (_, ask, _) = calls(out);
    let (token, event) = ask.expect("ask");
    let mut p = event.presence().expect("presence").clone();
    p.append_child(Element::new("replaced", "urn:test"));
    let out = m.resume(token, Verdict::Replace(p), 0, &ext);
    let (names, ask, rest) = calls(out);
    assert!(ask.is_none());
    assert_eq!(names, ["x:RoomCreated", "x:OccupantJoined"]);
    let own = rest
        .iter()
        .find_map(|r| match r {
            Routed::Stanza(s) if s.name() == "presence" => Some(s),
            _ => None,
        })
        .expect("own presence");
    assert!(
        own.has_child("replaced", "urn:test"),
        "the replaced presence is what the room keeps"
    );
    assert_eq!(m.counts(), (1, 1));
    let out = m.handle(
        Element::builder("presence", ns::CLIENT)
            .attr("from", "a@x/1")
            .attr("to", "r@conference.x/old")
            .attr("type", "unavailable")
            .build(),
        0,
        &ext,
    );
    let (names, _, _) = calls(out);
    assert_eq!(names, ["x:OccupantLeft", "x:RoomDestroyed"]);
}

#[test]
fn a_session_that_ends_drops_its_parked_joins() {
    let mut m = service(&[]);
    let ext = AllHooks;
    let out = m.handle(presence("a@x/1", "r@conference.x/n", ""), 0, &ext);
    let (_, ask, _) = calls(out);
    let mut out = Vec::new();
    m.session_gone(&Jid::parse("a@x/1").expect("jid"), &ext, &mut out);
    assert!(out.is_empty());
    assert!(
        m.resume(ask.expect("ask").0, Verdict::Pass, 0, &ext)
            .is_empty()
    );
    assert_eq!(m.counts(), (0, 0));
}

/// The stanza errors in `out`, as (to, condition).
fn errors(out: &[Routed]) -> Vec<(String, String)> {
    out.iter()
        .filter_map(|r| match r {
            Routed::Stanza(el) if el.attr("type") == Some("error") => Some((
                el.attr("to").unwrap_or("").to_owned(),
                el.get_child("error", ns::CLIENT)
                    .and_then(|e| e.children().next())
                    .map(|c| c.name().to_owned())
                    .unwrap_or_default(),
            )),
            _ => None,
        })
        .collect()
}

/// Every presence element in `out` that goes to `to`, fan-outs expanded.
fn presences_to(out: &[Routed], to: &str) -> Vec<Element> {
    let mut v = Vec::new();
    for r in out {
        match r {
            Routed::Stanza(el) if el.name() == "presence" && el.attr("to") == Some(to) => {
                v.push(el.clone());
            }
            Routed::Fanout(shared, jids)
                if shared.element().name() == "presence"
                    && jids.iter().any(|j| j.to_string() == to) =>
            {
                v.push(shared.element().clone());
            }
            _ => {}
        }
    }
    v
}

fn identified(m: &mut MucService, full: &str, identity: crate::identity::Identity) {
    m.set_identity(
        &Jid::parse(full).expect("jid"),
        Some(std::sync::Arc::new(identity)),
    );
}

#[test]
fn an_identity_limits_rooms_and_creation_and_makes_moderators() {
    use crate::identity::{Identity, RoomAccess, UserCard};
    let mut m = service(&[]);
    // A token for room "standup" only, which may create rooms and moderates.
    identified(
        &mut m,
        "t@x/1",
        Identity {
            rooms: RoomAccess::Only(vec!["standup".into()]),
            may_create_rooms: true,
            moderator: true,
            user: Some(UserCard {
                name: Some("Ada".into()),
                ..UserCard::default()
            }),
            ..Identity::default()
        },
    );
    let out = m.handle(
        presence("t@x/1", "other@conference.x/ada", ""),
        0,
        &NoExtensions,
    );
    assert_eq!(errors(&out), [("t@x/1".into(), "not-allowed".into())]);
    // Its own room: created, and the card it sends is replaced by the plugin's.
    let mut p = presence("t@x/1", "StandUp@conference.x/ada", "");
    let mut fake = Element::new("identity", ns::CLIENT);
    let mut user = Element::new("user", ns::CLIENT);
    let mut name = Element::new("name", ns::CLIENT);
    name.append_text("Mallory");
    user.append_child(name);
    fake.append_child(user);
    p.append_child(fake);
    let out = m.handle(p, 0, &NoExtensions);
    assert!(errors(&out).is_empty(), "{out:?}");
    // A guest who may not create rooms cannot open a new one, but joins the existing room.
    identified(
        &mut m,
        "g@x/1",
        Identity {
            may_create_rooms: false,
            ..Identity::default()
        },
    );
    let out = m.handle(
        presence("g@x/1", "fresh@conference.x/g", ""),
        0,
        &NoExtensions,
    );
    assert_eq!(errors(&out), [("g@x/1".into(), "not-allowed".into())]);
    let out = m.handle(
        presence("g@x/1", "standup@conference.x/g", ""),
        0,
        &NoExtensions,
    );
    assert!(errors(&out).is_empty(), "{out:?}");
    // What the guest sees of Ada: the plugin's card, once, and owner.
    let seen = presences_to(&out, "g@x/1");
    let ada = seen
        .iter()
        .find(|p| p.attr("from") == Some("standup@conference.x/ada"))
        .expect("Ada's presence");
    let xml = ada.to_string();
    assert!(xml.contains("<name>Ada</name>"), "{xml}");
    assert!(!xml.contains("Mallory"), "{xml}");
    assert!(xml.contains("affiliation='owner'"), "{xml}");
    // A session without identity follows the service's rule (here: anyone creates).
    let out = m.handle(
        presence("n@x/1", "new@conference.x/n", ""),
        0,
        &NoExtensions,
    );
    assert!(errors(&out).is_empty(), "{out:?}");
    // Identities of other vhosts are not this service's; a forgotten one no longer applies.
    m.set_identity(
        &Jid::parse("z@elsewhere/1").expect("jid"),
        Some(std::sync::Arc::new(Identity {
            may_create_rooms: false,
            ..Identity::default()
        })),
    );
    assert!(
        !m.identities
            .contains_key(&Jid::parse("z@elsewhere/1").expect("jid"))
    );
    m.forget_identity(&Jid::parse("g@x/1").expect("jid"));
    assert!(
        !m.identities
            .contains_key(&Jid::parse("g@x/1").expect("jid"))
    );
}
