//! Audio moderation in real browsers: headless Chromium running the real lib-jitsi-meet bundle
//! against `lilt serve` with the av-moderation plugin (tests/browser/av-moderation.mjs drives
//! it and prints one JSON report).
//!
//! Shell (processes: `lilt serve`, `node av-moderation.mjs`, Chromium). Spec: what
//! lib-jitsi-meet's AVModeration.js and JitsiConference expect of jitsi-meet's
//! mod_av_moderation_component: the `component/av_moderation` identity in the vhost's
//! disco#info, `json-message`s from that address, the room and actor as MUC JIDs.
//! Invariants checked: only a moderator's command changes anything; the events lib-jitsi-meet
//! raises carry the right media type, actor and participant; a late joiner learns that
//! moderation is on; the wire payloads have Prosody's fields.
//! Tests: `lib_jitsi_meet_audio_moderation`.

use serde_json::Value;

use crate::browser::run_node;
use crate::harness::{Setup, TestConfig, Vhost};

const ROOM: &str = "avmod@conference.localhost";
const COMPONENT: &str = "avmoderation.localhost";

/// The Jitsi layout (MUC, focus) on `localhost`, with av-moderation at `avmoderation.localhost`.
fn config() -> TestConfig {
    TestConfig::new(vec![
        Vhost::anonymous("localhost")
            .with("[vhosts.muc]\ndomain = \"conference.localhost\"\n[vhosts.focus]")
            .with(&format!(
                "[[vhosts.plugins]]\nplugin = \"av-moderation\"\ncomponent = \"{COMPONENT}\""
            )),
    ])
    .table("[sfu]\nbind = \"127.0.0.1:0\"")
}

/// Undo the XML escapes of a text node.
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `json-message` payloads participant `p` received from the component, in order.
fn payloads(p: &Value) -> Vec<Value> {
    let mut v = Vec::new();
    for f in p["frames"].as_array().into_iter().flatten() {
        let frame = f["frame"].as_str().unwrap_or_default();
        if f["dir"] != "in"
            || !frame.contains(&format!("from=\"{COMPONENT}\""))
                && !frame.contains(&format!("from='{COMPONENT}'"))
        {
            continue;
        }
        let Some(start) = frame.find("<json-message") else {
            continue;
        };
        let rest = &frame[start..];
        let (Some(open), Some(close)) = (rest.find('>'), rest.find("</json-message>")) else {
            continue;
        };
        if let Ok(json) = serde_json::from_str(&unescape(&rest[open + 1..close])) {
            v.push(json);
        }
    }
    v
}

fn events<'a>(p: &'a Value, name: &str) -> Vec<&'a Value> {
    p["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event"] == name)
        .collect()
}

/// Two participants: the first (made owner by the focus) turns audio moderation on, approves
/// and rejects the second, a third joins late, and moderation goes off again; the second's
/// own attempt to turn it on changes nothing.
#[test]
fn lib_jitsi_meet_audio_moderation() {
    let server = Setup::new(config()).start();
    let port = server.ports().http.to_string();
    let run = run_node(
        "av-moderation.mjs",
        &[
            "--http-port",
            &port,
            "--domain",
            "localhost",
            "--room",
            "avmod",
            "--timeout",
            "90",
        ],
        90,
    );
    let r = &run.report;
    let tail: Vec<&str> = run.log.lines().rev().take(80).collect();
    let context = format!(
        "report: {r}\n---- last lines of the pages' consoles ----\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    assert!(
        run.code == Some(0) && r["ok"] == Value::Bool(true),
        "the browser scenario failed: {}\n{context}",
        r["failure"]
    );
    let p = |i: u64| {
        r["participants"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["index"].as_u64() == Some(i)))
            .unwrap_or_else(|| panic!("no p{i}\n{context}"))
    };
    let (p1, p2, p3) = (p(1), p(2), p(3));
    let id1 = p1["id"].as_str().expect("p1 id");
    let id2 = p2["id"].as_str().expect("p2 id");
    for q in [p1, p2, p3] {
        assert_eq!(q["component"], COMPONENT, "{context}");
    }
    assert_eq!(p1["moderator"], true, "{context}");
    assert_eq!(p2["moderator"], false, "{context}");

    // lib-jitsi-meet's events, with their payloads.
    let changed = events(p2, "AV_MODERATION_CHANGED");
    assert_eq!(changed.len(), 2, "p2: on then off\n{context}");
    assert_eq!(
        (
            &changed[0]["enabled"],
            &changed[0]["mediaType"],
            &changed[0]["actor"]
        ),
        (&Value::Bool(true), &Value::from("audio"), &Value::from(id1)),
        "{context}"
    );
    assert_eq!(changed[1]["enabled"], false, "{context}");
    assert_eq!(changed[1]["actor"], id1, "{context}");
    assert_eq!(
        events(p2, "AV_MODERATION_APPROVED")[0]["mediaType"],
        "audio"
    );
    assert_eq!(
        events(p2, "AV_MODERATION_REJECTED")[0]["mediaType"],
        "audio"
    );
    let approved = events(p1, "AV_MODERATION_PARTICIPANT_APPROVED");
    assert_eq!(approved.len(), 1, "only p2 was approved\n{context}");
    assert_eq!(approved[0]["participant"], id2);
    assert_eq!(approved[0]["mediaType"], "audio");
    let rejected = events(p1, "AV_MODERATION_PARTICIPANT_REJECTED");
    assert_eq!(rejected.len(), 1, "{context}");
    assert_eq!(rejected[0]["participant"], id2);
    let late = events(p3, "AV_MODERATION_CHANGED");
    assert_eq!(late.len(), 2, "p3: on (at join) then off\n{context}");
    assert_eq!(late[0]["enabled"], true);
    assert_eq!(late[0]["actor"], id1);
    assert_eq!(late[1]["enabled"], false);
    // The moderator hears of its own change too (its own actor is no remote participant).
    assert_eq!(events(p1, "AV_MODERATION_CHANGED").len(), 2, "{context}");
    assert!(events(p2, "AV_MODERATION_PARTICIPANT_APPROVED").is_empty());

    // The wire: Prosody's fields, the room and actor as MUC JIDs.
    let actor1 = format!("{ROOM}/{id1}");
    let on = serde_json::json!({"type": "av_moderation", "enabled": true, "room": ROOM,
        "actor": actor1, "mediaType": "audio"});
    let off = serde_json::json!({"type": "av_moderation", "enabled": false, "room": ROOM,
        "actor": actor1, "mediaType": "audio"});
    assert_eq!(
        payloads(p2),
        [
            on.clone(),
            serde_json::json!({"type": "av_moderation", "room": ROOM, "mediaType": "audio", "approved": true}),
            serde_json::json!({"type": "av_moderation", "room": ROOM, "mediaType": "audio", "removed": true}),
            off.clone(),
        ],
        "{context}"
    );
    assert_eq!(payloads(p3), [on.clone(), off.clone()], "{context}");
    let m1 = payloads(p1);
    let lists = |members: &[&str], removed: bool| {
        let mut v = serde_json::json!({"type": "av_moderation", "room": ROOM, "mediaType": "audio",
            "whitelists": {"audio": members.iter().map(|n| format!("{ROOM}/{n}")).collect::<Vec<_>>()}});
        if removed {
            v["removed"] = Value::Bool(true);
        }
        v
    };
    assert_eq!(
        m1,
        [
            on,
            lists(&[id1], false),
            lists(&[id1, id2], false),
            lists(&[id1], true),
            off,
        ],
        "{context}"
    );
}
