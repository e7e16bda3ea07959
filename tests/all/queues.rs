//! Session queues bounded in bytes, against the real binary: a client that stops reading
//! while another sends it large messages pins at most `limits.session_queue_bytes` in the
//! server (beyond the kernel's socket buffers); what does not fit bounces to its sender with
//! `resource-constraint`, and every message is accounted for: delivered once the reader reads
//! again, or bounced.
//!
//! Spec: RFC 6120 §8.3.3.18 (`resource-constraint`).

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
    for i in 0..SENT {
        sender
            .send(&format!(
                "<message to='{reader_jid}' id='m{i}' type='chat'><body>{body}</body></message>"
            ))
            .await;
    }
    // Bounces come back while the reader still reads nothing.
    let mut bounced = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        match sender.read_frame(Duration::from_millis(500)).await {
            Ok(crate::raw::Frame::Element(x)) if x.el.name() == "message" => {
                assert_eq!(x.attr("type"), Some("error"), "{}", x.raw);
                assert!(x.raw.contains("resource-constraint"), "{}", x.raw);
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
    // The reader reads again: it gets every message that did not bounce, once.
    let mut delivered = std::collections::BTreeSet::new();
    while delivered.len() + bounced.len() < SENT {
        let x = reader
            .wait_for("a message", REPLY_TIMEOUT, |x| x.el.name() == "message")
            .await;
        let id = x.attr("id").expect("id").to_owned();
        assert!(!bounced.contains(&id), "{id} both bounced and delivered");
        assert!(delivered.insert(id.clone()), "{id} delivered twice");
    }
    assert_eq!(delivered.len() + bounced.len(), SENT);
    eprintln!(
        "queue bound: {} of {SENT} messages of 200 KB bounced, {} delivered",
        bounced.len(),
        delivered.len()
    );
}
