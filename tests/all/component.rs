//! External components (XEP-0114): handshake, a client ↔ component round trip, refusal of a
//! wrong secret, and confinement of the component's `from` to its own domain.
//!
//! Shell (end-to-end against `lilt serve`). Spec: XEP-0114 §3 (handshake = hex SHA-1 of
//! stream id + secret; wrong secret → `<not-authorized/>` stream error), RFC 6120 §8.1.2.1.
//! The component side is the raw client: tokio-xmpp's `Component` needs xmpp-parsers'
//! `component` feature, which switches every stanza of the whole binary to the
//! `jabber:component:accept` namespace and so breaks the tokio-xmpp c2s `Client` used here
//! (and without that feature `Component` refuses lilt's version-less component header).
//! Invariants checked: stanzas to the component domain and to JIDs at it reach the component
//! with the sender's full JID as `from`; a stanza the component sends from a foreign domain
//! never reaches a client.
//! Tests: this file.

use std::time::Duration;

use sha1::{Digest as _, Sha1};
use tokio_xmpp::Stanza;
use tokio_xmpp::parsers::message::{Lang, Message};

use crate::client::{self, jid, wait_stanza};
use crate::harness::{Server, Setup, TestConfig};
use crate::raw::{
    Frame, NS_COMPONENT, NS_STREAM, NS_STREAM_ERRORS, REPLY_TIMEOUT, RawClient, ReadError, Xml,
};

const SECRET: &str = "s3cret-long-enough";

fn server() -> Server {
    Setup::new(TestConfig::localhost_anonymous().component("comp.localhost", SECRET)).start()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Open a component stream for comp.localhost and send the handshake for `secret`.
async fn handshake(server: &Server, secret: &str) -> RawClient {
    let mut comp = RawClient::connect(server.ports().component_addr())
        .await
        .component_ns();
    comp.send_header("comp.localhost").await;
    let id = match comp.read_frame(REPLY_TIMEOUT).await {
        Ok(Frame::Header(h)) => h
            .get("id")
            .cloned()
            .unwrap_or_else(|| panic!("component stream without id")),
        other => panic!("expected a stream header, got {other:?}"),
    };
    let digest = hex(&Sha1::digest(format!("{id}{secret}").as_bytes()));
    comp.send(&format!("<handshake>{digest}</handshake>")).await;
    comp
}

/// A component that completed the handshake.
async fn component(server: &Server) -> RawClient {
    let mut comp = handshake(server, SECRET).await;
    let ok = comp.next_element(REPLY_TIMEOUT).await;
    assert!(
        ok.is("handshake", NS_COMPONENT),
        "expected an empty <handshake/>, got {}",
        ok.raw
    );
    comp
}

fn body(s: &Stanza) -> Option<&str> {
    match s {
        Stanza::Message(m) => m.bodies.values().next().map(String::as_str),
        _ => None,
    }
}

#[tokio::test]
async fn client_and_component_round_trip() {
    let server = server();
    let mut comp = component(&server).await;
    let (mut c, c_jid) = client::online(server.ports().c2s_addr(), "x@localhost", "unused").await;

    for to in ["comp.localhost", "room@comp.localhost/nick"] {
        let m = Message::chat(Some(jid(to))).with_body(Lang::new(), format!("to {to}"));
        c.send_stanza(m.into()).await.expect("client sends");
        let got = comp
            .wait_for(&format!("the message to {to}"), REPLY_TIMEOUT, |x| {
                x.el.name() == "message"
            })
            .await;
        assert_eq!(got.el.ns(), NS_COMPONENT, "{}", got.raw);
        assert_eq!(got.attr("to"), Some(to), "{}", got.raw);
        assert_eq!(
            got.attr("from"),
            Some(c_jid.to_string().as_str()),
            "from must be the client's full JID"
        );
        let text = got.el.get_child("body", NS_COMPONENT).map(|b| b.text());
        assert_eq!(
            text.as_deref(),
            Some(format!("to {to}").as_str()),
            "{}",
            got.raw
        );
    }

    comp.send(&format!(
        "<message from='room@comp.localhost/bot' to='{c_jid}' type='chat' id='answer'><body>from the component</body></message>"
    ))
    .await;
    let got = wait_stanza(&mut c, "the component's answer", |s| {
        body(s) == Some("from the component")
    })
    .await;
    let Stanza::Message(got) = got else {
        unreachable!()
    };
    assert_eq!(
        got.from.as_ref().map(ToString::to_string).as_deref(),
        Some("room@comp.localhost/bot")
    );
    let _ = c.send_end().await;
}

#[tokio::test]
async fn wrong_component_secret_is_refused() {
    let server = server();
    let mut comp = handshake(&server, "not-the-secret").await;
    assert_eq!(
        comp.expect_stream_error(REPLY_TIMEOUT).await,
        "not-authorized"
    );
    // The right secret still works afterwards.
    component(&server).await;
}

#[tokio::test]
async fn component_cannot_send_from_a_foreign_domain() {
    let server = server();
    let (mut c, c_jid) = RawClient::login_anonymous(server.ports().c2s_addr(), "localhost").await;
    let mut comp = component(&server).await;

    // Forged: from another domain. The server may drop it (maybe with a stanza error back)
    // or end the component stream (e.g. invalid-from); in no case may the client get it.
    comp.send(&format!(
        "<message from='evil.localhost' to='{c_jid}' id='forged'><body>forged</body></message>"
    ))
    .await;
    let mut closed_with = None;
    match comp.read_frame(Duration::from_secs(1)).await {
        Ok(Frame::Element(x)) if x.is("error", NS_STREAM) => {
            closed_with = x.condition(NS_STREAM_ERRORS)
        }
        Ok(Frame::Element(x)) => eprintln!("component got back: {}", x.raw),
        Ok(Frame::End) | Err(ReadError::Closed(_)) => {
            closed_with = Some("(closed without stream error)".into())
        }
        Err(ReadError::Timeout) => {}
        other => panic!("component link: {other:?}"),
    }
    let is_forged = |x: &Xml| x.attr("id") == Some("forged");
    if let Some(cond) = closed_with {
        eprintln!("server ended the component stream: {cond}");
        c.expect_none("the forged message", Duration::from_secs(1), is_forged)
            .await;
        return;
    }
    // Still connected: a legitimate message after it proves, by in-order routing, that the
    // forged one was not delivered.
    comp.send(&format!(
        "<message from='bot@comp.localhost' to='{c_jid}' id='legit'><body>legit</body></message>"
    ))
    .await;
    let got = c
        .wait_for("the legitimate message", REPLY_TIMEOUT, |x| {
            x.el.name() == "message" && x.attr("id") == Some("legit")
        })
        .await;
    assert_eq!(got.attr("from"), Some("bot@comp.localhost"));
    assert!(
        !c.skipped.iter().any(is_forged),
        "a message from a foreign domain was delivered: {}",
        c.dump()
    );
    c.expect_none("the forged message", Duration::from_millis(300), is_forged)
        .await;
}
