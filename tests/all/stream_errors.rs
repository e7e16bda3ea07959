//! Bad input and limits: each must end only the offending stream, with the right stream error,
//! while a bystander session on the same server keeps working.
//!
//! Shell (end-to-end against `lilt serve`). Spec: RFC 6120 §4.9.3 (`policy-violation`,
//! `restricted-xml`, `not-well-formed`, `connection-timeout`), §11.1 (no comments, PIs,
//! DTDs, entity declarations), §11.5 (the XML declaration is allowed); `[limits]` in the
//! config (`max_stanza_bytes`, `max_depth`, `unauthenticated_timeout_seconds`).
//! Invariants checked: the stream header is sent before the error; the server closes the
//! stream after the error; other sessions are unaffected.
//! Tests: this file.

use std::time::Duration;

use crate::harness::{Server, Setup, TestConfig};
use crate::raw::{REPLY_TIMEOUT, RawClient};

const SMALL_STANZA_LIMIT: usize = 4096;
const SMALL_DEPTH_LIMIT: usize = 16;

fn server() -> Server {
    let mut config = TestConfig::localhost_anonymous();
    config.max_stanza_bytes = SMALL_STANZA_LIMIT;
    config.max_depth = SMALL_DEPTH_LIMIT;
    config.unauthenticated_timeout_seconds = 2;
    Setup::new(config).start()
}

/// Send `input` on a fresh connection (after a logged-in stream when `after_login`) and
/// return the stream error condition.
async fn provoke(server: &Server, after_login: bool, input: &str) -> String {
    let mut c = if after_login {
        RawClient::login_anonymous(server.ports().c2s_addr(), "localhost")
            .await
            .0
    } else {
        RawClient::connect(server.ports().c2s_addr()).await
    };
    // The peer may hang up while we are still writing; the error is what matters.
    let _ = c.try_send(input).await;
    c.expect_stream_error(REPLY_TIMEOUT).await
}

const HEADER: &str = "<stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

/// A logged-in session that must survive every other connection's bad input.
async fn bystander(server: &Server) -> RawClient {
    RawClient::login_anonymous(server.ports().c2s_addr(), "localhost")
        .await
        .0
}

#[tokio::test]
async fn oversized_stanza_is_policy_violation() {
    let server = server();
    let mut ok = bystander(&server).await;
    let body = "x".repeat(SMALL_STANZA_LIMIT * 2);
    let input = format!("<message to='localhost' id='big'><body>{body}</body></message>");
    assert_eq!(provoke(&server, true, &input).await, "policy-violation");
    // Just under the limit is fine.
    let body = "y".repeat(SMALL_STANZA_LIMIT / 2);
    ok.send(&format!(
        "<message to='localhost' id='fits'><body>{body}</body></message>"
    ))
    .await;
    ok.sync("localhost").await;
}

#[tokio::test]
async fn too_deep_is_policy_violation() {
    let server = server();
    let mut ok = bystander(&server).await;
    let depth = SMALL_DEPTH_LIMIT * 3;
    let input = format!(
        "<message to='localhost' id='deep'>{}{}</message>",
        "<x xmlns='urn:example:deep'>".repeat(depth),
        "</x>".repeat(depth)
    );
    assert_eq!(provoke(&server, true, &input).await, "policy-violation");
    ok.sync("localhost").await;
}

/// Wide rather than deep or long: 5000 empty children (20 KB, well under the size limit) are
/// more elements than `limits.max_elements` (4096 by default) allows, over TCP and over
/// WebSocket alike.
#[tokio::test]
async fn too_many_elements_is_policy_violation() {
    let server = Setup::new(TestConfig::localhost_anonymous()).start();
    let mut ok = bystander(&server).await;
    let wide = |n: usize| {
        format!(
            "<message to='localhost' id='wide'>{}</message>",
            "<x xmlns='urn:example:wide'/>".repeat(n - 1)
        )
    };
    assert_eq!(
        provoke(&server, true, &wide(5000)).await,
        "policy-violation"
    );
    // At the limit it is a stanza like any other.
    let (mut c, _) = RawClient::login_anonymous(server.ports().c2s_addr(), "localhost").await;
    c.send(&wide(4096)).await;
    c.sync("localhost").await;
    let mut ws = crate::web::Ws::connect(server.ports()).await;
    ws.open("localhost").await;
    ws.send(&wide(5000).replace("<message ", "<message xmlns='jabber:client' "))
        .await;
    let (_, frame) = ws.frame().await;
    assert_eq!(frame.name(), "error", "{frame:?}");
    assert!(
        frame.children().any(|c| c.name() == "policy-violation"),
        "{frame:?}"
    );
    ok.sync("localhost").await;
}

#[tokio::test]
async fn restricted_xml_is_refused() {
    let server = server();
    let mut ok = bystander(&server).await;
    let cases: [(&str, bool, String); 6] = [
        // RFC 6120 §11.1: entity references other than the predefined five are a restricted
        // XML feature, not merely malformed.
        (
            "undefined entity",
            true,
            "<message to='localhost'><body>&nope;</body></message>".into(),
        ),
        (
            "comment mid-stream",
            true,
            "<!-- a comment --><presence/>".into(),
        ),
        (
            "comment inside a stanza",
            true,
            "<message to='localhost'><!-- c --><body>x</body></message>".into(),
        ),
        (
            "processing instruction",
            true,
            "<message to='localhost'><?pi data?></message>".into(),
        ),
        (
            "DTD before the header",
            false,
            format!("<?xml version='1.0'?><!DOCTYPE stream:stream>{HEADER}"),
        ),
        (
            "entity declaration",
            false,
            format!(
                "<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY boom 'lots'>]>{HEADER}<presence>&boom;</presence>"
            ),
        ),
    ];
    let mut failures = Vec::new();
    for (name, after_login, input) in &cases {
        let cond = provoke(&server, *after_login, input).await;
        if cond != "restricted-xml" {
            failures.push(format!("{name}: got {cond}"));
        }
        ok.sync("localhost").await;
    }
    assert!(
        failures.is_empty(),
        "expected restricted-xml: {failures:#?}"
    );
}

#[tokio::test]
async fn malformed_xml_is_not_well_formed() {
    let server = server();
    let mut ok = bystander(&server).await;
    let cases = [
        (
            "mismatched end tag",
            true,
            "<message to='localhost'><body>x</bdy></message>",
        ),
        (
            "end tag closing the stanza too early",
            true,
            "<message to='localhost'><body>x</message>",
        ),
        (
            "unquoted attribute",
            true,
            "<message to=localhost><body>x</body></message>",
        ),
        (
            "garbage before the header",
            false,
            "\u{1}\u{2} this is not xml <<<",
        ),
    ];
    let mut failures = Vec::new();
    for (name, after_login, input) in cases {
        let cond = provoke(&server, after_login, input).await;
        if cond != "not-well-formed" {
            failures.push(format!("{name}: got {cond}"));
        }
        ok.sync("localhost").await;
    }
    assert!(
        failures.is_empty(),
        "expected not-well-formed: {failures:#?}"
    );
    // An undeclared entity is not well-formed XML, and RFC 6120 §11.1 also lists entity
    // references as restricted XML: either condition is right.
    let input = "<message to='localhost'><body>&nope;</body></message>";
    let cond = provoke(&server, true, input).await;
    assert!(
        matches!(cond.as_str(), "not-well-formed" | "restricted-xml"),
        "undeclared entity: got {cond}"
    );
    ok.sync("localhost").await;
}

#[tokio::test]
async fn idle_unauthenticated_stream_times_out() {
    let server = server();
    let mut ok = bystander(&server).await;
    let mut idle = RawClient::connect(server.ports().c2s_addr()).await;
    idle.open("localhost").await;
    let started = std::time::Instant::now();
    // unauthenticated_timeout_seconds = 2; allow generous slack for a loaded machine.
    let cond = idle.expect_stream_error(Duration::from_secs(15)).await;
    assert_eq!(cond, "connection-timeout");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "closed too early: {:?}",
        started.elapsed()
    );
    // The authenticated bystander is older than the timeout and still served.
    ok.sync("localhost").await;
}

#[tokio::test]
async fn xml_declaration_and_whitespace_are_accepted() {
    let server = server();
    let mut c = RawClient::connect(server.ports().c2s_addr()).await;
    c.send("<?xml version='1.0' encoding='UTF-8'?>\n").await;
    let features = c.open("localhost").await;
    assert!(
        !RawClient::mechanisms(&features).is_empty(),
        "{}",
        features.raw
    );
    c.auth_anonymous().await.expect("ANONYMOUS");
    c.open("localhost").await;
    c.bind(None).await;
    c.send("\n \n").await; // whitespace keepalive
    c.sync("localhost").await;
}
