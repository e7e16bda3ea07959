//! Unit tests of the routing rules on a router with no IO.

use super::*;

/// `stanza` with its addresses parsed, as the stream cores hand it to the router.
fn parsed(stanza: &Element) -> Stanza {
    Stanza::parse(stanza.clone()).expect("addresses")
}

fn router() -> Router {
    Router::new(
        ServerInfo {
            name: "Lilt".into(),
            version: "0".into(),
            components: vec!["static.a.example".into()],
        },
        ["a.example".to_owned()],
        std::sync::Arc::new(crate::entropy::Seeded::new(1)),
    )
}

fn jid(s: &str) -> Jid {
    Jid::parse(s).expect("valid jid")
}

fn stanza(name: &str, from: &str, to: Option<&str>, ty: Option<&str>) -> Element {
    let mut el = Element::builder(name, ns::CLIENT)
        .attr("from", from)
        .attr("id", "x")
        .build();
    if let Some(to) = to {
        el.set_attr("to", to);
    }
    if let Some(ty) = ty {
        el.set_attr("type", ty);
    }
    el
}

fn available(r: &mut Router, full: &str, priority: i8) -> Vec<Delivery> {
    let mut p = stanza("presence", full, None, None);
    let mut prio = Element::new("priority", ns::CLIENT);
    prio.append_text(&priority.to_string());
    p.append_child(prio);
    r.route(p)
}

fn condition(d: &Delivery) -> Option<String> {
    d.stanza
        .element()
        .get_child("error", ns::CLIENT)?
        .children()
        .next()
        .map(|c| c.name().to_owned())
}

#[test]
fn bind_generates_and_replaces_resources() {
    let mut r = router();
    let (full, old) = r.bind(&jid("u@a.example"), None, 1, None).expect("bind");
    assert!(full.resource().is_some_and(|x| x.len() == 12));
    assert_eq!(old, None);
    let (_, old) = r
        .bind(&jid("u@a.example"), Some("phone"), 2, None)
        .expect("bind");
    assert_eq!(old, None);
    let (_, old) = r
        .bind(&jid("u@a.example"), Some("phone"), 3, None)
        .expect("bind");
    assert_eq!(old, Some(2));
    assert_eq!(r.session_count(), 2);
}

#[test]
fn bare_message_goes_to_highest_priority() {
    let mut r = router();
    r.bind(&jid("u@a.example"), Some("one"), 1, None)
        .expect("bind");
    r.bind(&jid("u@a.example"), Some("two"), 2, None)
        .expect("bind");
    r.bind(&jid("u@a.example"), Some("three"), 3, None)
        .expect("bind");
    r.bind(&jid("v@a.example"), Some("x"), 9, None)
        .expect("bind");
    available(&mut r, "u@a.example/one", 1);
    available(&mut r, "u@a.example/two", 5);
    // "three" never sent presence: not available.
    let d = r.route(stanza(
        "message",
        "v@a.example/x",
        Some("u@a.example"),
        Some("chat"),
    ));
    assert_eq!(d.iter().map(|d| d.to).collect::<Vec<_>>(), [2]);
    // Full JID reaches even an unavailable resource.
    let d = r.route(stanza(
        "message",
        "v@a.example/x",
        Some("u@a.example/three"),
        Some("chat"),
    ));
    assert_eq!(d.iter().map(|d| d.to).collect::<Vec<_>>(), [3]);
    // Unknown resource falls back to the bare JID.
    let d = r.route(stanza(
        "message",
        "v@a.example/x",
        Some("u@a.example/nope"),
        Some("chat"),
    ));
    assert_eq!(d.iter().map(|d| d.to).collect::<Vec<_>>(), [2]);
}

#[test]
fn offline_message_and_unknown_iq_bounce() {
    let mut r = router();
    r.bind(&jid("v@a.example"), Some("x"), 9, None)
        .expect("bind");
    let d = r.route(stanza(
        "message",
        "v@a.example/x",
        Some("nobody@a.example"),
        Some("chat"),
    ));
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].to, 9);
    assert_eq!(condition(&d[0]).as_deref(), Some("service-unavailable"));
    let mut iq = stanza(
        "iq",
        "v@a.example/x",
        Some("nobody@a.example/r"),
        Some("get"),
    );
    iq.append_child(Element::new("query", "urn:example"));
    let d = r.route(iq);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].stanza.element().attr("type"), Some("error"));
    assert_eq!(condition(&d[0]).as_deref(), Some("service-unavailable"));
    let d = r.route(stanza(
        "message",
        "v@a.example/x",
        Some("x@remote.example"),
        None,
    ));
    assert_eq!(condition(&d[0]).as_deref(), Some("remote-server-not-found"));
    // Errors are never answered.
    let d = r.route(stanza(
        "message",
        "v@a.example/x",
        Some("nobody@a.example"),
        Some("error"),
    ));
    assert!(d.is_empty());
}

#[test]
fn server_answers_ping_disco_version() {
    let mut r = router();
    r.bind(&jid("v@a.example"), Some("x"), 9, None)
        .expect("bind");
    r.add_component("comp.a.example", 50);
    for (name, ns) in [
        ("ping", ns::PING),
        ("query", ns::DISCO_INFO),
        ("query", ns::DISCO_ITEMS),
        ("query", ns::VERSION),
    ] {
        let mut iq = stanza("iq", "v@a.example/x", Some("a.example"), Some("get"));
        iq.append_child(Element::new(name, ns));
        let d = r.route(iq);
        assert_eq!(d.len(), 1, "{ns}");
        assert_eq!(d[0].stanza.element().attr("type"), Some("result"), "{ns}");
        assert_eq!(d[0].stanza.element().attr("from"), Some("a.example"));
    }
    let mut iq = stanza("iq", "v@a.example/x", Some("a.example"), Some("get"));
    iq.append_child(Element::new("query", ns::DISCO_ITEMS));
    let d = r.route(iq);
    let items: Vec<_> = d[0]
        .stanza
        .element()
        .children()
        .flat_map(|q| q.children())
        .filter_map(|i| i.attr("jid"))
        .collect();
    assert_eq!(items, ["comp.a.example", "static.a.example"]);
    let mut iq = stanza("iq", "v@a.example/x", Some("a.example"), Some("set"));
    iq.append_child(Element::new("query", "urn:unknown"));
    assert_eq!(
        condition(&r.route(iq)[0]).as_deref(),
        Some("service-unavailable")
    );
}

#[test]
fn components_get_their_domain_and_subdomains() {
    let mut r = router();
    r.bind(&jid("v@a.example"), Some("x"), 9, None)
        .expect("bind");
    r.add_component("comp.a.example", 50);
    let d = r.route(stanza(
        "message",
        "v@a.example/x",
        Some("room@comp.a.example"),
        None,
    ));
    assert_eq!(d[0].to, 50);
    let d = r.route(stanza(
        "message",
        "v@a.example/x",
        Some("sub.comp.a.example"),
        None,
    ));
    assert_eq!(d[0].to, 50);
    r.remove_component("comp.a.example", 51);
    assert_eq!(
        r.route(stanza(
            "iq",
            "v@a.example/x",
            Some("comp.a.example"),
            Some("get")
        ))[0]
            .to,
        50
    );
    r.remove_component("comp.a.example", 50);
    let d = r.route(stanza(
        "message",
        "v@a.example/x",
        Some("comp.a.example"),
        None,
    ));
    assert_eq!(condition(&d[0]).as_deref(), Some("remote-server-not-found"));
}

#[test]
fn unbind_sends_unavailable_to_resources_and_directed_targets() {
    let mut r = router();
    let u1 = jid("u@a.example/one");
    r.bind(&jid("u@a.example"), Some("one"), 1, None)
        .expect("bind");
    r.bind(&jid("u@a.example"), Some("two"), 2, None)
        .expect("bind");
    r.bind(&jid("w@a.example"), Some("w"), 3, None)
        .expect("bind");
    available(&mut r, "u@a.example/two", 0);
    let d = available(&mut r, "u@a.example/one", 0);
    assert_eq!(d.iter().map(|d| d.to).collect::<Vec<_>>(), [2]);
    let d = r.route(stanza(
        "presence",
        "u@a.example/one",
        Some("w@a.example/w"),
        None,
    ));
    assert_eq!(d[0].to, 3);
    let d = r.unbind(&u1, 1);
    let mut targets: Vec<_> = d
        .iter()
        .map(|d| {
            (
                d.to,
                d.stanza.element().attr("type").unwrap_or("").to_owned(),
            )
        })
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        [(2, "unavailable".to_owned()), (3, "unavailable".to_owned())]
    );
    assert!(r.unbind(&u1, 1).is_empty());
}

#[test]
fn resumption_ids_are_owned() {
    let mut r = router();
    let (full, _) = r
        .bind(&jid("u@a.example"), Some("one"), 1, None)
        .expect("bind");
    let token = r.enable_resumption(&full, 1, false);
    assert_eq!(
        r.claim_resumption(&token, &jid("mallory@a.example"), false),
        None
    );
    assert_eq!(r.claim_resumption(&token, &jid("x@a.example"), true), None);
    // An account's id is bound to the account and survives being used.
    for _ in 0..2 {
        assert_eq!(
            r.claim_resumption(&token, &jid("u@a.example"), false),
            Some(Resumption {
                endpoint: 1,
                keep_resumable: true
            })
        );
    }
    r.unbind(&full, 1);
    assert_eq!(r.claim_resumption(&token, &jid("u@a.example"), false), None);
}

#[test]
fn anonymous_resumption_ids_are_single_use() {
    let mut r = router();
    let (full, _) = r.bind(&jid("4f2a@a.example"), None, 1, None).expect("bind");
    let token = r.enable_resumption(&full, 1, true);
    // Another vhost's anonymous login, or an account, cannot claim it; trying spends nothing.
    assert_eq!(
        r.claim_resumption(&token, &jid("9c1b@b.example"), true),
        None
    );
    assert_eq!(
        r.claim_resumption(&token, &jid("4f2a@a.example"), false),
        None
    );
    // Any anonymous login of the vhost may, once: the resumed session is not resumable again.
    assert_eq!(
        r.claim_resumption(&token, &jid("77aa@a.example"), true),
        Some(Resumption {
            endpoint: 1,
            keep_resumable: false
        })
    );
    assert_eq!(
        r.claim_resumption(&token, &jid("77aa@a.example"), true),
        None
    );
    assert_eq!(
        r.claim_resumption(&token, &jid("4f2a@a.example"), true),
        None
    );
    // The session itself lives on.
    assert_eq!(r.session_count(), 1);
}

/// `a.example` hooks stanzas and owns the plugin component `bot.a.example`.
#[derive(Debug)]
struct Hooked;

impl crate::hooks::Extensions for Hooked {
    fn any_stanza_hooks(&self) -> bool {
        true
    }
    fn hooks_stanzas(&self, vhost: &str) -> bool {
        vhost == "a.example"
    }
    fn wants(&self, _: &str, _: crate::hooks::HookKind) -> bool {
        false
    }
    fn owns_component(&self, domain: &str) -> bool {
        domain == "bot.a.example"
    }
    fn identities(&self, _: &str) -> Vec<crate::hooks::ComponentIdentity> {
        Vec::new()
    }
}

#[test]
fn hooked_stanzas_wait_for_the_verdict() {
    let mut r = router();
    r.set_extensions(std::sync::Arc::new(Hooked));
    r.bind(&jid("u@a.example"), Some("r"), 1, None)
        .expect("bind");
    r.bind(&jid("v@a.example"), Some("r"), 2, None)
        .expect("bind");
    let msg = stanza(
        "message",
        "u@a.example/r",
        Some("v@a.example/r"),
        Some("chat"),
    );
    // Nothing is delivered until the hooks decide.
    assert!(r.route_inbound(parsed(&msg)).is_empty());
    let calls = r.take_calls();
    let [PluginCall::Stanza { vhost, stanza, .. }] = &calls[..] else {
        panic!("{calls:?}")
    };
    assert_eq!(vhost, "a.example");
    let d = r.resume_stanza(stanza.clone(), Verdict::Pass);
    assert_eq!(d.iter().map(|d| d.to).collect::<Vec<_>>(), [2]);
    // A refusal goes back to the sender as an error.
    r.route_inbound(parsed(&msg));
    let Some(PluginCall::Stanza { stanza, .. }) = r.take_calls().pop() else {
        panic!("no call")
    };
    let d = r.resume_stanza(
        stanza,
        Verdict::Reject(StanzaError::new(ErrorType::Cancel, Condition::NotAllowed)),
    );
    assert_eq!(d[0].to, 1);
    assert_eq!(condition(&d[0]).as_deref(), Some("not-allowed"));
    // A replacement keeps the sender.
    let mut other = msg.clone();
    other.set_attr("from", "admin@a.example/forged");
    r.route_inbound(parsed(&msg));
    let Some(PluginCall::Stanza { stanza, .. }) = r.take_calls().pop() else {
        panic!("no call")
    };
    let d = r.resume_stanza(stanza, Verdict::Replace(other));
    assert_eq!(d[0].stanza.element().attr("from"), Some("u@a.example/r"));
}

#[test]
fn plugin_components_get_calls_and_plugin_loops_are_cut() {
    let mut r = router();
    r.set_extensions(std::sync::Arc::new(Hooked));
    let to_bot = stanza("message", "v@static.a.example", Some("bot.a.example"), None);
    assert!(r.route(to_bot.clone()).is_empty());
    let calls = r.take_calls();
    let [PluginCall::Component { domain, depth, .. }] = &calls[..] else {
        panic!("{calls:?}")
    };
    assert_eq!((domain.as_str(), *depth), ("bot.a.example", 1));
    // What a plugin sends to a plugin component goes one hop deeper, and is dropped past the
    // limit.
    assert!(r.route_from_plugin(to_bot.clone(), 3).is_empty());
    let calls = r.take_calls();
    assert!(matches!(
        calls[..],
        [PluginCall::Component { depth: 4, .. }]
    ));
    assert!(r.route_from_plugin(to_bot, MAX_PLUGIN_DEPTH + 1).is_empty());
    assert!(r.take_calls().is_empty());
}

#[test]
fn a_removed_vhost_gives_back_its_sessions_and_stops_routing() {
    let mut r = router();
    r.add_vhost("b.example", None, None);
    r.bind(&jid("u@a.example"), Some("r"), 1, None)
        .expect("bind");
    r.bind(&jid("v@b.example"), Some("r"), 2, None)
        .expect("bind");
    r.bind(&jid("w@b.example"), Some("r"), 3, None)
        .expect("bind");
    let msg = stanza(
        "message",
        "u@a.example/r",
        Some("v@b.example/r"),
        Some("chat"),
    );
    assert_eq!(r.route(msg.clone())[0].to, 2);
    let mut gone = r.remove_vhost("b.example");
    gone.sort_unstable();
    assert_eq!(gone, [2, 3]);
    // No longer served: a message to it bounces to the sender.
    let d = r.route(msg);
    assert_eq!(d[0].to, 1);
    assert_eq!(condition(&d[0]).as_deref(), Some("remote-server-not-found"));
    // A late unbind of a removed session changes nothing.
    assert!(r.unbind(&jid("v@b.example/r"), 2).is_empty());
    assert_eq!(r.session_count(), 1);
}

fn iq_with(from: &str, to: &str, ty: &str, payload: Element) -> Element {
    let mut iq = stanza("iq", from, Some(to), Some(ty));
    iq.append_child(payload);
    iq
}

/// Every payload the server answers on an account's behalf (RFC 6121 §8.5.2.1.3).
fn account_payloads() -> Vec<Element> {
    vec![
        Element::new("ping", ns::PING),
        Element::new("query", ns::DISCO_INFO),
        Element::new("query", ns::DISCO_ITEMS),
    ]
}

#[test]
fn rfc6121_8_5_1_no_such_account_is_service_unavailable_for_every_answered_namespace() {
    let mut r = router();
    r.bind(&jid("v@a.example"), Some("x"), 9, None)
        .expect("bind");
    for payload in account_payloads() {
        let what = format!("{}/{}", payload.ns(), payload.name());
        let d = r.route(iq_with(
            "v@a.example/x",
            "nobody@a.example",
            "get",
            payload.clone(),
        ));
        assert!(d.is_empty(), "{what}: answered before the account lookup");
        let lookups = r.take_account_lookups();
        assert_eq!(lookups.len(), 1, "{what}");
        assert_eq!(
            (lookups[0].vhost.as_str(), lookups[0].username.as_str()),
            ("a.example", "nobody")
        );
        let d = r.account_checked(lookups.into_iter().next().expect("one").stanza, false);
        assert_eq!(d.len(), 1, "{what}");
        assert_eq!(d[0].to, 9);
        assert_eq!(d[0].stanza.element().attr("type"), Some("error"), "{what}");
        assert_eq!(
            d[0].stanza.element().attr("from"),
            Some("nobody@a.example"),
            "{what}"
        );
        assert_eq!(
            condition(&d[0]).as_deref(),
            Some("service-unavailable"),
            "{what}"
        );

        // The same iq to an account that exists but has no session is answered for it.
        let d = r.route(iq_with(
            "v@a.example/x",
            "offline@a.example",
            "get",
            payload,
        ));
        assert!(d.is_empty());
        let lookup = r.take_account_lookups().pop().expect("a lookup");
        let d = r.account_checked(lookup.stanza, true);
        assert_eq!(d.len(), 1, "{what}");
        assert_eq!(d[0].stanza.element().attr("type"), Some("result"), "{what}");
        assert_eq!(
            d[0].stanza.element().attr("from"),
            Some("offline@a.example")
        );
    }
    // A failed or refused lookup never leaves anything in flight.
    assert_eq!(r.lookups_in_flight, 0);
}

#[test]
fn rfc6121_8_5_iqs_never_answered_for_an_account_need_no_lookup() {
    let mut r = router();
    r.bind(&jid("v@a.example"), Some("x"), 9, None)
        .expect("bind");
    let disco_node = Element::builder("query", ns::DISCO_INFO)
        .attr("node", "n")
        .build();
    let mut two = iq_with(
        "v@a.example/x",
        "nobody@a.example",
        "get",
        Element::new("ping", ns::PING),
    );
    two.append_child(Element::new("ping", ns::PING));
    let cases = vec![
        iq_with(
            "v@a.example/x",
            "nobody@a.example",
            "get",
            Element::new("query", ns::VERSION),
        ),
        iq_with(
            "v@a.example/x",
            "nobody@a.example",
            "get",
            Element::new("vCard", "vcard-temp"),
        ),
        iq_with("v@a.example/x", "nobody@a.example", "get", disco_node),
        iq_with(
            "v@a.example/x",
            "nobody@a.example",
            "set",
            Element::new("ping", ns::PING),
        ),
        two,
        // §8.5.3.2.1: a full JID with no session, existing account or not.
        iq_with(
            "v@a.example/x",
            "nobody@a.example/r",
            "get",
            Element::new("ping", ns::PING),
        ),
        iq_with(
            "v@a.example/x",
            "v@a.example/other",
            "get",
            Element::new("query", ns::DISCO_INFO),
        ),
    ];
    for iq in cases {
        let shown = iq.to_string();
        let d = r.route(iq);
        assert_eq!(d.len(), 1, "{shown}");
        assert_eq!(
            condition(&d[0]).as_deref(),
            Some("service-unavailable"),
            "{shown}"
        );
        assert!(r.take_account_lookups().is_empty(), "{shown}");
    }
    // Results and errors are never answered, whoever they are for.
    for ty in ["result", "error"] {
        let mut iq = stanza("iq", "v@a.example/x", Some("nobody@a.example"), Some(ty));
        iq.append_child(Element::new("ping", ns::PING));
        assert!(r.route(iq).is_empty(), "{ty}");
        assert!(r.take_account_lookups().is_empty());
    }
    // Presence to a missing account or resource is dropped; messages are refused (§8.5.1
    // option b) except headlines and errors, which are dropped.
    for to in ["nobody@a.example", "nobody@a.example/r"] {
        assert!(
            r.route(stanza("presence", "v@a.example/x", Some(to), None))
                .is_empty()
        );
        for (ty, refused) in [
            ("chat", true),
            ("normal", true),
            ("headline", false),
            ("error", false),
        ] {
            let d = r.route(stanza("message", "v@a.example/x", Some(to), Some(ty)));
            if refused {
                assert_eq!(d.len(), 1, "{ty} to {to}");
                assert_eq!(
                    condition(&d[0]).as_deref(),
                    Some("service-unavailable"),
                    "{ty} to {to}"
                );
            } else {
                assert!(d.is_empty(), "{ty} to {to}");
            }
        }
    }
    assert!(r.take_account_lookups().is_empty());
}

#[test]
fn rfc6121_8_5_2_a_bound_session_proves_the_account_exists() {
    let mut r = router();
    r.bind(&jid("v@a.example"), Some("x"), 9, None)
        .expect("bind");
    // An anonymous login's bare JID exists only while a session of it is bound.
    let (anon, _) = r
        .bind(&jid("4f2a@a.example"), None, 10, None)
        .expect("bind");
    for payload in account_payloads() {
        let d = r.route(iq_with("v@a.example/x", "4f2a@a.example", "get", payload));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].stanza.element().attr("type"), Some("result"));
        assert!(r.take_account_lookups().is_empty());
    }
    r.unbind(&anon, 10);
    let d = r.route(iq_with(
        "v@a.example/x",
        "4f2a@a.example",
        "get",
        Element::new("ping", ns::PING),
    ));
    assert!(d.is_empty());
    let lookup = r
        .take_account_lookups()
        .pop()
        .expect("a lookup once unbound");
    assert_eq!(
        condition(&r.account_checked(lookup.stanza, false)[0]).as_deref(),
        Some("service-unavailable")
    );

    // A session bound while the lookup was out counts, whatever the plugin said.
    r.route(iq_with(
        "v@a.example/x",
        "late@a.example",
        "get",
        Element::new("ping", ns::PING),
    ));
    let lookup = r.take_account_lookups().pop().expect("a lookup");
    r.bind(&jid("late@a.example"), Some("r"), 11, None)
        .expect("bind");
    let d = r.account_checked(lookup.stanza, false);
    assert_eq!(d[0].stanza.element().attr("type"), Some("result"));
}

#[test]
fn account_lookups_in_flight_are_bounded() {
    let mut r = router();
    r.bind(&jid("v@a.example"), Some("x"), 9, None)
        .expect("bind");
    let ping = |to: String| iq_with("v@a.example/x", &to, "get", Element::new("ping", ns::PING));
    for i in 0..MAX_ACCOUNT_LOOKUPS {
        assert!(r.route(ping(format!("u{i}@a.example"))).is_empty());
    }
    let mut pending = r.take_account_lookups();
    assert_eq!(pending.len(), MAX_ACCOUNT_LOOKUPS);
    let d = r.route(ping("one-more@a.example".into()));
    assert_eq!(condition(&d[0]).as_deref(), Some("resource-constraint"));
    assert!(r.take_account_lookups().is_empty());
    r.account_checked(pending.pop().expect("one").stanza, false);
    assert!(r.route(ping("one-more@a.example".into())).is_empty());
    assert_eq!(r.take_account_lookups().len(), 1);
}

#[test]
fn directed_presences_per_session_are_bounded() {
    let mut r = router();
    r.bind(&jid("v@a.example"), Some("x"), 9, None)
        .expect("bind");
    for i in 0..MAX_DIRECTED {
        let to = format!("u{i}@a.example");
        let d = r.route(stanza("presence", "v@a.example/x", Some(&to), None));
        assert!(d.iter().all(|d| condition(d).is_none()), "{i}");
    }
    // One more recipient is refused; one already remembered is not.
    let d = r.route(stanza(
        "presence",
        "v@a.example/x",
        Some("new@a.example"),
        None,
    ));
    assert_eq!(d.len(), 1);
    assert_eq!(condition(&d[0]).as_deref(), Some("resource-constraint"));
    let again = r.route(stanza(
        "presence",
        "v@a.example/x",
        Some("u7@a.example"),
        None,
    ));
    assert!(again.iter().all(|d| condition(d).is_none()));
    // Unavailable to one frees its place.
    r.route(stanza(
        "presence",
        "v@a.example/x",
        Some("u7@a.example"),
        Some("unavailable"),
    ));
    let d = r.route(stanza(
        "presence",
        "v@a.example/x",
        Some("new@a.example"),
        None,
    ));
    assert!(d.iter().all(|d| condition(d).is_none()));
}

/// Two routing shards joined the way the shell joins them: what one forwards, the other
/// routes; deliveries are tagged with the shard that made them.
struct Cluster {
    shards: Vec<Router>,
}

impl Cluster {
    fn new(count: usize) -> Cluster {
        Cluster::with_limits(count, crate::muc::MucLimits::default())
    }

    /// Shards serving one MUC service with these limits (one config, so one shared view).
    fn with_limits(count: usize, limits: crate::muc::MucLimits) -> Cluster {
        let muc = crate::muc::MucConfig {
            domain: "conference.a.example".into(),
            vhost: "a.example".into(),
            lock_new_rooms: false,
            destroy_when_empty: true,
            room_creators: Vec::new(),
            admins: Vec::new(),
            max_occupants: 0,
            focus: None,
            limits,
            view: Default::default(),
        };
        let shards = (0..count)
            .map(|index| {
                let mut r = router();
                r.set_shard(Shard { index, count });
                r.add_muc(muc.clone());
                r
            })
            .collect();
        Cluster { shards }
    }

    /// Feed `stanza` to `shard` and follow every forward until all shards are quiet.
    fn route(&mut self, shard: usize, stanza: Element) -> Vec<(usize, Delivery)> {
        let first = self.shards[shard].route(stanza);
        self.settle(shard, first)
    }

    fn settle(&mut self, shard: usize, first: Vec<Delivery>) -> Vec<(usize, Delivery)> {
        let mut out: Vec<(usize, Delivery)> = first.into_iter().map(|d| (shard, d)).collect();
        loop {
            let mut moved = false;
            for from in 0..self.shards.len() {
                for (to, fwd) in self.shards[from].take_forwards() {
                    assert_ne!(to, from, "a shard forwarded to itself");
                    moved = true;
                    let got = match fwd {
                        Forward::Route { stanza, depth } => {
                            self.shards[to].route_forwarded(stanza, depth)
                        }
                        Forward::Deliver(items) => self.shards[to].deliver_forwarded(items),
                    };
                    out.extend(got.into_iter().map(|d| (to, d)));
                }
            }
            if !moved {
                return out;
            }
        }
    }

    /// A user name on `vhost` whose bare JID lands on `shard`.
    fn user_on(&self, shard: usize, prefix: &str) -> String {
        (0..1000)
            .map(|i| format!("{prefix}{i}@a.example"))
            .find(|b| shard_of(b, self.shards.len()) == shard)
            .expect("some name lands on every shard")
    }

    fn room_on(&self, shard: usize) -> String {
        (0..1000)
            .map(|i| format!("room{i}@conference.a.example"))
            .find(|b| shard_of(b, self.shards.len()) == shard)
            .expect("some room lands on every shard")
    }
}

#[test]
fn shard_of_a_jid_is_shard_of_its_bare_string() {
    for s in ["alice@a.example", "a.example", "room7@conference.a.example"] {
        let j = jid(&format!("{s}/res"));
        for count in 1..9 {
            assert_eq!(
                shard_of_jid(&j, count),
                shard_of(s, count),
                "{s} over {count}"
            );
            assert!(shard_of(s, count) < count);
        }
    }
    // Both shards get some of a hundred users.
    let hits: BTreeSet<usize> = (0..100)
        .map(|i| shard_of(&format!("u{i}@a.example"), 2))
        .collect();
    assert_eq!(hits.len(), 2);
}

#[test]
fn a_room_on_one_shard_reaches_occupants_owned_by_both() {
    let mut c = Cluster::new(2);
    let alice = format!("{}/a", c.user_on(0, "alice"));
    let bob = format!("{}/b", c.user_on(1, "bob"));
    c.shards[0]
        .bind(&jid(&alice).bare(), Some("a"), 10, None)
        .expect("bind");
    c.shards[1]
        .bind(&jid(&bob).bare(), Some("b"), 20, None)
        .expect("bind");
    for room_shard in [0, 1] {
        let room = c.room_on(room_shard);
        let join = |from: &str, nick: &str| {
            let mut p = stanza("presence", from, Some(&format!("{room}/{nick}")), None);
            p.append_child(Element::new("x", ns::MUC));
            p
        };
        c.route(0, join(&alice, "alice"));
        let joined = c.route(1, join(&bob, "bob"));
        // Bob hears of Alice and of himself, on his own shard; Alice hears of Bob on hers.
        let to_bob: Vec<_> = joined
            .iter()
            .filter(|(_, d)| d.to == 20 && d.stanza.element().name() == "presence")
            .collect();
        assert_eq!(to_bob.len(), 2, "bob gets both presences");
        assert!(to_bob.iter().all(|(s, _)| *s == 1));
        assert!(joined.iter().any(|(s, d)| *s == 0 && d.to == 10));

        let mut msg = stanza("message", &alice, Some(&room), Some("groupchat"));
        let mut body = Element::new("body", ns::CLIENT);
        body.append_text("hi");
        msg.append_child(body);
        let got = c.route(0, msg);
        let mut to: Vec<(usize, EndpointId)> = got.iter().map(|(s, d)| (*s, d.to)).collect();
        to.sort_unstable();
        assert_eq!(to, vec![(0, 10), (1, 20)], "room on shard {room_shard}");
        for (_, d) in &got {
            assert_eq!(
                d.stanza.element().attr("from"),
                Some(&*format!("{room}/alice"))
            );
        }

        // Bob leaves for good: his own shard ends his session, the room's shard hears of it
        // and tells Alice.
        let gone = c.shards[1].unbind(&jid(&bob), 20);
        let mut left = c.settle(1, gone);
        // ... and the other shard (0) is told, as the shell tells every shard.
        let d = c.shards[0].session_gone_elsewhere(&jid(&bob));
        left.extend(c.settle(0, d));
        let unavailable: Vec<_> = left
            .iter()
            .filter(|(_, d)| d.to == 10 && d.stanza.element().attr("type") == Some("unavailable"))
            .collect();
        assert_eq!(unavailable.len(), 1, "alice hears bob left once");
        c.shards[1]
            .bind(&jid(&bob).bare(), Some("b"), 20, None)
            .expect("bind again");
        let bye = stanza(
            "presence",
            &alice,
            Some(&format!("{room}/alice")),
            Some("unavailable"),
        );
        c.route(0, bye);
    }
}

#[test]
fn stanzas_between_shards_are_delivered_or_bounced_by_the_owner() {
    let mut c = Cluster::new(2);
    let alice = format!("{}/a", c.user_on(0, "alice"));
    let bob_bare = c.user_on(1, "bob");
    c.shards[0]
        .bind(&jid(&alice).bare(), Some("a"), 10, None)
        .expect("bind");
    c.shards[1]
        .bind(&jid(&bob_bare), Some("b"), 20, None)
        .expect("bind");
    let bob = format!("{bob_bare}/b");
    // A chat to Bob's full JID reaches him on his shard.
    let got = c.route(0, stanza("message", &alice, Some(&bob), Some("chat")));
    assert_eq!(
        got.iter().map(|(s, d)| (*s, d.to)).collect::<Vec<_>>(),
        vec![(1, 20)]
    );
    // An iq to a resource Bob does not have bounces back to Alice's shard.
    let got = c.route(
        0,
        stanza("iq", &alice, Some(&format!("{bob_bare}/gone")), Some("get")),
    );
    assert_eq!(got.len(), 1);
    let (shard, d) = &got[0];
    assert_eq!((*shard, d.to), (0, 10));
    assert_eq!(condition(d).as_deref(), Some("service-unavailable"));
    // A ping to Bob's bare JID is answered by Bob's shard (his session proves the account).
    let mut ping = stanza("iq", &alice, Some(&bob_bare), Some("get"));
    ping.append_child(Element::new("ping", ns::PING));
    let got = c.route(0, ping);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.to, 10);
    assert_eq!(got[0].1.stanza.element().attr("type"), Some("result"));
}

#[test]
fn room_limits_count_rooms_on_every_shard() {
    let limits = crate::muc::MucLimits {
        max_rooms_per_session: 2,
        ..crate::muc::MucLimits::default()
    };
    let mut c = Cluster::with_limits(2, limits);
    let alice = format!("{}/a", c.user_on(0, "alice"));
    c.shards[0]
        .bind(&jid(&alice).bare(), Some("a"), 10, None)
        .expect("bind");
    let rooms = [c.room_on(0), c.room_on(1)];
    let third = (0..1000)
        .map(|i| format!("other{i}@conference.a.example"))
        .find(|r| shard_of(r, 2) == 1)
        .expect("a room on shard 1");
    let join = |room: &str| {
        let mut p = stanza("presence", &alice, Some(&format!("{room}/alice")), None);
        p.append_child(Element::new("x", ns::MUC));
        p
    };
    for room in &rooms {
        let got = c.route(0, join(room));
        assert!(got.iter().all(|(_, d)| condition(d).is_none()), "{room}");
    }
    // One room on each shard: the third, on shard 1 where Alice is in one room only, is
    // refused because she is in two across the service.
    let got = c.route(0, join(&third));
    assert_eq!(got.len(), 1);
    assert_eq!(condition(&got[0].1).as_deref(), Some("policy-violation"));
}

/// Everything the core wants done, drained.
fn drain(r: &mut Router) -> Vec<Output> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

#[test]
fn driven_by_inputs_every_effect_comes_out_of_poll_output() {
    let mut r = router();
    r.set_extensions(std::sync::Arc::new(Hooked));
    r.bind(&jid("u@a.example"), Some("r"), 1, None)
        .expect("bind");
    r.bind(&jid("v@a.example"), Some("r"), 2, None)
        .expect("bind");
    let msg = stanza(
        "message",
        "u@a.example/r",
        Some("v@a.example/r"),
        Some("chat"),
    );
    // A hooked stanza leaves as a call, and nothing else.
    r.handle_input(5, Input::Inbound(parsed(&msg)));
    let out = drain(&mut r);
    let [Output::Call(PluginCall::Stanza { stanza: hooked, .. })] = &out[..] else {
        panic!("{out:?}")
    };
    // Its verdict is one more input, and the delivery comes out.
    r.handle_input(
        6,
        Input::Verdict {
            stanza: hooked.clone(),
            verdict: Verdict::Pass,
        },
    );
    let out = drain(&mut r);
    let [Output::Deliver(d)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(d.to, 2);
    // An iq to an account with no session leaves as a lookup; the answer is an input.
    let mut ping = stanza("iq", "u@a.example/r", Some("w@a.example"), Some("get"));
    ping.append_child(Element::new("ping", ns::PING));
    r.handle_input(7, Input::Stanza(ping));
    let out = drain(&mut r);
    let [Output::Lookup(lookup)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (lookup.vhost.as_str(), lookup.username.as_str()),
        ("a.example", "w")
    );
    r.handle_input(
        8,
        Input::AccountChecked {
            stanza: lookup.stanza.clone(),
            exists: true,
        },
    );
    let out = drain(&mut r);
    let [Output::Deliver(d)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!((d.to, d.stanza.element().attr("type")), (1, Some("result")));
    assert!(r.poll_output().is_none());
}

#[test]
fn a_stanza_for_another_shard_comes_out_as_a_forward() {
    let c = Cluster::new(2);
    let alice = c.user_on(0, "alice");
    let bob = c.user_on(1, "bob");
    let mut r = Cluster::new(2).shards.remove(0);
    r.bind(&jid(&alice), Some("a"), 1, None).expect("bind");
    let msg = stanza("message", &format!("{alice}/a"), Some(&bob), Some("chat"));
    r.handle_input(1, Input::Inbound(parsed(&msg)));
    let out = drain(&mut r);
    let [
        Output::Forward {
            shard: 1,
            forward: Forward::Route { stanza, depth: 0 },
        },
    ] = &out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!(stanza.element().attr("to"), Some(&*bob));
}
