//! TLS: STARTTLS on the c2s port with the certificate the server generates into `data_dir`,
//! and XEP-0368 direct TLS with an operator certificate from `[tls]`; a full login over each.
//!
//! Shell (end-to-end against `lilt serve`). Spec: RFC 6120 §5.4 (STARTTLS negotiation,
//! `<proceed/>`, stream restart, no STARTTLS offered again), XEP-0368 (TLS from the first
//! byte), RFC 6120 §13.9.
//! Invariants checked: the client trusts only the certificate it expects (pinned, handshake
//! signature verified); after TLS the TLS-only vhost offers SASL.
//! Tests: this file.

use crate::harness::{Setup, TestConfig, Vhost};
use crate::login::ALICE_PW;
use crate::raw::{NS_BIND, NS_SASL, NS_TLS, REPLY_TIMEOUT, RawClient};
use crate::scram::ScramHash;
use crate::tls_util::{certificates_under, generate_cert, handshake, pinned_client_config};

#[tokio::test]
async fn starttls_with_generated_certificate_then_login() {
    let setup = Setup::new(TestConfig::new(vec![
        Vhost::internal("localhost").tls_required(),
    ]));
    setup.add_user("alice@localhost", ALICE_PW);
    let server = setup.start();
    let certs = certificates_under(&server.data_dir());
    assert!(
        !certs.is_empty(),
        "no generated certificate found under {}",
        server.data_dir().display()
    );

    let mut c = RawClient::connect(server.ports().c2s_addr()).await;
    let features = c.open("localhost").await;
    assert!(
        features.child("starttls", NS_TLS).is_some(),
        "{}",
        features.raw
    );
    c.send(&format!("<starttls xmlns='{NS_TLS}'/>")).await;
    let proceed = c.next_element(REPLY_TIMEOUT).await;
    assert!(
        proceed.is("proceed", NS_TLS),
        "expected <proceed/>, got {}",
        proceed.raw
    );
    let io = handshake(c.into_io(), "localhost", pinned_client_config(certs))
        .await
        .expect("TLS handshake with the generated certificate");
    let mut c = RawClient::over(io);
    let features = c.open("localhost").await;
    assert!(
        features.child("starttls", NS_TLS).is_none(),
        "STARTTLS offered again over TLS: {}",
        features.raw
    );
    let mechs = RawClient::mechanisms(&features);
    assert!(
        mechs.iter().any(|m| m == "PLAIN"),
        "no PLAIN over TLS: {}",
        features.raw
    );
    c.auth_plain("alice", ALICE_PW)
        .await
        .expect("PLAIN over TLS");
    let features = c.open("localhost").await;
    assert!(
        features.child("bind", NS_BIND).is_some(),
        "{}",
        features.raw
    );
    assert!(c.bind(None).await.starts_with("alice@localhost/"));
    c.sync("localhost").await;
}

#[tokio::test]
async fn direct_tls_with_operator_certificate_then_login() {
    let certs_dir = crate::harness::TempDir::new();
    let (cert, key, der) = generate_cert(certs_dir.path(), &["localhost"]);
    let mut config = TestConfig::new(vec![Vhost::internal("localhost").tls_required()]);
    config.tls = Some((cert, key));
    let setup = Setup::new(config);
    setup.add_user("alice@localhost", ALICE_PW);
    let server = setup.start();

    let tcp = tokio::net::TcpStream::connect(server.ports().direct_tls_addr())
        .await
        .expect("connect");
    let io = handshake(Box::new(tcp), "localhost", pinned_client_config(vec![der]))
        .await
        .expect("direct TLS handshake presenting the [tls] certificate");
    let mut c = RawClient::over(io);
    let features = c.open("localhost").await;
    assert!(
        features.child("starttls", NS_TLS).is_none(),
        "STARTTLS offered on direct TLS: {}",
        features.raw
    );
    assert!(
        features.child("mechanisms", NS_SASL).is_some(),
        "{}",
        features.raw
    );
    c.auth_scram(ScramHash::Sha256, "alice", ALICE_PW)
        .await
        .expect("SCRAM-SHA-256 over direct TLS");
    c.open("localhost").await;
    assert_eq!(c.bind(Some("tls")).await, "alice@localhost/tls");
    c.sync("localhost").await;
}

#[tokio::test]
async fn starttls_is_offered_optionally_when_unencrypted_is_allowed() {
    let server = Setup::new(TestConfig::localhost_anonymous()).start();
    let mut c = RawClient::connect(server.ports().c2s_addr()).await;
    let features = c.open("localhost").await;
    let starttls = features
        .child("starttls", NS_TLS)
        .unwrap_or_else(|| panic!("no STARTTLS offered: {}", features.raw));
    assert!(
        starttls.get_child("required", NS_TLS).is_none(),
        "required although allow_unencrypted: {}",
        features.raw
    );
    assert!(
        !RawClient::mechanisms(&features).is_empty(),
        "{}",
        features.raw
    );
    // The generated certificate works on the direct TLS port too.
    let certs = certificates_under(&server.data_dir());
    let tcp = tokio::net::TcpStream::connect(server.ports().direct_tls_addr())
        .await
        .expect("connect");
    let io = handshake(Box::new(tcp), "localhost", pinned_client_config(certs))
        .await
        .expect("direct TLS");
    let mut c = RawClient::over(io);
    c.open("localhost").await;
    c.auth_anonymous().await.expect("ANONYMOUS over direct TLS");
}
