//! XMPP over WebSocket (RFC 7395) against the real server: xmpp.js and Strophe.js (the
//! library lib-jitsi-meet uses) talking to a TCP client, exact framing with a raw WebSocket
//! client, TLS, and every bad input while a bystander session keeps working.
//!
//! Spec: RFC 7395 §3, RFC 6455 §5.5/§7.4, lib-jitsi-meet's WebSocket use (room and token in the URL, resumption).

use std::time::Duration;

use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::harness::{Setup, TestConfig, Vhost};
use crate::raw::{NS_STREAM, NS_STREAM_ERRORS, REPLY_TIMEOUT, RawClient};
use crate::web::{self, NS_FRAMING, NodeClient, Ws};

/// A browser library logs in over `url`, pings, and exchanges messages with a TCP client;
/// `/metrics` counts its session while it lives.
pub(crate) async fn library_round_trip(
    lib: &str,
    transport: &str,
    url_of: fn(crate::harness::Ports) -> String,
) {
    let server = Setup::new(TestConfig::localhost_anonymous()).start();
    let ports = server.ports();
    let (mut tcp, tcp_jid) = RawClient::login_anonymous(ports.c2s_addr(), "localhost").await;
    let mut node = NodeClient::spawn(lib, &url_of(ports), "localhost", &tcp_jid);
    let online = node.expect("online").await;
    let node_jid = online["online"].as_str().expect("jid").to_owned();
    assert!(
        node_jid.contains('/'),
        "bound JID carries a resource: {node_jid}"
    );
    node.expect("ping").await;
    let msg = tcp
        .wait_for("the library's message", REPLY_TIMEOUT, |x| {
            x.el.name() == "message"
        })
        .await;
    assert_eq!(msg.attr("from"), Some(node_jid.as_str()));
    assert_eq!(
        msg.el.get_child("body", "jabber:client").map(|b| b.text()),
        Some(format!("hello from {lib}"))
    );
    web::wait_metric(
        ports,
        "lilt_sessions",
        &[("transport", transport), ("vhost", "localhost")],
        1.0,
    )
    .await;
    tcp.send(&format!(
        "<message to='{node_jid}' type='chat'><body>hello back</body></message>"
    ))
    .await;
    let got = node.expect("received").await;
    assert_eq!(got["from"].as_str(), Some(tcp_jid.as_str()));
    node.expect("closed").await;
    node.finish().await;
    web::wait_metric(
        ports,
        "lilt_sessions",
        &[("transport", transport), ("vhost", "localhost")],
        0.0,
    )
    .await;
    let s = web::scrape(ports).await;
    assert!(web::sample(&s, "lilt_stanzas_routed_total", &[]) >= 2.0);
    tcp.sync("localhost").await;
}

#[tokio::test]
async fn xmppjs_over_websocket_exchanges_with_tcp() {
    library_round_trip("xmppjs", "websocket", |p| p.ws_url()).await;
}

#[tokio::test]
async fn strophe_over_websocket_exchanges_with_tcp() {
    library_round_trip("strophe", "websocket", |p| p.ws_url()).await;
}

#[tokio::test]
async fn rfc7395_framing_is_exact() {
    let server = Setup::new(TestConfig::localhost_anonymous()).start();
    let ports = server.ports();
    let mut ws = Ws::connect(ports).await;
    assert_eq!(ws.protocol.as_deref(), Some("xmpp"), "subprotocol echoed");
    let features = ws.open("localhost").await;
    let mechs = features
        .get_child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl")
        .expect("mechanisms offered");
    assert!(mechs.children().any(|m| m.text() == "ANONYMOUS"));
    assert!(
        features
            .get_child("starttls", "urn:ietf:params:xml:ns:xmpp-tls")
            .is_none(),
        "no STARTTLS inside WebSocket"
    );
    ws.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
        .await;
    let (_, success) = ws.frame().await;
    assert_eq!(success.name(), "success");
    let features = ws.open("localhost").await;
    assert!(features.get_child("bind", crate::raw::NS_BIND).is_some());
    assert!(
        features
            .get_child("session", "urn:ietf:params:xml:ns:xmpp-session")
            .is_some()
            || features.get_child("sm", crate::raw::NS_SM).is_some()
    );
    // Strophe sends stanzas without xmlns; they are jabber:client.
    ws.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>")
        .await;
    let (raw, bound) = ws.frame().await;
    assert_eq!(bound.ns(), "jabber:client", "{raw}");
    let jid = bound
        .get_child("bind", crate::raw::NS_BIND)
        .and_then(|b| b.get_child("jid", crate::raw::NS_BIND))
        .map(|j| j.text())
        .expect("jid");
    assert!(jid.ends_with("@localhost/web"), "{jid}");
    ws.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let pong = ws
        .wait_for("ping result", |e| e.attr("id") == Some("p1"))
        .await;
    assert_eq!(pong.attr("type"), Some("result"));
    assert_eq!(pong.attr("from"), Some("localhost"));
    // Closing: our <close/> is answered with exactly Strophe's expected string, then the
    // WebSocket closes.
    ws.send(&format!("<close xmlns='{NS_FRAMING}'/>")).await;
    match ws.next_message(REPLY_TIMEOUT).await {
        Some(Message::Text(t)) => assert_eq!(
            t.as_str(),
            "<close xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\" />"
        ),
        other => panic!("expected the close frame, got {other:?}"),
    }
    match ws.next_message(REPLY_TIMEOUT).await {
        Some(Message::Close(frame)) => {
            assert_eq!(frame.map(|f| f.code), Some(CloseCode::Normal));
        }
        None => {}
        other => panic!("expected the WebSocket close, got {other:?}"),
    }
}

#[tokio::test]
async fn websocket_over_https_with_tls_required() {
    let server = Setup::new(TestConfig::new(vec![
        Vhost::anonymous("localhost").tls_required(),
    ]))
    .start();
    let ports = server.ports();
    // Plain WebSocket: no mechanisms offered on an unencrypted link.
    let mut plain = Ws::connect(ports).await;
    let features = plain.open("localhost").await;
    assert!(
        features
            .get_child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl")
            .is_none(),
        "a TLS-only vhost offers no SASL over plain ws://"
    );
    // wss:// with the server's generated certificate: login works.
    let certs = crate::tls_util::certificates_under(&server.data_dir());
    let config = crate::tls_util::pinned_client_config(certs);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", ports.https))
        .await
        .expect("connect https");
    let tls = crate::tls_util::handshake(Box::new(tcp), "localhost", config)
        .await
        .expect("TLS handshake with the HTTPS listener");
    let url = format!("wss://localhost:{}/xmpp-websocket", ports.https);
    let mut ws = Ws::over(tls, &url, Some("xmpp"))
        .await
        .expect("wss accepted");
    let jid = ws.login_anonymous("localhost").await;
    assert!(
        jid.ends_with("localhost") || jid.contains("@localhost/"),
        "{jid}"
    );
}

#[tokio::test]
async fn websocket_bad_input_is_refused_without_harming_others() {
    let server = Setup::new(
        TestConfig::localhost_anonymous()
            .http("max_body_bytes = 4096")
            .http("websocket_ping_seconds = 1"),
    )
    .start();
    let ports = server.ports();
    let (mut bystander, _) = RawClient::login_anonymous(ports.c2s_addr(), "localhost").await;

    // No `xmpp` subprotocol: the handshake is refused.
    let tcp = tokio::net::TcpStream::connect(ports.http_addr())
        .await
        .expect("connect");
    let refused = Ws::over(Box::new(tcp), &ports.ws_url(), None).await.err();
    assert_eq!(refused.map(|r| r.0), Some(400));
    let tcp = tokio::net::TcpStream::connect(ports.http_addr())
        .await
        .expect("connect");
    let refused = Ws::over(Box::new(tcp), &ports.ws_url(), Some("mqtt"))
        .await
        .err();
    assert_eq!(refused.map(|r| r.0), Some(400));

    // Not well-formed: a stream error in its own frame, then <close/>, then the close.
    let mut ws = Ws::connect(ports).await;
    ws.open("localhost").await;
    ws.send("<iq type='get'><unclosed></iq>").await;
    let (raw, err) = ws.frame().await;
    assert!(err.name() == "error" && err.ns() == NS_STREAM, "{raw}");
    assert!(
        err.children()
            .any(|c| c.ns() == NS_STREAM_ERRORS && c.name() == "not-well-formed"),
        "{raw}"
    );
    let (_, close) = ws.frame().await;
    assert_eq!(close.name(), "close");

    // Two elements in one frame.
    let mut ws = Ws::connect(ports).await;
    ws.open("localhost").await;
    ws.send("<presence/><presence/>").await;
    let (raw, err) = ws.frame().await;
    assert!(err.name() == "error", "{raw}");

    // A stream header instead of <open/>.
    let mut ws = Ws::connect(ports).await;
    ws.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
        .await;
    let (raw, err) = ws.frame().await;
    assert!(
        err.name() == "error" || err.name() == "open",
        "a refusal, got {raw}"
    );

    // An oversized message: closed with 1009 (message too big).
    let mut ws = Ws::connect(ports).await;
    let big = format!("<message><body>{}</body></message>", "x".repeat(8192));
    let _ = ws.send_message(Message::text(big)).await;
    let mut code = None;
    while let Some(m) = ws.next_message(REPLY_TIMEOUT).await {
        if let Message::Close(f) = m {
            code = f.map(|f| f.code);
            break;
        }
    }
    assert_eq!(code, Some(CloseCode::Size));

    // A silent peer: pinged after 1 s, dropped after another second without an answer.
    let tcp = tokio::net::TcpStream::connect(ports.http_addr())
        .await
        .expect("connect");
    let ws = Ws::over(Box::new(tcp), &ports.ws_url(), Some("xmpp"))
        .await
        .expect("ws");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    web::wait_metric(
        ports,
        "lilt_connections",
        &[("transport", "websocket")],
        0.0,
    )
    .await;
    drop(ws);

    // A peer that answers pings stays.
    let mut ws = Ws::connect(ports).await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(3500);
    let mut pings = 0;
    while let Some(left) = deadline.checked_duration_since(tokio::time::Instant::now()) {
        if let Ok(Some(Message::Ping(_))) = ws.poll_message(left).await {
            pings += 1;
        }
    }
    assert!(pings >= 1, "the server pings a silent-but-alive peer");
    let jid = ws.login_anonymous("localhost").await;
    assert!(jid.contains("@localhost/"));

    bystander.sync("localhost").await;
    let s = web::scrape(ports).await;
    assert!(web::sample(&s, "lilt_http_rejected_total", &[]) >= 2.0);
}

/// Jitsi's `enableWebsocketResume`: an anonymous WebSocket session survives a dropped socket.
/// The client logs in anonymously again (getting a new random JID) and resumes with the id;
/// what arrived meanwhile is replayed and the session keeps its original JID.
#[tokio::test]
async fn anonymous_websocket_session_resumes_after_a_drop() {
    let server = Setup::new(TestConfig::localhost_anonymous()).start();
    let ports = server.ports();
    let (mut tcp, _) = RawClient::login_anonymous(ports.c2s_addr(), "localhost").await;
    let mut ws = Ws::connect(ports).await;
    let jid = ws.login_anonymous("localhost").await;
    ws.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
        .await;
    let enabled = ws.wait_for("<enabled/>", |e| e.name() == "enabled").await;
    assert_eq!(enabled.attr("resume"), Some("true"));
    let previd = enabled.attr("id").expect("resumption id").to_owned();
    drop(ws);
    tcp.send(&format!(
        "<message to='{jid}'><body>while away</body></message>"
    ))
    .await;
    tcp.sync("localhost").await;

    let mut ws = Ws::connect(ports).await;
    ws.open("localhost").await;
    ws.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
        .await;
    ws.wait_for("<success/>", |e| e.name() == "success").await;
    ws.open("localhost").await;
    ws.send(&format!(
        "<resume xmlns='urn:xmpp:sm:3' previd='{previd}' h='0'/>"
    ))
    .await;
    let resumed = ws.wait_for("<resumed/>", |e| e.name() == "resumed").await;
    assert_eq!(resumed.attr("previd"), Some(previd.as_str()));
    let replayed = ws
        .wait_for("the replayed message", |e| e.name() == "message")
        .await;
    assert_eq!(
        replayed
            .get_child("body", "jabber:client")
            .map(|b| b.text()),
        Some("while away".to_owned())
    );
    assert_eq!(
        replayed.attr("to"),
        Some(jid.as_str()),
        "the session kept its JID"
    );
    // And it still works both ways under that JID.
    ws.send("<iq type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let pong = ws.wait_for("ping", |e| e.attr("id") == Some("p2")).await;
    assert_eq!(pong.attr("to"), Some(jid.as_str()));
}
