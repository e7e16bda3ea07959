//! conference-duration's policy: on every join, send the occupant the room's creation time in
//! the `json-message` lib-jitsi-meet reads (`{"type":"conference_duration",
//! "created_timestamp":MS}`), from the component's own address, which the client only trusts
//! when it was advertised in the vhost's disco#info.
//!
//! Pure (tested natively below). Invariant: the focus occupant (nick `focus`) gets nothing.

use lilt_plugin_sdk::hooks::{CLIENT, Host, Occupant, Room};
use lilt_plugin_sdk::xml::Element;

/// Jitsi's namespace for `json-message`.
pub const JITMEET: &str = "http://jitsi.org/jitmeet";

/// Someone joined `room`.
pub fn joined(host: &impl Host, component: &str, room: &Room, occupant: &Occupant) {
    if occupant.nick == "focus" {
        return;
    }
    let json = serde_json::json!({
        "type": "conference_duration",
        "created_timestamp": room.created_millis,
    });
    let msg = Element::new("message", CLIENT)
        .with_attr("from", component)
        .with_attr("to", occupant.jid.clone())
        .with_child(Element::new("json-message", JITMEET).with_text(json.to_string()));
    let _ = host.send(&msg);
}

#[cfg(test)]
mod tests {
    use lilt_plugin_sdk::hooks::MemoryHost;

    use super::*;

    #[test]
    fn sends_the_creation_time_to_each_joiner_but_the_focus() {
        let host = MemoryHost::default();
        let room = Room {
            jid: "r@conference.x".into(),
            created_millis: 1_767_000_000_000,
            occupants: 2,
            ..Room::default()
        };
        let alice = Occupant {
            nick: "a1".into(),
            jid: "alice@x/web".into(),
            ..Occupant::default()
        };
        joined(&host, "conferenceduration.x", &room, &alice);
        let sent = host.take_sent();
        assert_eq!(sent.len(), 1);
        let msg = Element::parse(&sent[0]).expect("xml");
        assert_eq!(msg.attr("from"), Some("conferenceduration.x"));
        assert_eq!(msg.attr("to"), Some("alice@x/web"));
        let json: serde_json::Value =
            serde_json::from_str(&msg.child("json-message", JITMEET).expect("json").text())
                .expect("json");
        assert_eq!(json["type"], "conference_duration");
        assert_eq!(json["created_timestamp"], 1_767_000_000_000u64);
        let focus = Occupant {
            nick: "focus".into(),
            ..alice
        };
        joined(&host, "conferenceduration.x", &room, &focus);
        assert!(host.take_sent().is_empty());
        assert!(lilt_plugin_sdk::no_settings("{\"x\":1}").is_err());
        assert!(lilt_plugin_sdk::no_settings("{}").is_ok());
    }
}
