//! Who may connect, against the real binary: an address's share of unauthenticated sessions
//! (TCP, WebSocket and BOSH count together, and a session that authenticates frees its slot),
//! the components' own permits when the clients' are gone, and who may read `/metrics` and
//! `/stats` (loopback, `http.stats_allow`, the bearer token; behind a trusted proxy, the
//! forwarded client).
//!
//! Spec: RFC 6120 §4.9.3 (`policy-violation`, `resource-constraint`); XEP-0124 §17
//! (`policy-violation` terminate); RFC 6585 (429).

use sha1::{Digest as _, Sha1};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::harness::{Ports, Setup, TempDir, TestConfig};
use crate::raw::{Frame, NS_COMPONENT, REPLY_TIMEOUT, RawClient};
use crate::web;

/// A c2s connection that opened its stream and got the server's header (unauthenticated).
async fn opened(ports: Ports) -> RawClient {
    let mut c = RawClient::connect(ports.c2s_addr()).await;
    c.send_header("localhost").await;
    match c.read_frame(REPLY_TIMEOUT).await {
        Ok(Frame::Header(_)) => {}
        other => panic!("expected a stream header, got {other:?}\n{}", c.dump()),
    }
    c
}

/// The status line's code of a WebSocket upgrade request for `/xmpp-websocket`.
async fn websocket_status(ports: Ports) -> u16 {
    let mut s = tokio::net::TcpStream::connect(ports.http_addr())
        .await
        .expect("connect");
    s.write_all(
        b"GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n",
    )
    .await
    .expect("write");
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(REPLY_TIMEOUT, s.read(&mut buf))
        .await
        .expect("a response in time")
        .expect("read");
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"))
}

/// The body of a BOSH session creation request's answer.
async fn bosh_create(ports: Ports) -> String {
    web::http()
        .post(ports.http_url("/http-bind"))
        .header("content-type", "text/xml; charset=utf-8")
        .body(
            "<body rid='1000' to='localhost' wait='60' hold='1' ver='1.6' \
             xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' \
             xmpp:version='1.0'/>",
        )
        .send()
        .await
        .expect("BOSH request")
        .text()
        .await
        .expect("BOSH body")
}

/// With `limits.max_unauthenticated_per_address = 3` (loopback counted): three
/// unauthenticated TCP sessions fill the address's share; a fourth TCP connection gets
/// `policy-violation`, a WebSocket upgrade 429 and a BOSH creation a `policy-violation`
/// terminate; once one of the three authenticates, a new session gets in.
#[tokio::test]
async fn an_address_holds_a_bounded_share_of_unauthenticated_sessions() {
    let server = Setup::new(
        TestConfig::localhost_anonymous()
            .limit("max_unauthenticated_per_address = 3")
            .limit("limit_loopback = true"),
    )
    .start();
    let ports = server.ports();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(opened(ports).await);
    }
    let mut fourth = RawClient::connect(ports.c2s_addr()).await;
    assert_eq!(
        fourth.expect_stream_error(REPLY_TIMEOUT).await,
        "policy-violation"
    );
    assert!(
        fourth.dump().contains("too many unauthenticated sessions"),
        "{}",
        fourth.dump()
    );
    assert_eq!(websocket_status(ports).await, 429);
    let body = bosh_create(ports).await;
    assert!(
        body.contains("type='terminate'") || body.contains("type=\"terminate\""),
        "{body}"
    );
    assert!(body.contains("policy-violation"), "{body}");
    // One of them logs in: its slot is free for a new session, which gets its features.
    held[0].auth_anonymous().await.expect("anonymous login");
    let _fifth = opened(ports).await;
    let mut sixth = RawClient::connect(ports.c2s_addr()).await;
    assert_eq!(
        sixth.expect_stream_error(REPLY_TIMEOUT).await,
        "policy-violation"
    );
    // A session that ends frees its slot too.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
    loop {
        let mut c = RawClient::connect(ports.c2s_addr()).await;
        c.send_header("localhost").await;
        match c.read_frame(REPLY_TIMEOUT).await {
            Ok(Frame::Header(_)) => match c.read_frame(REPLY_TIMEOUT).await {
                Ok(Frame::Element(x)) if x.el.name() == "features" => break,
                Ok(Frame::Element(x)) if x.el.name() == "error" => {}
                other => panic!("after the header: {other:?}"),
            },
            other => panic!("expected a stream header, got {other:?}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed session's slot was never freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// With every client permit taken (`limits.max_connections = 2`), a third client gets
/// `resource-constraint`, and a component still connects and completes its handshake.
#[tokio::test]
async fn components_keep_their_permits_when_clients_have_taken_theirs() {
    const SECRET: &str = "s3cret-long-enough";
    let mut config = TestConfig::localhost_anonymous().component("comp.localhost", SECRET);
    config.max_connections = 2;
    let server = Setup::new(config).start();
    let ports = server.ports();
    let _a = opened(ports).await;
    let _b = opened(ports).await;
    let mut c = RawClient::connect(ports.c2s_addr()).await;
    assert_eq!(
        c.expect_stream_error(REPLY_TIMEOUT).await,
        "resource-constraint"
    );
    let mut comp = RawClient::connect(ports.component_addr())
        .await
        .component_ns();
    comp.send_header("comp.localhost").await;
    let id = match comp.read_frame(REPLY_TIMEOUT).await {
        Ok(Frame::Header(h)) => h.get("id").cloned().expect("stream id"),
        other => panic!("expected a stream header, got {other:?}"),
    };
    let digest: String = Sha1::digest(format!("{id}{SECRET}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    comp.send(&format!("<handshake>{digest}</handshake>")).await;
    let ok = comp.next_element(REPLY_TIMEOUT).await;
    assert!(ok.is("handshake", NS_COMPONENT), "{}", ok.raw);
}

/// `/metrics` and `/stats` answer loopback clients, clients in `http.stats_allow` and the
/// holder of the `http.stats_token_file` token; behind a trusted proxy the forwarded address
/// is the client, so the proxy's own loopback address lets nobody in.
#[tokio::test]
async fn stats_answer_loopback_allowed_networks_and_the_token() {
    let dir = TempDir::new();
    let token = "0123456789abcdef0123456789abcdef";
    let token_file = dir.path().join("stats.token");
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");
    let server = Setup::new(
        TestConfig::localhost_anonymous()
            .http("trusted_proxies = [\"127.0.0.1\"]")
            .http("stats_allow = [\"198.51.100.0/24\"]")
            .http(&format!(
                "stats_token_file = {:?}",
                token_file.display().to_string()
            )),
    )
    .start();
    let ports = server.ports();
    let status = |path: &'static str, forwarded: Option<&'static str>, bearer: Option<&str>| {
        let mut r = web::http().get(ports.http_url(path));
        if let Some(f) = forwarded {
            r = r.header("x-forwarded-for", f);
        }
        if let Some(b) = bearer {
            r = r.header("authorization", format!("Bearer {b}"));
        }
        async move { r.send().await.expect("GET").status().as_u16() }
    };
    for path in ["/metrics", "/stats", "/colibri/stats"] {
        assert_eq!(status(path, None, None).await, 200, "{path} from loopback");
        assert_eq!(
            status(path, Some("203.0.113.9"), None).await,
            403,
            "{path} forwarded from outside"
        );
        assert_eq!(
            status(path, Some("198.51.100.20"), None).await,
            200,
            "{path} from stats_allow"
        );
        assert_eq!(
            status(path, Some("203.0.113.9"), Some(token)).await,
            200,
            "{path} with the token"
        );
        assert_eq!(
            status(
                path,
                Some("203.0.113.9"),
                Some("0123456789abcdef0123456789abcdeX")
            )
            .await,
            403,
            "{path} with a wrong token"
        );
    }
    // Health stays open to everyone (load balancers ask it).
    let health = web::http()
        .get(ports.http_url("/about/health"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .expect("GET health");
    assert_eq!(health.status().as_u16(), 200);
}
