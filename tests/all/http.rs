//! The operator side of the HTTP listener: `/about/health`, `/metrics` parsed by an independent
//! Prometheus parser, `/stats`, static files, HTTPS, and slow or abandoned HTTP connections.
//!
//! Spec: Prometheus text format 0.0.4; Jitsi's health and stats conventions; RFC 9110 content types.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::harness::{Setup, TempDir, TestConfig};
use crate::raw::RawClient;
use crate::web;

#[tokio::test]
async fn health_metrics_and_stats() {
    let server = Setup::new(TestConfig::localhost_anonymous()).start();
    let ports = server.ports();
    let (status, ct, body) = web::get(ports, "/about/health").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ct, "application/json");
    let health: serde_json::Value = serde_json::from_str(&body).expect("health is JSON");
    assert_eq!(health["status"], "ok");

    let before = web::scrape(ports).await;
    let routed_before = web::sample(&before, "lilt_stanzas_routed_total", &[]);
    let (mut a, _) = RawClient::login_anonymous(ports.c2s_addr(), "localhost").await;
    let (mut b, b_jid) = RawClient::login_anonymous(ports.c2s_addr(), "localhost").await;
    for i in 0..5 {
        a.send(&format!("<message to='{b_jid}'><body>{i}</body></message>"))
            .await;
    }
    for _ in 0..5 {
        b.wait_for("a message", crate::raw::REPLY_TIMEOUT, |x| {
            x.el.name() == "message"
        })
        .await;
    }
    let s = web::scrape(ports).await;
    assert_eq!(
        web::sample(
            &s,
            "lilt_sessions",
            &[("transport", "tcp"), ("vhost", "localhost")]
        ),
        2.0
    );
    assert_eq!(
        web::sample(&s, "lilt_connections", &[("transport", "tcp")]),
        2.0
    );
    assert!(web::sample(&s, "lilt_stanzas_routed_total", &[]) >= routed_before + 5.0);
    assert!(web::sample(&s, "lilt_stanzas_delivered_total", &[]) >= 5.0);
    assert!(web::sample(&s, "lilt_client_writes_total", &[]) >= 5.0);
    assert!(web::sample(&s, "lilt_client_bytes_written_total", &[]) > 0.0);
    assert!(
        web::sample(
            &s,
            "lilt_auth_total",
            &[("mechanism", "ANONYMOUS"), ("result", "success")]
        ) >= 2.0
    );
    assert!(
        web::sample(
            &s,
            "lilt_plugin_calls_total",
            &[("plugin", "auth-anonymous"), ("vhost", "localhost")]
        ) >= 1.0
    );
    assert_eq!(
        web::sample(
            &s,
            "lilt_plugin_traps_total",
            &[("plugin", "auth-anonymous"), ("vhost", "localhost")]
        ),
        0.0
    );
    // No per-user value ever becomes a label.
    for x in &s.samples {
        for (k, v) in x.labels.iter() {
            assert!(
                !v.contains('@') && !v.contains('/') && !v.contains("127.0.0.1"),
                "label {k}={v} on {} looks like a JID or an address",
                x.metric
            );
        }
    }
    assert!(s.docs.contains_key("lilt_sessions"), "HELP lines present");

    let (status, ct, body) = web::get(ports, "/stats").await;
    assert_eq!(status, 200);
    assert_eq!(ct, "application/json");
    let stats: serde_json::Value = serde_json::from_str(&body).expect("stats JSON");
    assert_eq!(stats["sessions"], 2);
    assert_eq!(stats["connections_tcp"], 2);
    assert!(stats["total_stanzas_routed"].as_u64() >= Some(5));
    assert!(stats["current_timestamp"].as_u64().is_some());

    let (status, _, _) = web::get(ports, "/no/such/thing").await;
    assert_eq!(status, 404);
    a.sync("localhost").await;
}

#[tokio::test]
async fn static_files_with_content_types() {
    let site = TempDir::new();
    std::fs::write(
        site.path().join("index.html"),
        "<!doctype html><title>Lilt</title>",
    )
    .expect("write");
    std::fs::create_dir_all(site.path().join("css")).expect("mkdir");
    std::fs::write(site.path().join("css/brand.css"), "body{}").expect("write");
    std::fs::write(site.path().join("app.js"), "export {}").expect("write");
    std::fs::write(site.path().join("logo.svg"), "<svg/>").expect("write");
    std::fs::write(site.path().join(".secret"), "no").expect("write");
    let outside = TempDir::new();
    std::fs::write(outside.path().join("private.txt"), "secret").expect("write");
    let server = Setup::new(TestConfig::localhost_anonymous().http(&format!(
        "static_dir = {:?}",
        site.path().display().to_string()
    )))
    .start();
    let ports = server.ports();
    for (path, ct, body) in [
        (
            "/",
            "text/html; charset=utf-8",
            "<!doctype html><title>Lilt</title>",
        ),
        (
            "/index.html",
            "text/html; charset=utf-8",
            "<!doctype html><title>Lilt</title>",
        ),
        ("/css/brand.css", "text/css; charset=utf-8", "body{}"),
        ("/app.js", "text/javascript; charset=utf-8", "export {}"),
        ("/logo.svg", "image/svg+xml", "<svg/>"),
    ] {
        let (status, got_ct, got) = web::get(ports, path).await;
        assert_eq!(
            (status, got_ct.as_str(), got.as_str()),
            (200, ct, body),
            "{path}"
        );
    }
    let (status, _, _) = web::get(ports, "/missing.png").await;
    assert_eq!(status, 404);
    let (status, _, body) = web::get(ports, "/.secret").await;
    assert_ne!(status, 200, "hidden files are not served: {body}");
    // Traversal, raw over TCP so no client normalizes the path first.
    for path in [
        "/../private.txt",
        "/css/../../private.txt",
        "/%2e%2e/private.txt",
    ] {
        let mut tcp = tokio::net::TcpStream::connect(ports.http_addr())
            .await
            .expect("connect");
        tcp.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("write");
        let mut out = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_string(&mut out)).await;
        assert!(!out.contains("secret"), "{path} escaped the folder: {out}");
        assert!(out.starts_with("HTTP/1.1 4"), "{path}: {out}");
    }
    // The WebSocket path still answers a plain GET (Strophe's keepalive fetch).
    let (status, _, _) = web::get(ports, "/xmpp-websocket").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn https_listener_serves_health() {
    let server = Setup::new(TestConfig::localhost_anonymous()).start();
    let ports = server.ports();
    let certs = crate::tls_util::certificates_under(&server.data_dir());
    let config = crate::tls_util::pinned_client_config(certs);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", ports.https))
        .await
        .expect("connect");
    let mut tls = crate::tls_util::handshake(Box::new(tcp), "localhost", config)
        .await
        .expect("TLS handshake");
    tls.write_all(b"GET /about/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("\"ok\""), "{out}");
}

#[tokio::test]
async fn slow_and_abandoned_http_connections_time_out() {
    let server =
        Setup::new(TestConfig::localhost_anonymous().http("request_timeout_seconds = 1")).start();
    let ports = server.ports();
    // Half a request head, then silence.
    let mut slow = tokio::net::TcpStream::connect(ports.http_addr())
        .await
        .expect("connect");
    slow.write_all(b"GET /about/health HTTP/1.1\r\nHost: local")
        .await
        .expect("write");
    // A connection that never says anything.
    let mut silent = tokio::net::TcpStream::connect(ports.http_addr())
        .await
        .expect("connect");
    // A POST whose body never comes.
    let mut stalled = tokio::net::TcpStream::connect(ports.http_addr())
        .await
        .expect("connect");
    stalled
        .write_all(
            b"POST /http-bind HTTP/1.1\r\nHost: localhost\r\nContent-Length: 500\r\n\r\n<body",
        )
        .await
        .expect("write");
    // Meanwhile others are served.
    let (status, _, _) = web::get(ports, "/about/health").await;
    assert_eq!(status, 200);
    for (name, conn) in [
        ("slow", &mut slow),
        ("silent", &mut silent),
        ("stalled", &mut stalled),
    ] {
        let mut buf = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf)).await;
        assert!(
            r.is_ok(),
            "the {name} connection was not closed by the server"
        );
    }
    let (status, _, _) = web::get(ports, "/about/health").await;
    assert_eq!(status, 200);
}
