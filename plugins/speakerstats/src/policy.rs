//! speakerstats' policy, as jitsi-meet's mod_speakerstats_component: clients report when they
//! become dominant speaker (`<speakerstats room=…/>` to the component); the plugin keeps per-room
//! totals per nick, and sends each joiner everyone's totals as the `json-message`
//! `{"type":"speakerstats","users":{NICK:{"displayName":…,"totalDominantSpeakerTime":MS}}}`.
//!
//! Pure (tested natively below). All state lives in `kv`, so it survives a plugin reload and
//! every call may run in a fresh instance. Keys: `occ|ROOM|JID` → nick, `name|ROOM|NICK` →
//! display name, `total|ROOM|NICK` → ms, `dom|ROOM` → `NICK SINCE_MS`. Invariants: at most one
//! dominant speaker per room; a room's keys are deleted when it is destroyed; the focus is
//! never counted.

use std::collections::BTreeMap;

use lilt_plugin_sdk::hooks::{CLIENT, Host, Occupant, Room, display_name};
use lilt_plugin_sdk::xml::Element;

/// Jitsi's namespace for `speakerstats` and `json-message`.
pub const JITMEET: &str = "http://jitsi.org/jitmeet";

fn text(host: &impl Host, key: &str) -> Option<String> {
    host.get(key).and_then(|v| String::from_utf8(v).ok())
}

fn total(host: &impl Host, room: &str, nick: &str) -> u64 {
    text(host, &format!("total|{room}|{nick}"))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

fn dominant(host: &impl Host, room: &str) -> Option<(String, u64)> {
    let v = text(host, &format!("dom|{room}"))?;
    let (nick, since) = v.rsplit_once(' ')?;
    Some((nick.to_owned(), since.parse().ok()?))
}

/// End the current dominant speaker's turn, adding it to their total.
fn stop_dominant(host: &impl Host, room: &str) {
    if let Some((nick, since)) = dominant(host, room) {
        let spent = host.now_ms().saturating_sub(since);
        let sum = total(host, room, &nick) + spent;
        let _ = host.set(&format!("total|{room}|{nick}"), sum.to_string().as_bytes());
        host.delete(&format!("dom|{room}"));
    }
}

/// Someone joined: remember them, then send them everyone's statistics.
pub fn joined(
    host: &impl Host,
    component: &str,
    room: &Room,
    occupant: &Occupant,
    presence: &Element,
) {
    if occupant.nick == "focus" {
        return;
    }
    let r = &room.jid;
    let _ = host.set(
        &format!("occ|{r}|{}", occupant.jid),
        occupant.nick.as_bytes(),
    );
    if let Some(name) = display_name(presence) {
        let _ = host.set(&format!("name|{r}|{}", occupant.nick), name.as_bytes());
    }
    let now = host.now_ms();
    let current = dominant(host, r);
    let mut users = BTreeMap::new();
    let prefix = format!("total|{r}|");
    let mut nicks: Vec<String> = host
        .keys(&prefix)
        .into_iter()
        .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    if let Some((nick, _)) = &current
        && !nicks.contains(nick)
    {
        nicks.push(nick.clone());
    }
    for nick in nicks {
        let mut ms = total(host, r, &nick);
        if let Some((d, since)) = &current
            && *d == nick
        {
            ms += now.saturating_sub(*since);
        }
        let name = text(host, &format!("name|{r}|{nick}"));
        users.insert(
            nick,
            serde_json::json!({ "displayName": name, "totalDominantSpeakerTime": ms }),
        );
    }
    if users.is_empty() {
        return;
    }
    let json = serde_json::json!({ "type": "speakerstats", "users": users });
    let msg = Element::new("message", CLIENT)
        .with_attr("from", component)
        .with_attr("to", occupant.jid.clone())
        .with_child(Element::new("json-message", JITMEET).with_text(json.to_string()));
    let _ = host.send(&msg);
}

/// Someone left: their turn ends; their display name is kept for later joiners.
pub fn left(host: &impl Host, room: &Room, occupant: &Occupant, presence: &Element) {
    let r = &room.jid;
    if dominant(host, r).is_some_and(|(n, _)| n == occupant.nick) {
        stop_dominant(host, r);
    }
    if let Some(name) = display_name(presence) {
        let _ = host.set(&format!("name|{r}|{}", occupant.nick), name.as_bytes());
    }
    host.delete(&format!("occ|{r}|{}", occupant.jid));
}

/// The room is gone: forget it.
pub fn destroyed(host: &impl Host, room: &Room) {
    for kind in ["occ", "name", "total", "dom"] {
        let prefix = format!("{kind}|{}", room.jid);
        for key in host.keys(&prefix) {
            // `dom|ROOM` has no trailing separator; the others are `kind|ROOM|…`.
            if key == prefix || key.starts_with(&format!("{prefix}|")) {
                host.delete(&key);
            }
        }
    }
}

/// A stanza to the component: a dominant-speaker report, or anything else (ignored here).
pub fn report(host: &impl Host, stanza: &Element) {
    let Some(stats) = stanza.child("speakerstats", JITMEET) else {
        return;
    };
    let (Some(room), Some(from)) = (stats.attr("room"), stanza.attr("from")) else {
        return;
    };
    // Only an occupant of that room may report, and only about itself.
    let Some(nick) = text(host, &format!("occ|{room}|{from}")) else {
        return;
    };
    if stats.attr("silence") == Some("true") {
        if dominant(host, room).is_some_and(|(n, _)| n == nick) {
            stop_dominant(host, room);
        }
        return;
    }
    if dominant(host, room).is_some_and(|(n, _)| n == nick) {
        return;
    }
    stop_dominant(host, room);
    let _ = host.set(
        &format!("dom|{room}"),
        format!("{nick} {}", host.now_ms()).as_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use lilt_plugin_sdk::hooks::MemoryHost;

    use super::*;

    fn presence(name: &str) -> Element {
        Element::parse(&format!(
            "<presence xmlns='jabber:client'><nick xmlns='http://jabber.org/protocol/nick'>{name}</nick></presence>"
        ))
        .expect("presence")
    }

    fn occupant(nick: &str) -> Occupant {
        Occupant {
            nick: nick.into(),
            jid: format!("{nick}@x/r"),
            ..Occupant::default()
        }
    }

    fn speak(host: &MemoryHost, nick: &str, extra: &str) {
        let s = Element::parse(&format!(
            "<message xmlns='jabber:client' from='{nick}@x/r' to='speakerstats.x'><speakerstats xmlns='http://jitsi.org/jitmeet' room='r@c.x' {extra}/></message>"
        ))
        .expect("report");
        report(host, &s);
    }

    fn stats_sent(host: &MemoryHost) -> serde_json::Value {
        let sent = host.take_sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let msg = Element::parse(&sent[0]).expect("xml");
        serde_json::from_str(&msg.child("json-message", JITMEET).expect("json").text())
            .expect("json")
    }

    #[test]
    fn totals_follow_dominant_speaker_reports() {
        let host = MemoryHost::default();
        let room = Room {
            jid: "r@c.x".into(),
            ..Room::default()
        };
        host.now.set(1_000);
        joined(
            &host,
            "speakerstats.x",
            &room,
            &occupant("a"),
            &presence("Alice"),
        );
        assert!(host.take_sent().is_empty(), "nothing to report yet");
        joined(
            &host,
            "speakerstats.x",
            &room,
            &occupant("b"),
            &presence("Bob"),
        );
        speak(&host, "a", "");
        host.now.set(16_000);
        speak(&host, "b", "");
        host.now.set(20_000);
        // A stranger's report changes nothing.
        speak(&host, "mallory", "");
        speak(&host, "b", "silence='true'");
        host.now.set(25_000);
        left(&host, &room, &occupant("a"), &presence("Alice A."));
        joined(
            &host,
            "speakerstats.x",
            &room,
            &occupant("c"),
            &presence("Carol"),
        );
        let json = stats_sent(&host);
        assert_eq!(json["type"], "speakerstats");
        assert_eq!(json["users"]["a"]["totalDominantSpeakerTime"], 15_000);
        assert_eq!(json["users"]["a"]["displayName"], "Alice A.");
        assert_eq!(json["users"]["b"]["totalDominantSpeakerTime"], 4_000);

        // A running turn is included.
        speak(&host, "c", "");
        host.now.set(27_500);
        joined(
            &host,
            "speakerstats.x",
            &room,
            &occupant("d"),
            &presence("Dan"),
        );
        assert_eq!(
            stats_sent(&host)["users"]["c"]["totalDominantSpeakerTime"],
            2_500
        );

        destroyed(&host, &room);
        assert!(host.is_empty(), "room state left behind");
    }

    #[test]
    fn focus_is_not_counted() {
        let host = MemoryHost::default();
        let room = Room {
            jid: "r@c.x".into(),
            ..Room::default()
        };
        joined(
            &host,
            "speakerstats.x",
            &room,
            &occupant("focus"),
            &presence("Focus"),
        );
        assert!(host.is_empty());
    }
}
