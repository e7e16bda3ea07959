//! Session queues bounded in bytes, against the real binary: a client that stops reading
//! while another sends it large messages pins at most `limits.session_queue_bytes` in the
//! server (beyond the kernel's socket buffers); what does not fit bounces to its sender with
//! `resource-constraint`, and every message is accounted for: delivered once the reader reads
//! again, or bounced.
//!
//! Spec: RFC 6120 §8.3.3.18 (`resource-constraint`).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::harness::{Setup, TestConfig};
use crate::raw::{REPLY_TIMEOUT, RawClient};

/// 60 messages of 200 KB to a reader with a 4 KiB receive buffer that reads nothing for a
/// while: with a 1 MiB queue budget most bounce, the rest arrive when it reads again, and the
/// two counts add up to what was sent.
#[tokio::test]
async fn a_reader_that_stops_pins_a_bounded_queue_and_nothing_is_lost() {
    const SENT: usize = 60;
    let server =
        Setup::new(TestConfig::localhost_anonymous().limit("session_queue_bytes = 1048576"))
            .start();
    let addr = server.ports().c2s_addr();
    // The slow reader: a tiny receive buffer, so the server's queue fills rather than the
    // kernel's.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let tcp = socket.connect(addr).await.expect("connect");
    let mut reader = RawClient::over(Box::new(tcp));
    reader.open("localhost").await;
    reader.auth_anonymous().await.expect("login");
    reader.open("localhost").await;
    let reader_jid = reader.bind(None).await;
    let (mut sender, _) = RawClient::login_anonymous(addr, "localhost").await;
    let body = "x".repeat(200_000);
    // Bounces come back while the reader still reads nothing; the sender reads them as it
    // goes (a session that cannot write to its client does not read from it either).
    let mut bounced = BTreeSet::new();
    for i in 0..SENT {
        sender
            .send(&format!(
                "<message to='{reader_jid}' id='m{i}' type='chat'><body>{body}</body></message>"
            ))
            .await;
        take_bounces(
            &mut sender,
            Duration::from_millis(20),
            &mut bounced,
            &Default::default(),
        )
        .await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        match sender.read_frame(Duration::from_millis(500)).await {
            Ok(crate::raw::Frame::Element(x)) if x.el.name() == "message" => {
                assert_eq!(x.attr("type"), Some("error"));
                assert!(
                    x.raw.contains("resource-constraint"),
                    "a bounce without its condition"
                );
                bounced.insert(x.attr("id").expect("id").to_owned());
            }
            Ok(_) => {}
            Err(crate::raw::ReadError::Timeout) if !bounced.is_empty() => break,
            Err(crate::raw::ReadError::Timeout) => {}
            Err(e) => panic!("sender: {e:?}"),
        }
    }
    assert!(
        !bounced.is_empty(),
        "nothing bounced: the queue was not bounded"
    );
    // The reader reads again: it gets every message that did not bounce, once. A bounce may
    // still be on its way to the sender (a loaded machine can leave more than the pause
    // above between two), so the sender keeps being read too.
    let mut delivered = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT * 3;
    while delivered.len() + bounced.len() < SENT {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} delivered and {} bounced of {SENT}",
            delivered.len(),
            bounced.len()
        );
        match reader.read_frame(Duration::from_millis(200)).await {
            Ok(crate::raw::Frame::Element(x)) if x.el.name() == "message" => {
                let id = x.attr("id").expect("id").to_owned();
                assert!(!bounced.contains(&id), "{id} both bounced and delivered");
                assert!(delivered.insert(id.clone()), "{id} delivered twice");
            }
            Ok(_) | Err(crate::raw::ReadError::Timeout) => {}
            Err(e) => panic!("reader: {e:?}"),
        }
        take_bounces(
            &mut sender,
            Duration::from_millis(5),
            &mut bounced,
            &delivered,
        )
        .await;
    }
    assert_eq!(delivered.len() + bounced.len(), SENT);
    eprintln!(
        "queue bound: {} of {SENT} messages of 200 KB bounced, {} delivered",
        bounced.len(),
        delivered.len()
    );
}

/// A BOSH client that holds no request (paused, or slow to come back) buffers at most
/// `http.bosh_max_buffered_bytes` in its session; past that its queue fills and what does not
/// fit bounces to the sender; when it asks again it gets every message that did not bounce.
#[tokio::test]
async fn a_bosh_client_away_buffers_a_bounded_amount_and_nothing_is_lost() {
    const SENT: usize = 30;
    let server = Setup::new(
        TestConfig::localhost_anonymous()
            .http("bosh_max_buffered_bytes = 300000")
            .limit("session_queue_bytes = 500000"),
    )
    .start();
    let ports = server.ports();
    let (mut bosh, bosh_jid) = crate::bosh::Bosh::login_anonymous(ports).await;
    let (mut sender, _) = RawClient::login_anonymous(ports.c2s_addr(), "localhost").await;
    let body = "y".repeat(100_000);
    let mut bounced = BTreeSet::new();
    for i in 0..SENT {
        sender
            .send(&format!(
                "<message to='{bosh_jid}' id='b{i}' type='chat'><body>{body}</body></message>"
            ))
            .await;
        // The sender reads its bounces as it goes: a sender that reads nothing has its own
        // queue fill with them, and errors are never bounced again (RFC 6120 §8.3.1), so
        // they would be dropped there.
        take_bounces(
            &mut sender,
            Duration::from_millis(20),
            &mut bounced,
            &Default::default(),
        )
        .await;
    }
    loop {
        match sender.read_frame(Duration::from_secs(2)).await {
            Ok(crate::raw::Frame::Element(x)) if x.el.name() == "message" => {
                assert!(
                    x.raw.contains("resource-constraint"),
                    "a bounce without its condition"
                );
                bounced.insert(x.attr("id").expect("id").to_owned());
            }
            Ok(_) => {}
            Err(crate::raw::ReadError::Timeout) => break,
            Err(e) => panic!("sender: {e:?}"),
        }
    }
    assert!(
        !bounced.is_empty(),
        "nothing bounced: the BOSH buffer was not bounded"
    );
    let mut delivered = BTreeSet::new();
    // A liveness bound, generous for a loaded 2-core machine (a stuck queue never ends).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while delivered.len() + bounced.len() < SENT {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} delivered, {} bounced of {SENT}",
            delivered.len(),
            bounced.len()
        );
        let (status, r) = bosh.send("", "").await;
        assert_eq!(status, 200);
        for m in r.children().filter(|c| c.name() == "message") {
            let id = m.attr("id").expect("id").to_owned();
            assert!(!bounced.contains(&id), "{id} both bounced and delivered");
            assert!(delivered.insert(id.clone()), "{id} delivered twice");
        }
        // Bounces still on their way back (a loaded machine parses 3 MB slowly).
        take_bounces(
            &mut sender,
            Duration::from_millis(100),
            &mut bounced,
            &delivered,
        )
        .await;
    }
    eprintln!(
        "BOSH buffer bound: {} of {SENT} messages of 100 KB bounced, {} delivered",
        bounced.len(),
        delivered.len()
    );
}

/// Read what reaches `sender` until `wait` passes with nothing new: every message is a bounce
/// (`resource-constraint`) of one not delivered, whose id goes into `bounced`.
async fn take_bounces(
    sender: &mut RawClient,
    wait: Duration,
    bounced: &mut BTreeSet<String>,
    delivered: &BTreeSet<String>,
) {
    while let Ok(crate::raw::Frame::Element(x)) = sender.read_frame(wait).await {
        if x.el.name() == "message" {
            assert!(
                x.raw.contains("resource-constraint"),
                "a bounce without its condition"
            );
            let id = x.attr("id").expect("id").to_owned();
            assert!(!delivered.contains(&id), "{id} both delivered and bounced");
            bounced.insert(id);
        }
    }
}
