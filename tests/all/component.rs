//! External components (XEP-0114): handshake, a client ↔ component round trip, refusal of a
//! wrong secret, and confinement of the component's `from` to its own domain.
//!
//! Shell (end-to-end against `lilt serve`). Spec: XEP-0114 §3 (handshake = hex SHA-1 of
//! stream id + secret; wrong secret → `<not-authorized/>` stream error), RFC 6120 §8.1.2.1.
//! Invariants checked: stanzas to the component domain and to JIDs at it reach the component
//! with the sender's full JID as `from`; a stanza the component sends from a foreign domain
//! never reaches a client.
//! Tests: this file.

use std::time::Duration;

use futures::StreamExt as _;
use sha1::{Digest as _, Sha1};
use tokio_xmpp::Component;
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::parsers::message::{Lang, Message};
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::{Client, Stanza};

use crate::client::{self, STANZA_TIMEOUT, jid, wait_stanza};
use crate::harness::{Server, Setup, TestConfig};
use crate::raw::{Frame, NS_COMPONENT, NS_STREAM, REPLY_TIMEOUT, RawClient, ReadError};

const SECRET: &str = "s3cret";

fn server() -> Server {
    Setup::new(TestConfig::localhost_anonymous().component("comp.localhost", SECRET)).start()
}

async fn component(
    server: &Server,
    secret: &str,
) -> Result<Component<tokio_xmpp::connect::TcpServerConnector>, tokio_xmpp::Error> {
    let addr = server.ports().component_addr().to_string();
    tokio::time::timeout(
        client::LOGIN_TIMEOUT,
        Component::new_plaintext(
            "comp.localhost",
            secret,
            DnsConfig::addr(&addr),
            Timeouts::tight(),
        ),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "component handshake did not finish within {:?}",
            client::LOGIN_TIMEOUT
        )
    })
}

fn body(s: &Stanza) -> Option<&str> {
    match s {
        Stanza::Message(m) => m.bodies.values().next().map(String::as_str),
        _ => None,
    }
}

async fn next_for_component(
    comp: &mut Component<tokio_xmpp::connect::TcpServerConnector>,
) -> Stanza {
    tokio::time::timeout(STANZA_TIMEOUT, comp.next())
        .await
        .unwrap_or_else(|_| panic!("component received nothing within {STANZA_TIMEOUT:?}"))
        .unwrap_or_else(|| panic!("component stream ended"))
}

async fn client(server: &Server) -> (Client, tokio_xmpp::jid::Jid) {
    client::online(server.ports().c2s_addr(), "x@localhost", "unused").await
}

#[tokio::test]
async fn client_and_component_round_trip() {
    let server = server();
    let mut comp = component(&server, SECRET)
        .await
        .expect("component handshake with the right secret");
    let (mut c, c_jid) = client(&server).await;

    for to in ["comp.localhost", "room@comp.localhost/nick"] {
        let m = Message::chat(Some(jid(to))).with_body(Lang::new(), format!("to {to}"));
        c.send_stanza(m.into()).await.expect("client sends");
        let got = next_for_component(&mut comp).await;
        let Stanza::Message(got) = got else {
            panic!("component expected a message, got {got:?}")
        };
        assert_eq!(
            got.to.as_ref().map(ToString::to_string).as_deref(),
            Some(to)
        );
        assert_eq!(
            got.from.as_ref(),
            Some(&c_jid),
            "from must be the client's full JID"
        );
        assert_eq!(
            got.bodies.values().next().map(String::as_str),
            Some(format!("to {to}").as_str())
        );
    }

    let mut answer =
        Message::chat(Some(c_jid.clone())).with_body(Lang::new(), "from the component".into());
    answer.from = Some(jid("room@comp.localhost/bot"));
    comp.send_stanza(answer.into())
        .await
        .expect("component sends");
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
    let _ = comp.send_end().await;
    let _ = c.send_end().await;
}

#[tokio::test]
async fn wrong_component_secret_is_refused() {
    let server = server();
    match component(&server, "not-the-secret").await {
        Ok(_) => panic!("component accepted with a wrong secret"),
        Err(e) => eprintln!("tokio-xmpp refused as expected: {e}"),
    }
    // The raw exchange: the stream error must be <not-authorized/>.
    let mut raw = RawClient::connect(server.ports().component_addr())
        .await
        .component_ns();
    raw.send_header("comp.localhost").await;
    let id = match raw.read_frame(REPLY_TIMEOUT).await {
        Ok(Frame::Header(h)) => h
            .get("id")
            .cloned()
            .unwrap_or_else(|| panic!("component stream without id")),
        other => panic!("expected a stream header, got {other:?}"),
    };
    let digest = hex(&Sha1::digest(format!("{id}wrong").as_bytes()));
    raw.send(&format!("<handshake>{digest}</handshake>")).await;
    assert_eq!(
        raw.expect_stream_error(REPLY_TIMEOUT).await,
        "not-authorized"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn raw_handshake_and_foreign_from_is_not_delivered() {
    let server = server();
    let (mut c, c_jid) = RawClient::login_anonymous(server.ports().c2s_addr(), "localhost").await;
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
    comp.send(&format!(
        "<handshake>{}</handshake>",
        hex(&Sha1::digest(format!("{id}{SECRET}").as_bytes()))
    ))
    .await;
    let ok = comp.next_element(REPLY_TIMEOUT).await;
    assert!(
        ok.is("handshake", NS_COMPONENT),
        "expected an empty <handshake/>, got {}",
        ok.raw
    );

    // Forged: from another domain. The server may drop it (maybe with a stanza error back)
    // or end the component stream (e.g. invalid-from); in no case may the client get it.
    comp.send(&format!(
        "<message from='evil.localhost' to='{c_jid}' id='forged'><body>forged</body></message>"
    ))
    .await;
    let mut closed_with = None;
    match comp.read_frame(Duration::from_secs(1)).await {
        Ok(Frame::Element(x)) if x.is("error", NS_STREAM) => {
            closed_with = x.condition(crate::raw::NS_STREAM_ERRORS)
        }
        Ok(Frame::Element(x)) => eprintln!("component got back: {}", x.raw),
        Ok(Frame::End) | Err(ReadError::Closed(_)) => {
            closed_with = Some("(closed without stream error)".into())
        }
        Err(ReadError::Timeout) => {}
        other => panic!("component link: {other:?}"),
    }
    let is_forged = |x: &crate::raw::Xml| x.attr("id") == Some("forged");
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
