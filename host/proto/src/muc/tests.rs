//! Unit tests of the MUC core: join order and status codes, shared fan-out, the secure-domain
//! rule, hook verdicts, leaving on session end, and the limits (rooms per session, user and
//! service, presence size, persistence for service admins, disco#items paging, the membership
//! index). End-to-end conversations are in tests/all/muc.rs.

use super::*;
use crate::hooks::{HookKind, NoExtensions, PluginCall};
use std::collections::BTreeSet;

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
            limits: MucLimits::default(),
            view: Default::default(),
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
    let out = m.handle_element(
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
    let out = m.handle_element(
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
        m.handle_element(
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
    let out = m.handle_element(msg, 0, &NoExtensions);
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
    let out = m.handle_element(
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
    m.handle_element(presence("a@x/1", "r@conference.x/a", ""), 0, &NoExtensions);
    m.handle_element(
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
    let out = m.handle_element(presence("a@x/1", "r@conference.x/bad", ""), 0, &ext);
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
    let out = m.handle_element(
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
    let out = m.handle_element(presence("a@x/1", "r@conference.x/old", ""), 0, &ext);
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
    let out = m.handle_element(
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
    let out = m.handle_element(presence("a@x/1", "r@conference.x/n", ""), 0, &ext);
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
    let out = m.handle_element(
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
    let out = m.handle_element(p, 0, &NoExtensions);
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
    let out = m.handle_element(
        presence("g@x/1", "fresh@conference.x/g", ""),
        0,
        &NoExtensions,
    );
    assert_eq!(errors(&out), [("g@x/1".into(), "not-allowed".into())]);
    let out = m.handle_element(
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
    let out = m.handle_element(
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

// ---- Limits (tracker issue 14) ----

/// A service with the test defaults but these limits.
fn limited(limits: MucLimits) -> MucService {
    let mut m = service(&[]);
    m.config.limits = limits;
    m
}

fn jid(s: &str) -> Jid {
    Jid::parse(s).expect("jid")
}

fn xml(s: &str) -> Element {
    crate::xml::parse_element(s.as_bytes(), &crate::xml::Limits::default()).expect("test XML")
}

/// The membership index says exactly what the rooms say, per session and per user, and the
/// public index lists exactly the public rooms.
fn assert_indexes(m: &MucService) {
    let truth: BTreeSet<(String, String)> = m
        .rooms
        .iter()
        .flat_map(|(k, r)| {
            r.occupants
                .iter()
                .map(move |o| (o.real.to_string(), k.clone()))
        })
        .collect();
    assert_eq!(m.members.pairs(), truth, "session index");
    let mut users = std::collections::BTreeMap::new();
    for (real, _) in &truth {
        *users.entry(jid(real).bare().to_string()).or_insert(0u32) += 1;
    }
    assert_eq!(m.members.users(), users, "user index");
    let public: BTreeSet<String> = m
        .rooms
        .iter()
        .filter(|(_, r)| r.config.public)
        .map(|(k, _)| k.clone())
        .collect();
    let listed: BTreeSet<String> = m.config.view.public().into_keys().collect();
    assert_eq!(listed, public, "public index");
    // One shard: the service-wide counts are this service's.
    assert_eq!(m.config.view.rooms(), m.rooms.len(), "room count");
    for (real, _) in &truth {
        let real = jid(real);
        assert_eq!(
            m.config.view.session_count(&real),
            m.members
                .pairs()
                .iter()
                .filter(|(j, _)| *j == real.to_string())
                .count(),
            "session count of {real}"
        );
    }
}

/// The error in `out` to `to`: (condition, type, text).
fn error_to(out: &[Routed], to: &str) -> Option<(String, String, String)> {
    out.iter().find_map(|r| match r {
        Routed::Stanza(el) if el.attr("type") == Some("error") && el.attr("to") == Some(to) => {
            let e = el.get_child("error", ns::CLIENT)?;
            let cond = e.children().find(|c| c.name() != "text")?.name().to_owned();
            let text = e
                .get_child("text", ns::STANZAS)
                .map(Element::text)
                .unwrap_or_default();
            Some((cond, e.attr("type").unwrap_or("").to_owned(), text))
        }
        _ => None,
    })
}

fn leave(from: &str, to: &str) -> Element {
    Element::builder("presence", ns::CLIENT)
        .attr("from", from)
        .attr("to", to)
        .attr("type", "unavailable")
        .build()
}

#[test]
fn rooms_per_session_are_limited_and_a_leave_frees_a_place() {
    let mut m = limited(MucLimits {
        max_rooms_per_session: 2,
        ..MucLimits::default()
    });
    for r in ["r1", "r2"] {
        let out = m.handle_element(
            presence("a@x/1", &format!("{r}@conference.x/a"), ""),
            0,
            &NoExtensions,
        );
        assert!(errors(&out).is_empty(), "{out:?}");
    }
    let out = m.handle_element(presence("a@x/1", "r3@conference.x/a", ""), 0, &NoExtensions);
    let (cond, kind, text) = error_to(&out, "a@x/1").expect("refused");
    assert_eq!(
        (cond.as_str(), kind.as_str()),
        ("policy-violation", "modify")
    );
    assert!(text.contains("at most 2"), "{text}");
    assert_eq!(out.len(), 1, "nothing but the error: {out:?}");
    assert_eq!(m.counts(), (2, 2), "no room was created");
    // Another session of the same user has its own count.
    let out = m.handle_element(
        presence("a@x/2", "r3@conference.x/a2", ""),
        0,
        &NoExtensions,
    );
    assert!(errors(&out).is_empty(), "{out:?}");
    // Leaving one room frees a place.
    m.handle_element(leave("a@x/1", "r1@conference.x/a"), 0, &NoExtensions);
    let out = m.handle_element(presence("a@x/1", "r3@conference.x/a", ""), 0, &NoExtensions);
    assert!(errors(&out).is_empty(), "{out:?}");
    // Service admins (the focus) are not held to it.
    for r in ["r2", "r3", "r4"] {
        let out = m.handle_element(
            presence("focus@auth.x/f", &format!("{r}@conference.x/focus"), ""),
            0,
            &NoExtensions,
        );
        assert!(errors(&out).is_empty(), "{out:?}");
    }
    assert_indexes(&m);
}

#[test]
fn rooms_per_user_count_every_session_of_the_account() {
    let mut m = limited(MucLimits {
        max_rooms_per_session: 10,
        max_rooms_per_user: 3,
        ..MucLimits::default()
    });
    for (from, room) in [("u@x/1", "r1"), ("u@x/1", "r2"), ("u@x/2", "r1")] {
        let nick = from.replace(['@', '/'], "-");
        let out = m.handle_element(
            presence(from, &format!("{room}@conference.x/{nick}"), ""),
            0,
            &NoExtensions,
        );
        assert!(errors(&out).is_empty(), "{out:?}");
    }
    let out = m.handle_element(
        presence("u@x/3", "r3@conference.x/u3", ""),
        0,
        &NoExtensions,
    );
    let (cond, _, text) = error_to(&out, "u@x/3").expect("refused");
    assert_eq!(cond, "policy-violation");
    assert!(
        text.contains("account") && text.contains("at most 3"),
        "{text}"
    );
    // Another user is not affected.
    let out = m.handle_element(presence("v@x/1", "r3@conference.x/v", ""), 0, &NoExtensions);
    assert!(errors(&out).is_empty(), "{out:?}");
    // One session ending gives the account its places back.
    let mut out = Vec::new();
    m.session_gone(&jid("u@x/1"), &NoExtensions, &mut out);
    assert_eq!(m.members.user_count(&jid("u@x")), 1);
    let out = m.handle_element(
        presence("u@x/3", "r3@conference.x/u3", ""),
        0,
        &NoExtensions,
    );
    assert!(errors(&out).is_empty(), "{out:?}");
    assert_indexes(&m);
}

#[test]
fn parked_joins_count_toward_the_session_limit() {
    let mut m = limited(MucLimits {
        max_rooms_per_session: 1,
        ..MucLimits::default()
    });
    let ext = AllHooks;
    let out = m.handle_element(presence("a@x/1", "r1@conference.x/a", ""), 0, &ext);
    let (_, ask, _) = calls(out);
    assert!(ask.is_some(), "the first join waits for room-pre-create");
    let out = m.handle_element(presence("a@x/1", "r2@conference.x/a", ""), 0, &ext);
    assert_eq!(
        error_to(&out, "a@x/1").map(|e| e.0).as_deref(),
        Some("policy-violation"),
        "{out:?}"
    );
    // Once the session is gone its parked join no longer counts for anyone.
    let mut out = Vec::new();
    m.session_gone(&jid("a@x/1"), &ext, &mut out);
    assert!(m.parked.is_empty() && m.parked_by.is_empty());
}

#[test]
fn rooms_per_service_are_limited_but_existing_rooms_stay_open() {
    let mut m = limited(MucLimits {
        max_rooms: 2,
        ..MucLimits::default()
    });
    m.handle_element(presence("a@x/1", "r1@conference.x/a", ""), 0, &NoExtensions);
    m.handle_element(presence("b@x/1", "r2@conference.x/b", ""), 0, &NoExtensions);
    let out = m.handle_element(presence("c@x/1", "r3@conference.x/c", ""), 0, &NoExtensions);
    let (cond, kind, text) = error_to(&out, "c@x/1").expect("refused");
    assert_eq!(
        (cond.as_str(), kind.as_str()),
        ("resource-constraint", "wait")
    );
    assert!(text.contains("(2)"), "{text}");
    // Admins too: it is the service's memory.
    let out = m.handle_element(
        presence("focus@auth.x/f", "r3@conference.x/focus", ""),
        0,
        &NoExtensions,
    );
    assert_eq!(
        error_to(&out, "focus@auth.x/f").map(|e| e.0).as_deref(),
        Some("resource-constraint")
    );
    assert_eq!(m.counts(), (2, 2));
    let out = m.handle_element(presence("c@x/1", "r1@conference.x/c", ""), 0, &NoExtensions);
    assert!(errors(&out).is_empty(), "joining an existing room: {out:?}");
    // A room destroyed when empty makes room for a new one.
    m.handle_element(leave("b@x/1", "r2@conference.x/b"), 0, &NoExtensions);
    let out = m.handle_element(presence("c@x/1", "r3@conference.x/c", ""), 0, &NoExtensions);
    assert!(errors(&out).is_empty(), "{out:?}");
    assert_indexes(&m);
}

#[test]
fn with_a_focus_a_refused_creation_does_not_bring_the_focus_in() {
    let mut m = limited(MucLimits {
        max_rooms: 1,
        ..MucLimits::default()
    });
    m.config.focus = Some(FocusOccupant {
        jid: jid("focus@auth.x/focus"),
        nick: "focus".into(),
        presence: Element::new("presence", ns::CLIENT),
    });
    let out = m.handle_element(presence("a@x/1", "r1@conference.x/a", ""), 0, &NoExtensions);
    assert!(errors(&out).is_empty(), "{out:?}");
    assert_eq!(m.counts(), (1, 2), "the focus joined first");
    let out = m.handle_element(presence("b@x/1", "r2@conference.x/b", ""), 0, &NoExtensions);
    assert_eq!(
        errors(&out),
        [("b@x/1".into(), "resource-constraint".into())]
    );
    assert_eq!(m.counts(), (1, 2));
    assert_eq!(m.members.session_count(&jid("focus@auth.x/focus")), 1);
    assert_indexes(&m);
}

/// What a lib-jitsi-meet client with a token sends in a room presence, on the heavy side:
/// caps, features, codec list, mute state, SourceInfo for a camera and a screen share, E2EE
/// key, region, and an identity card with an avatar URL.
fn heavy_jitsi_presence(from: &str, to: &str) -> Element {
    let features: String = [
        "https://jitsi.org/meet/e2ee",
        "urn:xmpp:jingle:apps:rtp:audio",
        "urn:xmpp:jingle:apps:rtp:video",
        "urn:xmpp:jingle:apps:dtls:0",
        "urn:xmpp:jingle:transports:ice-udp:1",
        "http://jitsi.org/json-encoded-sources",
        "http://jitsi.org/source-name",
        "http://jitsi.org/receive-multiple-video-streams",
        "http://jitsi.org/ssrc-rewriting-1",
        "http://jitsi.org/opus-red",
        "http://jitsi.org/remb",
        "http://jitsi.org/tcc",
        "urn:ietf:rfc:4588",
        "urn:ietf:rfc:5761",
        "urn:ietf:rfc:5888",
    ]
    .iter()
    .map(|f| format!("<feature var='{f}'/>"))
    .collect();
    let key = "A".repeat(600);
    xml(&format!(
        "<presence xmlns='jabber:client' from='{from}' to='{to}'>\
         <x xmlns='http://jabber.org/protocol/muc'/>\
         <stats-id>Kristina-8oj</stats-id>\
         <region xmlns='http://jitsi.org/jitsi-meet' id='eu-central-1'/>\
         <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://jitsi.org/jitsi-meet' ver='cvjWXufsg4xT62Ec2mlATkFZ9lk='/>\
         <features>{features}</features>\
         <jitsi_participant_codecList>av1,vp9,vp8,h264</jitsi_participant_codecList>\
         <jitsi_participant_codecType>vp9</jitsi_participant_codecType>\
         <jitsi_participant_region>eu-central-1</jitsi_participant_region>\
         <jitsi_participant_e2ee.enabled>false</jitsi_participant_e2ee.enabled>\
         <jitsi_participant_e2ee.idKey>{key}</jitsi_participant_e2ee.idKey>\
         <jitsi_participant_isReplacing>false</jitsi_participant_isReplacing>\
         <nick xmlns='http://jabber.org/protocol/nick'>Kristina Müller-Lüdenscheidt (Product)</nick>\
         <email>kristina.mueller@example.com</email>\
         <avatar-url>https://avatars.example.com/u/8c1f6a3e-4b2d-4f7a-9a31-1c2d3e4f5a6b.png?size=256</avatar-url>\
         <audiomuted>false</audiomuted><videomuted>false</videomuted><videoType>camera</videoType>\
         <SourceInfo>{{\"8c1f6a3e-a0\":{{\"muted\":false}},\"8c1f6a3e-v0\":{{\"muted\":false,\"videoType\":\"camera\"}},\"8c1f6a3e-v1\":{{\"muted\":false,\"videoType\":\"desktop\"}}}}</SourceInfo>\
         <flip_device/><raisedHand>1733011200000</raisedHand>\
         <identity><user><id>8c1f6a3e-4b2d-4f7a-9a31-1c2d3e4f5a6b</id><name>Kristina Müller-Lüdenscheidt</name>\
         <avatar>https://avatars.example.com/u/8c1f6a3e-4b2d-4f7a-9a31-1c2d3e4f5a6b.png</avatar></user>\
         <group>a1b2c3d4-tenant</group></identity>\
         </presence>"
    ))
}

fn payload_bytes(p: &Element) -> usize {
    let mut b = Vec::new();
    payload_of(p).write_to(&mut b, ns::CLIENT);
    b.len()
}

#[test]
fn presence_size_is_limited_and_a_refused_one_is_not_stored() {
    let mut m = service(&[]);
    // A heavy Jitsi presence is far below the default.
    let heavy = heavy_jitsi_presence("a@x/1", "r@conference.x/a");
    let size = payload_bytes(&heavy);
    assert!(
        (2048..4096).contains(&size),
        "the heavy presence is {size} bytes"
    );
    assert!(size * 4 < MucLimits::default().max_presence_bytes as usize);
    let out = m.handle_element(heavy, 0, &NoExtensions);
    assert!(errors(&out).is_empty(), "{out:?}");
    // A join beyond the limit: refused, nothing stored.
    let mut m = limited(MucLimits {
        max_presence_bytes: 1024,
        ..MucLimits::default()
    });
    let big = "n".repeat(1100);
    let out = m.handle_element(
        presence("a@x/1", "r@conference.x/a", &big),
        0,
        &NoExtensions,
    );
    let (cond, kind, text) = error_to(&out, "a@x/1").expect("refused");
    assert_eq!(
        (cond.as_str(), kind.as_str()),
        ("policy-violation", "modify")
    );
    assert!(text.contains("at most 1024"), "{text}");
    assert_eq!(m.counts(), (0, 0));
    // An update beyond it: the sender gets the error, nobody else anything, the old presence
    // stays.
    m.handle_element(
        presence("a@x/1", "r@conference.x/a", "small"),
        0,
        &NoExtensions,
    );
    m.handle_element(presence("b@x/1", "r@conference.x/b", ""), 0, &NoExtensions);
    let out = m.handle_element(
        presence("a@x/1", "r@conference.x/a", &big),
        0,
        &NoExtensions,
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        error_to(&out, "a@x/1").map(|e| e.0).as_deref(),
        Some("policy-violation")
    );
    // Nor may a nick change carry it.
    let out = m.handle_element(
        presence("a@x/1", "r@conference.x/a2", &big),
        0,
        &NoExtensions,
    );
    assert_eq!(out.len(), 1, "{out:?}");
    let kept = &m.rooms["r"].occupants[0];
    assert_eq!(kept.nick, "a");
    assert_eq!(
        kept.presence
            .get_child("nick", "http://jabber.org/protocol/nick")
            .map(Element::text)
            .as_deref(),
        Some("small")
    );
    // Exactly at the limit is accepted.
    let mut p = presence("a@x/1", "r@conference.x/a", "");
    let base = payload_bytes(&p);
    let nick = |p: &mut Element, len: usize| {
        p.remove_children("nick", "http://jabber.org/protocol/nick");
        let mut n = Element::new("nick", "http://jabber.org/protocol/nick");
        n.append_text(&"z".repeat(len));
        p.append_child(n);
    };
    nick(&mut p, 1);
    let len = 1024 + 1 - payload_bytes(&p);
    nick(&mut p, len);
    assert!(base < 1024 && payload_bytes(&p) == 1024);
    let out = m.handle_element(p.clone(), 0, &NoExtensions);
    assert!(errors(&out).is_empty(), "{out:?}");
    // One byte more is not.
    nick(&mut p, len + 1);
    let out = m.handle_element(p, 0, &NoExtensions);
    assert_eq!(
        error_to(&out, "a@x/1").map(|e| e.0).as_deref(),
        Some("policy-violation")
    );
}

fn owner_submit(from: &str, room: &str, fields: &str) -> Element {
    xml(&format!(
        "<iq xmlns='jabber:client' type='set' id='cfg' from='{from}' to='{room}'>\
         <query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
         {fields}</x></query></iq>"
    ))
}

fn persistent(v: &str) -> String {
    format!("<field var='muc#roomconfig_persistentroom'><value>{v}</value></field>")
}

#[test]
fn only_service_admins_make_rooms_persistent() {
    let mut m = service(&[]);
    m.handle_element(presence("o@x/1", "r@conference.x/o", ""), 0, &NoExtensions);
    // The owner may not, and nothing of the form applies.
    let out = m.handle_element(
        owner_submit(
            "o@x/1",
            "r@conference.x",
            &format!(
                "{}<field var='muc#roomconfig_roomname'><value>New</value></field>",
                persistent("1")
            ),
        ),
        0,
        &NoExtensions,
    );
    let (cond, kind, text) = error_to(&out, "o@x/1").expect("refused");
    assert_eq!((cond.as_str(), kind.as_str()), ("forbidden", "auth"));
    assert!(text.contains("admins"), "{text}");
    assert!(!m.rooms["r"].config.persistent);
    assert_eq!(m.rooms["r"].config.name, "r");
    // Sending the field back unchanged (a whole form returned) is fine.
    let out = m.handle_element(
        owner_submit("o@x/1", "r@conference.x", &persistent("0")),
        0,
        &NoExtensions,
    );
    assert!(errors(&out).is_empty(), "{out:?}");
    // A service admin may, without being in the room.
    let out = m.handle_element(
        owner_submit("focus@auth.x/f", "r@conference.x", &persistent("1")),
        0,
        &NoExtensions,
    );
    assert!(errors(&out).is_empty(), "{out:?}");
    assert!(m.rooms["r"].config.persistent);
    // The owner's later forms keep it as it is, but may not turn it off.
    let out = m.handle_element(
        owner_submit("o@x/1", "r@conference.x", &persistent("1")),
        0,
        &NoExtensions,
    );
    assert!(errors(&out).is_empty(), "{out:?}");
    let out = m.handle_element(
        owner_submit("o@x/1", "r@conference.x", &persistent("0")),
        0,
        &NoExtensions,
    );
    assert_eq!(
        error_to(&out, "o@x/1").map(|e| e.0).as_deref(),
        Some("forbidden")
    );
    // Persistent: the room outlives its last occupant.
    m.handle_element(leave("o@x/1", "r@conference.x/o"), 0, &NoExtensions);
    assert_eq!(m.counts(), (1, 0));
    assert_indexes(&m);
}

fn disco_items(from: &str, set: &str) -> Element {
    xml(&format!(
        "<iq xmlns='jabber:client' type='get' id='d' from='{from}' to='conference.x'>\
         <query xmlns='http://jabber.org/protocol/disco#items'>{set}</query></iq>"
    ))
}

/// The room JIDs of a disco#items answer, and its `<set/>` as (first, index, last, count).
#[allow(clippy::type_complexity)]
fn items_page(
    out: &[Routed],
) -> (
    Vec<String>,
    Option<(Option<String>, Option<String>, Option<String>, String)>,
) {
    let Some(Routed::Stanza(iq)) = out.first() else {
        panic!("{out:?}")
    };
    assert_eq!(iq.attr("type"), Some("result"), "{iq:?}");
    let q = iq.get_child("query", ns::DISCO_ITEMS).expect("query");
    let items = q
        .children()
        .filter(|c| c.name() == "item")
        .filter_map(|c| c.attr("jid").map(str::to_owned))
        .collect();
    let set = q.get_child("set", limits::RSM).map(|s| {
        let first = s.get_child("first", limits::RSM);
        (
            first.map(Element::text),
            first.and_then(|f| f.attr("index")).map(str::to_owned),
            s.get_child("last", limits::RSM).map(Element::text),
            s.get_child("count", limits::RSM)
                .map(Element::text)
                .unwrap_or_default(),
        )
    });
    (items, set)
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[test]
fn disco_items_are_paged_with_rsm() {
    let mut m = limited(MucLimits {
        disco_items_page: 2,
        ..MucLimits::default()
    });
    // Five public rooms and a hidden one.
    for r in ["e", "a", "d", "b", "c", "hidden"] {
        let from = format!("{r}@x/1");
        m.handle_element(
            presence(&from, &format!("{r}@conference.x/o"), ""),
            0,
            &NoExtensions,
        );
        if r != "hidden" {
            let out = m.handle_element(
                owner_submit(
                    &from,
                    &format!("{r}@conference.x"),
                    "<field var='muc#roomconfig_publicroom'><value>1</value></field>",
                ),
                0,
                &NoExtensions,
            );
            assert!(errors(&out).is_empty(), "{out:?}");
        }
    }
    assert_indexes(&m);
    let room = |r: &str| format!("{r}@conference.x");
    // No <set/>: the default page, and a <set/> saying there is more.
    let (items, set) = items_page(&m.handle_element(disco_items("q@x/1", ""), 0, &NoExtensions));
    assert_eq!(items, [room("a"), room("b")]);
    assert_eq!(
        set,
        Some((s(&room("a")), s("0"), s(&room("b")), "5".into()))
    );
    // The next page, after the last one seen.
    let rsm = |inner: &str| format!("<set xmlns='http://jabber.org/protocol/rsm'>{inner}</set>");
    let (items, set) = items_page(&m.handle_element(
        disco_items("q@x/1", &rsm(&format!("<after>{}</after>", room("b")))),
        0,
        &NoExtensions,
    ));
    assert_eq!(items, [room("c"), room("d")]);
    assert_eq!(
        set,
        Some((s(&room("c")), s("2"), s(&room("d")), "5".into()))
    );
    // After a room that is gone meanwhile: where it would be.
    let (items, _) = items_page(&m.handle_element(
        disco_items("q@x/1", &rsm(&format!("<after>{}</after>", room("bb")))),
        0,
        &NoExtensions,
    ));
    assert_eq!(items, [room("c"), room("d")]);
    // The last page, and the page before an item.
    let (items, set) = items_page(&m.handle_element(
        disco_items("q@x/1", &rsm("<max>10</max><before/>")),
        0,
        &NoExtensions,
    ));
    assert_eq!(
        items,
        [room("d"), room("e")],
        "max is capped at the page size"
    );
    assert_eq!(
        set,
        Some((s(&room("d")), s("3"), s(&room("e")), "5".into()))
    );
    let (items, set) = items_page(&m.handle_element(
        disco_items(
            "q@x/1",
            &rsm(&format!("<max>1</max><before>{}</before>", room("c"))),
        ),
        0,
        &NoExtensions,
    ));
    assert_eq!(items, [room("b")]);
    assert_eq!(
        set,
        Some((s(&room("b")), s("1"), s(&room("b")), "5".into()))
    );
    // Past the end: no items, the count only. max 0: the count only.
    let (items, set) = items_page(&m.handle_element(
        disco_items("q@x/1", &rsm(&format!("<after>{}</after>", room("e")))),
        0,
        &NoExtensions,
    ));
    assert!(items.is_empty());
    assert_eq!(set, Some((None, None, None, "5".into())));
    let (items, set) =
        items_page(&m.handle_element(disco_items("q@x/1", &rsm("<max>0</max>")), 0, &NoExtensions));
    assert!(items.is_empty());
    assert_eq!(set, Some((None, None, None, "5".into())));
    // Page jumping by index.
    let (items, set) = items_page(&m.handle_element(
        disco_items("q@x/1", &rsm("<index>4</index>")),
        0,
        &NoExtensions,
    ));
    assert_eq!(items, [room("e")]);
    assert_eq!(set.and_then(|s| s.1), s("4"));
    // Errors: a malformed max, an id that is no room of this service.
    let out = m.handle_element(
        disco_items("q@x/1", &rsm("<max>lots</max>")),
        0,
        &NoExtensions,
    );
    assert_eq!(errors(&out), [("q@x/1".into(), "bad-request".into())]);
    let out = m.handle_element(
        disco_items("q@x/1", &rsm("<after>a@elsewhere</after>")),
        0,
        &NoExtensions,
    );
    assert_eq!(errors(&out), [("q@x/1".into(), "item-not-found".into())]);
    // A room made hidden again leaves the list.
    let out = m.handle_element(
        owner_submit(
            "a@x/1",
            "a@conference.x",
            "<field var='muc#roomconfig_publicroom'><value>0</value></field>",
        ),
        0,
        &NoExtensions,
    );
    assert!(errors(&out).is_empty(), "{out:?}");
    let (items, set) = items_page(&m.handle_element(disco_items("q@x/1", ""), 0, &NoExtensions));
    assert_eq!(items, [room("b"), room("c")]);
    assert_eq!(set.map(|s| s.3).as_deref(), Some("4"));
    // A list that fits in one page carries no <set/> unless asked.
    let mut m = service(&[]);
    m.handle_element(presence("a@x/1", "a@conference.x/o", ""), 0, &NoExtensions);
    m.handle_element(
        owner_submit(
            "a@x/1",
            "a@conference.x",
            "<field var='muc#roomconfig_publicroom'><value>1</value></field>",
        ),
        0,
        &NoExtensions,
    );
    let (items, set) = items_page(&m.handle_element(disco_items("q@x/1", ""), 0, &NoExtensions));
    assert_eq!((items.len(), set), (1, None));
}

fn admin_set(from: &str, room: &str, item: &str) -> Element {
    xml(&format!(
        "<iq xmlns='jabber:client' type='set' id='adm' from='{from}' to='{room}'>\
         <query xmlns='http://jabber.org/protocol/muc#admin'>{item}</query></iq>"
    ))
}

#[test]
fn membership_index_follows_every_way_in_and_out() {
    let mut m = service(&[]);
    let ext = NoExtensions;
    // Joins in three rooms; a public one.
    for (from, to) in [
        ("o@x/1", "r1@conference.x/o"),
        ("a@x/1", "r1@conference.x/a"),
        ("a@x/2", "r1@conference.x/a2"),
        ("b@x/1", "r1@conference.x/b"),
        ("c@x/1", "r1@conference.x/c"),
        ("a@x/1", "r2@conference.x/a"),
        ("o@x/1", "r3@conference.x/o"),
        ("c@x/1", "r3@conference.x/c"),
    ] {
        let out = m.handle_element(presence(from, to, ""), 0, &ext);
        assert!(errors(&out).is_empty(), "{out:?}");
        assert_indexes(&m);
    }
    m.handle_element(
        owner_submit(
            "o@x/1",
            "r3@conference.x",
            "<field var='muc#roomconfig_publicroom'><value>1</value></field>",
        ),
        0,
        &ext,
    );
    assert_indexes(&m);
    assert_eq!(m.members.session_count(&jid("a@x/1")), 2);
    assert_eq!(m.members.user_count(&jid("a@x")), 3);
    // A nick change keeps the entry.
    let out = m.handle_element(presence("a@x/1", "r1@conference.x/a-new", ""), 0, &ext);
    assert!(errors(&out).is_empty(), "{out:?}");
    assert_indexes(&m);
    assert_eq!(m.members.session_count(&jid("a@x/1")), 2);
    // A kick and a ban remove theirs (the ban both sessions of a@x).
    let out = m.handle_element(
        admin_set("o@x/1", "r1@conference.x", "<item nick='b' role='none'/>"),
        0,
        &ext,
    );
    assert!(errors(&out).is_empty(), "{out:?}");
    assert_indexes(&m);
    assert_eq!(m.members.session_count(&jid("b@x/1")), 0);
    let out = m.handle_element(
        admin_set(
            "o@x/1",
            "r1@conference.x",
            "<item jid='a@x' affiliation='outcast'/>",
        ),
        0,
        &ext,
    );
    assert!(errors(&out).is_empty(), "{out:?}");
    assert_indexes(&m);
    assert_eq!(m.members.user_count(&jid("a@x")), 1, "still in r2");
    // A leave that empties a room removes the room.
    m.handle_element(leave("a@x/1", "r2@conference.x/a"), 0, &ext);
    assert_indexes(&m);
    assert!(!m.rooms.contains_key("r2"));
    // Destroying a room removes every occupant's entry and its public listing.
    let out = m.handle_element(
        xml(
            "<iq xmlns='jabber:client' type='set' id='x' from='o@x/1' to='r3@conference.x'>\
             <query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query></iq>",
        ),
        0,
        &ext,
    );
    assert!(errors(&out).is_empty(), "{out:?}");
    assert_indexes(&m);
    assert_eq!(m.members.session_count(&jid("c@x/1")), 1);
    assert!(m.config.view.public().is_empty());
    // The session's end leaves only its own rooms; the others are untouched.
    let mut out = Vec::new();
    m.session_gone(&jid("c@x/1"), &ext, &mut out);
    assert_indexes(&m);
    assert_eq!(m.counts(), (1, 1));
    let told: BTreeSet<String> = presences(&out).into_iter().map(|(to, ..)| to).collect();
    assert_eq!(
        told,
        BTreeSet::from(["c@x/1".to_owned(), "o@x/1".to_owned()])
    );
    m.session_gone(&jid("o@x/1"), &ext, &mut out);
    assert_indexes(&m);
    assert_eq!(m.counts(), (0, 0));
    assert!(m.members.pairs().is_empty() && m.members.users().is_empty());
}
