//! Routing shards end to end: a server forced to four shards (`limits.router_shards = 4`),
//! independent tokio-xmpp clients whose sessions and rooms land on different shards, and
//! every stanza checked to arrive once: room broadcasts to occupants owned by other shards,
//! chats between sessions of different shards, a session's end reaching rooms elsewhere,
//! and a MUC limit counted over rooms on different shards.
//!
//! Shell (end-to-end against `lilt serve`). Spec: docs/architecture.md "Routing shards".
//! Invariants checked: each client gets exactly the stanzas it should, whatever shard its
//! session and its rooms are on; the limits hold across shards.

use std::collections::BTreeSet;

use crate::harness::{Server, Setup, TestConfig, Vhost};
use crate::muc::{MUC, Peer, join};

const SHARDS: usize = 4;

/// The shard Lilt puts a bare JID on (FNV-1a over its bytes, as docs/architecture.md says),
/// so the test can choose rooms on different shards.
fn shard_of(bare: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bare.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % SHARDS as u64) as usize
}

/// A room name on `shard`.
fn room_on(shard: usize, prefix: &str) -> String {
    (0..1000)
        .map(|i| format!("{prefix}{i}@{MUC}"))
        .find(|r| shard_of(r) == shard)
        .expect("some name lands on every shard")
}

fn server(extra: &str) -> Server {
    let vhost =
        Vhost::anonymous("localhost").with(&format!("[vhosts.muc]\ndomain = \"{MUC}\"\n{extra}"));
    Setup::new(TestConfig::new(vec![vhost]).limit(&format!("router_shards = {SHARDS}"))).start()
}

/// The bodies of the next `n` stanzas (each must be a message), as (from, body).
async fn bodies(p: &mut Peer, n: usize) -> BTreeSet<(String, String)> {
    let mut got = BTreeSet::new();
    for _ in 0..n {
        let m = p.next().await;
        assert_eq!(m.name(), "message", "{}: {}", p.jid, String::from(&m));
        let body = m
            .children()
            .find(|c| c.name() == "body")
            .map(|b| b.text())
            .unwrap_or_default();
        assert!(
            got.insert((m.attr("from").unwrap_or_default().to_owned(), body)),
            "{}: twice: {}",
            p.jid,
            String::from(&m)
        );
    }
    got
}

#[tokio::test]
async fn rooms_and_sessions_on_different_shards_reach_each_other() {
    let server = server("");
    let rooms = [room_on(0, "a"), room_on(1, "b"), room_on(2, "c")];
    let mut peers = Vec::new();
    for _ in 0..6 {
        peers.push(Peer::anonymous(&server, "localhost").await);
    }
    let homes: BTreeSet<usize> = peers
        .iter()
        .map(|p| shard_of(p.jid.split('/').next().unwrap_or_default()))
        .collect();
    // Six random anonymous JIDs over four shards: all on one would be a 1-in-1024 event.
    assert!(homes.len() > 1, "all sessions on one shard: {homes:?}");
    // Who is in which room: each room has peers from the others' rooms too.
    let members: [&[usize]; 3] = [&[0, 1, 2, 3], &[2, 3, 4, 5], &[0, 1, 4, 5]];
    for (r, who) in members.iter().enumerate() {
        for (k, &i) in who.iter().enumerate() {
            join(&mut peers[i], &rooms[r], &format!("p{i}"), k).await;
            for &j in &who[..k] {
                // Earlier occupants see the newcomer.
                let arrival = peers[j].next().await;
                assert_eq!(
                    arrival.attr("from"),
                    Some(format!("{}/p{i}", rooms[r]).as_str()),
                    "{}",
                    String::from(&arrival)
                );
            }
        }
    }
    // Everyone says one line in each of its rooms; everyone hears every line of its rooms
    // once, its own included.
    for (r, who) in members.iter().enumerate() {
        for &i in who.iter() {
            peers[i]
                .send(&format!(
                    "<message to='{}' type='groupchat'><body>{i} in {r}</body></message>",
                    rooms[r]
                ))
                .await;
        }
    }
    for (i, p) in peers.iter_mut().enumerate() {
        let mine: Vec<usize> = (0..3).filter(|r| members[*r].contains(&i)).collect();
        let rooms = &rooms;
        let want: BTreeSet<(String, String)> = mine
            .iter()
            .flat_map(|&r| {
                members[r]
                    .iter()
                    .map(move |&j| (format!("{}/p{j}", rooms[r]), format!("{j} in {r}")))
            })
            .collect();
        assert_eq!(bodies(p, want.len()).await, want, "peer {i}");
    }
    // A chat from each session to the next one's full JID.
    let jids: Vec<String> = peers.iter().map(|p| p.jid.clone()).collect();
    for i in 0..peers.len() {
        let to = &jids[(i + 1) % jids.len()];
        peers[i]
            .send(&format!(
                "<message to='{to}' type='chat'><body>hello from {i}</body></message>"
            ))
            .await;
    }
    for i in 0..peers.len() {
        let from = (i + peers.len() - 1) % peers.len();
        let got = bodies(&mut peers[i], 1).await;
        let want = BTreeSet::from([(jids[from].clone(), format!("hello from {from}"))]);
        assert_eq!(got, want);
    }
    // Peer 5 goes: the occupants of its two rooms, whatever their shards, see it leave.
    let gone = peers.pop().expect("six peers");
    gone.quit().await;
    for (i, p) in peers.iter_mut().enumerate() {
        let want: BTreeSet<String> = (0..3)
            .filter(|&r| members[r].contains(&i) && members[r].contains(&5))
            .map(|r| format!("{}/p5", rooms[r]))
            .collect();
        let mut got = BTreeSet::new();
        // Peer 5 may not have acknowledged the chat peer 4 sent it (XEP-0198), in which case
        // its session's end bounces that chat back to peer 4, once.
        let is_bounce = |s: &tokio_xmpp::minidom::Element| {
            i == 4 && s.name() == "message" && s.attr("type") == Some("error")
        };
        let mut bounced = false;
        while got.len() < want.len() {
            let left = p.next().await;
            if !bounced && is_bounce(&left) {
                bounced = true;
                continue;
            }
            assert_eq!(
                left.attr("type"),
                Some("unavailable"),
                "{}",
                String::from(&left)
            );
            got.insert(left.attr("from").unwrap_or_default().to_owned());
        }
        if !bounced && let Some(late) = p.try_next(std::time::Duration::from_millis(500)).await {
            assert!(is_bounce(&late), "{}", String::from(&late));
        }
        assert_eq!(got, want, "peer {i}");
    }
    for p in &mut peers {
        p.expect_silence().await;
    }
}

#[tokio::test]
async fn room_limits_count_rooms_on_every_shard() {
    let server = server("max_rooms_per_session = 2");
    let mut a = Peer::anonymous(&server, "localhost").await;
    let (one, two, three) = (room_on(0, "x"), room_on(1, "y"), room_on(2, "z"));
    join(&mut a, &one, "a", 0).await;
    join(&mut a, &two, "a", 0).await;
    // The third room is on a shard where `a` is in no room yet: still refused.
    a.send(&format!(
        "<presence to='{three}/a'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    ))
    .await;
    let refused = a.next().await;
    let text = String::from(&refused);
    assert_eq!(refused.attr("type"), Some("error"), "{text}");
    assert!(
        text.contains("policy-violation") && text.contains("at most 2"),
        "{text}"
    );
    // Leaving one (on another shard) frees a place.
    a.send(&format!("<presence to='{one}/a' type='unavailable'/>"))
        .await;
    let left = a.next().await;
    assert_eq!(
        left.attr("type"),
        Some("unavailable"),
        "{}",
        String::from(&left)
    );
    join(&mut a, &three, "a", 0).await;
    a.expect_silence().await;
}
