//! Hook and component plugins in a Jitsi-style room, as WebAssembly: speakerstats,
//! conference-duration and a tenant's branding together, and a hook plugin that traps on
//! every event without breaking anything.
//!
//! Shell (end-to-end against `lilt serve` with the real plugin components). Spec: what
//! lib-jitsi-meet expects (component identities in the vhost's disco#info; speakerstats and
//! conference-duration `json-message`s from the advertised addresses) and docs/plugins.md (hooks
//! fail open; repeated traps disable). Invariants checked: plugin messages come from the
//! component's own domain; a rejected join gets the plugin's condition and text; a trapping
//! hook changes no stanza. Tests: this file.

use tokio_xmpp::minidom::Element;

use crate::harness::{Setup, TestConfig, Vhost};
use crate::muc::{MUC, Peer, join};
use crate::web::{sample, scrape, wait_metric};

const JITMEET: &str = "http://jitsi.org/jitmeet";

fn jitsi_vhost() -> Vhost {
    Vhost::anonymous("localhost")
        .with(&format!("[vhosts.muc]\ndomain = \"{MUC}\""))
        .with("[[vhosts.plugins]]\nplugin = \"speakerstats\"\ncomponent = \"speakerstats.localhost\"")
        .with("[[vhosts.plugins]]\nplugin = \"conference-duration\"\ncomponent = \"conferenceduration.localhost\"")
        .with(
            "[[vhosts.plugins]]\nplugin = \"branding\"\n[vhosts.plugins.settings]\n\
             welcome_message = \"Welcome to {room}, {name}!\"\n\
             room_name_pattern = \"^[a-z0-9-]{3,32}$\"\n\
             display_name = { required = true, suffix = \" (Acme)\" }\n\
             brand = { name = \"Acme Meet\", logo_url = \"https://acme.example/logo.svg\", colors = { primary = \"#0055ff\" } }",
        )
}

/// The next `n` stanzas, in any order.
async fn collect(p: &mut Peer, n: usize) -> Vec<Element> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(p.next().await);
    }
    v
}

fn json_from(stanzas: &[Element], from: &str) -> Option<serde_json::Value> {
    stanzas
        .iter()
        .filter(|s| s.attr("from") == Some(from))
        .find_map(|s| s.get_child("json-message", JITMEET))
        .map(|j| serde_json::from_str(&j.text()).expect("json-message is JSON"))
}

/// Join with a display name; returns the stanzas after the self-presence and subject
/// (`extra` plugin messages).
async fn join_named(
    p: &mut Peer,
    room: &str,
    nick: &str,
    name: &str,
    others: usize,
    extra: usize,
) -> (Element, Vec<Element>) {
    p.send(&format!(
        "<presence to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/><nick xmlns='http://jabber.org/protocol/nick'>{name}</nick></presence>"
    ))
    .await;
    for _ in 0..others {
        p.next().await;
    }
    let own = p.next().await;
    p.expect("<message type='groupchat' from='*' to='{me}'><subject/></message>")
        .await;
    (own, collect(p, extra).await)
}

#[tokio::test]
async fn speakerstats_conference_duration_and_branding_in_one_room() {
    let server = Setup::new(TestConfig::new(vec![jitsi_vhost()])).start();
    let room = "team-1@conference.localhost";
    let mut alice = Peer::anonymous(&server, "localhost").await;

    // The components are advertised where Jitsi clients look for them.
    alice.send("<iq type='get' to='localhost' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").await;
    let disco = alice.next().await;
    let identities: Vec<(String, String, String)> = disco
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .map(|q| {
            q.children()
                .filter(|c| c.name() == "identity")
                .map(|c| {
                    let a = |k| c.attr(k).unwrap_or("").to_owned();
                    (a("category"), a("type"), a("name"))
                })
                .collect()
        })
        .unwrap_or_default();
    for (kind, name) in [
        ("speakerstats", "speakerstats.localhost"),
        ("conference_duration", "conferenceduration.localhost"),
    ] {
        assert!(
            identities.contains(&("component".into(), kind.into(), name.into())),
            "{kind} identity missing: {identities:?}"
        );
    }

    // Branding: room names and display names are the tenant's rules.
    alice.send("<presence to='Bad_Name@conference.localhost/a'><x xmlns='http://jabber.org/protocol/muc'/><nick xmlns='http://jabber.org/protocol/nick'>Alice</nick></presence>").await;
    let refused = String::from(&alice.next().await);
    assert!(
        refused.contains("not-allowed") && refused.contains("must match"),
        "{refused}"
    );
    alice
        .send(&format!(
            "<presence to='{room}/a'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ))
        .await;
    let refused = String::from(&alice.next().await);
    assert!(
        refused.contains("not-acceptable") && refused.contains("display name is required"),
        "{refused}"
    );

    // Alice creates the room: her name gets the suffix; she is welcomed and told the start.
    let (own, extra) = join_named(&mut alice, room, "a", "Alice", 0, 2).await;
    let own_text = String::from(&own);
    assert!(own_text.contains("Alice (Acme)"), "{own_text}");
    let welcome = extra
        .iter()
        .find(|s| s.get_child("body", "jabber:client").is_some())
        .expect("a welcome message");
    assert_eq!(welcome.attr("from"), Some(room));
    assert_eq!(
        welcome
            .get_child("body", "jabber:client")
            .map(Element::text)
            .as_deref(),
        Some("Welcome to team-1, Alice (Acme)!")
    );
    let duration =
        json_from(&extra, "conferenceduration.localhost").expect("conference duration message");
    assert_eq!(duration["type"], "conference_duration");
    let created = duration["created_timestamp"].as_u64().expect("timestamp");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    assert!(
        created <= now_ms && now_ms - created < 60_000,
        "created {created}, now {now_ms}"
    );

    // Bob joins; Alice becomes dominant speaker for a while, then Bob.
    let mut bob = Peer::anonymous(&server, "localhost").await;
    let (_, extra) = join_named(&mut bob, room, "b", "Bob", 1, 2).await;
    assert!(
        json_from(&extra, "speakerstats.localhost").is_none(),
        "no statistics yet: {extra:?}"
    );
    alice.next().await; // Bob's arrival
    alice.send(&format!("<message to='speakerstats.localhost'><speakerstats xmlns='{JITMEET}' room='{room}'/></message>")).await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    bob.send(&format!("<message to='speakerstats.localhost'><speakerstats xmlns='{JITMEET}' room='{room}'/></message>")).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    // Carol gets everyone's totals from the speakerstats address.
    let mut carol = Peer::anonymous(&server, "localhost").await;
    let (_, extra) = join_named(&mut carol, room, "c", "Carol", 2, 3).await;
    let stats = json_from(&extra, "speakerstats.localhost").expect("speaker statistics");
    assert_eq!(stats["type"], "speakerstats");
    let alice_ms = stats["users"]["a"]["totalDominantSpeakerTime"]
        .as_u64()
        .expect("alice");
    let bob_ms = stats["users"]["b"]["totalDominantSpeakerTime"]
        .as_u64()
        .expect("bob");
    // Alice's turn lasted from her report to Bob's (sent 400 ms apart); Bob's is still running
    // (about 200 ms when Carol joined). The bounds allow for scheduling on a busy machine.
    assert!(
        (300..10_000).contains(&alice_ms),
        "alice spoke {alice_ms} ms"
    );
    assert!(
        (100..10_000).contains(&bob_ms),
        "bob is speaking ({bob_ms} ms so far)"
    );
    assert_eq!(stats["users"]["a"]["displayName"], "Alice (Acme)");

    // The brand, for the meeting page.
    carol
        .send("<iq type='get' to='localhost' id='b1'><query xmlns='urn:lilt:branding'/></iq>")
        .await;
    let reply = carol.next().await;
    let brand = reply
        .get_child("query", "urn:lilt:branding")
        .and_then(|q| q.get_child("brand", "urn:lilt:branding"))
        .map(Element::text)
        .unwrap_or_else(|| panic!("no brand in {}", String::from(&reply)));
    let brand: serde_json::Value = serde_json::from_str(&brand).expect("brand JSON");
    assert_eq!(brand["name"], "Acme Meet");
    assert_eq!(brand["colors"]["primary"], "#0055ff");

    // The component answers disco itself.
    carol.send("<iq type='get' to='speakerstats.localhost' id='d2'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").await;
    let info = String::from(&carol.next().await);
    assert!(
        info.contains("speakerstats") && info.contains("result"),
        "{info}"
    );

    let m = scrape(server.ports()).await;
    for plugin in ["speakerstats", "conference-duration", "branding"] {
        let calls = sample(
            &m,
            "lilt_plugin_calls_total",
            &[("plugin", plugin), ("vhost", "localhost")],
        );
        assert!(calls > 0.0, "{plugin} was never called");
        assert_eq!(
            sample(
                &m,
                "lilt_plugin_traps_total",
                &[("plugin", plugin), ("vhost", "localhost")]
            ),
            0.0
        );
    }
    // The gauges are sampled every 500 ms.
    wait_metric(server.ports(), "lilt_muc_occupants", &[], 3.0).await;
}

#[tokio::test]
async fn a_trapping_hook_fails_open_and_is_disabled() {
    let vhost = Vhost::anonymous("localhost")
        .with(&format!("[vhosts.muc]\ndomain = \"{MUC}\""))
        .with("[[vhosts.plugins]]\nplugin = \"test-hooks\"");
    let server = Setup::new(TestConfig::new(vec![vhost])).start();
    let room = "trap@conference.localhost";
    let mut a = Peer::anonymous(&server, "localhost").await;
    let mut b = Peer::anonymous(&server, "localhost").await;
    join(&mut a, room, "a", 0).await;
    join(&mut b, room, "b", 1).await;
    a.next().await;
    for p in [&mut a, &mut b] {
        p.var("r", room);
    }
    for i in 0..6 {
        a.send(&format!(
            "<message to='{{r}}' type='groupchat'><body>m{i}</body></message>"
        ))
        .await;
        for p in [&mut a, &mut b] {
            p.expect(&format!(
                "<message from='{{r}}/a' to='{{me}}' type='groupchat'><body>m{i}</body></message>"
            ))
            .await;
        }
    }
    let ports = server.ports();
    wait_metric(
        ports,
        "lilt_plugin_disabled",
        &[("plugin", "test-hooks"), ("vhost", "localhost")],
        1.0,
    )
    .await;
    let m = scrape(ports).await;
    let traps = sample(
        &m,
        "lilt_plugin_traps_total",
        &[("plugin", "test-hooks"), ("vhost", "localhost")],
    );
    assert!(traps >= 5.0, "{traps} traps");
    server.logged(&["Plugin trapped", "test-hooks"]).await;
}

#[tokio::test]
async fn plugin_timers_fire_and_sends_stay_in_the_plugins_domains() {
    let vhost = Vhost::anonymous("localhost")
        .with("[[vhosts.plugins]]\nplugin = \"test-hooks\"\nsettings = { mode = \"timer\" }");
    let server = Setup::new(TestConfig::new(vec![vhost])).start();
    let mut a = Peer::anonymous(&server, "localhost").await;
    let asked = std::time::Instant::now();
    a.send("<message to='localhost' type='chat'><body>timer 300</body></message>")
        .await;
    // The forged stanza never arrives; the timer's answer does, no sooner than asked.
    a.expect("<message from='localhost' to='{me}'><body>timer fired</body></message>")
        .await;
    assert!(
        asked.elapsed() >= std::time::Duration::from_millis(300),
        "fired after {:?}",
        asked.elapsed()
    );
    a.expect_silence().await;
    let m = scrape(server.ports()).await;
    assert_eq!(
        sample(
            &m,
            "lilt_plugin_traps_total",
            &[("plugin", "test-hooks"), ("vhost", "localhost")]
        ),
        0.0,
        "the forged send was accepted"
    );
}
