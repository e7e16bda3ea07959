//! Routing between local sessions and server-handled iqs: messages between users, iq errors
//! for unknown resources, ping, service discovery, bare-JID priority rules and the
//! unavailable presence sent when a session disappears.
//!
//! Shell (end-to-end against `lilt serve`). Spec: RFC 6120 §8.3 (stanza errors),
//! RFC 6121 §8.5.1 (no such account: every iq `service-unavailable`, even the namespaces the
//! server answers for accounts that exist; anonymous JIDs exist only while bound), §8.5.2 (bare JID: highest non-negative priority; iq handled for the account),
//! §8.5.3 (full JID: unknown resource → iq `service-unavailable`), §4.6 (unavailable
//! presence on disconnect, also to directed-presence recipients), XEP-0030, XEP-0199.
//! Invariants checked: the server stamps `from` with the sender's full JID; a message to a
//! bare JID never reaches a negative-priority resource.
//! Tests: this file.

use std::time::Duration;

use futures::StreamExt as _;
use sha1::{Digest as _, Sha1};

use tokio_xmpp::parsers::disco::{
    DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult,
};
use tokio_xmpp::parsers::message::{Lang, Message};
use tokio_xmpp::parsers::ping::Ping;
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::parsers::stanza_error::DefinedCondition;
use tokio_xmpp::{IqRequest, IqResponse, Stanza};

use crate::client::{self, jid, wait_stanza};
use crate::harness::{Server, Setup, TestConfig};
use crate::login::{ALICE_PW, BOB_PW, server_with_users};
use crate::raw::{Frame, NS_COMPONENT, NS_STANZAS, REPLY_TIMEOUT, RawClient};

fn body_of(s: &Stanza) -> Option<String> {
    match s {
        Stanza::Message(m) => m
            .bodies
            .get("")
            .cloned()
            .or_else(|| m.bodies.values().next().cloned()),
        _ => None,
    }
}

async fn iq(client: &mut tokio_xmpp::Client, to: &str, req: IqRequest) -> IqResponse {
    let token = client.send_iq(Some(jid(to)), req).await;
    tokio::time::timeout(client::STANZA_TIMEOUT, token)
        .await
        .unwrap_or_else(|_| panic!("no reply to iq to {to} within {:?}", client::STANZA_TIMEOUT))
        .unwrap_or_else(|e| panic!("iq to {to} failed locally: {e}"))
}

#[tokio::test]
async fn users_message_each_other() {
    let server = server_with_users();
    let addr = server.ports().c2s_addr();
    let (mut alice, alice_jid) = client::online(addr, "alice@localhost", ALICE_PW).await;
    let (mut bob, bob_jid) = client::online(addr, "bob@localhost", BOB_PW).await;
    // Bob becomes available; the ping reply proves the server processed his presence.
    bob.send_stanza(Presence::available().into())
        .await
        .expect("send presence");
    let pong = iq(&mut bob, "localhost", IqRequest::Get(Ping.into())).await;
    assert!(matches!(pong, IqResponse::Result(_)), "{pong:?}");

    let hello =
        Message::chat(Some(jid("bob@localhost"))).with_body(Lang::new(), "hello bob".into());
    alice.send_stanza(hello.into()).await.expect("send message");
    let got = wait_stanza(&mut bob, "alice's message", |s| {
        body_of(s).as_deref() == Some("hello bob")
    })
    .await;
    let Stanza::Message(m) = got else {
        unreachable!()
    };
    assert_eq!(
        m.from.as_ref(),
        Some(&alice_jid),
        "from must be alice's full JID"
    );

    let reply = Message::chat(Some(alice_jid.clone())).with_body(Lang::new(), "hi alice".into());
    bob.send_stanza(reply.into()).await.expect("send reply");
    let got = wait_stanza(&mut alice, "bob's reply", |s| {
        body_of(s).as_deref() == Some("hi alice")
    })
    .await;
    let Stanza::Message(m) = got else {
        unreachable!()
    };
    assert_eq!(m.from.as_ref(), Some(&bob_jid));
    let _ = alice.send_end().await;
    let _ = bob.send_end().await;
}

#[tokio::test]
async fn iq_to_unknown_full_jid_is_service_unavailable() {
    let server = server_with_users();
    let (mut alice, _) =
        client::online(server.ports().c2s_addr(), "alice@localhost", ALICE_PW).await;
    for to in ["bob@localhost/nowhere", "nobody@localhost/x"] {
        match iq(&mut alice, to, IqRequest::Get(Ping.into())).await {
            IqResponse::Error(e) => {
                assert_eq!(
                    e.defined_condition,
                    DefinedCondition::ServiceUnavailable,
                    "iq to {to}: {e:?}"
                )
            }
            other => panic!("iq to {to}: expected service-unavailable, got {other:?}"),
        }
    }
    let _ = alice.send_end().await;
}

#[tokio::test]
async fn iq_to_bare_jid_is_answered_by_the_server() {
    let server = server_with_users();
    let addr = server.ports().c2s_addr();
    let (mut alice, _) = client::online(addr, "alice@localhost", ALICE_PW).await;
    let (mut bob, _) = client::online(addr, "bob@localhost", BOB_PW).await;
    bob.send_stanza(Presence::available().into())
        .await
        .expect("presence");
    let unknown = tokio_xmpp::minidom::Element::builder("query", "urn:example:unknown").build();
    match iq(&mut alice, "bob@localhost", IqRequest::Get(unknown)).await {
        IqResponse::Error(e) => assert_eq!(
            e.defined_condition,
            DefinedCondition::ServiceUnavailable,
            "{e:?}"
        ),
        other => panic!("expected service-unavailable from the server, got {other:?}"),
    }
    // RFC 6121 §8.5.2.1.3: the server answers for the account; bob never sees the iq.
    let pong = iq(&mut bob, "localhost", IqRequest::Get(Ping.into())).await;
    assert!(matches!(pong, IqResponse::Result(_)));
    for _ in 0..20 {
        match tokio::time::timeout(Duration::from_millis(200), bob.next()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(tokio_xmpp::Event::Stanza(Stanza::Iq(i)))) => {
                panic!("the iq to the bare JID reached bob's session: {i:?}")
            }
            Ok(Some(_)) => {}
        }
    }
    let _ = alice.send_end().await;
    let _ = bob.send_end().await;
}

#[tokio::test]
async fn ping_the_domain() {
    let server = Setup::new(TestConfig::localhost_anonymous()).start();
    let (mut c, _) = client::online(server.ports().c2s_addr(), "x@localhost", "unused").await;
    match iq(&mut c, "localhost", IqRequest::Get(Ping.into())).await {
        IqResponse::Result(payload) => {
            assert!(payload.is_none(), "ping result must be empty: {payload:?}")
        }
        IqResponse::Error(e) => panic!("ping failed: {e:?}"),
    }
    let _ = c.send_end().await;
}

/// A raw XEP-0114 component that completed its handshake.
async fn connected_component(server: &Server, domain: &str, secret: &str) -> RawClient {
    let mut comp = RawClient::connect(server.ports().component_addr())
        .await
        .component_ns();
    comp.send_header(domain).await;
    let id = match comp.read_frame(REPLY_TIMEOUT).await {
        Ok(Frame::Header(h)) => h.get("id").cloned().unwrap_or_default(),
        other => panic!("expected a component stream header, got {other:?}"),
    };
    let digest: String = Sha1::digest(format!("{id}{secret}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    comp.send(&format!("<handshake>{digest}</handshake>")).await;
    let ok = comp.next_element(REPLY_TIMEOUT).await;
    assert!(
        ok.is("handshake", NS_COMPONENT),
        "component handshake failed: {}",
        ok.raw
    );
    comp
}

#[tokio::test]
async fn disco_info_and_items_on_the_domain() {
    let server = Setup::new(
        TestConfig::localhost_anonymous().component("comp.localhost", "s3cret-long-enough"),
    )
    .start();
    let (mut c, _) = client::online(server.ports().c2s_addr(), "x@localhost", "unused").await;
    // Connect the component: whether an unconnected component is listed is not specified.
    let _component = connected_component(&server, "comp.localhost", "s3cret-long-enough").await;
    let info = match iq(
        &mut c,
        "localhost",
        IqRequest::Get(DiscoInfoQuery { node: None }.into()),
    )
    .await
    {
        IqResponse::Result(Some(el)) => DiscoInfoResult::try_from(el).expect("a disco#info result"),
        other => panic!("disco#info: {other:?}"),
    };
    for feature in [
        "http://jabber.org/protocol/disco#info",
        "http://jabber.org/protocol/disco#items",
        "urn:xmpp:ping",
    ] {
        assert!(
            info.features.contains(feature),
            "{feature} missing from {:?}",
            info.features
        );
    }
    assert!(
        info.identities
            .iter()
            .any(|i| i.category == "server" && i.type_ == "im"),
        "no server/im identity: {:?}",
        info.identities
    );
    let items = match iq(
        &mut c,
        "localhost",
        IqRequest::Get(
            DiscoItemsQuery {
                node: None,
                rsm: None,
            }
            .into(),
        ),
    )
    .await
    {
        IqResponse::Result(Some(el)) => {
            DiscoItemsResult::try_from(el).expect("a disco#items result")
        }
        other => panic!("disco#items: {other:?}"),
    };
    // docs/xmpp.md: items are the components below the domain.
    assert!(
        items
            .items
            .iter()
            .any(|i| i.jid.to_string() == "comp.localhost"),
        "component not listed: {:?}",
        items.items
    );
    let _ = c.send_end().await;
}

#[tokio::test]
async fn bare_jid_message_goes_to_highest_non_negative_priority() {
    let server = server_with_users();
    let addr = server.ports().c2s_addr();
    let (mut low, _) = RawClient::login_plain(addr, "localhost", "bob", BOB_PW, Some("low")).await;
    let (mut high, _) =
        RawClient::login_plain(addr, "localhost", "bob", BOB_PW, Some("high")).await;
    let (mut neg, _) = RawClient::login_plain(addr, "localhost", "bob", BOB_PW, Some("neg")).await;
    for (c, prio) in [(&mut low, 1), (&mut high, 5), (&mut neg, -1)] {
        c.send(&format!("<presence><priority>{prio}</priority></presence>"))
            .await;
        c.sync("localhost").await;
    }
    let (mut alice, _) = RawClient::login_plain(addr, "localhost", "alice", ALICE_PW, None).await;
    alice.send("<message to='bob@localhost' type='chat' id='m1'><body>to the bare JID</body></message>").await;
    let is_msg = |x: &crate::raw::Xml| x.el.name() == "message" && x.attr("id") == Some("m1");
    let got = high
        .wait_for(
            "the message on the priority-5 resource",
            REPLY_TIMEOUT,
            is_msg,
        )
        .await;
    assert!(
        got.attr("from")
            .is_some_and(|f| f.starts_with("alice@localhost/")),
        "{}",
        got.raw
    );
    low.expect_none(
        "message on the priority-1 resource",
        Duration::from_millis(800),
        is_msg,
    )
    .await;
    neg.expect_none(
        "message on the negative-priority resource",
        Duration::from_millis(200),
        is_msg,
    )
    .await;
}

#[tokio::test]
async fn unavailable_presence_sent_to_directed_recipients_on_disconnect() {
    let server = server_with_users();
    let addr = server.ports().c2s_addr();
    let (mut bob, bob_jid) =
        RawClient::login_plain(addr, "localhost", "bob", BOB_PW, Some("home")).await;
    let (mut alice, alice_jid) =
        RawClient::login_plain(addr, "localhost", "alice", ALICE_PW, Some("pad")).await;
    // Initial presence (no roster, so it reaches only alice's own resources), then directed.
    alice.send("<presence/>").await;
    alice.send(&format!("<presence to='{bob_jid}'/>")).await;
    let p = bob
        .wait_for("alice's directed presence", REPLY_TIMEOUT, |x| {
            x.el.name() == "presence" && x.attr("from") == Some(alice_jid.as_str())
        })
        .await;
    assert_eq!(p.attr("type"), None, "{}", p.raw);
    // Alice vanishes without closing her stream.
    drop(alice);
    let p = bob
        .wait_for("alice's unavailable presence", REPLY_TIMEOUT, |x| {
            x.el.name() == "presence" && x.attr("from") == Some(alice_jid.as_str())
        })
        .await;
    assert_eq!(p.attr("type"), Some("unavailable"), "{}", p.raw);
}

#[tokio::test]
async fn iq_to_unknown_account_is_service_unavailable() {
    let server = server_with_users();
    let addr = server.ports().c2s_addr();
    let (mut alice, _) = RawClient::login_plain(addr, "localhost", "alice", ALICE_PW, None).await;
    alice.send("<iq type='get' id='u1' to='nobody@localhost'><query xmlns='urn:example:unknown'/></iq>").await;
    let reply = alice
        .wait_for("the error reply", REPLY_TIMEOUT, |x| {
            x.attr("id") == Some("u1")
        })
        .await;
    assert_eq!(reply.attr("type"), Some("error"), "{}", reply.raw);
    let cond = reply
        .child("error", crate::raw::NS_CLIENT)
        .and_then(|e| e.children().find(|c| c.ns() == NS_STANZAS));
    assert_eq!(
        cond.map(|c| c.name().to_owned()).as_deref(),
        Some("service-unavailable"),
        "{}",
        reply.raw
    );
}

/// The iqs the server can answer on an account's behalf (RFC 6121 §8.5.2.1.3), then two it
/// never answers for one; `true` when answered for an existing account.
fn account_iqs() -> Vec<(&'static str, tokio_xmpp::minidom::Element, bool)> {
    use tokio_xmpp::minidom::Element;
    vec![
        ("ping", Ping.into(), true),
        ("disco#info", DiscoInfoQuery { node: None }.into(), true),
        (
            "disco#items",
            DiscoItemsQuery {
                node: None,
                rsm: None,
            }
            .into(),
            true,
        ),
        (
            "version",
            Element::builder("query", "jabber:iq:version").build(),
            false,
        ),
        (
            "vcard",
            Element::builder("vCard", "vcard-temp").build(),
            false,
        ),
    ]
}

async fn expect_iq_outcome(client: &mut tokio_xmpp::Client, to: &str, answered: bool) {
    for (name, payload, for_account) in account_iqs() {
        match iq(client, to, IqRequest::Get(payload)).await {
            IqResponse::Result(_) if answered && for_account => {}
            IqResponse::Error(e)
                if !(answered && for_account)
                    && e.defined_condition == DefinedCondition::ServiceUnavailable => {}
            other => panic!(
                "{name} to {to}: expected {}, got {other:?}",
                if answered && for_account {
                    "a result"
                } else {
                    "service-unavailable"
                }
            ),
        }
    }
}

#[tokio::test]
async fn rfc6121_8_5_every_namespace_answered_for_accounts_follows_existence() {
    let server = server_with_users();
    let addr = server.ports().c2s_addr();
    let (mut alice, _) = client::online(addr, "alice@localhost", ALICE_PW).await;
    // §8.5.1: no such account. §8.5.2.2.3: bob exists but is offline, the server answers for
    // him. §8.5.3.2.1: no such resource.
    expect_iq_outcome(&mut alice, "nobody@localhost", false).await;
    expect_iq_outcome(&mut alice, "bob@localhost", true).await;
    expect_iq_outcome(&mut alice, "bob@localhost/gone", false).await;
    expect_iq_outcome(&mut alice, "nobody@localhost/x", false).await;
    // §8.5.1: a chat message to no such account is refused (no offline storage either).
    alice
        .send_stanza(
            Message::chat(Some(jid("nobody@localhost")))
                .with_body(Lang::new(), "anyone?".into())
                .into(),
        )
        .await
        .expect("send message");
    let got = wait_stanza(&mut alice, "the message's error", |s| {
        matches!(s, Stanza::Message(m) if m.type_ == tokio_xmpp::parsers::message::MessageType::Error)
    })
    .await;
    let Stanza::Message(m) = got else {
        unreachable!()
    };
    assert_eq!(m.from, Some(jid("nobody@localhost")));
    let _ = alice.send_end().await;
}

#[tokio::test]
async fn rfc6121_8_5_anonymous_bare_jids_exist_only_while_bound() {
    let server = Setup::new(TestConfig::localhost_anonymous()).start();
    let addr = server.ports().c2s_addr();
    let (mut a, _) = client::online(addr, "x@localhost", "unused").await;
    let (b, b_jid) = client::online(addr, "x@localhost", "unused").await;
    let b_bare = b_jid.to_bare().to_string();
    expect_iq_outcome(&mut a, &b_bare, true).await;
    expect_iq_outcome(
        &mut a,
        "0b5e8c3a-7d4f-4e2a-9c1b-2f6a8d9e0c11@localhost",
        false,
    )
    .await;
    drop(b);
    // Once b's session is gone, its bare JID names no account.
    let deadline = tokio::time::Instant::now() + client::STANZA_TIMEOUT;
    loop {
        match iq(&mut a, &b_bare, IqRequest::Get(Ping.into())).await {
            IqResponse::Error(e) if e.defined_condition == DefinedCondition::ServiceUnavailable => {
                break;
            }
            IqResponse::Result(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("ping to {b_bare} after it left: {other:?}"),
        }
    }
    expect_iq_outcome(&mut a, &b_bare, false).await;
    let _ = a.send_end().await;
}
