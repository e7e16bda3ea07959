//! XEP-0198 stream management with the raw client: enable with resumption, `<r/>`/`<a h/>`
//! counting, resumption after an abrupt disconnect with redelivery of unacknowledged
//! stanzas, and `<failed/>` for unknown or foreign stream ids.
//!
//! Shell (end-to-end against `lilt serve`). Spec: XEP-0198 §3 (enable/enabled), §4 (acks:
//! `h` counts handled stanzas, not nonzas), §5 (resume/resumed/failed; unacked stanzas are
//! resent after `<resumed/>`).
//! Invariants checked: `h` equals the number of stanzas sent since `<enable/>`; only the
//! account that owned a session can resume it, as often as it likes; an anonymous session's
//! resumption id (a bearer token, and one clients put in reconnection URLs) works once, and
//! the session it resumed then ends with its transport instead of waiting again.
//! Tests: this file.

use crate::harness::{Setup, TestConfig};
use crate::login::{ALICE_PW, BOB_PW, server_with_users};
use crate::raw::{NS_SM, REPLY_TIMEOUT, RawClient, Xml};

async fn enable(c: &mut RawClient) -> String {
    c.send(&format!("<enable xmlns='{NS_SM}' resume='true'/>"))
        .await;
    let enabled = c
        .wait_for("<enabled/>", REPLY_TIMEOUT, |x| {
            x.el.ns() == NS_SM && x.el.name() != "r"
        })
        .await;
    assert!(
        enabled.is("enabled", NS_SM),
        "expected <enabled/>, got {}",
        enabled.raw
    );
    assert!(
        matches!(enabled.attr("resume"), Some("true" | "1")),
        "resumption not granted: {}",
        enabled.raw
    );
    enabled
        .attr("id")
        .unwrap_or_else(|| panic!("<enabled/> without id: {}", enabled.raw))
        .to_owned()
}

fn is_ack(x: &Xml) -> bool {
    x.is("a", NS_SM)
}

#[tokio::test]
async fn enable_and_acknowledge() {
    let server = server_with_users();
    let (mut c, _) =
        RawClient::login_plain(server.ports().c2s_addr(), "localhost", "bob", BOB_PW, None).await;
    enable(&mut c).await;
    c.send("<presence/>").await;
    c.sync("localhost").await; // stanza 2: the ping iq
    c.send(&format!("<r xmlns='{NS_SM}'/>")).await;
    let a = c.wait_for("<a/>", REPLY_TIMEOUT, is_ack).await;
    assert_eq!(
        a.attr("h"),
        Some("2"),
        "two stanzas were sent after <enable/>: {}",
        a.raw
    );
    c.send("<iq type='get' id='p3' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    c.send(&format!("<r xmlns='{NS_SM}'/>")).await;
    let a = c.wait_for("<a/>", REPLY_TIMEOUT, is_ack).await;
    assert_eq!(a.attr("h"), Some("3"), "{}", a.raw);
}

#[tokio::test]
async fn resume_after_abrupt_disconnect_redelivers_unacked_stanzas() {
    let server = server_with_users();
    let addr = server.ports().c2s_addr();
    let (mut bob, bob_jid) =
        RawClient::login_plain(addr, "localhost", "bob", BOB_PW, Some("mobile")).await;
    let previd = enable(&mut bob).await;
    // Vanish: no </stream:stream>, no final <a/>.
    drop(bob);

    let (mut alice, _) = RawClient::login_plain(addr, "localhost", "alice", ALICE_PW, None).await;
    alice.send(&format!("<message to='{bob_jid}' type='chat' id='while-away'><body>are you there?</body></message>")).await;
    alice.sync("localhost").await;
    // A message to an unknown resource would come back as an error; a resumable session must
    // still hold the resource, so nothing comes back.
    alice
        .expect_none(
            "an error for the message",
            std::time::Duration::from_millis(300),
            |x| x.attr("id") == Some("while-away"),
        )
        .await;

    let mut bob = RawClient::connect(addr).await;
    bob.open("localhost").await;
    bob.auth_plain("bob", BOB_PW).await.expect("PLAIN");
    let features = bob.open("localhost").await;
    assert!(
        features.child("sm", NS_SM).is_some(),
        "no SM offered: {}",
        features.raw
    );
    bob.send(&format!(
        "<resume xmlns='{NS_SM}' previd='{previd}' h='0'/>"
    ))
    .await;
    let resumed = bob
        .wait_for("<resumed/>", REPLY_TIMEOUT, |x| {
            x.el.ns() == NS_SM && x.el.name() != "r"
        })
        .await;
    assert!(
        resumed.is("resumed", NS_SM),
        "expected <resumed/>, got {}",
        resumed.raw
    );
    assert_eq!(resumed.attr("previd"), Some(previd.as_str()));
    assert_eq!(
        resumed.attr("h"),
        Some("0"),
        "bob sent no stanza after <enable/>: {}",
        resumed.raw
    );
    let m = bob
        .wait_for("the redelivered message", REPLY_TIMEOUT, |x| {
            x.el.name() == "message" && x.attr("id") == Some("while-away")
        })
        .await;
    assert_eq!(
        m.el.get_child("body", crate::raw::NS_CLIENT)
            .map(|b| b.text())
            .as_deref(),
        Some("are you there?")
    );
    assert_eq!(m.attr("to"), Some(bob_jid.as_str()));
    // The resumed session is live: it keeps its JID and can be pinged through.
    bob.sync("localhost").await;
}

#[tokio::test]
async fn resume_with_unknown_or_foreign_id_fails() {
    let server = server_with_users();
    let addr = server.ports().c2s_addr();
    let mut c = RawClient::connect(addr).await;
    c.open("localhost").await;
    c.auth_plain("alice", ALICE_PW).await.expect("PLAIN");
    c.open("localhost").await;
    c.send(&format!(
        "<resume xmlns='{NS_SM}' previd='no-such-session' h='0'/>"
    ))
    .await;
    let failed = c
        .wait_for("<failed/>", REPLY_TIMEOUT, |x| {
            x.el.ns() == NS_SM && x.el.name() != "r"
        })
        .await;
    assert!(
        failed.is("failed", NS_SM),
        "expected <failed/>, got {}",
        failed.raw
    );
    // XEP-0198 §5: after <failed/> the client may bind a fresh session on the same stream.
    assert!(c.bind(None).await.starts_with("alice@localhost/"));

    // Bob's resumable session cannot be taken over by alice.
    let (mut bob, _) = RawClient::login_plain(addr, "localhost", "bob", BOB_PW, None).await;
    let previd = enable(&mut bob).await;
    drop(bob);
    let mut thief = RawClient::connect(addr).await;
    thief.open("localhost").await;
    thief.auth_plain("alice", ALICE_PW).await.expect("PLAIN");
    thief.open("localhost").await;
    thief
        .send(&format!(
            "<resume xmlns='{NS_SM}' previd='{previd}' h='0'/>"
        ))
        .await;
    let reply = thief
        .wait_for("a resume reply", REPLY_TIMEOUT, |x| {
            x.el.ns() == NS_SM && x.el.name() != "r"
        })
        .await;
    assert!(
        reply.is("failed", NS_SM),
        "alice resumed bob's session: {}",
        reply.raw
    );
}

/// Log in on a fresh connection (PLAIN when `user` is given, else ANONYMOUS) and send
/// `<resume/>` with `previd`; returns the client and the server's SM reply.
async fn try_resume(
    addr: std::net::SocketAddr,
    user: Option<(&str, &str)>,
    previd: &str,
) -> (RawClient, Xml) {
    let mut c = RawClient::connect(addr).await;
    c.open("localhost").await;
    match user {
        Some((u, pw)) => c.auth_plain(u, pw).await.expect("PLAIN"),
        None => c.auth_anonymous().await.expect("ANONYMOUS"),
    }
    c.open("localhost").await;
    c.send(&format!(
        "<resume xmlns='{NS_SM}' previd='{previd}' h='0'/>"
    ))
    .await;
    let reply = c
        .wait_for("a resume reply", REPLY_TIMEOUT, |x| {
            x.el.ns() == NS_SM && x.el.name() != "r"
        })
        .await;
    (c, reply)
}

#[tokio::test]
async fn anonymous_resumption_id_is_single_use() {
    let server = Setup::new(TestConfig::localhost_anonymous()).start();
    let addr = server.ports().c2s_addr();
    let (mut first, jid) = RawClient::login_anonymous(addr, "localhost").await;
    let previd = enable(&mut first).await;
    drop(first);

    // Any anonymous login that knows the id may resume once (it has no other proof).
    let (mut second, reply) = try_resume(addr, None, &previd).await;
    assert!(reply.is("resumed", NS_SM), "first resume: {}", reply.raw);
    assert_eq!(reply.attr("previd"), Some(previd.as_str()));
    second.sync("localhost").await;
    drop(second);

    // The id is spent, so the resumed session does not wait for another resumption: it ends
    // now (a detached session would still hold its JID, and an iq to it would go unanswered).
    let (mut observer, _) = RawClient::login_anonymous(addr, "localhost").await;
    let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
    for n in 0.. {
        let id = format!("probe{n}");
        observer
            .send(&format!(
                "<iq type='get' id='{id}' to='{jid}'><ping xmlns='urn:xmpp:ping'/></iq>"
            ))
            .await;
        let reply = observer
            .wait_for("the probe's reply", REPLY_TIMEOUT, |x| {
                x.attr("id") == Some(id.as_str())
            })
            .await;
        let condition = reply
            .child("error", crate::raw::NS_CLIENT)
            .and_then(|e| e.children().find(|c| c.ns() == crate::raw::NS_STANZAS))
            .map(|c| c.name().to_owned());
        if condition.as_deref() == Some("service-unavailable") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the resumed session outlived its transport: {}",
            reply.raw
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // And the id a proxy may have logged with the first resumption is worthless.
    let (mut third, reply) = try_resume(addr, None, &previd).await;
    assert!(
        reply.is("failed", NS_SM),
        "a spent id resumed a session: {}",
        reply.raw
    );
    // XEP-0198 §5: the client carries on with a fresh session on the same stream.
    assert!(third.bind(None).await.contains("@localhost/"));
}

#[tokio::test]
async fn account_resumption_id_survives_repeated_resumes() {
    let server = server_with_users();
    let addr = server.ports().c2s_addr();
    let (mut bob, bob_jid) =
        RawClient::login_plain(addr, "localhost", "bob", BOB_PW, Some("mobile")).await;
    let previd = enable(&mut bob).await;
    drop(bob);
    for round in 1..=3 {
        let (mut bob, reply) = try_resume(addr, Some(("bob", BOB_PW)), &previd).await;
        assert!(
            reply.is("resumed", NS_SM),
            "resume {round} of bob's session: {}",
            reply.raw
        );
        bob.sync("localhost").await;
        drop(bob);
    }
    // The session kept its JID all along.
    let (mut alice, _) = RawClient::login_plain(addr, "localhost", "alice", ALICE_PW, None).await;
    alice
        .send(&format!(
            "<message to='{bob_jid}' type='chat' id='still-there'><body>hi</body></message>"
        ))
        .await;
    alice.sync("localhost").await;
    alice
        .expect_none(
            "an error for the message",
            std::time::Duration::from_millis(300),
            |x| x.attr("id") == Some("still-there"),
        )
        .await;
}
