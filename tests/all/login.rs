//! Logging in: SASL ANONYMOUS, PLAIN, SCRAM-SHA-1, SCRAM-SHA-256 (each through tokio-xmpp
//! and through the raw client's own implementation), wrong passwords, vhost isolation,
//! TLS-required vhosts, authzids, unknown users' SCRAM salts, resource binding and the legacy
//! session iq.
//!
//! Shell (end-to-end against `lilt serve`). Spec: RFC 6120 §6 (SASL: failure conditions
//! `not-authorized`, `encryption-required`, `invalid-authzid`), §7 (binding, server-generated
//! resource), RFC 3921 §3 (session), RFC 4505 (ANONYMOUS), RFC 5802/7677 (SCRAM).
//! Invariants checked: anonymous localparts are UUIDv4; an account of vhost A never
//! authenticates on vhost B; SASL is refused before STARTTLS unless `allow_unencrypted`; an
//! authzid naming someone else is `invalid-authzid`; an unknown user's SCRAM salt is stable on
//! one server (across restarts) but differs between servers (keyed by `data_dir/sasl.secret`).
//! Tests: this file.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::client::{self, is_not_authorized, sasl_only_bounded};
use crate::harness::{Setup, TestConfig, Vhost};
use crate::raw::{NS_BIND, NS_SASL, NS_SM, NS_STREAM, NS_TLS, REPLY_TIMEOUT, RawClient};
use crate::scram::ScramHash;

pub(crate) const ALICE_PW: &str = "Wonderland-1";
pub(crate) const BOB_PW: &str = "Builder 2, with spaces";

/// A `localhost` auth-internal server with alice and bob.
pub(crate) fn server_with_users() -> crate::harness::Server {
    let setup = Setup::new(TestConfig::localhost_internal());
    setup.add_user("alice@localhost", ALICE_PW);
    setup.add_user("bob@localhost", BOB_PW);
    setup.start()
}

#[tokio::test]
async fn anonymous_login_gets_uuid_v4_localpart_and_server_resource() {
    let server = Setup::new(TestConfig::localhost_anonymous()).start();
    // tokio-xmpp needs a localpart in the JID it is given; ANONYMOUS ignores it.
    let (c1, jid1) = client::online(server.ports().c2s_addr(), "ignored@localhost", "unused").await;
    let (c2, jid2) = client::online(server.ports().c2s_addr(), "ignored@localhost", "unused").await;
    for jid in [&jid1, &jid2] {
        assert_eq!(jid.domain().as_str(), "localhost", "{jid}");
        let node = jid
            .node()
            .unwrap_or_else(|| panic!("anonymous JID without localpart: {jid}"))
            .as_str();
        let uuid = uuid::Uuid::parse_str(node)
            .unwrap_or_else(|e| panic!("localpart {node:?} is not a UUID: {e}"));
        assert_eq!(uuid.get_version_num(), 4, "{node} is not a version 4 UUID");
        assert_ne!(node, "ignored");
        let resource = jid
            .resource()
            .unwrap_or_else(|| panic!("no resource bound: {jid}"));
        assert!(!resource.as_str().is_empty());
    }
    assert_ne!(
        jid1.node(),
        jid2.node(),
        "two anonymous sessions got the same account"
    );
    let _ = c1.send_end().await;
    let _ = c2.send_end().await;
}

#[tokio::test]
async fn anonymous_login_with_raw_client() {
    let server = Setup::new(TestConfig::localhost_anonymous()).start();
    let mut c = RawClient::connect(server.ports().c2s_addr()).await;
    let features = c.open("localhost").await;
    assert!(
        RawClient::mechanisms(&features)
            .iter()
            .any(|m| m == "ANONYMOUS"),
        "{}",
        features.raw
    );
    c.auth_anonymous().await.expect("ANONYMOUS succeeds");
    let features = c.open("localhost").await;
    assert!(
        features.child("bind", NS_BIND).is_some(),
        "no bind after auth: {}",
        features.raw
    );
    let jid = c.bind(None).await;
    let (node, rest) = jid
        .split_once('@')
        .unwrap_or_else(|| panic!("no localpart in {jid}"));
    assert_eq!(
        uuid::Uuid::parse_str(node)
            .map(|u| u.get_version_num())
            .ok(),
        Some(4),
        "{jid}"
    );
    let (domain, resource) = rest
        .split_once('/')
        .unwrap_or_else(|| panic!("no resource in {jid}"));
    assert_eq!(domain, "localhost");
    assert!(!resource.is_empty());
}

#[tokio::test]
async fn strongest_scram_login_with_tokio_xmpp() {
    let server = server_with_users();
    let (c, jid) = client::online(server.ports().c2s_addr(), "alice@localhost", ALICE_PW).await;
    assert_eq!(jid.to_bare().to_string(), "alice@localhost");
    assert!(
        jid.resource().is_some_and(|r| !r.as_str().is_empty()),
        "server must assign a resource: {jid}"
    );
    let _ = c.send_end().await;
}

#[tokio::test]
async fn each_mechanism_with_tokio_xmpp() {
    let server = server_with_users();
    let addr = server.ports().c2s_addr();
    for mech in ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        let features = sasl_only_bounded(addr, "bob@localhost", BOB_PW, &[mech])
            .await
            .unwrap_or_else(|e| panic!("{mech} login failed: {e}"));
        assert!(
            features.can_bind(),
            "{mech}: no resource binding offered after SASL"
        );
    }
}

#[tokio::test]
async fn each_mechanism_with_raw_client() {
    let server = server_with_users();
    let addr = server.ports().c2s_addr();
    let mut c = RawClient::connect(addr).await;
    let features = c.open("localhost").await;
    let mechs = RawClient::mechanisms(&features);
    for m in ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        assert!(
            mechs.iter().any(|x| x == m),
            "{m} not offered: {}",
            features.raw
        );
    }
    assert!(
        !mechs.iter().any(|x| x == "ANONYMOUS"),
        "ANONYMOUS offered on an auth-internal vhost: {mechs:?}"
    );
    c.auth_plain("alice", ALICE_PW).await.expect("PLAIN");
    c.open("localhost").await;
    assert!(c.bind(None).await.starts_with("alice@localhost/"));

    for hash in [ScramHash::Sha1, ScramHash::Sha256] {
        let mut c = RawClient::connect(addr).await;
        c.open("localhost").await;
        c.auth_scram(hash, "alice", ALICE_PW)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", hash.mechanism()));
        let features = c.open("localhost").await;
        assert!(
            features.child("bind", NS_BIND).is_some(),
            "{}",
            features.raw
        );
        assert!(
            features.child("mechanisms", NS_SASL).is_none(),
            "SASL offered twice: {}",
            features.raw
        );
        let jid = c.bind(Some("desk")).await;
        assert_eq!(jid, "alice@localhost/desk");
    }
}

#[tokio::test]
async fn wrong_password_is_not_authorized() {
    let server = server_with_users();
    let addr = server.ports().c2s_addr();
    for mech in ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        for (who, pw) in [
            ("alice@localhost", "wrong"),
            ("nobody@localhost", ALICE_PW),
            ("alice@localhost", BOB_PW),
        ] {
            match sasl_only_bounded(addr, who, pw, &[mech]).await {
                Ok(_) => panic!("{mech}: {who} logged in with a wrong password"),
                Err(e) => assert!(
                    is_not_authorized(&e),
                    "{mech} {who}: expected not-authorized, got {e:?}"
                ),
            }
        }
    }
    let mut c = RawClient::connect(addr).await;
    c.open("localhost").await;
    assert_eq!(
        c.auth_plain("alice", "wrong").await,
        Err("not-authorized".into())
    );
    // RFC 6120 §6.4.5: the client may retry on the same stream after a failure.
    c.auth_plain("alice", ALICE_PW)
        .await
        .expect("retry with the right password");

    for hash in [ScramHash::Sha1, ScramHash::Sha256] {
        let mut c = RawClient::connect(addr).await;
        c.open("localhost").await;
        assert_eq!(
            c.auth_scram(hash, "alice", "wrong").await,
            Err("not-authorized".into()),
            "{hash:?}"
        );
    }
}

#[tokio::test]
async fn account_of_one_vhost_cannot_log_in_on_another() {
    let setup = Setup::new(TestConfig::new(vec![
        Vhost::internal("a.localhost"),
        Vhost::internal("b.localhost"),
    ]));
    setup.add_user("alice@a.localhost", ALICE_PW);
    let server = setup.start();
    let addr = server.ports().c2s_addr();
    sasl_only_bounded(addr, "alice@a.localhost", ALICE_PW, &["SCRAM-SHA-256"])
        .await
        .expect("alice on her own vhost");
    for mech in ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        match sasl_only_bounded(addr, "alice@b.localhost", ALICE_PW, &[mech]).await {
            Ok(_) => panic!("{mech}: alice of a.localhost logged in on b.localhost"),
            Err(e) => assert!(
                is_not_authorized(&e),
                "{mech}: expected not-authorized, got {e:?}"
            ),
        }
    }
    // PLAIN with an authzid naming the other vhost must not help either.
    let mut c = RawClient::connect(addr).await;
    c.open("b.localhost").await;
    c.send(&format!(
        "<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{}</auth>",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("alice@a.localhost\0alice\0{ALICE_PW}")
        )
    ))
    .await;
    let reply = c
        .wait_for("a SASL reply", REPLY_TIMEOUT, |x| {
            x.el.ns() == NS_SASL || x.is("error", NS_STREAM)
        })
        .await;
    assert!(
        !reply.is("success", NS_SASL),
        "authzid of another vhost accepted: {}",
        reply.raw
    );
}

#[tokio::test]
async fn sasl_refused_before_starttls_unless_allow_unencrypted() {
    let setup = Setup::new(TestConfig::new(vec![
        Vhost::internal("localhost").tls_required(),
    ]));
    setup.add_user("alice@localhost", ALICE_PW);
    let server = setup.start();
    let mut c = RawClient::connect(server.ports().c2s_addr()).await;
    let features = c.open("localhost").await;
    let starttls = features
        .child("starttls", NS_TLS)
        .unwrap_or_else(|| panic!("no STARTTLS offered: {}", features.raw));
    assert!(
        starttls.get_child("required", NS_TLS).is_some(),
        "STARTTLS not marked required: {}",
        features.raw
    );
    assert!(
        RawClient::mechanisms(&features).is_empty(),
        "SASL offered before TLS: {}",
        features.raw
    );
    let outcome = c.auth_plain("alice", ALICE_PW).await;
    assert_eq!(
        outcome,
        Err("encryption-required".into()),
        "PLAIN over plain TCP on a TLS-only vhost"
    );
}

#[tokio::test]
async fn legacy_session_iq_and_requested_resource() {
    let server = server_with_users();
    let (mut c, jid) = RawClient::login_plain(
        server.ports().c2s_addr(),
        "localhost",
        "bob",
        BOB_PW,
        Some("phone"),
    )
    .await;
    assert_eq!(jid, "bob@localhost/phone");
    let reply = c
        .iq(
            "sess",
            "<iq type='set' id='sess'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
        )
        .await;
    assert_eq!(
        reply.attr("type"),
        Some("result"),
        "legacy <session/> refused: {}",
        reply.raw
    );
    // Stream management is advertised after binding.
    let mut c2 = RawClient::connect(server.ports().c2s_addr()).await;
    c2.open("localhost").await;
    c2.auth_plain("bob", BOB_PW).await.expect("PLAIN");
    let features = c2.open("localhost").await;
    assert!(
        features.child("sm", NS_SM).is_some(),
        "XEP-0198 not advertised: {}",
        features.raw
    );
    c.close().await;
}

/// The server-first message (RFC 5802 §7) `addr` answers to a SCRAM client-first for `user`
/// on `localhost`, and its salt; the exchange is then abandoned.
async fn scram_server_first(
    addr: std::net::SocketAddr,
    hash: ScramHash,
    user: &str,
) -> (String, Vec<u8>) {
    let mut c = RawClient::connect(addr).await;
    c.open("localhost").await;
    let first = B64.encode(crate::scram::ScramClient::new(hash, user, "unused").client_first());
    c.send(&format!(
        "<auth xmlns='{NS_SASL}' mechanism='{}'>{first}</auth>",
        hash.mechanism()
    ))
    .await;
    let reply = c
        .wait_for("a SASL reply", REPLY_TIMEOUT, |x| {
            x.el.ns() == NS_SASL || x.is("error", NS_STREAM)
        })
        .await;
    assert!(
        reply.is("challenge", NS_SASL),
        "{user}: no server-first: {}",
        reply.raw
    );
    let text = String::from_utf8(B64.decode(reply.el.text().trim()).expect("base64"))
        .expect("UTF-8 server-first");
    let salt = text
        .split(',')
        .find_map(|p| p.strip_prefix("s="))
        .map(|s| B64.decode(s).expect("base64 salt"))
        .unwrap_or_else(|| panic!("{user}: server-first without s=: {text}"));
    (text, salt)
}

/// The iteration count of a server-first message.
fn iterations(server_first: &str) -> &str {
    server_first
        .split(',')
        .find_map(|p| p.strip_prefix("i="))
        .unwrap_or_else(|| panic!("server-first without i=: {server_first}"))
}

#[tokio::test]
async fn unknown_user_scram_salt_is_stable_per_server_and_secret() {
    let a = server_with_users();
    let b = server_with_users();
    let secret = a.data_dir().join("sasl.secret");
    assert!(secret.is_file(), "no {}", secret.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{} is {mode:o}", secret.display());
    }
    for hash in [ScramHash::Sha1, ScramHash::Sha256] {
        let (first, ghost_a) = scram_server_first(a.ports().c2s_addr(), hash, "ghost").await;
        let (real, alice) = scram_server_first(a.ports().c2s_addr(), hash, "alice").await;
        // The stand-in looks like a real account: same salt length and iteration count.
        assert_eq!(ghost_a.len(), alice.len(), "{hash:?}: {first} vs {real}");
        assert_eq!(iterations(&first), iterations(&real), "{hash:?}");
        let (_, again) = scram_server_first(a.ports().c2s_addr(), hash, "ghost").await;
        assert_eq!(
            again, ghost_a,
            "{hash:?}: a repeated probe saw another salt"
        );
        let (_, ghost_b) = scram_server_first(b.ports().c2s_addr(), hash, "ghost").await;
        assert_ne!(
            ghost_b, ghost_a,
            "{hash:?}: two servers with different secrets gave the same salt"
        );
        let (_, other) = scram_server_first(a.ports().c2s_addr(), hash, "phantom").await;
        assert_ne!(other, ghost_a, "{hash:?}: two unknown users share a salt");
    }
    // The secret is kept: after a restart the same server gives the same salt.
    let (_, before) = scram_server_first(a.ports().c2s_addr(), ScramHash::Sha256, "ghost").await;
    let a = a.stop().start();
    let (_, after) = scram_server_first(a.ports().c2s_addr(), ScramHash::Sha256, "ghost").await;
    assert_eq!(before, after, "the salt changed across a restart");
}

#[tokio::test]
async fn authzid_of_someone_else_is_invalid_authzid() {
    let server = server_with_users();
    let addr = server.ports().c2s_addr();
    let outcome = |reply: &crate::raw::Xml| {
        if reply.is("success", NS_SASL) {
            "success".to_owned()
        } else {
            reply
                .condition(NS_SASL)
                .unwrap_or_else(|| reply.raw.clone())
        }
    };
    // PLAIN: someone else (right password or not), or alice on another domain: refused.
    for authzid in ["bob@localhost", "bob", "alice@elsewhere"] {
        let mut c = RawClient::connect(addr).await;
        c.open("localhost").await;
        let payload = B64.encode(format!("{authzid}\0alice\0{ALICE_PW}"));
        c.send(&format!(
            "<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>"
        ))
        .await;
        let reply = c
            .wait_for("a SASL reply", REPLY_TIMEOUT, |x| {
                x.el.ns() == NS_SASL || x.is("error", NS_STREAM)
            })
            .await;
        assert_eq!(
            outcome(&reply),
            "invalid-authzid",
            "PLAIN authzid {authzid}"
        );
    }
    // Her own JID as authzid is fine.
    let mut c = RawClient::connect(addr).await;
    c.open("localhost").await;
    let payload = B64.encode(format!("alice@localhost\0alice\0{ALICE_PW}"));
    c.send(&format!(
        "<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>"
    ))
    .await;
    let reply = c
        .wait_for("a SASL reply", REPLY_TIMEOUT, |x| {
            x.el.ns() == NS_SASL || x.is("error", NS_STREAM)
        })
        .await;
    assert_eq!(outcome(&reply), "success", "PLAIN with her own authzid");
    c.open("localhost").await;
    assert!(c.bind(None).await.starts_with("alice@localhost/"));
    // SCRAM: the authzid rides in the GS2 header of the first message.
    for hash in [ScramHash::Sha1, ScramHash::Sha256] {
        let mut c = RawClient::connect(addr).await;
        c.open("localhost").await;
        let first = B64.encode("n,a=bob@localhost,n=alice,r=abcdefghijkl");
        c.send(&format!(
            "<auth xmlns='{NS_SASL}' mechanism='{}'>{first}</auth>",
            hash.mechanism()
        ))
        .await;
        let reply = c
            .wait_for("a SASL reply", REPLY_TIMEOUT, |x| {
                x.el.ns() == NS_SASL || x.is("error", NS_STREAM)
            })
            .await;
        assert_eq!(outcome(&reply), "invalid-authzid", "{hash:?}");
    }
}
