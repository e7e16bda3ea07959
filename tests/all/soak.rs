//! The hostile-client soak (tracker issue 14), short, against the server the test command builds: normal clients
//! chat in three rooms for 12 s while hostile clients send maximum-size stanzas into a busy
//! room (then one over the limit), stanzas too deep / with too many attributes / too many
//! elements, join 200 rooms from one session, sit paused on BOSH in the busy room and a normal
//! room, send presences over `max_presence_bytes`, and flood the c2s port with unauthenticated
//! connections from 127.0.0.2. The scenario is tests/examples/soak/mod.rs, shared with the
//! `soak` example (scripts/soak.sh runs it longer against a release server).
//!
//! Asserted: every hostile client got its documented error; every normal groupchat message
//! reached every occupant of its room (the sender's echo included); the server's RSS grew by
//! less than `RSS_GROWTH_BOUND_MIB` over the run. Latency is printed, never asserted.

#[path = "../examples/soak/mod.rs"]
mod scenario;

use crate::harness::{Setup, TestConfig, Vhost};

/// How much the server's RSS may grow over the run. What the hostile clients can pin by
/// design is small: 2 paused BOSH sessions × (256 KiB buffer + 1 MiB queue), a parser buffer
/// of at most 256 KiB per connection (≤ 32 + a few unauthenticated at once from the flood
/// address, and the others), 32 rooms of one occupant, and the normal clients' queues, which
/// they keep empty: well under 64 MiB. The allocator keeps freed memory, and the
/// 12 maximum-size messages fan out as 256 KiB copies; 256 MiB leaves room for that while
/// still catching anything that grows with what the hostile clients send (a thousand-room
/// hoard, an unbounded BOSH buffer or an unbounded flood would pass it).
const RSS_GROWTH_BOUND_MIB: u64 = 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_get_their_errors_and_normal_clients_lose_nothing() {
    let muc = "conference.localhost";
    let server = Setup::new(
        TestConfig::new(vec![
            Vhost::anonymous("localhost").with(&format!("[vhosts.muc]\ndomain = \"{muc}\"")),
        ])
        .limit("limit_loopback = true")
        .limit("session_queue_bytes = 1048576")
        .http("bosh_max_buffered_bytes = 262144"),
    )
    .start();
    let ports = server.ports();
    let params = scenario::Params {
        c2s: ports.c2s_addr().to_string(),
        http: ports.http_addr().to_string(),
        domain: "localhost".into(),
        muc: muc.into(),
        pid: server.pid(),
        seconds: 12.0,
        normal: 12,
        rooms: 3,
        rate: 2.0,
        room_joins: 200,
        flood: 80,
        flood_rounds: 2,
        flood_from: "127.0.0.2".into(),
        bosh_paused: 2,
        max_size_messages: 12,
        reps: 2,
        max_stanza_bytes: 262_144,
        max_depth: 64,
        max_attributes: 64,
        max_elements: 4096,
        max_rooms_per_session: 32,
        max_presence_bytes: 16_384,
        max_unauthenticated_per_address: 32,
        bosh_max_buffered_bytes: 262_144,
        session_queue_bytes: 1_048_576,
    };
    let out = tokio::time::timeout(std::time::Duration::from_secs(240), scenario::run(params))
        .await
        .expect("the soak ends within 240 s")
        .expect("the soak's set-up (normal clients' logins and joins) works");
    eprintln!("{}", out.table());
    for h in &out.hostile {
        assert!(h.ok, "{}: expected {}, got {}", h.name, h.expected, h.got);
    }
    assert!(out.normal_sent > 0, "no normal message was sent");
    assert!(
        out.normal_problems.is_empty() && out.normal_delivered == out.normal_expected,
        "normal messages lost: {} of {} delivered: {:?}",
        out.normal_delivered,
        out.normal_expected,
        out.normal_problems
    );
    let growth = out.rss_max_kib.saturating_sub(out.rss_start_kib) / 1024;
    assert!(
        growth < RSS_GROWTH_BOUND_MIB,
        "server RSS grew by {growth} MiB (bound {RSS_GROWTH_BOUND_MIB} MiB): {:?}",
        out.rss_kib
    );
    let mut server = server;
    assert!(server.is_running(), "the server died during the soak");
}
