//! The focus driven through a real `Router` and `MucService` (no IO): the conference request,
//! Jicofo's room lock, invitations once two are present, session-accept → source-add with
//! simulcast stripped, leave → source-remove and release, and the refusals.

use std::sync::Arc;

use crate::entropy::Seeded;
use crate::focus::{BridgeRequest, FOCUS_NICK, Focus, FocusConfig, LocalTransport};
use crate::jingle::{self, Action, Candidate};
use crate::muc::{FocusOccupant, MucConfig};
use crate::router::{Delivery, Router, ServerInfo};
use crate::stanza::Jid;
use crate::xml::{Element, ns};

const ROOM: &str = "room@conference.meet.x";

fn jid(s: &str) -> Jid {
    Jid::parse(s).expect("jid")
}

fn setup() -> Router {
    setup_with(Vec::new())
}

/// `room_creators`: the vhost domains whose users may start conferences (empty: anyone).
fn setup_with(room_creators: Vec<String>) -> Router {
    let focus_jid = jid("focus@auth.meet.x/focus");
    let mut r = Router::new(
        ServerInfo {
            name: "Lilt".into(),
            version: "0".into(),
            components: Vec::new(),
        },
        ["meet.x".to_owned()],
        Arc::new(Seeded::new(5)),
    );
    r.add_vhost(
        "meet.x",
        Some(MucConfig {
            domain: "conference.meet.x".into(),
            vhost: "meet.x".into(),
            lock_new_rooms: false,
            destroy_when_empty: true,
            room_creators: room_creators.clone(),
            admins: vec![focus_jid.bare()],
            max_occupants: 0,
            focus: Some(FocusOccupant {
                jid: focus_jid.clone(),
                nick: FOCUS_NICK.into(),
                presence: Focus::join_presence(),
            }),
            limits: crate::muc::MucLimits::default(),
            view: Default::default(),
        }),
        Some(FocusConfig {
            vhost: "meet.x".into(),
            domain: "focus.meet.x".into(),
            jid: focus_jid,
            muc: "conference.meet.x".into(),
            room_creators,
        }),
    );
    r.bind(&jid("aaaa1111@meet.x"), Some("r"), 1, None)
        .expect("bind");
    r.bind(&jid("bbbb2222@meet.x"), Some("r"), 2, None)
        .expect("bind");
    r.bind(&jid("cccc3333@meet.x"), Some("r"), 3, None)
        .expect("bind");
    r
}

fn to(ds: &[Delivery], id: u64) -> Vec<Element> {
    ds.iter()
        .filter(|d| d.to == id)
        .map(|d| d.stanza.element().clone())
        .collect()
}

fn join(r: &mut Router, who: &str, nick: &str) -> Vec<Delivery> {
    let p = Element::builder("presence", ns::CLIENT)
        .attr("from", who)
        .attr("to", format!("{ROOM}/{nick}"))
        .append(Element::new("x", ns::MUC))
        .append(
            Element::builder("nick", "http://jabber.org/protocol/nick")
                .text(nick)
                .build(),
        )
        .build();
    r.route(p)
}

fn transport(n: u8) -> LocalTransport {
    LocalTransport {
        ufrag: format!("uf{n}x"),
        pwd: "p".repeat(24),
        fingerprint: "AB:CD".into(),
        candidates: vec![Candidate::udp_host(
            "c1",
            "1",
            2_130_706_431,
            "127.0.0.1",
            10000,
        )],
        web_socket: Some(format!("ws://localhost/colibri-ws/lilt/c/{n}?pwd=x")),
        feedback_ssrcs: (1000 + u32::from(n), 2000 + u32::from(n)),
    }
}

/// The `<jingle/>` of the iq sets in `stanzas`.
fn jingles(stanzas: &[Element]) -> Vec<jingle::Jingle> {
    stanzas
        .iter()
        .filter(|s| s.name() == "iq" && s.attr("type") == Some("set"))
        .filter_map(|s| s.get_child("jingle", jingle::NS))
        .map(|j| jingle::parse(j).expect("focus sends valid jingle"))
        .collect()
}

/// Answer every Allocate with a transport.
fn allocate(r: &mut Router) -> Vec<Delivery> {
    let mut out = Vec::new();
    for (vhost, req) in r.take_bridge() {
        if let BridgeRequest::Allocate {
            conference,
            endpoint,
        } = req
        {
            let n = endpoint.as_bytes()[0];
            out.extend(r.bridge_allocated(&vhost, &conference, &endpoint, Ok(transport(n))));
        }
    }
    out
}

fn source(ssrc: u32, msid: &str) -> Element {
    Element::builder("source", jingle::ns::SSMA)
        .attr("ssrc", ssrc.to_string())
        .append(
            Element::builder("parameter", jingle::ns::SSMA)
                .attr("name", "msid")
                .attr("value", msid)
                .build(),
        )
        .build()
}

fn group(semantics: &str, ssrcs: &[u32]) -> Element {
    let mut g = Element::builder("ssrc-group", jingle::ns::SSMA)
        .attr("semantics", semantics)
        .build();
    for s in ssrcs {
        g.append_child(
            Element::builder("source", jingle::ns::SSMA)
                .attr("ssrc", s.to_string())
                .build(),
        );
    }
    g
}

/// A Chrome-like session-accept: one audio source, three simulcast layers with RTX.
fn accept(from: &str, sid: &str, with_sources: bool) -> Element {
    let mut j = Element::builder("jingle", jingle::NS)
        .attr("action", "session-accept")
        .attr("sid", sid)
        .build();
    for media in ["audio", "video"] {
        let mut d = Element::builder("description", jingle::ns::RTP)
            .attr("media", media)
            .build();
        if with_sources && media == "audio" {
            d.append_child(source(11, "s1 a1"));
        }
        if with_sources && media == "video" {
            for s in [21, 22, 23, 31, 32, 33] {
                d.append_child(source(s, "s1 v1"));
            }
            d.append_child(group("SIM", &[21, 22, 23]));
            for (p, x) in [(21, 31), (22, 32), (23, 33)] {
                d.append_child(group("FID", &[p, x]));
            }
        }
        let t = Element::builder("transport", jingle::ns::ICE_UDP)
            .attr("ufrag", "cli1")
            .attr("pwd", "clientpasswordclientpassword")
            .append(
                Element::builder("fingerprint", jingle::ns::DTLS)
                    .attr("hash", "sha-256")
                    .attr("setup", "active")
                    .text("01:02")
                    .build(),
            )
            .build();
        let c = Element::builder("content", jingle::NS)
            .attr("name", media)
            .attr("creator", "responder")
            .append(d)
            .append(t)
            .build();
        j.append_child(c);
    }
    Element::builder("iq", ns::CLIENT)
        .attr("type", "set")
        .attr("id", "acc")
        .attr("from", from)
        .attr("to", format!("{ROOM}/{FOCUS_NICK}"))
        .append(j)
        .build()
}

#[test]
fn conference_request_puts_the_focus_in_the_room_first() {
    let mut r = setup();
    let iq = Element::builder("iq", ns::CLIENT)
        .attr("type", "set")
        .attr("id", "c1")
        .attr("from", "aaaa1111@meet.x/r")
        .attr("to", "focus.meet.x")
        .append(
            Element::builder("conference", super::NS_FOCUS)
                .attr("room", ROOM)
                .attr("machine-uid", "m")
                .build(),
        )
        .build();
    let out = to(&r.route(iq), 1);
    let reply = out.iter().find(|s| s.name() == "iq").expect("answered");
    let conf = reply
        .get_child("conference", super::NS_FOCUS)
        .expect("conference");
    assert_eq!(reply.attr("type"), Some("result"));
    assert_eq!(conf.attr("ready"), Some("true"));
    assert_eq!(conf.attr("focusjid"), Some("focus@auth.meet.x"));
    let authentication = conf
        .children()
        .find(|p| p.attr("name") == Some("authentication"))
        .and_then(|p| p.attr("value"));
    assert_eq!(
        authentication,
        Some("false"),
        "anyone may start a conference here"
    );

    let out = to(&join(&mut r, "aaaa1111@meet.x/r", "aaaa1111"), 1);
    let presences: Vec<&Element> = out.iter().filter(|s| s.name() == "presence").collect();
    // The focus, the joiner's own presence, then (Jicofo's rule without authentication) the
    // joiner made owner, since nobody else is.
    assert_eq!(presences.len(), 3, "{out:?}");
    assert_eq!(presences[0].attr("from"), Some(&*format!("{ROOM}/focus")));
    let item = presences[0]
        .get_child("x", ns::MUC_USER)
        .and_then(|x| x.get_child("item", ns::MUC_USER))
        .expect("item");
    assert_eq!(item.attr("jid"), Some("focus@auth.meet.x/focus"));
    assert_eq!(item.attr("affiliation"), Some("owner"));
    let own = presences[1].get_child("x", ns::MUC_USER).expect("x");
    let codes: Vec<&str> = own.children().filter_map(|c| c.attr("code")).collect();
    assert!(
        codes.contains(&"110") && !codes.contains(&"201"),
        "{codes:?}"
    );
    let owner = presences[2]
        .get_child("x", ns::MUC_USER)
        .and_then(|x| x.get_child("item", ns::MUC_USER))
        .expect("item");
    assert_eq!(owner.attr("affiliation"), Some("owner"));
    // Alone: nobody is invited yet.
    assert!(r.take_bridge().is_empty());
}

#[test]
fn a_join_without_conference_request_still_finds_the_focus() {
    let mut r = setup();
    let out = to(&join(&mut r, "aaaa1111@meet.x/r", "aaaa1111"), 1);
    let first = out
        .iter()
        .find(|s| s.name() == "presence")
        .expect("presence");
    assert_eq!(first.attr("from"), Some(&*format!("{ROOM}/focus")));
    // Nobody else may take the focus's nick.
    let out = to(&join(&mut r, "bbbb2222@meet.x/r", "focus"), 2);
    let err = out
        .iter()
        .find(|s| s.attr("type") == Some("error"))
        .expect("refused");
    assert!(
        err.get_child("error", ns::CLIENT)
            .is_some_and(|e| e.has_child("conflict", ns::STANZAS))
    );
}

#[test]
fn sessions_sources_and_leaving() {
    let mut r = setup();
    join(&mut r, "aaaa1111@meet.x/r", "aaaa1111");
    join(&mut r, "bbbb2222@meet.x/r", "bbbb2222");
    let out = allocate(&mut r);
    let (a, b) = (to(&out, 1), to(&out, 2));
    let (ja, jb) = (jingles(&a), jingles(&b));
    assert_eq!(ja.len(), 1);
    assert_eq!(jb.len(), 1);
    let initiate = a.iter().find(|s| s.name() == "iq").expect("iq");
    assert_eq!(initiate.attr("from"), Some(&*format!("{ROOM}/focus")));
    assert_eq!(initiate.attr("to"), Some("aaaa1111@meet.x/r"));
    assert_eq!(ja[0].action, Action::SessionInitiate);
    // Only the bridge's feedback sources so far.
    let owners: Vec<_> = ja[0]
        .contents
        .iter()
        .flat_map(|c| &c.sources)
        .filter_map(|s| s.owner.clone())
        .collect();
    assert_eq!(owners, ["jvb", "jvb"]);
    let t = ja[0].contents[0].transport.as_ref().expect("transport");
    assert_eq!(t.ufrag.as_deref(), Some("uf97x"));
    assert!(t.web_socket.is_some());

    // Alice accepts with simulcast; Bob has not accepted yet, so he hears nothing.
    let out = r.route(accept("aaaa1111@meet.x/r", &ja[0].sid, true));
    let a = to(&out, 1);
    assert!(
        a.iter()
            .any(|s| s.attr("type") == Some("result") && s.attr("id") == Some("acc"))
    );
    assert!(jingles(&to(&out, 2)).is_empty());
    let bridge: Vec<_> = r.take_bridge().into_iter().map(|(_, b)| b).collect();
    assert!(matches!(&bridge[0], BridgeRequest::Connect { ufrag, .. } if ufrag == "cli1"));
    assert!(
        matches!(&bridge[1], BridgeRequest::Sources { sources, .. } if sources.len() == 7),
        "{bridge:?}"
    );

    // Bob accepts: he hears of Alice's audio, her first layer and its RTX, named and owned.
    let out = r.route(accept("bbbb2222@meet.x/r", &jb[0].sid, false));
    let jb2 = jingles(&to(&out, 2));
    assert_eq!(jb2.len(), 1, "{out:?}");
    assert_eq!(jb2[0].action, Action::SourceAdd);
    let ssrcs: Vec<u32> = jb2[0]
        .contents
        .iter()
        .flat_map(|c| &c.sources)
        .map(|s| s.ssrc)
        .collect();
    assert_eq!(ssrcs, [11, 21, 31]);
    assert!(jb2[0].contents.iter().flat_map(|c| &c.sources).all(|s| {
        s.owner.as_deref() == Some("aaaa1111") && s.msid.is_some() && s.name.is_some()
    }));
    let groups: Vec<_> = jb2[0].contents.iter().flat_map(|c| &c.groups).collect();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].semantics, "FID");

    // A late joiner's offer carries Alice's sources right away.
    join(&mut r, "cccc3333@meet.x/r", "cccc3333");
    let jc = jingles(&to(&allocate(&mut r), 3));
    let late: Vec<u32> = jc[0]
        .contents
        .iter()
        .flat_map(|c| &c.sources)
        .filter(|s| s.owner.as_deref() == Some("aaaa1111"))
        .map(|s| s.ssrc)
        .collect();
    assert_eq!(late, [11, 21, 31]);

    // An SSRC another participant uses is refused.
    let out = r.route(accept("cccc3333@meet.x/r", &jc[0].sid, true));
    let c = to(&out, 3);
    assert!(c.iter().any(|s| {
        s.attr("type") == Some("error")
            && s.get_child("error", ns::CLIENT)
                .is_some_and(|e| e.has_child("bad-request", ns::STANZAS))
    }));

    // Alice leaves without terminating: Bob hears her sources go; her endpoint is released.
    let leave = Element::builder("presence", ns::CLIENT)
        .attr("type", "unavailable")
        .attr("from", "aaaa1111@meet.x/r")
        .attr("to", format!("{ROOM}/aaaa1111"))
        .build();
    let out = r.route(leave);
    let jb3 = jingles(&to(&out, 2));
    assert_eq!(jb3.len(), 1);
    assert_eq!(jb3[0].action, Action::SourceRemove);
    assert!(r.take_bridge().iter().any(
        |(_, b)| matches!(b, BridgeRequest::Release { endpoint, .. } if endpoint == "aaaa1111")
    ));
}

#[test]
fn unknown_sessions_and_moderator_mute() {
    let mut r = setup();
    join(&mut r, "aaaa1111@meet.x/r", "aaaa1111");
    join(&mut r, "bbbb2222@meet.x/r", "bbbb2222");
    allocate(&mut r);
    let out = to(&r.route(accept("aaaa1111@meet.x/r", "nosuchsid", true)), 1);
    let err = out
        .iter()
        .find(|s| s.attr("type") == Some("error"))
        .and_then(|s| s.get_child("error", ns::CLIENT))
        .expect("error");
    assert!(err.has_child("item-not-found", ns::STANZAS));
    assert!(err.has_child("unknown-session", jingle::NS_ERRORS));

    // Alice, the first participant, was made owner (a moderator): she may mute Bob.
    let mute = |from: &str, target: &str| {
        Element::builder("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", "m")
            .attr("from", from)
            .attr("to", format!("{ROOM}/focus"))
            .append(
                Element::builder("mute", super::NS_MUTE_AUDIO)
                    .attr("jid", format!("{ROOM}/{target}"))
                    .text("true")
                    .build(),
            )
            .build()
    };
    let out = r.route(mute("aaaa1111@meet.x/r", "bbbb2222"));
    let to_bob = to(&out, 2);
    let m = to_bob
        .iter()
        .find_map(|s| s.get_child("mute", super::NS_MUTE_AUDIO))
        .expect("bob is told");
    assert_eq!(m.attr("actor"), Some(&*format!("{ROOM}/aaaa1111")));
    assert!(
        to_bob
            .iter()
            .any(|s| s.attr("from") == Some(&*format!("{ROOM}/focus")))
    );
    // Bob is no moderator: he may not mute Alice.
    let out = to(&r.route(mute("bbbb2222@meet.x/r", "aaaa1111")), 2);
    assert!(out.iter().any(|s| s.attr("type") == Some("error")));
}

#[test]
fn a_refused_offer_releases_the_endpoint() {
    let mut r = setup();
    join(&mut r, "aaaa1111@meet.x/r", "aaaa1111");
    join(&mut r, "bbbb2222@meet.x/r", "bbbb2222");
    let out = allocate(&mut r);
    let offer = to(&out, 1)
        .into_iter()
        .find(|s| s.name() == "iq")
        .expect("offer");
    // The client answers as lib-jitsi-meet does for a session it will not take.
    let mut refusal = Element::builder("iq", ns::CLIENT)
        .attr("type", "error")
        .attr("id", offer.attr("id").expect("id"))
        .attr("from", "aaaa1111@meet.x/r")
        .attr("to", offer.attr("from").expect("from"))
        .build();
    refusal.append_child(crate::stanza::StanzaError::service_unavailable().to_element());
    r.route(refusal);
    let released: Vec<_> = r
        .take_bridge()
        .into_iter()
        .filter(
            |(_, b)| matches!(b, BridgeRequest::Release { endpoint, .. } if endpoint == "aaaa1111"),
        )
        .collect();
    assert_eq!(released.len(), 1);
    // A stray error with another id changes nothing.
    let mut stray = Element::builder("iq", ns::CLIENT)
        .attr("type", "error")
        .attr("id", "other")
        .attr("from", "bbbb2222@meet.x/r")
        .attr("to", format!("{ROOM}/focus"))
        .build();
    stray.append_child(crate::stanza::StanzaError::service_unavailable().to_element());
    r.route(stray);
    assert!(r.take_bridge().is_empty());
}

#[test]
fn terminate_with_restart_and_ice_failure_reinvite() {
    let mut r = setup();
    join(&mut r, "aaaa1111@meet.x/r", "aaaa1111");
    join(&mut r, "bbbb2222@meet.x/r", "bbbb2222");
    let ja = jingles(&to(&allocate(&mut r), 1));
    r.route(accept("aaaa1111@meet.x/r", &ja[0].sid, true));
    r.take_bridge();
    let jingle_iq = |action: &str, sid: &str, child: Element| {
        let j = Element::builder("jingle", jingle::NS)
            .attr("action", action)
            .attr("sid", sid)
            .append(child)
            .build();
        Element::builder("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", "t")
            .attr("from", "aaaa1111@meet.x/r")
            .attr("to", format!("{ROOM}/focus"))
            .append(j)
            .build()
    };
    // lib-jitsi-meet's ICE-failure path: terminate with restart=true → a new session.
    let restart = Element::builder("bridge-session", super::NS_FOCUS)
        .attr("id", "x")
        .attr("restart", "true")
        .build();
    let out = to(
        &r.route(jingle_iq("session-terminate", &ja[0].sid, restart)),
        1,
    );
    assert!(out.iter().any(|s| s.attr("type") == Some("result")));
    let bridge: Vec<_> = r.take_bridge().into_iter().map(|(_, b)| b).collect();
    assert!(
        matches!(&bridge[0], BridgeRequest::Release { endpoint, .. } if endpoint == "aaaa1111")
    );
    assert!(
        bridge.iter().any(
            |b| matches!(b, BridgeRequest::Allocate { endpoint, .. } if endpoint == "aaaa1111")
        ),
        "{bridge:?}"
    );
    let fresh = jingles(&to(
        &r.bridge_allocated(
            "meet.x",
            match &bridge[0] {
                BridgeRequest::Release { conference, .. } => conference,
                _ => unreachable!(),
            },
            "aaaa1111",
            Ok(transport(b'a')),
        ),
        1,
    ));
    assert_eq!(fresh[0].action, Action::SessionInitiate);
    assert_ne!(fresh[0].sid, ja[0].sid);
    // The old sid is unknown from now on.
    let stale = to(&r.route(accept("aaaa1111@meet.x/r", &ja[0].sid, false)), 1);
    assert!(stale.iter().any(|s| s.attr("type") == Some("error")));

    // session-info with ICE failed: the focus terminates the session itself and re-invites.
    let failed = Element::builder("ice-state", super::NS_FOCUS)
        .text("failed")
        .build();
    let out = to(
        &r.route(jingle_iq("session-info", &fresh[0].sid, failed)),
        1,
    );
    let terminate = jingles(&out);
    assert_eq!(terminate[0].action, Action::SessionTerminate);
    assert_eq!(terminate[0].sid, fresh[0].sid);
    assert!(r.take_bridge().iter().any(
        |(_, b)| matches!(b, BridgeRequest::Allocate { endpoint, .. } if endpoint == "aaaa1111")
    ));
}

#[test]
fn secure_domain_refuses_new_conferences_from_other_domains() {
    // Only users of `accounts.meet.x` may start conferences; this guest is on `meet.x`, so its
    // request for a new room is refused as Jicofo does.
    let mut r = setup_with(vec!["accounts.meet.x".into()]);
    let iq = Element::builder("iq", ns::CLIENT)
        .attr("type", "set")
        .attr("id", "c1")
        .attr("from", "aaaa1111@meet.x/r")
        .attr("to", "focus.meet.x")
        .append(
            Element::builder("conference", super::NS_FOCUS)
                .attr("room", ROOM)
                .build(),
        )
        .build();
    let out = to(&r.route(iq), 1);
    let error = out
        .iter()
        .find(|s| s.attr("type") == Some("error"))
        .and_then(|s| s.get_child("error", ns::CLIENT))
        .expect("refused");
    assert!(error.has_child("not-authorized", ns::STANZAS));
    assert!(r.take_bridge().is_empty());
}

/// A `json-message` from the AV moderation component to the focus.
fn av_moderation(from: &str, body: &str) -> Element {
    Element::builder("message", ns::CLIENT)
        .attr("from", from)
        .attr("to", "focus@auth.meet.x/focus")
        .append(
            Element::builder("json-message", super::NS_JITMEET)
                .text(body)
                .build(),
        )
        .build()
}

fn self_unmute(from: &str, nick: &str) -> Element {
    Element::builder("iq", ns::CLIENT)
        .attr("type", "set")
        .attr("id", "u")
        .attr("from", from)
        .attr("to", format!("{ROOM}/focus"))
        .append(
            Element::builder("mute", super::NS_MUTE_AUDIO)
                .attr("jid", format!("{ROOM}/{nick}"))
                .text("false")
                .build(),
        )
        .build()
}

fn refused(ds: &[Delivery], id: u64) -> bool {
    to(ds, id).iter().any(|s| s.attr("type") == Some("error"))
}

#[test]
fn av_moderation_mutes_everyone_but_its_actor_and_gates_unmuting() {
    let mut r = setup();
    join(&mut r, "aaaa1111@meet.x/r", "aaaa1111");
    join(&mut r, "bbbb2222@meet.x/r", "bbbb2222");
    join(&mut r, "cccc3333@meet.x/r", "cccc3333");
    allocate(&mut r);
    // Before moderation, Bob unmutes himself freely.
    assert!(!refused(
        &r.route(self_unmute("bbbb2222@meet.x/r", "bbbb2222")),
        2
    ));
    // A client cannot pose as the component: its message is ignored.
    let enable = format!(
        r#"{{"type":"av_moderation","enabled":true,"room":"{ROOM}","actor":"{ROOM}/aaaa1111","mediaType":"audio"}}"#
    );
    let out = r.route(av_moderation("cccc3333@meet.x/r", &enable));
    assert!(to(&out, 2).is_empty());
    assert!(!refused(
        &r.route(self_unmute("bbbb2222@meet.x/r", "bbbb2222")),
        2
    ));
    // The component turns audio moderation on: Bob and Carol are muted, Alice (the actor) not.
    let out = r.route(av_moderation("avmoderation.meet.x", &enable));
    for id in [2, 3] {
        let m = to(&out, id)
            .iter()
            .find_map(|s| s.get_child("mute", super::NS_MUTE_AUDIO).cloned())
            .expect("muted");
        assert_eq!(m.text(), "true");
        assert_eq!(m.attr("actor"), Some(&*format!("{ROOM}/aaaa1111")));
    }
    assert!(to(&out, 1).is_empty());
    // Bob may not unmute himself now; Alice (a moderator) may.
    assert!(refused(
        &r.route(self_unmute("bbbb2222@meet.x/r", "bbbb2222")),
        2
    ));
    assert!(!refused(
        &r.route(self_unmute("aaaa1111@meet.x/r", "aaaa1111")),
        1
    ));
    // A moderator approves Bob: he may; Carol still may not.
    let approve = format!(
        r#"{{"type":"av_moderation","room":"{ROOM}","whitelists":{{"audio":["{ROOM}/aaaa1111","{ROOM}/bbbb2222"]}},"mediaType":"audio"}}"#
    );
    r.route(av_moderation("avmoderation.meet.x", &approve));
    assert!(!refused(
        &r.route(self_unmute("bbbb2222@meet.x/r", "bbbb2222")),
        2
    ));
    assert!(refused(
        &r.route(self_unmute("cccc3333@meet.x/r", "cccc3333")),
        3
    ));
    // Rejected again (the component leaves the empty list out), then moderation ends.
    let reject = format!(
        r#"{{"type":"av_moderation","room":"{ROOM}","whitelists":{{}},"mediaType":"audio","removed":true}}"#
    );
    r.route(av_moderation("avmoderation.meet.x", &reject));
    assert!(refused(
        &r.route(self_unmute("bbbb2222@meet.x/r", "bbbb2222")),
        2
    ));
    let disable = format!(
        r#"{{"type":"av_moderation","enabled":false,"room":"{ROOM}","actor":"{ROOM}/aaaa1111","mediaType":"audio"}}"#
    );
    r.route(av_moderation("avmoderation.meet.x", &disable));
    assert!(!refused(
        &r.route(self_unmute("cccc3333@meet.x/r", "cccc3333")),
        3
    ));
    // Junk from the component changes nothing and answers nothing.
    let out = r.route(av_moderation("avmoderation.meet.x", "{not json"));
    assert!(out.is_empty());
}
